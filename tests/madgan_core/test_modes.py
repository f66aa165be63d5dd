"""The score-mode registry: its formulas give every score, and its entries reach every reader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from madgan_core import modes
from madgan_core.cli import build_parser
from madgan_core.config import ScoreConfig
from madgan_core.errors import ConfigError
from madgan_core.model.reference import HealthyReference
from madgan_core.model.zstats import NoiseFit, ZStats
from madgan_core.modes import (
    ANOMALY,
    ANOMALY_PARTS,
    OVERLAYS,
    ZMAP,
    ScoreMode,
    calibrated_mode_names,
    mode_names,
    noise_adjusted_modes,
    score_mode,
    score_modes,
)
from madgan_core.scoring.scorer import scan_scores

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_registry_names_exactly_the_modes_scoring_computes():
    plain = scan_scores(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.2, 0.2]))
    shape = (2, 4, 4)
    fits = {mode: NoiseFit(0.0, 0.0) for mode in noise_adjusted_modes()}
    stats = ZStats(np.zeros(shape, np.float32), np.ones(shape, np.float32), 3, fits)
    slices = np.zeros((3, 4, 4), np.float32)
    calibrated = stats.scan_scores(np.zeros_like(slices), slices)
    assert list(plain) == [m for m in mode_names() if m not in calibrated_mode_names()]
    # the z-map gives three; the healthy reference derives the anomaly headline from two
    assert set(calibrated) | {ANOMALY} == set(calibrated_mode_names())
    assert ANOMALY not in calibrated and set(ANOMALY_PARTS) == {"zvolume", "zmean"}
    assert noise_adjusted_modes() == ("zmean", "zvolume")


def test_calibrated_modes_are_read_on_the_zmap_and_the_rest_on_the_heatmap():
    for mode in score_modes():
        assert mode.overlay in OVERLAYS and mode.direction == "higher"
        assert (mode.overlay == "zmap") == mode.needs_calibration
        assert mode.label and mode.description
    assert [m.name for m in score_modes() if m.for_baselines] == ["mean", "top10"]


def test_an_entry_says_what_is_wrong_with_it():
    with pytest.raises(ValueError, match="'peak': needs must be one of"):
        ScoreMode("peak", "Peak", "peak ℓ2", lambda s: 0.0, needs="slices")
    with pytest.raises(ValueError, match="only z-map modes are noise-adjusted"):
        ScoreMode("peak", "Peak", "peak ℓ2", lambda s: 0.0, noise_adjusted=True)


def test_an_unknown_mode_names_the_known_ones():
    assert score_mode("zvolume").needs_calibration
    with pytest.raises(ValueError, match="unknown score mode 'peak'; choose one of mean, top10"):
        score_mode("peak")
    with pytest.raises(ConfigError, match="score.mode must be one of"):
        ScoreConfig(mode="peak").validate()


def test_the_cli_offers_every_mode(capsys):
    parser = build_parser()
    assert parser.parse_args(["score", "m.pt", "s.nii.gz", "--mode", "zmean"]).mode == "zmean"
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "--help"])
    assert "--mode {" + ",".join(("auto", *mode_names())) + "}" in capsys.readouterr().out


def test_the_docs_list_every_mode():
    evaluation = (DOCS / "evaluation.md").read_text()
    table = set(re.findall(r"^\| `madgan:(\w+)` \|", evaluation, flags=re.M))
    assert table == set(mode_names())
    configuration = (DOCS / "configuration.md").read_text()
    row = re.search(r"^\| `mode` \|(.*)$", configuration, flags=re.M).group(1)
    listed = re.findall(r"`(\w+)`", row.split("(see")[0])
    assert listed[0] == "auto" and listed[-len(mode_names()) :] == list(mode_names())


def tiny_case() -> tuple:
    """Window losses, a z-map over a slab with noise fits, and 8 controls, all seeded."""
    rng = np.random.default_rng(7)
    window, copy = rng.gamma(2.0, 0.01, 40), rng.gamma(2.0, 0.012, 40)
    slices = rng.uniform(-1.0, 1.0, (6, 8, 8)).astype(np.float32)
    z = rng.normal(0.5, 1.5, (6, 8, 8)).astype(np.float32)
    z[0, :2] = np.nan
    fits = {"zmean": NoiseFit(0.3, 0.2), "zvolume": NoiseFit(1.0, 2.0)}
    stats = ZStats(np.zeros((2, 8, 8), np.float32), np.ones((2, 8, 8), np.float32), 8, fits)
    controls = {m: rng.normal(0.0, 1.0, 8) for m in ("mean", "ztail", "zvolume", "zmean")}
    reference = HealthyReference(controls, [f"c{i}" for i in range(8)], ["T1"] * 8, {"T1": stats})
    return window, copy, slices, z, stats, reference


def test_every_mode_gives_the_value_scoring_gave_before_the_registry_computed_it():
    window, copy, slices, z, stats, reference = tiny_case()
    plain = scan_scores(window, copy, ScoreConfig())
    mapped = stats.scan_scores(z, slices, ScoreConfig(volume_threshold=1.0))
    scores = reference.with_anomaly({**plain, **mapped}, "T1")
    # Values, and their order, as the per-module formulas gave them, to the last digit.
    assert list(scores.items()) == [
        ("mean", 0.01650849509157807),
        ("top10", 0.0219686686343324),
        ("ratio", 0.79794854192489),
        ("ztail", 4.213679790496826),
        ("zmean", 0.28853768099562793),
        ("zvolume", 35.98410049096199),
        ("anomaly", 69.35567178053425),
    ]
    assert reference.anomaly_driver(scores, "T1") == "zvolume"
    assert reference.control_anomaly_scores("T1").tolist() == [
        -0.25424248602036176,
        0.7424591382856259,
        1.8529165153971312,
        -1.0388108064940615,
        1.0174073789415405,
        0.16101176010138163,
        0.5841958071019786,
        1.2924286579470263,
    ]


# -- a mode added to the registry alone reaches scoring, calibration, evaluation and the CLI --

MEDIAN = ScoreMode(
    "median",
    "Median ℓ2",
    "median ℓ2 over all windows",
    lambda s: float(np.median(s.window_losses)),
)
ZMAX = ScoreMode(
    "zmax",
    "z-map maximum",
    "largest z over the brain",
    lambda s: float(np.max(s.brain_z)),
    needs=ZMAP,
    overlay="zmap",
)


@pytest.fixture
def added_modes(monkeypatch):
    monkeypatch.setattr(modes, "SCORE_MODES", (*modes.SCORE_MODES, MEDIAN, ZMAX))


def test_a_registered_mode_reaches_the_cli_and_the_configuration(added_modes, capsys):
    parser = build_parser()
    assert parser.parse_args(["score", "m.pt", "s.nii.gz", "--mode", "median"]).mode == "median"
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "--help"])
    assert ",median,zmax}" in capsys.readouterr().out
    ScoreConfig(mode="zmax").validate()
    assert score_mode("zmax").needs_calibration and "zmax" in calibrated_mode_names()


def test_a_registered_mode_is_scored_calibrated_and_evaluated(added_modes, tmp_path):
    from madgan_core.cohort.evaluation.cohort import calibrated_modes, score_columns
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.calibrate import build_reference
    from madgan_core.scoring.scorer import score_scan
    from tests.madgan_core.test_calibrate import AFFINE, CopyLast, brain, controls
    from tests.madgan_core.test_score import fake_model, small_config

    model = fake_model(small_config())
    model.generator = CopyLast()
    reference = build_reference(model, controls(tmp_path, (1.0, 2.0, 3.0)))
    assert {"median", "zmax"} <= set(reference.scores)
    assert np.isfinite(reference.scores["zmax"]).all()

    model.reference = reference
    result = score_scan(model, Scan.from_array(brain(2.0, 9), AFFINE), sequence="T1", maps=False)
    assert result.scores["median"] == float(np.median(result.window_losses))
    assert list(result.scores)[:5] == ["mean", "top10", "ratio", "median", "ztail"]
    assert {"median", "zmax"} <= set(result.percentiles)

    columns = score_columns(["madgan", "copy"], calibrated_modes(model))
    assert {"madgan:median", "madgan:zmax"} <= set(columns)
    assert [c for c in columns if c.startswith("copy:")] == ["copy:mean", "copy:top10"]
