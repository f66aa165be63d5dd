"""The review's report and the DICOM report are the one page of madgan_core.outputs.report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from madgan_core.outputs import report
from madgan_core.outputs.dicom.results import write_dicom_results
from madgan_core.outputs.wording import report_lines
from madgan_core.scans.files import load_scan
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import write_series
from napari_madgan.review._exports import ResultExports
from napari_madgan.review._report import export_dicom_results
from tests.madgan_core.dicom_cases import AXIAL
from tests.madgan_core.test_dicom_export import scored

SHOT = np.full((60, 80, 4), 200, np.uint8)  # a stand-in for the viewer's screenshot


@pytest.fixture(scope="module")
def dicom_scored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    write_series(synthetic_brain((36, 40, 32)), AXIAL, folder)
    scan = load_scan(folder)
    return scan, scored(scan)


@pytest.fixture
def pages(monkeypatch):
    """Each report page's text, as outputs.report words it."""
    written = []

    def spy(*args, **kwargs):
        lines = report_lines(*args, **kwargs)
        written.append(lines)
        return lines

    monkeypatch.setattr(report, "report_lines", spy)
    return written


def stub_widget(scan, result):
    shown = SimpleNamespace(
        result=result, model_name="model.pt", request=SimpleNamespace(scan=scan, sequence=None)
    )
    return SimpleNamespace(
        controller=SimpleNamespace(shown=shown),
        viewer=SimpleNamespace(screenshot=lambda **_: SHOT),
        current_slice=lambda: 14,
        headline=lambda: "mean",
    )


def test_the_review_and_the_dicom_reports_are_one_page_with_the_findings(
    dicom_scored, pages, tmp_path
):
    scan, result = dicom_scored
    exports = ResultExports(stub_widget(scan, result))
    assert exports.report(tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    review = export_dicom_results(tmp_path / "review", SHOT, result, scan, 14, "model.pt")
    cli = write_dicom_results(result, scan, tmp_path / "cli", "model.pt")
    assert len(pages) == 3  # the review's PDF, its DICOM export and the command line's
    review_page, review_dicom, cli_page = pages
    assert review_page == review_dicom
    # the command line's page shows the overlay instead of a screenshot, and says so
    assert cli_page[1].startswith("Overlay: z-map vs healthy")
    assert cli_page[:1] + cli_page[2:] == review_page
    findings = result.findings
    at = cli_page.index(f"Findings: {len(findings)} regions")
    assert cli_page[at + 1].startswith(f"  1. {findings[0].summary()}, mean z ")
    for written in (review, cli):
        pdfs = [p for p in written.files if p.suffix == ".pdf"]
        assert pdfs and pdfs[0].read_bytes().startswith(b"%PDF")
        assert "report" in written.series
