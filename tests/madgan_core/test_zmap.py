from __future__ import annotations

import numpy as np
import pytest

from madgan_core.model.reference import HealthyReference
from madgan_core.model.zstats import (
    NoiseFit,
    ZStats,
    ZStatsBuilder,
    log_noise,
    position_bins,
    slice_volumes,
    zmap_features,
)


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
    lesion, healthy = zmap_features(z, brain), zmap_features(stats.zmap(healthy_maps(rng)), brain)
    assert lesion["ztail"] > healthy["ztail"] + 1.0
    assert lesion["zvolume"] > healthy["zvolume"]


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


def smooth_slab(rng, sigma, shape=(6, 40, 32)):
    """A smooth brain-like slab in model units with Gaussian noise of ``sigma``."""
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]]
    base = 0.3 * np.sin(yy / 7.0) * np.cos(xx / 9.0)
    slab = np.broadcast_to(base, shape) + rng.normal(0.0, sigma, shape)
    slab[:, :4] = -1.0  # background rows
    return slab.astype(np.float32)


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.08])
def test_log_noise_recovers_the_noise_level(sigma):
    estimate = np.exp(log_noise(smooth_slab(np.random.default_rng(4), sigma)))
    assert estimate == pytest.approx(sigma, rel=0.15)


def test_log_noise_is_robust_to_a_lesion():
    rng = np.random.default_rng(5)
    slab = smooth_slab(rng, 0.03)
    with_lesion = slab.copy()
    with_lesion[2:4, 15:22, 10:17] += rng.normal(0.0, 0.3, (2, 7, 7))
    assert abs(log_noise(with_lesion) - log_noise(slab)) < 0.1


def test_noise_fit_removes_a_noise_trend():
    rng = np.random.default_rng(6)
    noise = rng.uniform(-4.5, -3.0, 40)
    values = 2.0 + 1.5 * noise + rng.normal(0.0, 0.1, 40)
    fit = NoiseFit.fit(noise, values)
    assert fit.slope == pytest.approx(1.5, abs=0.15)
    adjusted = np.array([fit.adjust(v, n) for v, n in zip(values, noise, strict=True)])
    assert abs(np.corrcoef(adjusted, noise)[0, 1]) < 0.05
    assert abs(adjusted.mean()) < 1e-6 and adjusted.std() == pytest.approx(0.1, abs=0.03)

    # The same excess over the healthy line scores the same at any noise level.
    def line(n):
        return fit.intercept + fit.slope * n

    assert fit.adjust(line(-4.0) + 0.5, -4.0) == pytest.approx(0.5)
    assert fit.adjust(line(-3.2) + 0.5, -3.2) == pytest.approx(0.5)


def test_noise_adjusted_modes_need_a_fit_and_survive_a_round_trip():
    rng = np.random.default_rng(7)
    builder = ZStatsBuilder((16, 12))
    for _ in range(4):
        builder.add(healthy_maps(rng, n=6))
    stats = builder.finalize()
    slices = np.zeros((6, 16, 12), np.float32)
    z = stats.zmap(healthy_maps(rng, n=6))
    assert set(stats.scan_scores(z, slices)) == {"ztail"}
    stats.noise_fits = {"zmean": NoiseFit(0.1, 0.0), "zvolume": NoiseFit(0.0, 0.5)}
    scores = stats.scan_scores(z, slices)
    features = zmap_features(z, slices)
    noise = log_noise(slices)
    assert scores["zmean"] == pytest.approx(features["zmean"] - 0.1)
    assert scores["zvolume"] == pytest.approx(features["zvolume"] - 0.5 * noise)
    again = ZStats.from_dict(stats.to_dict())
    assert again.noise_fits == stats.noise_fits


def test_slice_volumes_count_brain_pixels_above_the_threshold():
    z = np.zeros((3, 4, 5), np.float32)
    z[0, :2] = 9.0  # 10 of 20 pixels
    z[1, 0, 0] = 4.5
    z[2] = np.nan  # an unpredicted slice
    slices = np.ones_like(z)
    slices[1, 2:] = -1.0  # half of slice 1 is background
    volumes = slice_volumes(z, slices)
    np.testing.assert_allclose(volumes[:2], [50.0, 10.0])
    assert np.isnan(volumes[2])
