"""The MNI152 1 mm template and the tissue/region maps the phantoms are built from.

Everything comes from nilearn's package data (no download). Maps are derived
once per output voxel size and cached.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Regions in MNI millimetres: (x range as |x|, y range, z range).
HIPPOCAMPUS_BOX_MM = ((18.0, 38.0), (-42.0, -8.0), (-26.0, 0.0))
AMYGDALA_CENTRES_MM = ((-23.0, -5.0, -18.0), (23.0, -5.0, -18.0))
AMYGDALA_RADIUS_MM = 8.0
# Box that holds the lateral and third ventricles (including the atria).
VENTRICLE_BOX_MM = ((0.0, 38.0), (-50.0, 32.0), (-6.0, 38.0))
# Temporal horns run beside the hippocampi.
TEMPORAL_HORN_BOX_MM = ((22.0, 42.0), (-42.0, -2.0), (-28.0, 2.0))
# Choroid plexus of the lateral ventricles' atria (bright on T1c).
CHOROID_CENTRES_MM = ((-27.0, -42.0, 14.0), (27.0, -42.0, 14.0))


@dataclass(frozen=True, eq=False)
class Template:
    """MNI152 maps on the output grid (RAS+, voxel size ``voxel_mm``).

    Attributes:
        t1: T1 intensities in [0, 1] (0 outside the brain).
        gm, wm, csf: tissue probabilities.
        mask: brain mask (bool).
        ventricles: lateral/third ventricles and temporal horns (bool).
        hippocampus: hippocampus + amygdala region (float weight in [0, 1]).
        cortex_edge: weight of grey matter that borders CSF (sulci), in [0, 1].
        junction: grey/white junction weight (where metastases seed), in [0, 1].
        depth: distance to the brain's edge in mm.
        ventricle_distance: distance to the nearest ventricle voxel in mm.
        affine: voxel-to-MNI-mm affine.
        voxel_mm: voxel size.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    mask: np.ndarray
    ventricles: np.ndarray
    hippocampus: np.ndarray
    cortex_edge: np.ndarray
    junction: np.ndarray
    depth: np.ndarray
    ventricle_distance: np.ndarray
    affine: np.ndarray
    voxel_mm: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.t1.shape)

    def mm_to_voxel(self, points_mm: np.ndarray) -> np.ndarray:
        """MNI mm ``(..., 3)`` -> voxel coordinates on this grid."""
        inv = np.linalg.inv(self.affine)
        pts = np.asarray(points_mm, dtype=float)
        return pts @ inv[:3, :3].T + inv[:3, 3]

    def voxel_mm_grids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open (broadcastable) MNI mm coordinates of the grid along x, y, z."""
        nx, ny, nz = self.shape
        a = self.affine
        x = (a[0, 3] + a[0, 0] * np.arange(nx))[:, None, None]
        y = (a[1, 3] + a[1, 1] * np.arange(ny))[None, :, None]
        z = (a[2, 3] + a[2, 2] * np.arange(nz))[None, None, :]
        return x, y, z


@functools.lru_cache(maxsize=1)
def mni_1mm() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """nilearn's MNI152 1 mm template: T1, grey and white matter, brain mask and affine."""
    from nilearn import datasets

    t1_img = datasets.load_mni152_template(resolution=1)
    arrays = [
        np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32)
        for img in (
            t1_img,
            datasets.load_mni152_gm_template(resolution=1),
            datasets.load_mni152_wm_template(resolution=1),
            datasets.load_mni152_brain_mask(resolution=1),
        )
    ]
    return (*arrays, np.asarray(t1_img.affine, dtype=float))


