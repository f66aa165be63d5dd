"""What a reader receives: the wording of a result, the slice ranking and the report page."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from madgan_core.outputs.report import report_bytes, report_figure, write_report
from madgan_core.outputs.slices import report_slices, top_slices
from madgan_core.outputs.wording import (
    NO_REFERENCE,
    REPORT_FINDINGS,
    describe_percentile,
    domain_warning,
    finding_lines,
    percentile_band,
    percentile_reading,
    report_lines,
    score_lines,
    summary_line,
)
from madgan_core.scans.scan import Scan
from madgan_core.scoring.domain import DomainCheck
from madgan_core.scoring.result import ScanScore
from madgan_testing.brains import synthetic_brain
from madgan_testing.results import plain_result
from tests.madgan_core.test_dicom_export import scored

THICK = DomainCheck(False, ["5.0 mm slices; the model's controls had 1.0 mm"])


def plain(percentiles=None, n=0, **changes) -> ScanScore:
    return plain_result(percentiles, n, **changes)


@pytest.fixture(scope="module")
def lesioned() -> tuple[Scan, ScanScore]:
    """A scored phantom with a made-up z-map and its findings."""
    scan = Scan.from_array(synthetic_brain((36, 40, 32)))
    return scan, scored(scan)


def test_percentiles_are_said_plainly():
    assert describe_percentile(98.2, 120) == "98th percentile of 120 healthy controls"
    assert describe_percentile(1.9, 1) == "1st percentile of 1 healthy control"
    assert describe_percentile(99.9, 40) == "99th percentile of 40 healthy controls"
    assert describe_percentile(100.0, 40) == "above all 40 healthy controls"
    assert describe_percentile(0.0, 40) == "below all 40 healthy controls"
    assert describe_percentile(22.5, 40, "healthy controls (T1, 1.0 mm)") == (
        "22nd percentile among 40 healthy controls (T1, 1.0 mm)"
    )
    assert percentile_band(50) == "within the healthy range"
    assert percentile_band(95) == "unusual" and percentile_band(100) == "highly unusual"


def test_a_reading_is_the_percentile_and_its_band_unless_out_of_domain():
    r = plain({"mean": 99.5, "top10": 40.0}, n=40)
    assert percentile_reading(r, "mean") == "99th percentile of 40 healthy controls: highly unusual"
    assert percentile_reading(r, "ratio") is None and domain_warning(r) == ""
    assert percentile_reading(plain({"mean": 99.5}), "mean") is None  # no controls
    far = dataclasses.replace(r, domain=THICK, controls="healthy controls (T1, 1.0 mm)")
    assert (
        percentile_reading(far, "mean") == "99th percentile among 40 healthy controls (T1, 1.0 mm)"
    )
    assert domain_warning(far) == (
        "outside the model's domain: 5.0 mm slices; the model's controls had 1.0 mm; "
        "the score is not comparable with its controls"
    )
    lines = score_lines(far, "mean")
    assert "unusual" not in "".join(lines) and "healthy range" not in "".join(lines)
    assert lines[2] == f"ℓ2 / copy-slice ℓ2: 1.1 — {NO_REFERENCE}"


def test_the_command_line_says_the_reading_and_the_warning():
    r = plain({"mean": 99.5}, n=40)
    assert summary_line(r, "mean") == (
        "scan: mean score 0.02000, 99th percentile of 40 healthy controls: highly unusual "
        "(top10 0.03, ratio 1.1, ztail 4.2)"
    )
    far = summary_line(dataclasses.replace(r, domain=THICK), "mean")
    assert ", 99th percentile of 40 healthy controls, outside the model's domain: 5.0 mm" in far
    assert "unusual" not in far
    alone = summary_line(dataclasses.replace(r, n_controls=0, domain=THICK), "mean")
    assert alone.startswith("scan: mean score 0.02000, outside the model's domain: 5.0 mm")


def test_findings_are_listed_one_per_line(lesioned):
    _, result = lesioned
    findings = result.findings
    lines = finding_lines(result, limit=1)
    assert lines[0] == f"Findings: {len(findings)} regions"
    first = findings[0]
    assert lines[1] == (
        f"  1. {first.summary()}, mean z {first.mean_z:.1f}, "
        f"slices {first.slices[0]}-{first.slices[1]}"
    )
    assert lines[2] == f"  ... and {len(findings) - 1} more"
    assert finding_lines(dataclasses.replace(result, findings=None)) == [
        "Findings: no z-map (calibrate the model for this sequence)"
    ]
    text = report_lines(result, "model.pt", "mean")
    assert text[0] == "Model: model.pt" and text[1].startswith("Mean ℓ2 (all windows): ")
    assert len([line for line in text if line.startswith("  ")]) == min(
        len(findings), REPORT_FINDINGS
    ) + (len(findings) > REPORT_FINDINGS)


def test_top_slices_rank_by_l2_or_by_the_zmap():
    r = plain()
    r.slice_indices = np.array([10, 11, 12, 13])
    r.slice_losses = np.array([np.nan, 0.3, 0.1, 0.2])
    r.slice_zvolume = np.array([np.nan, 0.0, 7.5, 2.0])
    assert [z for z, _ in top_slices(r, k=2)] == [11, 13]
    assert top_slices(r, k=1)[0][1] == "ℓ2 = 0.3"
    ranked = top_slices(r, k=3, by_zmap=True)
    assert [z for z, _ in ranked] == [12, 13, 11] and ranked[0][1] == "z>4: 7.5 %"
    r.slice_zvolume = None  # no z-map: ℓ2 order
    assert [z for z, _ in top_slices(r, by_zmap=True)] == [11, 13, 12]


def test_the_report_shows_distinct_anomalous_slices(lesioned):
    _, result = lesioned
    losses = np.asarray(result.slice_losses, dtype=float)
    shown = report_slices(dataclasses.replace(result, zmap=None))
    assert len(shown) == 3 and np.all(np.diff(shown) >= 3)
    best = int(result.slice_indices[np.nanargmax(losses)])
    assert best in shown  # the worst slice by ℓ2 is on the page
    zvolume = np.zeros(len(result.slice_indices))
    zvolume[5] = 50.0
    by_z = report_slices(dataclasses.replace(result, slice_zvolume=zvolume))
    assert int(result.slice_indices[5]) in by_z  # with a z-map: ranked by its volume above 4
    unscored = dataclasses.replace(result, zmap=None, slice_losses=np.full(len(losses), np.nan))
    assert report_slices(unscored) == [int(result.slice_indices[len(losses) // 2])]


def test_the_report_page_with_the_overlay_or_a_picture(lesioned, tmp_path):
    scan, result = lesioned
    fig = report_figure(result, "model.pt", scan=scan)
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "Model: model.pt\nOverlay: z-map vs healthy (jet, " in text
    assert f"Findings: {len(result.findings)} regions" in text
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        f"axial z = {z}" for z in report_slices(result)
    ]
    assert report_bytes(result, "model.pt", scan=scan).startswith(b"%PDF")
    picture = np.zeros((30, 40, 3), np.uint8)
    fig = report_figure(result, "model.pt", picture=picture, current_slice=12, headline="mean")
    assert fig.axes[0].get_title() == f"{result.name} — axial slice z = 12"
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "Overlay:" not in text and "Findings: " in text
    png = write_report(tmp_path / "page.png", result, "model.pt", picture=picture)
    assert png.read_bytes().startswith(b"\x89PNG") and list(tmp_path.iterdir()) == [png]
    with pytest.raises(ValueError, match="a picture or the scan"):
        report_figure(result, "model.pt")
