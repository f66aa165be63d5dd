"""Result layers (heatmap, z-map, reconstruction, outlines) on the scan's grid, through the
shared geometry.

NaN choice: the core marks voxels that no window predicted with NaN. The
heatmap keeps them as NaN: napari draws NaN transparent (its colormaps'
``nan_color``), so unscored slices show the bare scan instead of the dark blue
of a healthy zero, and the value under the cursor reads ``nan``, not ``0``.
The overlays are drawn only on the scan's foreground (the core's z-map is NaN
outside it; the heatmap is masked here for display, its export stays whole), so
the background shows no colour and none of the decoder's faint dot pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.config import ZMAP_RANGE
from napari_madgan._geometry import robust_contrast, to_display
from napari_madgan._layers import SCAN_KEY, geometry_kwargs

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore

# Result layer kinds, and the name each takes after the scan layer's name.
HEATMAP, ZMAP, RECONSTRUCTION = "heatmap", "zmap", "reconstruction"
BRAIN, OUTLINES = "brain", "outlines"
HEATMAP_NAME = "ℓ2 heatmap"
ZMAP_NAME = "z-map (vs healthy)"
RECONSTRUCTION_NAME = "reconstruction"
BRAIN_NAME = "brain mask"
OUTLINES_NAME = "finding outlines"
LAYER_NAMES = {
    HEATMAP: HEATMAP_NAME,
    ZMAP: ZMAP_NAME,
    RECONSTRUCTION: RECONSTRUCTION_NAME,
    BRAIN: BRAIN_NAME,
    OUTLINES: OUTLINES_NAME,
}
HEATMAP_OPACITY = 0.55
RESULT_KEY = "madgan_result"


@dataclass(frozen=True)
class LayerSpec:
    """One result layer, ready to add: its kind, display data and keyword arguments
    (``labels`` layers take the napari Labels layer's arguments, others the Image layer's)."""

    kind: str
    name: str
    data: np.ndarray
    kwargs: dict
    layer_type: str = "image"


def on_foreground(volume: np.ndarray | None, foreground: np.ndarray | None) -> np.ndarray | None:
    """``volume`` with NaN (drawn transparent) outside ``foreground``, when both exist."""
    if volume is None or foreground is None:
        return volume
    return np.where(foreground, volume, np.float32(np.nan)).astype(np.float32, copy=False)


def result_layer_specs(
    scan: Scan, result: ScanScore, heatmap_range: tuple[float, float], prefix: str = ""
) -> list[LayerSpec]:
    """The heatmap, the (hidden) z-map and the (hidden) reconstruction of ``result`` on
    ``scan``'s grid.

    Pure numpy (safe to run in the scoring worker): the display arrays are made
    contiguous here so the GUI thread only hands them to napari.
    """
    common = {"metadata": {SCAN_KEY: scan, RESULT_KEY: result}, **geometry_kwargs(scan)}
    overlay = {"colormap": "jet", "blending": "translucent", "opacity": HEATMAP_OPACITY}
    layers = [
        (
            RECONSTRUCTION,
            result.reconstruction,
            {"colormap": "gray", "contrast_limits": robust_contrast(scan.data), "visible": False},
        ),
        (
            HEATMAP,
            on_foreground(result.heatmap, result.foreground),
            {**overlay, "contrast_limits": tuple(float(v) for v in heatmap_range)},
        ),
        # Healthy-normalised: how unusual the error is for that place, so the lesion
        # itself lights up. Hidden until the reader switches it on.
        (ZMAP, result.zmap, {**overlay, "contrast_limits": ZMAP_RANGE, "visible": False}),
    ]
    specs = [
        LayerSpec(
            kind,
            f"{prefix}{LAYER_NAMES[kind]}",
            np.ascontiguousarray(to_display(np.asarray(volume, dtype=np.float32))),
            {**style, **common, "metadata": dict(common["metadata"])},
        )
        for kind, volume, style in layers
        if volume is not None
    ]
    # Outlines drawn over the overlays: the extracted brain, so the reader sees what was
    # scored, and each finding on every slice it spans, under its rank.
    outlines = [
        (BRAIN, result.brain_mask, {"opacity": 0.8}),
        # white like the findings' rings, a colour the jet overlays never take
        (OUTLINES, result.finding_labels, {"colormap": {None: "white", 0: "transparent"}}),
    ]
    specs += [
        LayerSpec(
            kind,
            f"{prefix}{LAYER_NAMES[kind]}",
            np.ascontiguousarray(to_display(volume.astype(np.uint8))),
            {**common, "metadata": dict(common["metadata"]), "contour": 1, **style},
            layer_type="labels",
        )
        for kind, volume, style in outlines
        if volume is not None
    ]
    return specs


def _same_geometry(layer, kwargs: dict) -> bool:
    if "affine" in kwargs:
        return np.allclose(layer.affine.affine_matrix, kwargs["affine"])
    return np.allclose(layer.scale, kwargs["scale"]) and np.allclose(
        layer.translate, kwargs["translate"]
    )


def apply_layer(viewer: napari.Viewer, spec: LayerSpec, previous: Image | None = None) -> Image:
    """Add the layer, or update ``previous`` (the layer of that kind from the last run on the
    same scan) in place.

    Updating in place is much cheaper than removing and re-adding a layer (napari
    rebuilds its scene graph on removal), and keeps the user's display tweaks
    (opacity, visibility, the layer's name) between runs.
    """
    if previous is not None:
        if previous.data.shape == spec.data.shape and _same_geometry(previous, spec.kwargs):
            previous.metadata = spec.kwargs["metadata"]
            previous.data = spec.data
            if "contrast_limits" in spec.kwargs:
                previous.contrast_limits = spec.kwargs["contrast_limits"]
            return previous
        viewer.layers.remove(previous)
    if spec.layer_type == "labels":
        kwargs = dict(spec.kwargs)
        contour = kwargs.pop("contour", 0)
        layer = viewer.add_labels(spec.data, name=spec.name, **kwargs)
        layer.contour = contour
        return layer
    return viewer.add_image(spec.data, name=spec.name, **spec.kwargs)
