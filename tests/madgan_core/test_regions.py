"""Region-level evaluation: FROC operating points and the top region's Dice."""

from __future__ import annotations

from pathlib import Path

import pytest

from madgan_core.cohort.evaluation.regions import (
    ScanRegions,
    froc,
    regions_markdown,
    sensitivity_at,
    summarise,
)


def _healthy(*evidence: float) -> ScanRegions:
    return ScanRegions("h", "healthy", 0, "T1c", list(evidence), [[] for _ in evidence])


def _lesioned(evidence, hits, n_lesions, dice=None) -> ScanRegions:
    return ScanRegions(
        "m", "mets", 1, "T1c", list(evidence), hits, n_lesions, [1.0] * n_lesions, dice
    )


HEALTHY = [_healthy(2.0), _healthy(0.5, 0.2), _healthy()]
LESIONED = [
    _lesioned([5.0, 1.0], [[0], []], 1, 0.6),
    _lesioned([3.0], [[0, 1]], 2, 0.4),  # one region over two lesions
    _lesioned([0.3], [[]], 1, 0.0),  # a finding beside the lesion
]


def test_froc_counts_lesions_and_false_positives_per_healthy_scan():
    curve = froc(HEALTHY, LESIONED)
    assert curve[0] == (float("inf"), 0.0, 0.0)
    by_threshold = {t: (fp, sens) for t, fp, sens in curve}
    assert by_threshold[5.0] == (0.0, 0.25)
    assert by_threshold[3.0] == (0.0, 0.75)  # both lesions under the one region count
    assert by_threshold[2.0] == (pytest.approx(1 / 3), 0.75)
    assert by_threshold[0.2] == (1.0, 0.75)  # the third lesion is never overlapped
    assert sensitivity_at(curve, 0.0) == 0.75
    assert sensitivity_at(curve, 5.0) == 0.75
    assert sensitivity_at([], 1.0) is None


def test_summary_takes_the_healthy_scans_of_the_same_sequence():
    other = ScanRegions("h1", "healthy", 0, "T1", [9.0, 9.0], [[], []])
    [summary] = summarise([*HEALTHY, *LESIONED, other])
    assert (summary.group, summary.sequence) == ("mets", "T1c")
    assert (summary.n_scans, summary.n_lesions, summary.n_healthy) == (3, 4, 3)
    assert summary.detected == {"0": 0.75, "1": 0.75, "5": 0.75}
    assert summary.median_top_dice == pytest.approx(0.4)
    low, high = summary.median_top_dice_ci  # resampled medians of 0.6, 0.4 and 0.0
    assert 0.0 <= low <= 0.4 <= high <= 0.6 and low < high
    table = "\n".join(regions_markdown([summary]))
    assert (
        f"| mets | T1c | 3 | 4 | 3 | 75 % | 75 % | 75 % | 0.40 [{low:.2f}, {high:.2f}] |" in table
    )


def test_a_lesion_is_detected_by_the_region_and_measured_by_the_outline():
    import numpy as np

    from madgan_core.cohort.evaluation.regions import match_regions
    from madgan_core.config import ScoreConfig
    from madgan_core.scans.manifest import ManifestRow

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    z = np.zeros((30, 30, 30), np.float32)
    z[5:15, 5:15, 5:15] = 4.5  # the smoothed halo ...
    z[5:9, 5:9, 5:9] = 8.0  # ... around a core in one corner
    mask = np.zeros(z.shape, bool)
    mask[5:9, 5:9, 5:9] = True  # the lesion under the core
    mask[12:14, 12:14, 12:14] = True  # a small lesion touched only by the halo
    row = ManifestRow(Path("m.nii.gz"), "m", "mets", 1, "T1c", "test")
    cored = match_regions(row, z, affine, mask, ScoreConfig(finding_extent=5.0))
    plain = match_regions(row, z, affine, mask, ScoreConfig(finding_extent=None))
    assert cored.lesions_hit == plain.lesions_hit == [[0, 1]]
    assert cored.top_dice == pytest.approx(1.0)
    assert plain.top_dice == pytest.approx(2 * 64 / (1000 + 64))


def test_the_outline_is_trimmed_by_the_residual_sign_only_when_the_config_says():
    import numpy as np

    from madgan_core.cohort.evaluation.regions import match_regions
    from madgan_core.config import ScoreConfig
    from madgan_core.scans.manifest import ManifestRow

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    z = np.zeros((20, 20, 20), np.float32)
    residual = np.zeros_like(z)
    z[5:9, 5:9, 5:13] = 6.0  # a lesion on slices 5-8 and its trail to slice 12
    residual[5:9, 5:9, 5:9] = 0.3
    residual[5:9, 5:9, 9:13] = -0.3
    mask = np.zeros(z.shape, bool)
    mask[5:9, 5:9, 5:9] = True
    row = ManifestRow(Path("m.nii.gz"), "m", "mets", 1, "T1c", "test")
    signed = match_regions(row, z, affine, mask, ScoreConfig(), residual)
    unsigned = match_regions(row, z, affine, mask, ScoreConfig(finding_sign=False), residual)
    assert signed.top_dice == pytest.approx(1.0)
    assert unsigned.top_dice == pytest.approx(2 * 64 / (128 + 64))
    assert signed.lesions_hit == unsigned.lesions_hit == [[0]]


def test_a_grown_region_detects_what_it_joins_when_its_outline_is_trimmed_by_sign():
    import numpy as np

    from madgan_core.cohort.evaluation.regions import match_regions
    from madgan_core.config import ScoreConfig
    from madgan_core.scans.manifest import ManifestRow

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    z = np.zeros((20, 20, 20), np.float32)
    z[3:7, 3:7, 3:7] = 8.0  # a strong lesion ...
    z[7:12, 5, 5] = 3.0  # ... joined at a lower z to
    z[12:14, 4:6, 4:6] = 4.5  # a weak one
    residual = np.where(z > 0, 0.2, 0.0).astype(np.float32)
    mask = np.zeros(z.shape, bool)
    mask[3:7, 3:7, 3:7] = True
    mask[12:14, 4:6, 4:6] = True
    row = ManifestRow(Path("m.nii.gz"), "m", "mets", 1, "T1c", "test")
    grown = match_regions(row, z, affine, mask, ScoreConfig(finding_extent=2.0), residual)
    assert grown.lesions_hit == [[0, 1]]  # one grown finding over both lesions
