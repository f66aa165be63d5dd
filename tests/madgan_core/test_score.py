from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.orientations import apply_orientation, inv_ornt_aff

from madgan_core.cohort.evaluation.stats import auc_table, bootstrap_auc, comparisons_for
from madgan_core.config import MadganConfig, PreprocessConfig
from madgan_core.model.reference import HealthyReference
from madgan_core.modes import top_contiguous_mean
from madgan_core.prep.slab import preprocess
from madgan_core.prep.windows import window_arrays
from madgan_core.scans.files import load_scan, save_like
from madgan_core.scans.scan import Scan
from madgan_core.scoring.reconstruct import copy_predictor
from madgan_core.scoring.scorer import score_scan
from madgan_testing.brains import synthetic_brain


def fake_model(cfg: MadganConfig, reference: HealthyReference | None = None) -> SimpleNamespace:
    """Scoring needs only these attributes of a loaded model."""
    return SimpleNamespace(
        generator=None,
        config=cfg,
        device=torch.device("cpu"),
        reference=reference,
        path=Path("m.pt"),
        step=0,
    )


def small_config() -> MadganConfig:
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(height=48, width=48, pixel_mm=2.0)
    return cfg.validate()


def perfect_predictor(_inputs, targets):
    return targets.clone()


def test_perfect_prediction_scores_zero():
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    result = score_scan(
        fake_model(small_config()), scan, predictor=perfect_predictor, precision="fp32"
    )
    assert result.scores["mean"] == 0.0 and result.scores["top10"] == 0.0
    assert np.all(result.window_losses == 0.0)
    assert np.nanmax(result.heatmap) == 0.0


def test_slice_losses_cover_the_right_slices():
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    cfg = small_config()
    result = score_scan(fake_model(cfg), scan, predictor=copy_predictor(3), precision="fp32")
    n = len(result.slice_indices)
    assert len(result.window_losses) == n - 5
    assert np.all(np.isnan(result.slice_losses[:3])) and np.all(
        np.isfinite(result.slice_losses[3:])
    )
    assert result.slice_coverage[3:6].tolist() == [1, 2, 3] and result.slice_coverage[-1] == 1
    # The first three slab slices have no prediction: NaN in the native heatmap, not zeros.
    assert np.all(np.isnan(result.heatmap[:, :, result.slice_indices[:3]]))
    assert np.isfinite(result.heatmap[:, :, result.slice_indices[4]]).any()
    assert result.scores["ratio"] == pytest.approx(1.0)


def test_top_contiguous_mode():
    losses = np.zeros(30)
    losses[12:22] = 1.0
    losses[2] = 5.0  # a single spike loses against ten contiguous windows
    assert top_contiguous_mean(losses, 10) == pytest.approx(1.0)
    assert top_contiguous_mean(np.array([1.0, 3.0]), 10) == pytest.approx(2.0)


def test_percentile_is_monotonic_and_right_at_the_extremes():
    ref = HealthyReference({"mean": np.array([0.1, 0.2, 0.3, 0.4])}, ["a", "b", "c", "d"])
    values = np.linspace(0.0, 0.5, 51)
    pcts = [ref.percentile(v) for v in values]
    assert np.all(np.diff(pcts) >= 0)
    assert ref.percentile(0.05) == 0.0 and ref.percentile(0.45) == 100.0
    assert ref.percentile(0.25) == 50.0


def test_scores_carry_percentiles_from_the_reference():
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    reference = HealthyReference(
        {"mean": np.array([1.0, 2.0]), "top10": np.array([1.0, 2.0])}, ["a", "b"]
    )
    result = score_scan(
        fake_model(small_config(), reference),
        scan,
        predictor=perfect_predictor,
        precision="fp32",
    )
    assert result.n_controls == 2 and result.percentile_mean == 0.0 and result.percentile_top == 0.0


def records(scores_by_group):
    out = []
    for (group, stage, seq), values in scores_by_group.items():
        out += [{"group": group, "stage": stage, "sequence": seq, "m": v} for v in values]
    return out


def test_auc_tables_from_known_scores():
    recs = records(
        {
            ("healthy", 0, "T1"): [0.1, 0.2, 0.3, 0.4],
            ("ad", 1, "T1"): [0.15, 0.25, 0.35, 0.45],  # AUC 10/16
            ("ad", 3, "T1"): [0.5, 0.6, 0.7, 0.8],  # perfectly separated
            ("healthy", 0, "T1c"): [0.1, 0.2],
            ("mets", 1, "T1c"): [0.05, 0.06],  # inverted
            ("various", 1, "T1c"): [0.3, 0.4],
        }
    )
    labels = [c.label for c in comparisons_for(recs)]
    assert labels == [
        "T1: AD-like, all",
        "T1: AD-like, stage 1 (CDR 0.5-like)",
        "T1: AD-like, stage 3 (CDR 2-like)",
        "T1c: all diseases",
        "T1c: Metastasis-like, all",
        "T1c: Various diseases, all",
    ]
    table = auc_table(recs, ["m"], n_boot=200)
    assert table["T1: AD-like, stage 1 (CDR 0.5-like)"]["m"].auc == pytest.approx(10 / 16)
    assert table["T1: AD-like, stage 3 (CDR 2-like)"]["m"].auc == 1.0
    assert table["T1c: Metastasis-like, all"]["m"].auc == 0.0
    assert table["T1c: all diseases"]["m"].auc == pytest.approx(0.5)
    assert table["T1: AD-like, all"]["m"].n_disease == 8


def test_bootstrap_interval_contains_the_auc():
    rng = np.random.default_rng(1)
    result = bootstrap_auc(rng.normal(0, 1, 40), rng.normal(1, 1, 40), n_boot=300)
    assert result.low <= result.auc <= result.high
    assert 0.6 < result.auc < 0.95 and result.high - result.low < 0.35


def test_heatmap_lies_on_an_injected_lesion_in_native_space(tmp_path):
    """A lesion injected in a non-RAS file shows up at the same native voxels in the saved heatmap."""
    healthy = synthetic_brain((40, 48, 36))
    lesion = np.zeros(healthy.shape, bool)
    lesion[12:16, 30:34, 17:20] = True
    diseased = np.where(lesion, healthy + 45.0, healthy)
    ornt = np.array([[1, -1], [0, 1], [2, -1]])  # stored permuted and flipped
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) @ inv_ornt_aff(ornt, healthy.shape)
    path = tmp_path / "diseased.nii.gz"
    nib.save(nib.Nifti1Image(apply_orientation(diseased, ornt), affine), path)
    native_lesion = apply_orientation(lesion, ornt)

    cfg = small_config()
    scan = load_scan(path)
    healthy_slab = preprocess(
        Scan.from_array(apply_orientation(healthy, ornt), affine), cfg.preprocess
    )
    healthy_targets = window_arrays(healthy_slab.slices, cfg.model)[1]
    cursor = {"window": 0}

    def healthy_prior(_inputs, targets):
        start = cursor["window"]
        cursor["window"] += len(targets)
        return torch.from_numpy(np.ascontiguousarray(healthy_targets[start : start + len(targets)]))

    result = score_scan(fake_model(cfg), scan, predictor=healthy_prior, precision="fp32")
    out = save_like(result.heatmap, scan, tmp_path / "heatmap.nii.gz")
    heat = np.nan_to_num(np.asarray(nib.load(out).dataobj))
    assert heat.shape == native_lesion.shape
    hot = heat > 0.5 * heat.max()
    assert hot.any()
    assert (hot & native_lesion).sum() / hot.sum() > 0.9
    assert heat[native_lesion].mean() > 20 * heat[~native_lesion].mean()
