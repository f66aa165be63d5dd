"""Display convention: how a RAS+ volume becomes a napari layer.

Every layer this plugin makes (scans from the reader, sample phantoms and all
result layers: heatmap, reconstruction, masks) goes through :func:`to_display`
and :func:`layer_geometry`, so layers built from volumes on the same RAS+ grid
align exactly.

Convention (axial browsing, neurological view):

* napari world axes are ``(S, P, R)`` in millimetres: axis 0 is superior
  (the slider walks inferior -> superior), axis 1 is *posterior* (rows run
  from anterior at the top to posterior at the bottom), axis 2 is right
  (columns run from the patient's left on the left to the patient's right on
  the right, the neurological convention).
* A RAS+ volume ``v[x, y, z]`` is shown as ``d[z, j, x] = v[x, ny - 1 - j, z]``:
  axes transposed to ``(z, y, x)`` and ``y`` flipped so anterior is at the top.
* Axis-aligned affines become ``scale``/``translate``; oblique ones (with
  rotation or shear) are passed as a full ``affine`` so that world
  coordinates stay right.

The slice index on the slider is therefore the RAS+ axial voxel index ``z``,
the same index ``ScanScore.slice_indices`` uses.
"""

from __future__ import annotations

import numpy as np

AXIS_LABELS = ("S (mm)", "P (mm)", "R (mm)")
UNITS = "mm"

# RAS world (x, y, z) -> napari world (S, P, R).
_WORLD_FROM_RAS = np.array(
    [
        [0.0, 0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def to_display(volume_ras: np.ndarray) -> np.ndarray:
    """A RAS+ ``(x, y, z)`` volume as napari data ``(z, y flipped, x)`` (a view, no copy)."""
    if volume_ras.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {volume_ras.shape}")
    return volume_ras.transpose(2, 1, 0)[:, ::-1, :]


def from_display(data: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_display`: napari data back to a RAS+ volume."""
    return data[:, ::-1, :].transpose(2, 1, 0)


def display_index(voxels_ras: np.ndarray, shape_ras: tuple[int, int, int]) -> np.ndarray:
    """RAS+ voxel indices ``(n, 3)`` as napari data indices ``(k, j, i)``, as :func:`to_display`
    places them."""
    voxels = np.atleast_2d(np.asarray(voxels_ras, dtype=float))
    return np.stack([voxels[:, 2], shape_ras[1] - 1 - voxels[:, 1], voxels[:, 0]], axis=1)


def display_affine(affine_ras: np.ndarray, shape_ras: tuple[int, int, int]) -> np.ndarray:
    """The 4x4 map from napari data indices ``(k, j, i)`` to napari world ``(S, P, R)`` mm."""
    ny = shape_ras[1]
    # data index (k, j, i) -> RAS voxel (i, ny - 1 - j, k)
    ras_from_display = np.array(
        [
            [0.0, 0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0, ny - 1.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    return _WORLD_FROM_RAS @ np.asarray(affine_ras, dtype=float) @ ras_from_display


def layer_geometry(affine_ras: np.ndarray, shape_ras: tuple[int, int, int]) -> dict:
    """``scale``/``translate`` (axis-aligned) or ``affine`` (oblique) layer keyword arguments."""
    mat = display_affine(affine_ras, shape_ras)
    linear = mat[:3, :3]
    off_diagonal = linear - np.diag(np.diag(linear))
    if np.allclose(off_diagonal, 0.0, atol=1e-6 * max(1.0, np.abs(linear).max())):
        return {
            "scale": tuple(float(s) for s in np.diag(linear)),
            "translate": tuple(float(t) for t in mat[:3, 3]),
        }
    return {"affine": mat}


def ras_layer(volume_ras: np.ndarray, affine_ras: np.ndarray) -> tuple[np.ndarray, dict]:
    """Display data and geometry kwargs for a RAS+ volume on a scan's grid."""
    return to_display(volume_ras), layer_geometry(affine_ras, volume_ras.shape[:3])


def robust_contrast(
    volume: np.ndarray, low: float = 0.5, high: float = 99.5
) -> tuple[float, float]:
    """Contrast limits from robust percentiles of the non-zero, finite voxels."""
    values = np.asarray(volume)
    if values.size > 2_000_000:
        values = values.ravel()[:: values.size // 1_000_000]
    values = values[np.isfinite(values)]
    nonzero = values[values != 0]
    if nonzero.size > 0.01 * max(values.size, 1):
        values = nonzero
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def slice_world(z_index: float, affine_ras: np.ndarray, shape_ras: tuple[int, int, int]) -> float:
    """World position (napari axis 0, mm) of the centre of axial slice ``z_index``."""
    mat = display_affine(affine_ras, shape_ras)
    centre = np.array([z_index, (shape_ras[1] - 1) / 2.0, (shape_ras[0] - 1) / 2.0, 1.0])
    return float((mat @ centre)[0])


def world_to_slice(s_mm: float, affine_ras: np.ndarray, shape_ras: tuple[int, int, int]) -> int:
    """Nearest axial slice index ``z`` for a napari axis-0 world position (slice centre line)."""
    mat = display_affine(affine_ras, shape_ras)
    # S(k) = mat[0,0] k + mat[0,1] jc + mat[0,2] ic + mat[0,3]; solve for k.
    jc, ic = (shape_ras[1] - 1) / 2.0, (shape_ras[0] - 1) / 2.0
    rest = mat[0, 1] * jc + mat[0, 2] * ic + mat[0, 3]
    if abs(mat[0, 0]) < 1e-12:
        return 0
    k = (s_mm - rest) / mat[0, 0]
    return int(np.clip(round(k), 0, shape_ras[2] - 1))


def world_of_ras(points_mm: np.ndarray) -> np.ndarray:
    """RAS+ scanner points ``(n, 3)`` in mm as napari world points ``(S, P, R)``."""
    points = np.atleast_2d(np.asarray(points_mm, dtype=float))
    return np.stack([points[:, 2], -points[:, 1], points[:, 0]], axis=1)
