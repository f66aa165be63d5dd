"""The prepare stage's anatomy steps on phantom heads: brain extraction, N4, template alignment."""

from __future__ import annotations

import numpy as np
import pytest

from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.acquisition import tilt
from madgan_core.cohort.phantom.head import wrap_in_head
from madgan_core.config import PreprocessConfig
from madgan_core.errors import ScanError
from madgan_core.prep.slab import preprocess
from madgan_core.prep.stages import prepare_scan
from madgan_core.scans.scan import Scan

VOXEL = 3.0
CFG = PreprocessConfig(height=64, width=64, pixel_mm=VOXEL, slice_mm=VOXEL, band=(0.1, 0.9))


@pytest.fixture(scope="module")
def subject():
    volume, affine, info = make_subject("mets", 1, "T1c", seed=3, voxel_mm=VOXEL)
    return volume, affine, info


@pytest.fixture(scope="module")
def head(subject):
    volume, _, info = subject
    masks = {"lesion": info["lesion_mask"]}
    head, affine, brain, carried = wrap_in_head(
        volume, masks, VOXEL, info["scanner"]["noise_sigma"], seed=3
    )
    return Scan.from_array(head, affine), brain, carried["lesion"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_a_skull_stripped_scan_passes_through_without_a_registration(subject):
    volume, affine, _ = subject
    scan = Scan.from_array(volume, affine)
    prepared = prepare_scan(scan, CFG)
    assert prepared.scan is scan and prepared.skull is False and prepared.alignment is None
    assert prepared.brain_mask is None and prepared.steps == []


def test_a_head_has_its_brain_extracted_and_results_come_back_on_its_grid(head):
    scan, brain, lesion = head
    prepared = prepare_scan(scan, CFG)
    assert prepared.skull is True and "brain extracted" in prepared.steps[0]
    assert dice(prepared.brain_mask, brain) > 0.9
    outside = ~prepared.brain_mask
    assert np.all(prepared.scan.data[outside] == scan.data.min())  # skull and scalp gone
    slab = preprocess(scan, CFG)
    lesion_model = slab.sample(lesion.astype(np.float32)) > 0.5
    assert lesion_model.sum() > 0  # the lesion is inside the slab
    back = slab.to_volume(lesion_model.astype(np.float32))
    assert back.shape == scan.data.shape
    assert dice(np.nan_to_num(back) > 0.5, lesion) > 0.6


def test_extraction_can_be_forced_and_turned_off(subject, head):
    volume, affine, _ = subject
    stripped = Scan.from_array(volume, affine)
    forced = prepare_scan(stripped, PreprocessConfig(**{**vars(CFG), "brain": "extract"}))
    assert forced.skull is True and forced.brain_mask is not None
    scan, _, _ = head
    kept = prepare_scan(scan, PreprocessConfig(**{**vars(CFG), "brain": "none"}))
    assert kept.scan is scan and kept.skull is None and kept.brain_mask is None


def test_n4_runs_inside_the_brain(head):
    scan, brain, _ = head
    prepared = prepare_scan(scan, PreprocessConfig(**{**vars(CFG), "bias": "n4"}))
    assert prepared.steps[-1] == "bias corrected (N4)"
    assert prepared.scan.data.shape == scan.data.shape
    assert not np.array_equal(prepared.scan.data[brain], scan.data[brain])


def test_rigid_alignment_takes_out_a_tilt(subject):
    volume, affine, _ = subject
    tilted = tilt(volume, affine, degrees=15.0, world_axis="x")
    scan = Scan.from_array(tilted.volume, tilted.affine)
    cfg = PreprocessConfig(**{**vars(CFG), "align": "rigid"})
    prepared = prepare_scan(scan, cfg)
    assert prepared.alignment is not None and "aligned to MNI152 (rigid" in prepared.steps[-1]
    # The fitted rotation about x is the tilt, within a few degrees.
    rotation = prepared.alignment.matrix[:3, :3]
    angle = np.degrees(np.arctan2(rotation[2, 1], rotation[1, 1]))
    assert abs(abs(angle) - 15.0) < 4.0
    # The working scan is upright again: it matches the untilted brain.
    upright = Scan.from_array(volume, affine)
    straight = prepare_scan(upright, PreprocessConfig(**{**vars(CFG), "align": "rigid"}))
    a, b = prepared.scan.data > 0.2, straight.scan.data > 0.2
    assert dice(a, b) > 0.85


def test_a_scan_that_does_not_cover_the_brain_is_refused_naming_the_file(head, tmp_path):
    scan, brain, _ = head
    top = int(np.flatnonzero(brain.any(axis=(0, 1)))[-1])
    slab = np.ascontiguousarray(scan.data[:, :, top - 8 : top + 4])  # the top 24 mm of the head
    cropped = Scan.from_array(slab, scan.affine)
    cropped.path = tmp_path / "vertex.nii.gz"
    with pytest.raises(ScanError, match="vertex.nii.gz") as caught:
        prepare_scan(cropped, CFG)
    assert "covers only" in str(caught.value)
