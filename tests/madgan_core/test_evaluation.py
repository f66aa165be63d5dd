"""Evaluation helpers that the CLI and the research scripts share."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from madgan_core.cohort.evaluation.cohort import read_scores, reconstruct_cohort, score_cohort
from madgan_core.cohort.evaluation.run import evaluate
from madgan_core.cohort.evaluation.stats import auc, roc_inputs
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.zstats import ZStatsBuilder, brain_features
from madgan_core.scans.manifest import read_manifest
from madgan_core.scoring.calibrate import build_reference, leave_one_out_features
from madgan_core.scoring.reconstruct import generator_predictor
from tests.madgan_core.test_interrupted import tiny_cohort


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_file):
    folder = tmp_path_factory.mktemp("evaluation")
    manifest = tiny_cohort(folder)
    model = ckpt.load_model(tiny_model_file(folder / "model.pt"), "cpu")
    return model, manifest, read_manifest(manifest)


def test_roc_inputs_label_healthy_0_and_disease_1():
    labels, scores = roc_inputs([0.1, 0.4], [0.3])
    assert labels.tolist() == [0.0, 0.0, 1.0] and scores.tolist() == [0.1, 0.4, 0.3]
    assert auc([0.1, 0.4], [0.3, 0.5]) == 0.75 == roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.3, 0.5])


def test_reconstruct_cohort_gives_the_scores_cohort_scoring_stores(tiny, tmp_path):
    model, _manifest, rows = tiny
    records = score_cohort(
        {"madgan": generator_predictor(model.inference_generator())},
        model,
        rows,
        tmp_path / "s.csv",
    )
    assert read_scores(tmp_path / "s.csv") == records
    items = list(reconstruct_cohort(model, rows))
    assert [item.row for item in items] == list(rows)
    for item, record in zip(items, records, strict=True):
        assert item.scores["mean"] == record["madgan:mean"]
        assert item.errors.slice_maps()[0].shape == (item.slab.n_slices, 32, 32)
        assert item.zmap is None


def test_reconstruct_cohort_zmaps_against_the_models_reference(tiny):
    model, _manifest, rows = tiny
    calibrated = ckpt.LoadedModel(
        model.generator,
        model.config,
        model.step,
        model.path,
        build_reference(model, rows),
        model.device,
    )
    item = next(reconstruct_cohort(calibrated, rows[:1], zmaps=True))
    assert item.zmap.shape == (item.slab.n_slices, 32, 32) and "ztail" in item.scores
    assert next(reconstruct_cohort(calibrated, rows[:1])).zmap is None


def test_leave_one_out_features_leave_each_control_out():
    rng = np.random.default_rng(0)
    maps = [rng.gamma(2.0, 0.01, (6, 16, 12)).astype(np.float32) for _ in range(4)]
    brain = np.ones((6, 16, 12), bool)
    builder = ZStatsBuilder.of(maps)
    own = leave_one_out_features(builder, [(m, brain) for m in maps])
    for m, features in zip(maps, own, strict=True):
        expected = brain_features(builder.finalize(leave_out=m).zmap(m), brain)
        assert features == expected
    assert own[0] != brain_features(builder.finalize().zmap(maps[0]), brain)


def test_evaluate_reports_each_stage_from_its_start(tiny, tmp_path):
    model, manifest, rows = tiny
    calls = []
    result = evaluate(
        model.path,
        manifest,
        tmp_path / "report",
        device="cpu",
        progress=lambda *call: calls.append(call),
    )
    tested = sum(r.split == "test" for r in rows)
    assert calls[0] == ("evaluating", 0, tested) and calls[-1] == ("evaluating", tested, tested)
    assert result.report.exists() and result.columns[0] == "madgan:mean"
