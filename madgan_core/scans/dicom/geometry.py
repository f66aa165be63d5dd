"""Slice-stack geometry of a DICOM series: slice order and voxel-to-world affine, or why not.

DICOM gives each image its own plane: ImagePositionPatient (the centre of its
first pixel) and ImageOrientationPatient (the directions of its rows and
columns), in the patient's LPS coordinates. A stack of such planes is a voxel
grid only if every image shares one orientation, size and pixel spacing and the
positions step evenly along the slice normal. :func:`stack_geometry` checks
that, orders the images by position along the normal (never by file name or
InstanceNumber) and returns the RAS+ affine. Whatever breaks the grid is
refused with a :class:`StackError` saying what: mixed orientations, repeated
positions (several volumes in one series), missing slices, uneven spacing,
gantry tilt.

The tolerance is the reader's promise: no voxel lands more than
:data:`TOLERANCE_MM` from where its image says it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE_MM = 0.1
ORIENTATION_TOLERANCE = 1e-4  # direction cosines; 1e-4 rad moves a 250 mm image edge 0.025 mm
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_FROM_RAS = RAS_FROM_LPS  # flipping x and y is its own inverse


class StackError(ValueError):
    """The images do not form one regular slice stack; the message says why."""


@dataclass(frozen=True)
class StackGeometry:
    """A regular stack: image ``order[k]`` is slice ``k`` of the volume.

    Attributes:
        order: indices into the images given, in slice order along the slice normal.
        affine: voxel ``(column, row, slice)`` to RAS+ world (mm) affine.
        positions: ImagePositionPatient (LPS, mm) of each slice, in slice order.
    """

    order: np.ndarray
    affine: np.ndarray
    positions: np.ndarray

    @property
    def slice_spacing(self) -> float:
        return float(np.linalg.norm(self.affine[:3, 2]))


def stack_geometry(
    positions: np.ndarray,
    orientations: np.ndarray,
    spacings: np.ndarray,
    sizes: np.ndarray,
) -> StackGeometry:
    """Check that images form one regular stack and return its geometry.

    Args:
        positions: ``(n, 3)`` ImagePositionPatient of each image (LPS, mm).
        orientations: ``(n, 6)`` ImageOrientationPatient (row then column direction cosines).
        spacings: ``(n, 2)`` PixelSpacing (between rows, between columns; mm).
        sizes: ``(n, 2)`` Rows and Columns.

    Raises:
        StackError: the images are not one regular stack (the message says why).
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    orientations = np.asarray(orientations, dtype=float).reshape(-1, 6)
    spacings = np.asarray(spacings, dtype=float).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=int).reshape(-1, 2)
    n = len(positions)
    if n == 0:
        raise StackError("holds no images")
    _check_same_planes(orientations, spacings, sizes)
    row_dir, col_dir = orientations[0, :3], orientations[0, 3:]
    normal = np.cross(row_dir, col_dir)
    if n < 2:
        raise StackError(
            "holds a single 2-D image, not a volume: a 3-D scan needs all the slices of a "
            "series (give its folder, not one file)"
        )
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    ordered = positions[order]
    gaps = np.diff(distance[order])
    _check_distinct(gaps, n)
    step = float(np.median(gaps))
    _check_complete(gaps, step, distance[order])
    first, last = ordered[0], ordered[-1]
    slice_step = (last - first) / (n - 1)
    drift = (last - first) - np.dot(last - first, normal) * normal
    if np.linalg.norm(drift) > TOLERANCE_MM:
        tilt = np.degrees(np.arctan2(np.linalg.norm(drift), abs(np.dot(last - first, normal))))
        raise StackError(
            f"has a gantry tilt (or sheared stack) of {tilt:.2f}°: the slices shift "
            f"{np.linalg.norm(drift):.2f} mm within their plane from first to last; "
            "resample it to a tilt-free grid first (e.g. dcm2niix corrects tilt)"
        )
    expected = first + np.arange(n)[:, None] * slice_step
    off = np.linalg.norm(ordered - expected, axis=1)
    if off.max() > TOLERANCE_MM:
        raise StackError(
            f"has uneven slice spacing: gaps from {gaps.min():.3f} to {gaps.max():.3f} mm, "
            f"so a regular grid would misplace slices by up to {off.max():.2f} mm"
        )
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacings[0, 1]
    lps[:3, 1] = col_dir * spacings[0, 0]
    lps[:3, 2] = slice_step
    lps[:3, 3] = first
    return StackGeometry(order=order, affine=RAS_FROM_LPS @ lps, positions=ordered)


def _check_same_planes(orientations: np.ndarray, spacings: np.ndarray, sizes: np.ndarray) -> None:
    if not np.all(np.isfinite(orientations)) or not np.all(np.isfinite(spacings)):
        raise StackError("has non-numeric ImageOrientationPatient or PixelSpacing values")
    row_dir, col_dir = orientations[0, :3], orientations[0, 3:]
    if (
        abs(np.linalg.norm(row_dir) - 1) > 1e-3
        or abs(np.linalg.norm(col_dir) - 1) > 1e-3
        or abs(np.dot(row_dir, col_dir)) > 1e-3
    ):
        raise StackError(
            f"has an invalid ImageOrientationPatient {np.round(orientations[0], 4).tolist()} "
            "(row and column directions must be orthogonal unit vectors)"
        )
    other = np.abs(orientations - orientations[0]).max(axis=1) > ORIENTATION_TOLERANCE
    if other.any():
        raise StackError(
            f"has mixed orientations: {int(other.sum())} of {len(orientations)} images lie in "
            "other planes than the first (a localizer, or several stacks in one series)"
        )
    if len({tuple(s) for s in sizes.tolist()}) > 1:
        found = sorted({f"{r} x {c}" for r, c in sizes.tolist()})
        raise StackError(f"has images of different sizes ({', '.join(found)})")
    if np.any(spacings <= 0):
        raise StackError("has a zero or negative PixelSpacing")
    if np.abs(spacings - spacings[0]).max() > 1e-4 * spacings[0].max():
        found = sorted({f"{r:g} x {c:g} mm" for r, c in spacings.tolist()})
        raise StackError(f"has images with different pixel spacings ({', '.join(found)})")


def _check_distinct(gaps: np.ndarray, n: int) -> None:
    repeats = int(np.count_nonzero(gaps < TOLERANCE_MM / 10))
    if repeats:
        places = n - repeats
        raise StackError(
            f"holds {n} images at only {places} slice positions: several volumes "
            "(echoes, time points, repeats or derived maps) share one series; "
            "export one volume as its own series"
        )


def _check_complete(gaps: np.ndarray, step: float, distance: np.ndarray) -> None:
    ratio = gaps / step
    holes = np.flatnonzero(ratio > 1.5)
    if holes.size == 0:
        return
    missing = int(np.sum(np.rint(ratio[holes]) - 1))
    where = ", ".join(
        f"{gaps[i]:.2f} mm after slice {i + 1} (at {distance[i]:.2f} mm)" for i in holes[:3]
    )
    raise StackError(
        f"is missing {max(missing, 1)} slice(s): the slices are {step:.2f} mm apart but "
        f"there is a gap of {where}"
    )
