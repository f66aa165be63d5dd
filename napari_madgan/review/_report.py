"""Exports: the heatmap as NIfTI in the scan's native space, a PNG/PDF report, and for a
scan read from DICOM the results as new series of its study."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_madgan.review._panel import domain_warning, score_lines

REPORT_FINDINGS = 5  # findings listed one per line, strongest first

if TYPE_CHECKING:
    from madgan_core.outputs.dicom.export import DicomExport
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore


def export_heatmap(result: ScanScore, scan: Scan, path: str | Path) -> Path:
    """Write the ℓ2 heatmap as NIfTI on the scan's native grid (NaN where not predicted)."""
    from madgan_core.errors import MadganError
    from madgan_core.scans.files import save_like

    if result.heatmap is None:
        raise MadganError("this result has no heatmap (scored without maps)")
    return save_like(np.asarray(result.heatmap, dtype=np.float32), scan, path)


def report_lines(result: ScanScore, model_name: str, headline: str = "mean") -> list[str]:
    """The report's text: the model, any domain warning, the scores (``headline`` first)
    and the findings, one line each."""
    lines = [f"Model: {model_name}"]
    warning = domain_warning(result)
    if warning:
        lines.append(f"Warning: {warning}")
    lines += score_lines(result, headline)
    findings = result.findings
    if not findings:  # no z-map, or no focal region
        lines.append(f"Findings: {result.findings_text()}")
        return lines
    noun = "region" if len(findings) == 1 else "regions"
    diffuse = "; brain-wide elevation" if result.brain_wide else ""
    lines.append(f"Findings: {len(findings)} {noun}{diffuse}")
    for finding in findings[:REPORT_FINDINGS]:
        first, last = finding.slices
        lines.append(
            f"  {finding.rank}. {finding.summary()}, mean z {finding.mean_z:.1f}, "
            f"slices {first}-{last}"
        )
    if len(findings) > REPORT_FINDINGS:
        lines.append(f"  ... and {len(findings) - REPORT_FINDINGS} more")
    return lines


def write_report(
    path: str | Path,
    screenshot: np.ndarray,
    result: ScanScore,
    current_slice: int,
    model_name: str,
    headline: str = "mean",
) -> Path:
    """Compose the viewer screenshot, :func:`report_lines` and the per-slice plot into one page."""
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(8.27, 11.0), layout="constrained")
    grid = fig.add_gridspec(3, 1, height_ratios=[5.6, 2.6, 1.9])
    ax_img = fig.add_subplot(grid[0])
    ax_img.imshow(screenshot)
    ax_img.set_axis_off()
    ax_img.set_title(f"{result.name} — axial slice z = {current_slice}", fontsize=11)
    ax_txt = fig.add_subplot(grid[1])
    ax_txt.set_axis_off()
    text = "\n".join(report_lines(result, model_name, headline))
    ax_txt.text(0.0, 1.0, text, va="top", ha="left", fontsize=8, wrap=True)
    ax_plot = fig.add_subplot(grid[2])
    ax_plot.plot(result.slice_indices, result.slice_losses, ".-", lw=1, ms=3)
    ax_plot.axvline(current_slice, color="crimson", lw=1)
    ax_plot.set_xlabel("axial slice (z)")
    ax_plot.set_ylabel("ℓ2 per slice")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


def export_dicom_results(
    folder: str | Path,
    screenshot: np.ndarray,
    result: ScanScore,
    scan: Scan,
    current_slice: int,
    model_name: str,
    sequence: str | None = None,
    headline: str = "mean",
) -> DicomExport:
    """The maps, overlay and this report (PDF) as new series of the scan's DICOM study."""
    import tempfile

    from madgan_core.outputs.dicom.export import export_dicom

    with tempfile.TemporaryDirectory(prefix="madgan-report-") as tmp:
        report = write_report(
            Path(tmp) / "report.pdf", screenshot, result, current_slice, model_name, headline
        )
        pdf = report.read_bytes()
    return export_dicom(result, scan, folder, sequence=sequence, report_pdf=pdf)
