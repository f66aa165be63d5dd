"""Findings (z-map regions) and the calibrated anomaly headline."""

from __future__ import annotations

import numpy as np
import pytest

from madgan_core.findings import describe_findings, find_regions
from madgan_core.modes import headline_mode
from madgan_core.reference import ANOMALY, HealthyReference, standardise

AFFINE_2MM = np.array([[2.0, 0, 0, -90.0], [0, 2.0, 0, -126.0], [0, 0, 2.0, -72.0], [0, 0, 0, 1.0]])


def _zmap() -> np.ndarray:
    z = np.zeros((40, 40, 30), np.float32)
    z[:5] = np.nan  # outside the brain
    z[10:14, 10:14, 10:14] = 6.0  # 64 voxels of 8 mm^3: 0.512 mL, evidence 2 * 0.512
    z[30:32, 30:32, 20:22] = 9.0  # 8 voxels: 0.064 mL, evidence 5 * 0.064
    z[20, 20, 5] = z[21, 21, 6] = 12.0  # diagonal neighbours: one region of 2 voxels
    return z


def test_regions_are_measured_in_scanner_units_and_ranked_by_evidence():
    regions = find_regions(_zmap(), AFFINE_2MM, threshold=4.0, min_volume_ml=0.0)
    assert [r.rank for r in regions] == [1, 2, 3]
    big, small, pair = regions
    assert big.volume_ml == pytest.approx(0.512)
    assert big.peak_z == pytest.approx(6.0) and big.mean_z == pytest.approx(6.0)
    assert big.evidence == pytest.approx(2.0 * 0.512)
    # centre of voxels 10..13 is 11.5 on each axis
    assert big.centre_mm == pytest.approx((-90 + 23.0, -126 + 23.0, -72 + 23.0))
    assert big.slices == (10, 13)
    assert small.volume_ml == pytest.approx(0.064) and small.peak_z == pytest.approx(9.0)
    assert pair.volume_ml == pytest.approx(0.016) and pair.slices == (5, 6)
    assert pair.peak_voxel in ((20, 20, 5), (21, 21, 6))


def test_small_regions_threshold_and_nan_are_respected():
    z = _zmap()
    assert len(find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.1)) == 1
    assert len(find_regions(z, AFFINE_2MM, threshold=8.0, min_volume_ml=0.0)) == 2
    assert find_regions(np.full((8, 8, 8), np.nan), AFFINE_2MM) == []
    with pytest.raises(ValueError, match="3-D"):
        find_regions(np.zeros((4, 4)), AFFINE_2MM)


def test_an_extent_threshold_grows_regions_without_creating_or_reranking_them():
    z = _zmap()
    z[9:15, 9:15, 9:15] = np.where(z[9:15, 9:15, 9:15] > 4.0, z[9:15, 9:15, 9:15], 2.5)  # a rim
    z[2 + 5, 2, 2] = 3.0  # above the extent threshold but with no seed: never a finding
    strict = find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.0)
    grown = find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.0, extent_threshold=2.0)
    assert len(grown) == len(strict) == 3
    assert [r.evidence for r in grown] == [r.evidence for r in strict]
    assert grown[0].volume_ml == pytest.approx(6**3 * 0.008)  # the core plus its rim
    assert grown[0].mean_z < strict[0].mean_z and grown[0].peak_z == strict[0].peak_z
    assert grown[1].volume_ml == strict[1].volume_ml
    # regions joined by the lower z become one
    z2 = np.zeros((20, 20, 20), np.float32)
    z2[5, 5, 5] = z2[5, 5, 9] = 6.0
    z2[5, 5, 6:9] = 3.0
    assert len(find_regions(z2, AFFINE_2MM, min_volume_ml=0.0)) == 2
    assert len(find_regions(z2, AFFINE_2MM, min_volume_ml=0.0, extent_threshold=2.0)) == 1


