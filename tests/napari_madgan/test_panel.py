"""Score panel text, headline mode first (no viewer needed)."""

from __future__ import annotations

from madgan_core.outputs.wording import NO_REFERENCE, score_lines
from madgan_core.scoring.result import ScanScore
from madgan_testing.results import plain_result
from napari_madgan.review._panel import score_html


def result(percentiles=None, n=0, ztail=True) -> ScanScore:
    return plain_result(percentiles, n, ztail)


def test_headline_mode_comes_first_in_bold():
    r = result({"mean": 50.0, "ztail": 99.5}, n=40)
    lines = score_lines(r, "ztail")
    assert (
        lines[0].startswith("z-map tail")
        and "99th percentile of 40 healthy controls: highly unusual" in lines[0]
    )
    assert "<b>z-map tail" in score_html(r, headline="ztail")
    assert score_lines(r, "mean")[0].startswith(
        "Mean ℓ2 (all windows): 0.02 — 50th percentile of 40 healthy controls"
    )


def test_no_reference_and_missing_ztail_are_said_plainly():
    r = result(ztail=False)
    assert all(line.endswith(NO_REFERENCE) for line in score_lines(r))
    assert "z-map tail (top 1%): needs a model calibrated" in score_html(r, headline="ztail")
    assert "z-map mean (noise-adj.): needs a model calibrated" in score_html(r, headline="zmean")


def test_an_out_of_domain_scan_shows_the_warning_and_no_reading():
    from dataclasses import replace

    from madgan_core.scoring.domain import DomainCheck

    check = DomainCheck(False, ["5.0 mm slices; the model's controls had 1.0 mm"])
    r = replace(
        result({"mean": 99.9, "ztail": 99.5}, n=40),
        domain=check,
        controls="healthy controls (T1, 1.0 mm)",
    )
    html = score_html(r, headline="mean")
    assert "⚠ outside the model's domain: 5.0 mm slices" in html
    assert html.index("outside the model's domain") < html.index("Mean ℓ2")
    assert "unusual" not in html and "healthy range" not in html
    assert "99th percentile among 40 healthy controls (T1, 1.0 mm)" in score_lines(r, "mean")[0]
