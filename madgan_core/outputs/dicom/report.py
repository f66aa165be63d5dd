"""One scan's report page without a viewer: overlay slices, scores and the per-slice ℓ2 curve.

The command line writes it with the DICOM results (``madgan score --dicom-out``),
as PDF beside the series and encapsulated in the study. It is titled by the
scan's opaque name and holds no patient identifiers.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.config import HEATMAP_RANGE, ZMAP_RANGE
from madgan_core.outputs.dicom.export import overlay_rgb

if TYPE_CHECKING:
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore

SLICES_SHOWN = 3


def report_slices(result: ScanScore, k: int = SLICES_SHOWN) -> list[int]:
    """Axial (RAS+ z) indices of up to ``k`` of the most anomalous scored slices, in order.

    Ranked by the share of brain with z above 4 when the result has a z-map (the
    overlay then shows the z-map), else by ℓ2. Slices closer than a tenth of the
    scored range (at least 3) to one already chosen are passed over, so the page
    shows different places; when that leaves fewer than ``k``, the choice starts from
    the next-worst slice instead.
    """
    ranking = result.slice_zvolume if result.zmap is not None else None
    losses = np.asarray(result.slice_losses if ranking is None else ranking, dtype=float)
    scored = np.flatnonzero(np.isfinite(losses))
    if scored.size == 0:
        return [int(result.slice_indices[len(result.slice_indices) // 2])]
    gap = max(3, scored.size // 10)
    ranked = [int(i) for i in scored[np.argsort(losses[scored])[::-1]]]
    chosen: list[int] = []
    # Greedy from the worst slice; when the spacing leaves fewer than k, from the next.
    for start in range(len(ranked)):
        picked: list[int] = []
        for i in ranked[start:] + ranked[:start]:
            if all(abs(i - j) >= gap for j in picked):
                picked.append(i)
            if len(picked) == k:
                break
        if len(picked) > len(chosen):
            chosen = picked
        if len(chosen) == k:
            break
    return sorted(int(result.slice_indices[i]) for i in chosen)


def scan_report(
    result: ScanScore,
    scan: Scan,
    model_name: str,
    sequence: str | None = None,
    fmt: str = "pdf",
) -> bytes:
    """The report page as PDF (or PNG) bytes."""
    from matplotlib.figure import Figure

    use_z = result.zmap is not None
    volume = result.zmap if use_z else result.heatmap
    limits = ZMAP_RANGE if use_z else HEATMAP_RANGE.get(sequence or "T1", HEATMAP_RANGE["T1"])
    rgb = overlay_rgb(scan.data, volume, limits, result.foreground)
    fig = Figure(figsize=(8.27, 11.0), layout="constrained")
    fig.suptitle(f"MADGAN report: {result.name}", fontsize=13)
    grid = fig.add_gridspec(3, SLICES_SHOWN, height_ratios=[3, 1.3, 2.6])
    shown = "z-map vs healthy" if use_z else "ℓ2 heatmap"
    for column, z in enumerate(report_slices(result)):
        ax = fig.add_subplot(grid[0, column])
        # x to the right (patient's left on the left), anterior at the top.
        ax.imshow(rgb[:, ::-1, z].transpose(1, 0, 2), aspect=scan.zooms[1] / scan.zooms[0])
        ax.set_title(f"axial z = {z}", fontsize=9)
        ax.set_axis_off()
    ax_text = fig.add_subplot(grid[1, :])
    ax_text.set_axis_off()
    lines = [
        f"Model: {model_name}",
        f"Overlay: {shown} (jet, {limits[0]:g} to {limits[1]:g}); patient's left on the left",
    ]
    for mode, value in result.scores.items():
        reading = result.percentile_text(mode) or "no healthy reference"
        lines.append(f"{mode}: {value:.4g} ({reading})")
    ax_text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=9)
    ax_plot = fig.add_subplot(grid[2, :])
    ax_plot.plot(result.slice_indices, result.slice_losses, ".-", lw=1, ms=3)
    ax_plot.set_xlabel("axial slice (z)")
    ax_plot.set_ylabel("ℓ2 per slice")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, metadata={"Title": f"MADGAN report: {result.name}"})
    return buffer.getvalue()