def test_the_summary_reads_like_a_report_line():
    regions = find_regions(_zmap(), AFFINE_2MM, threshold=4.0, min_volume_ml=0.05)
    text = describe_findings(regions)
    assert text.startswith("2 regions: 0.5 mL at (-67, -103, -49) mm, peak z 6.0; 0.1 mL at")
    assert describe_findings([]) == "no focal region"
    assert describe_findings([], brain_wide=True) == "no focal region, brain-wide elevation"
    assert describe_findings(regions[:1], brain_wide=True).endswith("; brain-wide elevation")
    assert regions[0].to_dict()["centre_mm"] == list(regions[0].centre_mm)


def _reference(n: int = 40, seed: int = 0) -> HealthyReference:
    rng = np.random.default_rng(seed)
    scores = {
        "mean": rng.normal(0.05, 0.005, n),
        "ztail": rng.normal(3.0, 0.3, n),
        "zvolume": rng.normal(0.0, 0.2, n),
        "zmean": rng.normal(0.0, 0.1, n),
    }
    return HealthyReference(scores=scores, names=[f"c{i}" for i in range(n)], sequences=["T1"] * n)


def test_the_anomaly_score_is_the_largest_standardised_zmap_score():
    reference = _reference()
    scan = {"mean": 0.05, "ztail": 3.0, "zvolume": 0.0, "zmean": 1.0}
    expected = max(standardise(reference.scores[p], scan[p]) for p in ("ztail", "zvolume", "zmean"))
    assert reference.anomaly_score(scan, "T1") == pytest.approx(expected)
    assert reference.anomaly_driver(scan, "T1") == "zmean"
    scored = reference.with_anomaly(scan, "T1")
    assert scored[ANOMALY] == pytest.approx(expected)
    assert reference.percentiles(scored, "T1")[ANOMALY] == 100.0
    # without z-map scores there is no anomaly score
    assert reference.with_anomaly({"mean": 0.05}, "T1") == {"mean": 0.05}


def test_controls_are_standardised_leaving_themselves_out():
    reference = _reference(n=12)
    controls = reference.control_anomaly_scores("T1")
    j = 3
    table = {p: reference.scores[p] for p in ("ztail", "zvolume", "zmean")}
    expected = max(standardise(np.delete(v, j), v[j]) for v in table.values())
    assert controls[j] == pytest.approx(expected)
    # a control's own score is not part of its yardstick: leave-one-out is stricter
    with_self = max(standardise(v, v[j]) for v in table.values())
    assert controls[j] != pytest.approx(with_self)


def test_healthy_scans_land_uniformly_among_the_controls():
    """Taking the largest of three is corrected for: healthy percentiles are not inflated."""
    reference = _reference(n=60, seed=1)
    healthy = _reference(n=400, seed=2)
    percentiles = [
        reference.percentile(
            reference.anomaly_score({p: healthy.scores[p][i] for p in healthy.scores}, "T1"),
            ANOMALY,
            "T1",
        )
        for i in range(400)
    ]
    assert np.mean(np.asarray(percentiles) >= 90.0) == pytest.approx(0.1, abs=0.06)
    assert np.median(percentiles) == pytest.approx(50.0, abs=12.0)


def test_auto_headline_follows_calibration():
    assert headline_mode("auto", {"mean": 1.0, "anomaly": 2.0}) == "anomaly"
    assert headline_mode("auto", {"mean": 1.0}) == "mean"
    assert headline_mode("top10", {"mean": 1.0, "anomaly": 2.0}) == "top10"


def test_a_finding_carries_its_centre_in_mni_space_once_registered():
    (region,) = find_regions(_zmap(), AFFINE_2MM, threshold=4.0, min_volume_ml=0.1)
    assert region.centre_mni is None and region.to_dict()["centre_mni"] is None
    shifted = region.in_mni(lambda points: points + np.array([1.0, -2.0, 3.0]))
    assert shifted.centre_mni == pytest.approx(np.add(region.centre_mm, [1.0, -2.0, 3.0]))
    assert shifted.to_dict()["centre_mni"] == list(shifted.centre_mni)
