"""Layer data tuples for scans: one place that names, places and contrasts a scan layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_madgan._geometry import AXIS_LABELS, UNITS, ras_layer, robust_contrast

if TYPE_CHECKING:
    from madgan_core.scans.scan import Scan

SCAN_KEY = "madgan_scan"
PATH_KEY = "madgan_path"
INFO_KEY = "madgan_info"


def geometry_kwargs(scan: Scan) -> dict[str, Any]:
    """Geometry keyword arguments shared by a scan layer and every layer built on its grid."""
    _, geometry = ras_layer(scan.data, scan.affine)
    return {**geometry, "axis_labels": AXIS_LABELS, "units": (UNITS,) * 3}


def scan_layer_tuple(scan: Scan, name: str | None = None, info: dict | None = None) -> tuple:
    """A napari ``LayerDataTuple`` for a scan, with its geometry, contrast and metadata."""
    data, _ = ras_layer(scan.data, scan.affine)
    metadata: dict[str, Any] = {
        SCAN_KEY: scan,
        PATH_KEY: None if scan.path is None else str(scan.path),
    }
    if info:
        metadata[INFO_KEY] = info
    kwargs = {
        "name": name or scan.name,
        "colormap": "gray",
        "contrast_limits": robust_contrast(scan.data),
        "metadata": metadata,
        **geometry_kwargs(scan),
    }
    return (data, kwargs, "image")


def real_layer(layer):
    """The layer itself, also when napari handed us a public-only proxy of it."""
    return getattr(layer, "__wrapped__", layer)


def in_viewer(viewer, layer) -> bool:
    """Whether ``layer`` (or the layer behind a proxy of it) is still in ``viewer``."""
    target = real_layer(layer)
    return any(real_layer(other) is target for other in viewer.layers)
