"""Healthy reference: z-statistics, noise fits and the controls' own leave-one-out scores."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from madgan_core.model.reference import HealthyReference
from madgan_core.scans.scan import Scan
from madgan_core.scoring.calibrate import build_reference
from madgan_core.scoring.scorer import score_scan
from tests.madgan_core.test_score import fake_model, small_config

NOISES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


class CopyLast(torch.nn.Module):
    """A stand-in generator: the next slices as copies of the last input slice."""

    def forward(self, inputs):
        return inputs[:, -1:].expand(-1, 3, -1, -1)


def brain(noise: float, seed: int) -> np.ndarray:
    """A smooth ellipsoid brain with Gaussian noise of ``noise`` (signal 100)."""
    shape = (40, 48, 36)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radius = np.sqrt((grid[0] / 0.8) ** 2 + (grid[1] / 0.85) ** 2 + (grid[2] / 0.8) ** 2)
    volume = np.where(radius < 1.0, 100.0 - 40.0 * np.exp(-((radius / 0.4) ** 2)), 0.0)
    rng = np.random.default_rng(seed)
    volume += np.where(radius < 1.0, rng.normal(0.0, noise, shape), 0.0)
    return volume.astype(np.float32)


AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def controls(folder, noises, sequences=None) -> list[SimpleNamespace]:
    """One control per noise level (seeded by its position), written as ``c{i}.nii.gz``."""
    rows = []
    for i, noise in enumerate(noises):
        path = folder / f"c{i}.nii.gz"
        nib.save(nib.Nifti1Image(brain(noise, seed=i), AFFINE), path)
        rows.append(SimpleNamespace(path=path, sequence=sequences[i] if sequences else "T1"))
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controls")
    rows = []
    for i, noise in enumerate(NOISES):
        path = folder / f"control{i}.nii.gz"
        nib.save(nib.Nifti1Image(brain(noise, seed=i), AFFINE), path)
        rows.append(SimpleNamespace(path=path, sequence="T1"))
    model = fake_model(small_config())
    model.generator = CopyLast()
    ref = build_reference(model, rows)
    return model, ref


def test_controls_get_every_z_mode_with_a_noise_fit(reference):
    _model, ref = reference
    stats = ref.zstats["T1"]
    assert set(stats.noise_fits) == {"zmean", "zvolume"}
    # Noisier scans are harder to predict: the healthy line rises with noise.
    assert stats.noise_fits["zmean"].slope > 0
    for mode in ("ztail", "zmean", "zvolume"):
        assert ref.scores[mode].shape == (len(NOISES),) and np.all(np.isfinite(ref.scores[mode]))
    again = HealthyReference.from_dict(ref.to_dict())
    assert set(again.zstats["T1"].noise_fits) == {"zmean", "zvolume"}


def test_noise_adjustment_separates_disease_from_a_noisy_healthy_scan(reference):
    model, ref = reference
    model.reference = ref

    def scores(volume):
        return score_scan(model, Scan.from_array(volume, AFFINE), maps=False, sequence="T1")

    noisy = scores(brain(8.0, seed=100))
    focal = brain(4.5, seed=101)
    focal[8:14, 21:27, 16:20] -= 35.0  # dark, so the intensity normalisation stays put
    diffuse = brain(4.5, seed=102)
    spots = np.random.default_rng(103).random(diffuse.shape) < 0.04
    diffuse[spots & (diffuse > 0)] -= 30.0  # scattered CSF-like spots: an atrophy stand-in
    focal, diffuse = scores(focal), scores(diffuse)
    # The noisiest healthy scan tops the controls on raw ℓ2, yet is typical once its
    # noise is accounted for ...
    assert noisy.percentiles["mean"] == 100.0
    assert 10.0 <= noisy.percentiles["zmean"] <= 90.0 and noisy.scores["zvolume"] < 0.5
    # ... while a focal lesion stands out in zvolume and diffuse change in zmean.
    assert focal.scores["zvolume"] > noisy.scores["zvolume"] + 1.0  # % of the brain
    assert focal.percentiles["zvolume"] == 100.0
    assert diffuse.percentiles["zmean"] == 100.0
    assert diffuse.scores["zmean"] > noisy.scores["zmean"] + 0.3


def test_too_few_controls_give_no_noise_adjusted_modes(reference, tmp_path):
    model, _ref = reference
    rows = controls(tmp_path, [2.0 + i for i in range(4)])
    ref = build_reference(model, rows)
    assert "ztail" in ref.scores and "zmean" not in ref.scores
    assert ref.zstats["T1"].noise_fits == {}


def test_a_sequence_with_few_controls_keeps_the_others_noise_adjusted(reference, tmp_path):
    model, _ref = reference
    rows = controls(tmp_path, [2.0 + i % 6 for i in range(9)], ["T1"] * 6 + ["T1c"] * 3)
    ref = build_reference(model, rows)
    assert set(ref.zstats["T1"].noise_fits) == {"zmean", "zvolume"}
    assert ref.zstats["T1c"].noise_fits == {}
    assert np.isfinite(ref.scores["zmean"][:6]).all() and np.isnan(ref.scores["zmean"][6:]).all()
    again = HealthyReference.from_dict(ref.to_dict())
    assert set(again.percentiles({"zmean": 0.0, "ztail": 1.0}, "T1")) == {"zmean", "ztail"}
    assert set(again.percentiles({"zmean": 0.0, "ztail": 1.0}, "T1c")) == {"ztail"}


def test_each_controls_own_score_leaves_it_out(reference, tmp_path):
    model, ref = reference
    rows = []
    for i, noise in enumerate(NOISES[1:], start=1):
        path = tmp_path / f"control{i}.nii.gz"
        nib.save(nib.Nifti1Image(brain(noise, seed=i), AFFINE), path)
        rows.append(SimpleNamespace(path=path, sequence="T1"))
    without_first = build_reference(model, rows)
    model.reference = without_first
    first = score_scan(
        model, Scan.from_array(brain(NOISES[0], seed=0), AFFINE), maps=False, sequence="T1"
    )
    # Stored maps are float16, so agreement is to about 3 significant digits.
    assert ref.scores["ztail"][0] == pytest.approx(first.scores["ztail"], rel=1e-2, abs=1e-3)
    assert ref.scores["ztail"][0] != pytest.approx(ref.scores["ztail"][1], rel=1e-2)


def test_calibration_spills_maps_to_a_temporary_folder_and_removes_it(
    reference, tmp_path, monkeypatch
):
    import tempfile

    model, _ref = reference
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    seen = []
    rows = controls(tmp_path, [2.0 + i for i in range(3)])
    build_reference(model, rows, progress=lambda *_: seen.extend(spill.glob("*/*.npz")))
    assert len({p.name for p in seen}) == 3  # one file of maps per control while scoring
    assert list(spill.iterdir()) == []  # and nothing left afterwards


def test_a_calibration_stopped_half_way_continues_from_its_parts(reference, tmp_path, monkeypatch):
    """Controls scored before the stop keep their part (scores and maps); a re-run scores
    only the others and stores the reference of an uninterrupted run, to the last digit."""
    import madgan_core.prep.loader as slabs
    from tests.madgan_core.test_cohort_distributed import assert_identical

    model, _ref = reference
    rows = controls(tmp_path, [1.0 + i for i in range(6)])
    expected = build_reference(model, rows).to_dict()
    loaded, real = [], slabs.load_scan

    def load(path, stop_at=3):
        if len(loaded) == stop_at:
            raise KeyboardInterrupt
        loaded.append(path)
        return real(path)

    monkeypatch.setattr(slabs, "load_scan", load)
    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        build_reference(model, rows, work_dir=work)
    assert len(list(work.glob("*.npz"))) == 3
    loaded.clear()
    monkeypatch.setattr(slabs, "load_scan", lambda path: load(path, stop_at=-1))
    again = build_reference(model, rows, work_dir=work)
    assert loaded == [r.path for r in rows[3:]]
    assert_identical(again.to_dict(), expected)
