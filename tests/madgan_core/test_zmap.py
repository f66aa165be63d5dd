from __future__ import annotations

import numpy as np
import pytest

from madgan_core.calibrate import HealthyReference
from madgan_core.zmap import ZStatsBuilder, position_bins, tail_score


def healthy_maps(rng, n=20, shape=(16, 12)):
    base = np.full((n, *shape), 0.01, np.float32)
    base[:, 4:8, 4:8] = 0.05  # a region that is always hard to predict
    return base * rng.lognormal(0.0, 0.2, base.shape).astype(np.float32)


def test_position_bins_span_the_range():
    bins = position_bins(20, 24)
    assert bins[0] == 0 and bins[-1] == 23 and np.all(np.diff(bins) >= 0)


def test_zmap_lights_up_a_lesion_not_the_always_hard_region():
    rng = np.random.default_rng(0)
    builder = ZStatsBuilder((16, 12))
    for _ in range(12):
        builder.add(healthy_maps(rng))
    stats = builder.finalize()
    scan = healthy_maps(rng)
    scan[10, 10:13, 2:5] = 0.05  # same error level as the hard region, but in an easy place
    z = stats.zmap(scan)
    assert z[10, 11, 3] > 3.0
    assert abs(np.median(z[10, 4:8, 4:8])) < 1.5
    brain = np.ones_like(scan)
    assert tail_score(z, brain) > tail_score(stats.zmap(healthy_maps(rng)), brain)


def test_leave_one_out_equals_building_without_the_scan():
    rng = np.random.default_rng(1)
    maps = [healthy_maps(rng) for _ in range(5)]
    full = ZStatsBuilder((16, 12))
    partial = ZStatsBuilder((16, 12))
    for i, m in enumerate(maps):
        full.add(m)
        if i != 2:
            partial.add(m)
    a, b = full.finalize(leave_out=maps[2]), partial.finalize()
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-5)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-4, atol=1e-5)


def test_unpredicted_slices_stay_nan():
    rng = np.random.default_rng(2)
    builder = ZStatsBuilder((16, 12))
    for _ in range(3):
        builder.add(healthy_maps(rng))
    scan = healthy_maps(rng)
    scan[:3] = np.nan
    z = builder.finalize().zmap(scan)
    assert np.all(np.isnan(z[:3])) and np.all(np.isfinite(z[3:]))


def test_reference_round_trip_keeps_zstats_and_sequences():
    rng = np.random.default_rng(3)
    builder = ZStatsBuilder((16, 12))
    for _ in range(3):
        builder.add(healthy_maps(rng))
    ref = HealthyReference(
        {"mean": np.array([1.0, 2.0, 3.0, 4.0])},
        ["a", "b", "c", "d"],
        ["T1", "T1", "T1c", "T1c"],
        {"T1": builder.finalize()},
    )
    again = HealthyReference.from_dict(ref.to_dict())
    assert again.n_for("T1c") == 2 and again.percentile(3.5, "mean", "T1c") == 50.0
    assert again.percentile(3.5, "mean") == 75.0
    assert again.zstats_for("T1") is not None and again.zstats_for("T1c") is None
    np.testing.assert_allclose(again.zstats["T1"].mean, ref.zstats["T1"].mean, rtol=1e-2)
    with pytest.raises(Exception, match="no scores for mode"):
        again.percentile(1.0, "top10")
