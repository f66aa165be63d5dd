"""Registration to MNI152, brain extraction, the skull-stripped test and N4, on 3 mm volumes."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from madgan_core.cohort.phantom import make_subject
from madgan_core.errors import ScanError
from madgan_core.prep.anatomy import (
    correct_bias,
    extract_brain,
    looks_skull_stripped,
    register_to_template,
)
from madgan_core.prep.anatomy.register import mni_template, template_grid
from madgan_core.scans.scan import Scan

VOXEL_MM = 3.0


@functools.cache
def template_3mm() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t1, mask, affine = mni_template()
    step = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    shape = template_grid(VOXEL_MM)[0]
    t1_3 = ndimage.affine_transform(ndimage.gaussian_filter(t1, 1.0), step, output_shape=shape)
    mask_3 = ndimage.affine_transform(mask.astype(np.float32), step, output_shape=shape) > 0.5
    return t1_3.astype(np.float32), mask_3, affine @ step


def rigid(degrees: float, shift_mm, scales=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Rotation about the y (anterior) axis, per-axis scales, then a shift (mm)."""
    a = np.deg2rad(degrees)
    m = np.eye(4)
    m[:3, :3] = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    m[:3, :3] = m[:3, :3] @ np.diag(scales)
    m[:3, 3] = shift_mm
    return m


def moved_template(matrix: np.ndarray, pad_mm: float = 0.0):
    """The 3 mm template moved by ``matrix`` (MNI mm -> world mm) onto an axis-aligned grid."""
    t1, mask, affine = template_3mm()
    pad = int(pad_mm / VOXEL_MM)
    grid = affine.copy()
    grid[:3, 3] -= pad * VOXEL_MM
    shape = tuple(n + 2 * pad for n in t1.shape)
    to_template = np.linalg.inv(affine) @ np.linalg.inv(matrix) @ grid
    data = ndimage.affine_transform(t1, to_template, output_shape=shape, order=1)
    brain = ndimage.affine_transform(mask.astype(np.float32), to_template, output_shape=shape)
    return data, brain > 0.5, grid


def skull_on_head(matrix: np.ndarray, seed: int = 0) -> tuple[Scan, np.ndarray]:
    """A head around the moved template brain: CSF, skull, bright scalp, a neck, noise."""
    data, brain, grid = moved_template(matrix, pad_mm=30.0)
    outside = ndimage.distance_transform_edt(~brain, sampling=VOXEL_MM)
    head = np.where(brain, data, 0.0)
    head[(outside > 0) & (outside <= 3)] = 0.08  # CSF
    head[(outside > 3) & (outside <= 8)] = 0.03  # skull
    head[(outside > 8) & (outside <= 14)] = 0.85  # scalp fat
    ijk = np.indices(brain.shape)
    centre = np.argwhere(brain).mean(axis=0)
    low = ijk[2] < centre[2] - 10
    r2 = ((ijk[0] - centre[0]) ** 2 + (ijk[1] - centre[1] - 3) ** 2) * VOXEL_MM**2
    head[low & (r2 < 45.0**2) & (outside > 3)] = 0.5  # neck
    rng = np.random.default_rng(seed)
    head = np.clip(head + rng.normal(0, 0.02, head.shape), 0, None).astype(np.float32)
    return Scan.from_array(head, grid), brain


def dice(a, b) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_registration_recovers_a_rigid_transform():
    truth = rigid(10.0, (8.0, -5.0, 6.0))
    data, _, grid = moved_template(truth, pad_mm=15.0)
    alignment = register_to_template(Scan.from_array(data, grid), "rigid")
    assert alignment.kind == "rigid"
    error = np.linalg.inv(truth) @ alignment.matrix
    angle = np.degrees(np.arccos(np.clip((np.trace(error[:3, :3]) - 1) / 2, -1, 1)))
    # The translation error measured at the brain's centre (MNI origin ~ the brain's middle).
    assert angle < 2.0
    assert np.linalg.norm(error[:3, 3]) < 2.0
    point = np.array([[10.0, -20.0, 30.0]])
    np.testing.assert_allclose(alignment.scan_to_mni(alignment.mni_to_scan(point)), point)


def test_resampling_to_the_template_and_back_keeps_the_brain():
    truth = rigid(-8.0, (4.0, 6.0, -3.0))
    data, brain, grid = moved_template(truth, pad_mm=15.0)
    scan = Scan.from_array(data, grid)
    alignment = register_to_template(scan, "rigid")
    on_template = alignment.to_template(brain, scan.affine, order=1, voxel_mm=3.0)
    _, mask, _ = template_3mm()
    assert on_template.shape == mask.shape
    assert dice(on_template > 0.5, mask) > 0.9
    back = alignment.to_scan(on_template, scan.affine, scan.data.shape, order=1) > 0.5
    assert dice(back, brain) > 0.9


def test_extract_brain_on_a_skull_on_head():
    # Scaled unevenly, tilted and shifted: the affine fit must recover all of it.
    scan, truth = skull_on_head(rigid(12.0, (5.0, -6.0, 10.0), scales=(0.93, 1.04, 0.97)))
    assert not looks_skull_stripped(scan)  # its own rigid fit
    # One affine fit serves the stripped test and the extraction.
    alignment = register_to_template(scan, "affine")
    assert not looks_skull_stripped(scan, alignment=alignment)
    mask = extract_brain(scan, alignment=alignment)
    assert mask.shape == scan.data.shape and mask.dtype == bool
    assert dice(mask, truth) > 0.93  # measured 0.988 on this 3 mm head


def test_a_skull_stripped_brain_is_recognised():
    data, _, grid = moved_template(rigid(5.0, (3.0, 0.0, -4.0)), pad_mm=15.0)
    assert looks_skull_stripped(Scan.from_array(data, grid))


def test_a_phantom_brain_is_recognised_as_skull_stripped():
    volume, affine, _ = make_subject("mets", sequence="T1c", seed=2, voxel_mm=VOXEL_MM)
    assert looks_skull_stripped(Scan.from_array(volume, affine))


def test_n4_removes_a_synthetic_bias():
    t1, mask, affine = template_3mm()
    wm = ndimage.binary_erosion(mask & (t1 > np.percentile(t1[mask], 75)))
    x, y, z = np.indices(t1.shape) / np.array(t1.shape)[:, None, None, None]
    field = np.exp(0.35 * (x - 0.5) + 0.3 * (z - 0.5) - 0.25 * (y - 0.5) ** 2)
    biased = Scan.from_array((t1 + 0.02) * field, affine)

    def cv(volume):
        return float(volume[wm].std() / volume[wm].mean())

    corrected = correct_bias(biased, mask=mask)
    assert corrected.data.shape == biased.data.shape
    np.testing.assert_array_equal(corrected.affine, biased.affine)
    assert cv(corrected.data) < 0.7 * cv(biased.data)
    assert cv(correct_bias(biased).data) < cv(biased.data)  # Otsu's mask


def test_a_scan_that_is_not_a_brain_is_refused_by_name():
    cube = np.zeros((40, 40, 40), np.float32)
    cube[15:25, 15:25, 15:25] = 1.0
    scan = dataclasses.replace(
        Scan.from_array(cube, np.diag([3.0, 3.0, 3.0, 1.0])), path=Path("cube.nii.gz")
    )
    with pytest.raises(ScanError, match="cube.nii.gz"):
        extract_brain(scan)
