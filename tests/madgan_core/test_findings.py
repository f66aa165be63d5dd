"""Findings (z-map regions) and the calibrated anomaly headline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from madgan_core.model.reference import HealthyReference
from madgan_core.modes import ANOMALY, ANOMALY_PARTS, headline_mode, normal_score
from madgan_core.scoring.findings import describe_findings, find_regions, signed_residual

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


def test_an_extent_above_the_threshold_outlines_each_region_by_its_core():
    z = np.zeros((30, 30, 30), np.float32)
    z[5:15, 5:15, 5:15] = 4.5  # a smoothed halo ...
    z[8:12, 8:12, 8:12] = 7.0  # ... around a core
    z[20:24, 20:24, 20:24] = 4.8  # a region whose peak stays below the extent z
    plain = find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.0, extent_threshold=None)
    cored = find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.0, extent_threshold=5.0)
    assert len(cored) == len(plain) == 2
    assert [r.evidence for r in cored] == [r.evidence for r in plain]  # ranks unchanged
    assert [r.peak_z for r in cored] == [r.peak_z for r in plain]
    assert plain[0].volume_ml == pytest.approx(1000 * 0.008)
    assert cored[0].volume_ml == pytest.approx(64 * 0.008) and cored[0].mean_z == 7.0
    assert cored[0].slices == (8, 11) and plain[0].slices == (5, 14)
    assert cored[1] == plain[1]  # no voxel reaches 5: the whole region is its outline


def _lesion_and_trail() -> tuple[np.ndarray, np.ndarray]:
    """A bright lesion on slices 10-13 and the error the model carries on to slice 17,
    where it predicts the lesion the scan no longer has (negative residual)."""
    z = np.zeros((30, 30, 30), np.float32)
    residual = np.zeros_like(z)
    z[10:14, 10:14, 10:18] = 6.0
    z[11:13, 11:13, 15] = 9.0  # the trail's peak: stronger than the lesion's z
    residual[10:14, 10:14, 10:14] = 0.4  # the scan is brighter than predicted ...
    residual[10:14, 10:14, 14:18] = -0.2  # ... then darker, past the lesion
    return z, residual


def test_the_residual_sign_trims_the_error_carried_past_a_lesion():
    z, residual = _lesion_and_trail()
    plain = find_regions(z, AFFINE_2MM, threshold=4.0, min_volume_ml=0.0)
    (signed,) = find_regions(z, AFFINE_2MM, 4.0, 0.0, residual=residual)
    assert plain[0].slices == (10, 17) and plain[0].signal is None
    assert signed.slices == (10, 13) and signed.signal == "brighter"
    assert signed.volume_ml == pytest.approx(64 * 0.008)
    assert signed.peak_voxel[2] in range(10, 14)  # the peak lies in the outline
    # evidence and rank are the thresholded region's
    assert signed.evidence == plain[0].evidence
    # a dark lesion keeps its dark part
    (dark,) = find_regions(z, AFFINE_2MM, 4.0, 0.0, residual=-residual * (residual > 0))
    assert dark.signal == "darker" and dark.slices == (10, 13)


def test_the_sign_trim_keeps_the_heaviest_part_and_each_region_apart():
    z, residual = _lesion_and_trail()
    z[10:12, 10:12, 22:24] = 7.0  # a second region, darker than predicted
    residual[10:12, 10:12, 22:24] = -0.3
    residual[13, 13, 16] = 0.5  # a stray bright voxel in the trail: not connected
    first, second = find_regions(z, AFFINE_2MM, 4.0, 0.0, residual=residual)
    assert first.slices == (10, 13) and first.signal == "brighter"
    assert second.slices == (22, 23) and second.signal == "darker"
    assert second.volume_ml == pytest.approx(8 * 0.008)
    # no voxel of the region agrees with nothing: a zero residual keeps the outline
    (whole,) = find_regions(z[:, :, :20], AFFINE_2MM, 4.0, 0.0, residual=np.zeros((30, 30, 20)))
    assert whole.slices == (10, 17)
    with pytest.raises(ValueError, match="residual shape"):
        find_regions(z, AFFINE_2MM, residual=np.zeros((3, 3, 3)))


def test_the_residual_is_smoothed_in_millimetres_and_only_where_it_is_needed():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(30, 24, 12)).astype(np.float32)
    prediction = np.full(data.shape, np.nan, np.float32)
    prediction[:, :, 1:11] = 0.5  # the first and last slices are never predicted
    whole = signed_residual(data, prediction, (1.0, 1.0, 4.0))
    expected = ndimage.gaussian_filter(np.nan_to_num(data - prediction), sigma=(2.0, 2.0, 0.5))
    np.testing.assert_allclose(whole, expected, atol=1e-6)
    near = np.zeros(data.shape, bool)
    near[12:15, 10:13, 5:7] = True
    boxed = signed_residual(data, prediction, (1.0, 1.0, 4.0), near=near)
    np.testing.assert_allclose(boxed[near], whole[near], atol=1e-6)
    assert boxed[0, 0, 0] == 0.0  # far from every region: not computed
    assert not signed_residual(data, prediction, (1, 1, 4), near=near & False).any()


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


def test_normal_scores_follow_the_controls_ranks_and_go_on_past_them():
    controls = np.array([0.0, 1.0, 2.0, 3.0, 10.0])  # n = 5: quantiles of 1/6 ... 5/6
    quantiles = [normal_score(controls, v) for v in controls]
    assert quantiles[2] == pytest.approx(0.0, abs=1e-12)  # the median control
    assert quantiles[-1] == pytest.approx(0.9674, abs=1e-4)  # Phi^-1(5/6)
    assert np.all(np.diff(quantiles) > 0)
    # linear between neighbouring controls; continuous at the ends
    assert normal_score(controls, 6.5) == pytest.approx((quantiles[3] + quantiles[4]) / 2)
    sd = float(np.std(controls, ddof=1))
    assert normal_score(controls, 10.0 + 2 * sd) == pytest.approx(quantiles[-1] + 2.0)
    assert normal_score(controls, -sd) == pytest.approx(quantiles[0] - 1.0)
    # NaN controls are ignored; tied controls share their quantiles
    assert normal_score(np.append(controls, np.nan), 2.0) == pytest.approx(0.0, abs=1e-12)
    assert normal_score(np.array([0.0, 1.0, 1.0, 2.0]), 1.0) == pytest.approx(0.0, abs=1e-12)


def test_a_heavy_tailed_part_reaches_high_scores_no_more_often_than_a_normal_one():
    """zvolume: most controls near 0 with a long upper tail. In the controls' SDs, new
    healthy scans pass 2.33 five times as often as a normal part would (1 %); on the
    normal scale both parts pass it at about the nominal rate."""

    def draw(rng, n):
        heavy = np.where(rng.random(n) < 0.8, rng.normal(0, 0.002, n), rng.exponential(0.3, n))
        return heavy, rng.normal(0, 0.3, n)

    heavy, normal = draw(np.random.default_rng(3), 60)
    new_heavy, new_normal = draw(np.random.default_rng(4), 2000)
    for controls, scans in ((heavy, new_heavy), (normal, new_normal)):
        passed = np.mean([normal_score(controls, v) > 2.33 for v in scans])
        assert passed < 0.03


def test_the_anomaly_score_is_the_largest_normal_score_of_its_parts():
    reference = _reference()
    scan = {"mean": 0.05, "ztail": 9.0, "zvolume": 0.0, "zmean": 1.0}
    expected = max(normal_score(reference.scores[p], scan[p]) for p in ANOMALY_PARTS)
    assert reference.anomaly_score(scan, "T1") == pytest.approx(expected)
    assert reference.anomaly_driver(scan, "T1") == "zmean"  # ztail is not a part
    scored = reference.with_anomaly(scan, "T1")
    assert scored[ANOMALY] == pytest.approx(expected)
    assert reference.percentiles(scored, "T1")[ANOMALY] == 100.0
    # without z-map scores there is no anomaly score
    assert reference.with_anomaly({"mean": 0.05}, "T1") == {"mean": 0.05}


def test_controls_are_scored_leaving_themselves_out():
    reference = _reference(n=12)
    controls = reference.control_anomaly_scores("T1")
    j = 3
    table = {p: reference.scores[p] for p in ANOMALY_PARTS}
    expected = max(normal_score(np.delete(v, j), v[j]) for v in table.values())
    assert controls[j] == pytest.approx(expected)
    # a control's own score is not part of its yardstick: leave-one-out is stricter
    with_self = max(normal_score(v, v[j]) for v in table.values())
    assert controls[j] != pytest.approx(with_self)


def test_healthy_scans_land_uniformly_among_the_controls():
    """Taking the larger of two is corrected for: healthy percentiles are not inflated."""
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


def test_scoring_with_or_without_maps_outlines_the_same_findings(tiny_model_zstats):
    import dataclasses

    from madgan_core.cohort.phantom import make_subject
    from madgan_core.model.checkpoint import load_model
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.scorer import score_scan

    volume, affine, _ = make_subject("mets", voxel_mm=4.0)
    scan = Scan.from_array(volume, affine)
    model = load_model(tiny_model_zstats)
    with_maps = score_scan(model, scan, maps=True, sequence="T1c")
    without_maps = score_scan(model, scan, maps=False, sequence="T1c")
    assert with_maps.findings, "the untrained tiny model's z-map has regions above 4"
    assert with_maps.findings == without_maps.findings  # the CLI's line is the panel's
    assert {f.signal for f in with_maps.findings} <= {"brighter", "darker"}
    assert with_maps.residual is not None and without_maps.residual is None
    # with maps, a label volume holds each finding's outline under its rank
    labels = with_maps.finding_labels
    assert without_maps.finding_labels is None
    assert labels.shape == scan.data.shape and labels.dtype == np.uint8
    voxel_ml = abs(np.linalg.det(scan.affine[:3, :3])) / 1000.0
    for finding in with_maps.findings:
        outline = labels == finding.rank
        assert outline[finding.peak_voxel]
        assert np.count_nonzero(outline) * voxel_ml == pytest.approx(finding.volume_ml, abs=1e-3)
        k = np.flatnonzero(outline.any(axis=(0, 1)))
        assert (k[0], k[-1]) == finding.slices
    # the sign trim only takes voxels away: same regions, same evidence, smaller outlines
    model.config.score = dataclasses.replace(model.config.score, finding_sign=False)
    unsigned = score_scan(model, scan, maps=False, sequence="T1c").findings
    assert [f.evidence for f in unsigned] == [f.evidence for f in with_maps.findings]
    assert all(f.signal is None for f in unsigned)
    assert all(
        s.volume_ml <= u.volume_ml for s, u in zip(with_maps.findings, unsigned, strict=True)
    )


def test_label_maxima_agree_with_scipy_and_break_ties_by_order():
    from madgan_core.scoring.findings import label_maxima

    rng = np.random.default_rng(5)
    for _ in range(50):
        shape = tuple(int(n) for n in rng.integers(3, 12, 3))
        labels, n = ndimage.label(rng.random(shape) > 0.6, structure=np.ones((3, 3, 3), bool))
        if n == 0:
            continue
        values = rng.random(shape).astype(np.float32)
        index = np.arange(1, n + 1)
        peaks, positions = label_maxima(values, labels, index)
        np.testing.assert_array_equal(peaks, ndimage.maximum(values, labels, index))
        assert positions == [
            tuple(map(int, p)) for p in ndimage.maximum_position(values, labels, index)
        ]
    tied = np.zeros((4, 4, 4), np.float32)
    tied[2, 2, 2] = tied[1, 1, 1] = 5.0
    assert label_maxima(tied, np.ones(tied.shape, np.int32), np.array([1]))[1] == [(1, 1, 1)]
