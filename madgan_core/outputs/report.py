"""The one-page report of a scored scan: a picture, its reading and the per-slice ℓ2 curve.

The picture is one the caller gives (the review's screenshot of the viewer, titled by the
slice it shows), or else the scan with its overlay on the most anomalous slices
(:func:`~madgan_core.outputs.slices.report_slices`), as ``madgan score --dicom-out``
writes it beside the DICOM series and encapsulated in the study. The text is
:func:`~madgan_core.outputs.wording.report_lines`: the model, any domain warning, the
scores and the findings. The page is titled by the scan's opaque name and holds no
patient identifiers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.config import HEATMAP_RANGE, ZMAP_RANGE
from madgan_core.outputs.slices import REPORT_SLICES, report_slices
from madgan_core.outputs.wording import report_lines
from madgan_core.scans.atomic import atomic_write_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore

PAGE_INCHES = (8.27, 11.0)  # A4 portrait
REPORT_DPI = 150


def report_figure(
    result: ScanScore,
    model_name: str,
    *,
    headline: str | None = None,
    picture: np.ndarray | None = None,
    current_slice: int | None = None,
    scan: Scan | None = None,
    sequence: str | None = None,
) -> Figure:
    """The report page as a matplotlib figure.

    Args:
        result: the scored scan.
        model_name: the model file's name, said on the page.
        headline: the score mode the text leads with (default: ``result.headline``).
        picture: an RGB(A) image for the top of the page, e.g. a viewer's screenshot.
        current_slice: the axial slice the picture shows: in its title and marked on the curve.
        scan: the scan, for the overlay on its most anomalous slices when no picture is given.
        sequence: the scan's sequence, for the ℓ2 heatmap's display range.
    """
    from matplotlib.figure import Figure

    if picture is None and scan is None:
        raise ValueError("a report needs a picture or the scan to draw its overlay from")
    lines = report_lines(result, model_name, headline or result.headline)
    fig = Figure(figsize=PAGE_INCHES, layout="constrained")
    if picture is not None:
        grid = fig.add_gridspec(3, 1, height_ratios=[5.6, 2.6, 1.9])
        ax_img = fig.add_subplot(grid[0])
        ax_img.imshow(picture)
        ax_img.set_axis_off()
        where = "" if current_slice is None else f" — axial slice z = {current_slice}"
        ax_img.set_title(f"{result.name}{where}", fontsize=11)
        text_cell, plot_cell = grid[1], grid[2]
    else:
        fig.suptitle(f"MADGAN report: {result.name}", fontsize=13)
        grid = fig.add_gridspec(3, REPORT_SLICES, height_ratios=[3.2, 2.6, 1.9])
        lines.insert(1, _draw_overlay(fig, grid, result, scan, sequence))
        text_cell, plot_cell = grid[1, :], grid[2, :]
    ax_text = fig.add_subplot(text_cell)
    ax_text.set_axis_off()
    ax_text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=8, wrap=True)
    ax_plot = fig.add_subplot(plot_cell)
    ax_plot.plot(result.slice_indices, result.slice_losses, ".-", lw=1, ms=3)
    if current_slice is not None:
        ax_plot.axvline(current_slice, color="crimson", lw=1)
    ax_plot.set_xlabel("axial slice (z)")
    ax_plot.set_ylabel("ℓ2 per slice")
    return fig


def _draw_overlay(fig, grid, result: ScanScore, scan: Scan, sequence: str | None) -> str:
    """The scan with its z-map (or ℓ2 heatmap) on the report's slices, one per column of
    the grid's first row; returns the line that says what the overlay shows."""
    from madgan_core.outputs.dicom.export import overlay_rgb

    use_z = result.zmap is not None
    volume = result.zmap if use_z else result.heatmap
    limits = ZMAP_RANGE if use_z else HEATMAP_RANGE.get(sequence or "T1", HEATMAP_RANGE["T1"])
    rgb = overlay_rgb(scan.data, volume, limits, result.foreground)
    for column, z in enumerate(report_slices(result)):
        ax = fig.add_subplot(grid[0, column])
        # x to the right (patient's left on the left), anterior at the top.
        ax.imshow(rgb[:, ::-1, z].transpose(1, 0, 2), aspect=scan.zooms[1] / scan.zooms[0])
        ax.set_title(f"axial z = {z}", fontsize=9)
        ax.set_axis_off()
    shown = "z-map vs healthy" if use_z else "ℓ2 heatmap"
    return f"Overlay: {shown} (jet, {limits[0]:g} to {limits[1]:g}); patient's left on the left"


def _save(fig: Figure, target, fmt: str, title: str, dpi: int) -> None:
    fig.savefig(target, format=fmt, dpi=dpi, metadata={"Title": title})


def report_bytes(
    result: ScanScore, model_name: str, fmt: str = "pdf", dpi: int = REPORT_DPI, **page
) -> bytes:
    """The report page as PDF (or PNG) bytes; ``page``: :func:`report_figure`'s options."""
    buffer = io.BytesIO()
    fig = report_figure(result, model_name, **page)
    _save(fig, buffer, fmt, f"MADGAN report: {result.name}", dpi)
    return buffer.getvalue()


def write_report(
    path: str | Path, result: ScanScore, model_name: str, dpi: int = REPORT_DPI, **page
) -> Path:
    """Write the report page to ``path`` (PDF or PNG by its suffix), atomically;
    ``page``: :func:`report_figure`'s options."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fig = report_figure(result, model_name, **page)
    title = f"MADGAN report: {result.name}"
    return atomic_write_with(path, lambda tmp: _save(fig, tmp, fmt, title, dpi), path.suffix)
