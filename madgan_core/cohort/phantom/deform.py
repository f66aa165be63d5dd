"""Smooth random deformations composed into one coordinate field and one resampling.

Every field here is a *pull-back*: for each output voxel it says where to read
the template. Fields are built on a coarse control grid (``CONTROL_MM``
spacing), composed there, then upsampled once to the output grid, so a subject
costs one full-resolution interpolation whatever the number of warps.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CONTROL_MM = 5.0


class ControlGrid:
    """A coarse grid over the template's field of view, in template voxel units."""

    def __init__(
        self, shape: tuple[int, int, int], voxel_mm: float, spacing_mm: float = CONTROL_MM
    ):
        self.shape = tuple(int(s) for s in shape)
        self.step = max(1.0, spacing_mm / voxel_mm)  # template voxels per control point
        self.coarse_shape = tuple(int(np.ceil((s - 1) / self.step)) + 1 for s in self.shape)
        axes = [np.arange(n, dtype=np.float32) * self.step for n in self.coarse_shape]
        self.identity = np.stack(np.meshgrid(*axes, indexing="ij"), axis=0)  # (3, cx, cy, cz)

    def sample(self, field: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Trilinear sample of a ``(C, cx, cy, cz)`` coarse field at voxel ``points`` (3, ...)."""
        idx = points / self.step
        return np.stack(
            [ndimage.map_coordinates(f, idx, order=1, mode="nearest") for f in field], axis=0
        )

    def upsample(self, field: np.ndarray) -> np.ndarray:
        """Coarse ``(C, cx, cy, cz)`` field -> ``(C, *shape)`` on the template grid (trilinear)."""
        axes = [np.arange(n, dtype=np.float32) / self.step for n in self.shape]
        out = np.empty((field.shape[0], *self.shape), dtype=np.float32)
        # Separable linear interpolation: one axis at a time is far cheaper than 3-D.
        for c, f in enumerate(field):
            g = f
            for axis, pos in enumerate(axes):
                g = _interp_axis(g, pos, axis)
            out[c] = g
        return out


def _interp_axis(a: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    n = a.shape[axis]
    lo = np.clip(np.floor(pos).astype(np.intp), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = (pos - lo).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(a, lo, axis=axis) * (1 - w) + np.take(a, hi, axis=axis) * w


def random_velocity(
    grid: ControlGrid, rng: np.random.Generator, sigma_mm: float, max_mm: float, voxel_mm: float
) -> np.ndarray:
    """A smooth random stationary velocity field (template voxels), peak magnitude ~``max_mm``."""
    noise = rng.standard_normal((3, *grid.coarse_shape)).astype(np.float32)
    sigma = sigma_mm / (grid.step * voxel_mm)
    v = np.stack([ndimage.gaussian_filter(n, sigma, mode="reflect") for n in noise])
    peak = float(np.abs(v).max()) or 1.0
    return v * (max_mm / voxel_mm / peak)


def exp_velocity(grid: ControlGrid, velocity: np.ndarray, steps: int = 4) -> np.ndarray:
    """Scaling and squaring: displacement of the diffeomorphism ``exp(velocity)``."""
    disp = velocity / (2.0**steps)
    for _ in range(steps):
        disp = disp + grid.sample(disp, grid.identity + disp)
    return disp


def affine_pullback(
    grid: ControlGrid,
    points: np.ndarray,
    rotation_deg: np.ndarray,
    scale: np.ndarray,
    shift_vox: np.ndarray,
) -> np.ndarray:
    """Apply a rotation/scaling about the volume centre to ``points`` (3, ...) in voxels."""
    centre = (np.asarray(grid.shape, dtype=np.float32) - 1) / 2.0
    rx, ry, rz = np.deg2rad(rotation_deg)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rot = (
        np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    )
    # A subject scaled by s is read from the template at x / s.
    mat = (rot @ np.diag(1.0 / np.asarray(scale))).astype(np.float32)
    rel = points - centre.reshape(3, *([1] * (points.ndim - 1)))
    out = np.tensordot(mat, rel, axes=1)
    return out + (centre + np.asarray(shift_vox, dtype=np.float32)).reshape(
        3, *([1] * (points.ndim - 1))
    )


def resample(volume: np.ndarray, coords: np.ndarray, order: int = 1) -> np.ndarray:
    """Read ``volume`` at voxel ``coords`` (3, *out_shape); zero outside."""
    return ndimage.map_coordinates(volume, coords, order=order, mode="constant", cval=0.0).astype(
        np.float32, copy=False
    )


def resample_mask(mask: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Warp a boolean mask, only touching output voxels whose source lies in its bounding box."""
    out = np.zeros(coords.shape[1:], dtype=bool)
    if not mask.any():
        return out
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0) - 1, idx.max(axis=0) + 1
    inside = np.ones(coords.shape[1:], dtype=bool)
    for a in range(3):
        inside &= (coords[a] >= lo[a]) & (coords[a] <= hi[a])
    if inside.any():
        pts = coords[:, inside]
        out[inside] = (
            ndimage.map_coordinates(mask.astype(np.float32), pts, order=1, mode="constant") > 0.5
        )
    return out
