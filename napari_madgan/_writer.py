"""File ▸ Save Selected Layer(s) as NIfTI: a layer this plugin made, on its scan's own grid.

A scan opened by the plugin and every result layer built on it (heatmap, z-map,
reconstruction, brain mask, finding outlines) carry the scan in their metadata, so
the saved file has the scan's native voxel order, affine and shape, and opens
aligned with the scan in any NIfTI tool. Labels are saved as integers, images as
float32 (NaN, where nothing was predicted, stays NaN).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from madgan_core.scans.files import save_like
from napari_madgan._geometry import from_display
from napari_madgan._layers import SCAN_KEY


def write_nifti(path: str, data: Any, attributes: dict) -> list[str]:
    """Save one image or labels layer as NIfTI in its scan's native space (npe2 writer).

    A layer it cannot place writes nothing and says why in a warning (napari shows it;
    an exception would be swallowed into a generic "not a valid writer").
    """
    name = attributes.get("name", "the layer")
    scan = (attributes.get("metadata") or {}).get(SCAN_KEY)
    if scan is None:
        return _refuse(
            f"{path}: {name!r} was not made by napari-madgan, so its scan's grid is unknown; "
            "save a scan opened with the plugin, or one of its results"
        )
    data = np.asarray(data)
    volume = from_display(data) if data.ndim == 3 else data
    if volume.shape != scan.data.shape:
        return _refuse(
            f"{path}: {name!r} has shape {data.shape} in napari, not its scan's "
            f"{scan.data.shape[::-1]}; it was changed after it was made"
        )
    dtype = np.float32
    if np.issubdtype(volume.dtype, np.integer) or volume.dtype == bool:
        dtype = np.uint8 if volume.size == 0 or int(volume.max()) <= 255 else np.int32
    return [str(save_like(volume, scan, path, dtype))]


def _refuse(message: str) -> list[str]:
    warnings.warn(message, UserWarning, stacklevel=3)
    return []
