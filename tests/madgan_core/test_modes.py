"""The score-mode registry matches what scoring computes, and the CLI, config and docs read it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from madgan_core.cli import build_parser
from madgan_core.config import ScoreConfig
from madgan_core.errors import ConfigError
from madgan_core.model.reference import ANOMALY, ANOMALY_PARTS
from madgan_core.model.zstats import NOISE_ADJUSTED, NoiseFit, ZStats
from madgan_core.modes import CALIBRATED_MODES, MODE_NAMES, OVERLAYS, SCORE_MODES, score_mode
from madgan_core.scoring.scorer import scan_scores

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_registry_names_exactly_the_modes_scoring_computes():
    plain = scan_scores(np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.2, 0.2]))
    shape = (2, 4, 4)
    fits = {mode: NoiseFit(0.0, 0.0) for mode in NOISE_ADJUSTED}
    stats = ZStats(np.zeros(shape, np.float32), np.ones(shape, np.float32), 3, fits)
    slices = np.zeros((3, 4, 4), np.float32)
    calibrated = stats.scan_scores(np.zeros_like(slices), slices)
    assert list(plain) == [m for m in MODE_NAMES if m not in CALIBRATED_MODES]
    # the z-map gives three; the healthy reference derives the anomaly headline from two
    assert set(calibrated) | {ANOMALY} == set(CALIBRATED_MODES)
    assert ANOMALY not in calibrated and set(ANOMALY_PARTS) == {"zvolume", "zmean"}


def test_calibrated_modes_are_read_on_the_zmap_and_the_rest_on_the_heatmap():
    for mode in SCORE_MODES:
        assert mode.overlay in OVERLAYS and mode.direction == "higher"
        assert (mode.overlay == "zmap") == mode.needs_calibration
        assert mode.label and mode.description


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
    assert "--mode {" + ",".join(("auto", *MODE_NAMES)) + "}" in capsys.readouterr().out


def test_the_docs_list_every_mode():
    evaluation = (DOCS / "evaluation.md").read_text()
    table = set(re.findall(r"^\| `madgan:(\w+)` \|", evaluation, flags=re.M))
    assert table == set(MODE_NAMES)
    configuration = (DOCS / "configuration.md").read_text()
    row = re.search(r"^\| `mode` \|(.*)$", configuration, flags=re.M).group(1)
    listed = re.findall(r"`(\w+)`", row.split("(see")[0])
    assert listed[0] == "auto" and listed[-len(MODE_NAMES) :] == list(MODE_NAMES)
