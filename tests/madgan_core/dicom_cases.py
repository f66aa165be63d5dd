"""DICOM test cases: affines in scanner orientations, and helpers that damage a written series."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

ZOOMS = (2.0, 2.0, 2.5)


def affine_from(
    columns: tuple, rows: tuple, slices: tuple, zooms=ZOOMS, origin=(40.0, 50.0, -30.0)
) -> np.ndarray:
    """A RAS+ affine whose voxel axes run along ``columns``, ``rows`` and ``slices``."""
    affine = np.eye(4)
    for axis, (direction, zoom) in enumerate(zip((columns, rows, slices), zooms, strict=True)):
        vector = np.asarray(direction, dtype=float)
        affine[:3, axis] = zoom * vector / np.linalg.norm(vector)
    affine[:3, 3] = origin
    return affine


def rotation(degrees_x: float, degrees_z: float) -> np.ndarray:
    ax, az = np.radians(degrees_x), np.radians(degrees_z)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rz @ rx
    return out


# Scanner conventions: an axial series has rows running right->left and columns anterior->
# posterior (LPS +x, +y); a sagittal one steps through the head left to right.
AXIAL = affine_from((-1, 0, 0), (0, -1, 0), (0, 0, 1))
SAGITTAL = affine_from((0, -1, 0), (0, 0, -1), (1, 0, 0))
CORONAL = affine_from((-1, 0, 0), (0, 0, -1), (0, 1, 0))
OBLIQUE = rotation(20.0, 10.0) @ AXIAL
ORIENTATIONS = {"axial": AXIAL, "sagittal": SAGITTAL, "coronal": CORONAL, "oblique": OBLIQUE}


def corners(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """World coordinates (mm) of the 8 corner voxels' centres."""
    idx = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1)
    return (affine @ np.vstack([idx, np.ones(idx.shape[1])]))[:3].T


def edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    """Rewrite one DICOM file after ``change`` has modified its dataset."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def shift_position(mm: tuple[float, float, float]) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        ds.ImagePositionPatient = [
            float(p) + d for p, d in zip(ds.ImagePositionPatient, mm, strict=True)
        ]

    return change
