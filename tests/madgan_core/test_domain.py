"""The domain guard: scan profiles, the controls' summary, the check and its wording."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from madgan_core.model.checkpoint import load_model
from madgan_core.model.reference import HealthyReference
from madgan_core.outputs.wording import domain_warning, percentile_reading, summary_line
from madgan_core.prep.domain_profile import ProfileSummary
from madgan_core.prep.slab import preprocess
from madgan_core.scans.scan import Scan
from madgan_core.scoring.calibrate import build_reference
from madgan_core.scoring.domain import DomainCheck, check_domain, compare
from madgan_core.scoring.scorer import score_scan
from tests.madgan_core.test_calibrate import CopyLast, brain
from tests.madgan_core.test_score import fake_model, small_config

AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])
SHAPE = (40, 48, 60)


def head(seed: int, noise: float = 3.0) -> np.ndarray:
    """The calibration tests' smooth brain, on a 1 mm grid of ``SHAPE``."""
    from scipy import ndimage

    volume = brain(noise, seed)  # (40, 48, 36)
    return ndimage.zoom(volume, np.array(SHAPE) / volume.shape, order=1).astype(np.float32)


def thick(volume: np.ndarray, factor: int = 5) -> np.ndarray:
    nz = volume.shape[2] // factor * factor
    return volume[:, :, :nz].reshape(*volume.shape[:2], -1, factor).mean(axis=3)