def downsample(volume: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Anti-aliased downsampling of a map on the MNI152 1 mm grid to ``voxel_mm``."""
    if voxel_mm == 1.0:
        return volume
    out_shape = tuple(max(2, int(np.floor((s - 1) / voxel_mm)) + 1) for s in volume.shape)
    sigma = max(0.0, 0.42 * (voxel_mm - 1.0)) if voxel_mm > 1 else 0.0
    src = ndimage.gaussian_filter(volume, sigma) if sigma > 0 else volume
    coords = [np.arange(n) * voxel_mm for n in out_shape]
    grid = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(src, grid, order=1, mode="nearest").astype(np.float32)


def _box(template_grids, box, mirror: bool = True) -> np.ndarray:
    x, y, z = template_grids
    (x0, x1), (y0, y1), (z0, z1) = box
    ax = np.abs(x) if mirror else x
    return (ax >= x0) & (ax <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)


@functools.lru_cache(maxsize=4)
def load_template(voxel_mm: float = 1.0) -> Template:
    """The MNI152 template and derived maps at ``voxel_mm`` (cached)."""
    if not 0.5 <= voxel_mm <= 8.0:
        raise ValueError(f"voxel_mm must be in [0.5, 8], got {voxel_mm}")
    t1, gm, wm, mask, affine = mni_1mm()
    t1, gm, wm, mask_f = (downsample(a, voxel_mm) for a in (t1, gm, wm, mask))
    affine = affine.copy()
    affine[:3, :3] *= voxel_mm
    mask = mask_f > 0.5
    t1 = np.where(mask, t1, 0.0).astype(np.float32)
    csf = np.clip(mask_f - gm - wm, 0.0, 1.0).astype(np.float32)
    return derive_template(t1, gm, wm, csf, mask, affine, voxel_mm)


def derive_template(
    t1: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray,
    mask: np.ndarray,
    affine: np.ndarray,
    voxel_mm: float,
) -> Template:
    """A :class:`Template` from a brain's T1, tissue maps and mask on a grid in MNI space.

    The region maps (ventricles, hippocampus, cortical edge, grey/white junction, depths)
    are derived from the brain's own T1 and tissue maps; the T1 should use the MNI152
    template's intensity levels (in [0, 1], 0 outside the brain).
    """
    shell = Template(t1, gm, wm, csf, mask, mask, gm, gm, gm, gm, gm, affine, float(voxel_mm))
    grids = shell.voxel_mm_grids()

    # Ventricles: dark, CSF-like voxels deep in the brain, kept where connected and large.
    dark = mask & (t1 < 0.45) & (csf > 0.35)
    central = _box(grids, VENTRICLE_BOX_MM) | _box(grids, TEMPORAL_HORN_BOX_MM)
    vent = dark & central
    # Remove the brain's outer 6 mm so sulcal CSF is not counted as ventricle.
    depth = ndimage.distance_transform_edt(mask) * voxel_mm
    vent &= depth > 6.0
    labels, n = ndimage.label(vent)
    if n:
        sizes = ndimage.sum(vent, labels, index=np.arange(1, n + 1))
        keep = np.flatnonzero(sizes * voxel_mm**3 >= 20.0) + 1
        vent = np.isin(labels, keep)

    hippo_box = _box(grids, HIPPOCAMPUS_BOX_MM).astype(np.float32)
    x, y, z = grids
    for cx, cy, cz in AMYGDALA_CENTRES_MM:
        r2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
        hippo_box = np.maximum(hippo_box, (r2 <= AMYGDALA_RADIUS_MM**2).astype(np.float32))
    hippocampus = ndimage.gaussian_filter(hippo_box * gm, 2.0 / voxel_mm).astype(np.float32)
    hippocampus /= max(float(hippocampus.max()), 1e-6)

    # Cortical grey matter touching sulcal CSF or the brain's outer edge.
    outside_or_csf = np.where(mask, csf, 1.0).astype(np.float32)
    near_csf = ndimage.gaussian_filter(outside_or_csf, 1.5 / voxel_mm)
    edge = gm * near_csf
    scale = float(np.percentile(edge[gm > 0.5], 90)) or 1.0
    cortex_edge = np.clip(edge / scale, 0.0, 1.0) * mask
    junction = np.clip(4.0 * gm * wm, 0.0, 1.0) * (depth > 8.0) * ~vent
    return Template(
        t1=t1,
        gm=gm,
        wm=wm,
        csf=csf,
        mask=mask,
        ventricles=vent,
        hippocampus=hippocampus,
        cortex_edge=cortex_edge.astype(np.float32),
        junction=junction.astype(np.float32),
        depth=depth.astype(np.float32),
        ventricle_distance=(ndimage.distance_transform_edt(~vent) * voxel_mm).astype(np.float32),
        affine=np.asarray(affine, dtype=float),
        voxel_mm=float(voxel_mm),
    )
