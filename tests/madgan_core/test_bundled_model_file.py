"""The model shipped in the package: made by the code's recipe, and it works."""

from __future__ import annotations

import numpy as np
import pytest

from madgan_core.cohort.phantom import GROUP_SEQUENCES, make_subject
from madgan_core.cohort.phantom.anatomies import DISTINCT
from madgan_core.config import preset
from madgan_core.model.bundled import DEFAULT, bundled_path
from madgan_core.model.checkpoint import load_model, read_checkpoint
from madgan_core.model.pack import MAX_BYTES
from madgan_core.scans.scan import Scan
from madgan_core.scoring.scorer import score_scan

# The samples of File -> Open Sample (napari_madgan/_sample_data.py): seed 0, 2 mm.
SAMPLES = {"healthy": 0, "ad": 3, "mets": 1, "various": 1}


@pytest.fixture(scope="module")
def shipped():
    path = bundled_path(DEFAULT)
    return path, read_checkpoint(path), load_model(path, device="cpu")


def test_the_shipped_file_follows_the_demo_recipe_of_this_code(shipped):
    path, record, model = shipped
    assert path.stat().st_size <= MAX_BYTES
    recipe = record["recipe"]
    demo = preset("demo")
    assert recipe["preset"] == "demo"
    assert model.config.model == demo.model
    assert model.config.preprocess == demo.preprocess
    assert recipe["steps"] == record["step"] == demo.train.steps
    assert sorted(recipe["cohort"]["anatomies"]) == sorted(DISTINCT)
    assert recipe["cohort"]["voxel_mm"] == 2.0 and recipe["cohort"]["seed"] == 0
    assert recipe["commit"] and recipe["device"] and recipe["packed_from_sha256"]
    assert record["optim_g"] is None and record["rng"] is None
    reference = model.reference
    assert reference is not None and set(reference.sequences) == {"T1", "T1c"}
    assert set(reference.zstats) == {"T1", "T1c"}


@pytest.mark.parametrize("group", list(SAMPLES))
def test_it_scores_every_sample(shipped, group):
    _, _, model = shipped
    sequence = GROUP_SEQUENCES[group][0]
    volume, affine, _ = make_subject(group, SAMPLES[group], sequence, seed=0, voxel_mm=2.0)
    result = score_scan(model, Scan.from_array(volume, affine), sequence=sequence, maps=False)
    assert np.isfinite(result.scores["anomaly"]) and result.findings is not None
    assert result.percentiles["anomaly"] is not None


def test_its_findings_on_the_metastasis_sample_include_the_lesion(shipped):
    _, _, model = shipped
    volume, affine, info = make_subject("mets", 1, "T1c", seed=0, voxel_mm=2.0)
    result = score_scan(model, Scan.from_array(volume, affine), sequence="T1c")
    lesion = np.asarray(info["lesion_mask"]) > 0
    assert result.findings, "no finding on the metastasis sample"
    hit = [f.rank for f in result.findings if (result.finding_labels == f.rank)[lesion].any()]
    assert hit, "no finding overlaps the sample's metastases"