def config():
    cfg = small_config()
    cfg.preprocess.slice_mm = 1.0
    return cfg


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A copy-last model calibrated on four 1 mm controls."""
    folder = tmp_path_factory.mktemp("controls")
    rows = []
    for i in range(4):
        path = folder / f"c{i}.nii.gz"
        nib.save(nib.Nifti1Image(head(i), AFFINE), path)
        rows.append(SimpleNamespace(path=path, sequence="T1"))
    model = fake_model(config())
    model.generator = CopyLast()
    model.reference = build_reference(model, rows)
    return model


def test_calibration_stores_the_controls_profile(model):
    summary = ProfileSummary.from_dict(model.reference.domain)
    assert summary.n == 4 and summary.slice_mm == (1.0, 1.0) and summary.resolution == "1.0 mm"
    assert summary.skull == (0, 4)  # the brain step checked every control: no skull
    assert len(summary.contrast_mean) == len(summary.contrast_std) == 9
    again = HealthyReference.from_dict(model.reference.to_dict())
    assert again.domain == model.reference.domain


def test_an_in_domain_scan_has_no_reasons(model):
    result = score_scan(model, Scan.from_array(head(7), AFFINE), sequence="T1", maps=False)
    assert result.domain == DomainCheck(True, [])
    assert result.controls == "healthy controls (T1, 1.0 mm)"
    text = percentile_reading(result, "mean")
    assert "among 4 healthy controls (T1, 1.0 mm)" in text and "outside" not in text
    assert domain_warning(result) == "" and "outside" not in summary_line(result, "mean")
    row = result.to_row()
    assert row["in_domain"] is True and row["domain_reasons"] == ""


def test_a_thick_slice_scan_is_flagged_and_never_called_unusual(model):
    scan = Scan.from_array(thick(head(7)), np.diag([1.0, 1.0, 5.0, 1.0]))
    result = score_scan(model, scan, sequence="T1", maps=False)
    assert not result.domain.in_domain
    assert result.domain.reasons == ["5.0 mm slices; the model's controls had 1.0 mm"]
    warning = domain_warning(result)
    assert warning.startswith("outside the model's domain: 5.0 mm slices")
    assert warning.endswith("the score is not comparable with its controls")
    for mode in result.percentiles:
        text = percentile_reading(result, mode)
        assert "unusual" not in text and "healthy range" not in text
        line = summary_line(result, mode)
        assert f"{text}, {warning}" in line and "unusual" not in line
    row = result.to_row()
    assert row["in_domain"] is False and row["domain_reasons"].startswith("5.0 mm slices")


def test_partial_coverage_and_a_foreign_contrast_are_flagged(model):
    summary = ProfileSummary.from_dict(model.reference.domain)
    cropped = head(7)[:, :, 25:]  # the upper part of the brain only
    profile = preprocess(Scan.from_array(cropped, AFFINE), config().preprocess).profile
    reasons = compare(profile, summary).reasons
    assert reasons[0].startswith("covers 29 mm of the brain's 48 mm")
    inverted = np.where(head(7) > 0, 140.0 - head(7), 0.0)  # another contrast
    profile = preprocess(Scan.from_array(inverted, AFFINE), config().preprocess).profile
    assert compare(profile, summary).reasons == ["intensity profile far from the controls'"]


def test_disease_is_not_read_as_another_intensity_profile(model):
    """A bright lesion raises the clip percentile that normalises a scan, and atrophy adds
    dark CSF: neither is another scanner (another contrast is: the test above)."""
    summary = ProfileSummary.from_dict(model.reference.domain)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"))
    volume = head(7)
    lesion = np.sum((grid - np.array([20, 30, 30])[:, None, None, None]) ** 2, axis=0) < 6**2
    bright = np.where(lesion & (volume > 0), 300.0, volume)  # an enhancing lesion, ~2 %
    atrophy = np.where((volume > 0) & (volume < 75.0), volume - 25.0, volume)  # wider CSF
    cfg = config().preprocess
    cfg.brain = "none"  # the test heads are stripped; the check is about intensities
    for changed in (bright, atrophy):
        profile = preprocess(Scan.from_array(changed, AFFINE), cfg).profile
        assert compare(profile, summary).reasons == []


def test_a_skull_on_a_model_of_stripped_scans_is_flagged(model):
    from dataclasses import replace

    summary = replace(ProfileSummary.from_dict(model.reference.domain), skull=(0, 4))
    profile = replace(
        preprocess(Scan.from_array(head(7), AFFINE), config().preprocess).profile, skull=True
    )
    assert compare(profile, summary).reasons == [
        "skull present; the model was trained on skull-stripped scans and brain extraction is off"
    ]


def test_a_model_without_profiles_loads_and_has_no_guard(tmp_path, tiny_model_file, caplog):
    reference = {
        "scores": {"mean": [0.1, 0.2, 0.3]},
        "names": ["a", "b", "c"],
        "sequences": ["T1"] * 3,
    }
    path = tiny_model_file(tmp_path / "old.pt", reference=reference)
    with caplog.at_level("INFO"):
        loaded = load_model(path, "cpu")
    assert loaded.reference is not None and loaded.reference.domain is None
    assert "not checked against its controls' domain" in caplog.text
    scan = Scan.from_array(head(1), AFFINE)
    profile = preprocess(scan, loaded.config.preprocess).profile
    assert check_domain(profile, loaded) is None


def test_the_training_scans_profile_guards_a_model_without_controls(tmp_path):
    from madgan_core.prep.training_set import WindowDataset

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"t{i}.nii.gz")
        nib.save(nib.Nifti1Image(head(i), AFFINE), paths[-1])
    dataset = WindowDataset(paths, config())
    assert len(dataset.profiles) == 2
    summary = ProfileSummary.of(dataset.profiles)
    assert summary.resolution == "1.0 mm"
    model = fake_model(config())
    model.generator = CopyLast()
    model.training_domain = summary.to_dict()
    scan = Scan.from_array(thick(head(7)), np.diag([1.0, 1.0, 5.0, 1.0]))
    result = score_scan(model, scan, maps=False)
    assert result.domain.reasons == ["5.0 mm slices; the model was trained on 1.0 mm"]
    upright = score_scan(model, Scan.from_array(head(7), AFFINE), maps=False)
    assert upright.domain == DomainCheck(True, [])


def test_a_model_calibrated_before_the_contrast_check_says_so(tmp_path, tiny_model_file, caplog):
    import logging

    summary = {
        "n": 3,
        "slice_mm": [1.0, 1.0],
        "brain_z_mm": 100.0,
        "skull": [0, 3],
        "deciles_mean": [0.0] * 9,
        "deciles_std": [0.1] * 9,
    }
    reference = {"scores": {"mean": [0.1, 0.2, 0.3]}, "names": ["a", "b", "c"], "domain": summary}
    path = tiny_model_file(tmp_path / "model.pt", reference=reference)
    with caplog.at_level(logging.INFO, logger="madgan_core.model.checkpoint"):
        loaded = load_model(path, device="cpu")
    assert "calibrated before the tissue-contrast check" in caplog.text
    assert ProfileSummary.from_dict(loaded.reference.domain).contrast_mean == ()
