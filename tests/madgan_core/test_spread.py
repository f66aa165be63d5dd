"""The departure spread and the domain guard's anatomy check."""

from __future__ import annotations

import numpy as np
import pytest

from madgan_core.scoring.spread import departure_spread


def _brain(shape=(30, 36, 30)) -> np.ndarray:
    z = np.full(shape, np.nan, np.float32)
    z[3:-3, 3:-3, 3:-3] = 0.0
    return z


def test_a_focal_lesion_departs_in_few_regions_a_brain_wide_departure_in_all():
    z = _brain()
    assert departure_spread(z, 4.0) == 0.0
    lesion = z.copy()
    lesion[5:10, 5:10, 5:10] = 8.0  # a large lesion in one corner of the brain
    assert departure_spread(lesion, 4.0) == pytest.approx(1 / 27)
    scattered = z.copy()
    scattered[::2, ::3, ::3] = np.where(np.isfinite(z[::2, ::3, ::3]), 6.0, np.nan)
    assert departure_spread(scattered, 4.0) == 1.0  # small departures all over
    assert departure_spread(z + 5.0, 4.0) == 1.0
    assert departure_spread(np.full((4, 4, 4), np.nan), 4.0) is None


def test_edge_blocks_with_little_brain_do_not_count():
    z = _brain()
    z[3:-3, 3:-3, 26] = np.nan  # thin the top layer of blocks
    z[3:-3, 3:-3, 24:26] = 9.0  # ... and make what is left of it depart
    assert departure_spread(z, 4.0) == pytest.approx(9 / 27, abs=1e-9)


def test_each_scored_scan_carries_its_spread(tiny_model_zstats, tiny_model_file, tmp_path):
    from madgan_core.cohort.phantom import make_subject
    from madgan_core.model.checkpoint import load_model
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.scorer import score_scan

    volume, affine, _ = make_subject("mets", voxel_mm=4.0)
    model = load_model(tiny_model_zstats)
    result = score_scan(model, Scan.from_array(volume, affine), sequence="T1c")
    assert result.spread == departure_spread(result.zmap, model.config.score.finding_threshold)
    assert result.to_row()["departure_spread"] == pytest.approx(result.spread)
    plain = load_model(tiny_model_file(tmp_path / "uncalibrated.pt"))
    uncalibrated = score_scan(plain, Scan.from_array(volume, affine))
    assert uncalibrated.zmap is None and uncalibrated.spread is None
    assert uncalibrated.to_row()["departure_spread"] is None
