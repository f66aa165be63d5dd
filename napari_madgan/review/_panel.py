"""Score panel text: the scores and their reading (:mod:`madgan_core.outputs.wording`) as HTML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from madgan_core.modes import score_mode
from madgan_core.outputs.wording import domain_warning, score_lines

if TYPE_CHECKING:
    from madgan_core.scoring.result import ScanScore


def score_html(result: ScanScore, title: str | None = None, headline: str = "mean") -> str:
    lines = score_lines(result, headline)
    if headline in result.scores and lines:
        lines[0] = f"<b>{lines[0]}</b>"
    elif score_mode(headline).needs_calibration:
        label = score_mode(headline).label
        lines.insert(0, f"<i>{label}: needs a model calibrated for this sequence</i>")
    rows = "".join(f"<li>{line}</li>" for line in lines)
    warning = domain_warning(result)
    banner = f"<p style='color:#e05050'><b>⚠ {warning}</b></p>" if warning else ""
    return f"<b>{title or result.name}</b>{banner}<ul style='margin-left:-20px'>{rows}</ul>"
