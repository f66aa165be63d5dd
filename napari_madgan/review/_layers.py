"""Result layers (heatmap, reconstruction) on the scan's grid, through the shared geometry.

NaN choice: the core marks voxels that no window predicted with NaN. The
heatmap keeps them as NaN: napari draws NaN transparent (its colormaps'
``nan_color``), so unscored slices show the bare scan instead of the dark blue
of a healthy zero, and the value under the cursor reads ``nan``, not ``0``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_madgan._geometry import to_display
from napari_madgan._layers import SCAN_KEY, geometry_kwargs, robust_contrast

if TYPE_CHECKING:
    import napari

    from madgan_core.io import Scan
    from madgan_core.score import ScanScore

HEATMAP_NAME = "ℓ2 heatmap"
RECONSTRUCTION_NAME = "reconstruction"
HEATMAP_OPACITY = 0.55
RESULT_KEY = "madgan_result"


def _upsert(viewer: napari.Viewer, name: str, data: np.ndarray, kwargs: dict) -> str:
    """Replace the data of an existing layer of that name (keeping user tweaks) or add one."""
    if name in viewer.layers:
        viewer.layers.remove(name)
    layer = viewer.add_image(data, name=name, **kwargs)
    return layer.name


def add_result_layers(
    viewer: napari.Viewer,
    scan: Scan,
    result: ScanScore,
    heatmap_range: tuple[float, float],
    prefix: str = "",
) -> list[str]:
    """Add the heatmap and (hidden) reconstruction of ``result`` aligned with ``scan``."""
    names: list[str] = []
    geometry = geometry_kwargs(scan)
    metadata = {SCAN_KEY: scan, RESULT_KEY: result}
    if result.reconstruction is not None:
        recon = np.asarray(result.reconstruction, dtype=np.float32)
        names.append(
            _upsert(
                viewer,
                f"{prefix}{RECONSTRUCTION_NAME}",
                to_display(recon),
                {
                    "colormap": "gray",
                    "contrast_limits": robust_contrast(scan.data),
                    "visible": False,
                    "metadata": dict(metadata),
                    **geometry,
                },
            )
        )
    if result.heatmap is not None:
        heat = np.asarray(result.heatmap, dtype=np.float32)
        names.append(
            _upsert(
                viewer,
                f"{prefix}{HEATMAP_NAME}",
                to_display(heat),
                {
                    "colormap": "jet",
                    "contrast_limits": tuple(float(v) for v in heatmap_range),
                    "blending": "translucent",
                    "opacity": HEATMAP_OPACITY,
                    "metadata": dict(metadata),
                    **geometry,
                },
            )
        )
    return names
