"""Score panel text: scores, percentiles against healthy controls and their plain reading."""

from __future__ import annotations

from typing import TYPE_CHECKING

from madgan_core.modes import SCORE_MODES, score_mode

if TYPE_CHECKING:
    from madgan_core.scoring.result import ScanScore

NO_REFERENCE = "no healthy reference stored with this model"


def score_lines(result: ScanScore, headline: str = "mean") -> list[str]:
    """One line per scoring mode, headline first, e.g. ``Mean ℓ2: 0.0123 — 98th percentile
    of 120 healthy controls (highly unusual)``."""
    from madgan_core.model.reference import describe_percentile, percentile_band

    out_of_domain = result.domain is not None and not result.domain.in_domain
    lines = []
    for mode in sorted(SCORE_MODES, key=lambda m: m.name != headline):
        value = result.scores.get(mode.name)
        if value is None:
            continue
        pct = result.percentiles.get(mode.name)
        if pct is None or result.n_controls == 0:
            reading = NO_REFERENCE
        elif out_of_domain:  # no "highly unusual" for a scan unlike the controls
            reading = describe_percentile(pct, result.n_controls, result.controls or None)
        else:
            where = describe_percentile(pct, result.n_controls, result.controls or None)
            reading = f"{where} ({percentile_band(pct)})"
        lines.append(f"{mode.label}: {value:.4g} — {reading}")
    return lines


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


def domain_warning(result: ScanScore) -> str:
    """The domain warning for a scan outside the model's domain, else an empty text."""
    if result.domain is None or result.domain.in_domain:
        return ""
    return result.domain.warning


def top_slices(result: ScanScore, k: int = 10, by_zmap: bool = False) -> list[tuple[int, str]]:
    """The ``k`` most anomalous scored slices, highest first, as ``(axial index, label)``.

    Ranked by mean ℓ2, or with ``by_zmap`` (when the result has a z-map) by the
    percentage of the slice's brain with z above 4.
    """
    import numpy as np

    if by_zmap and result.slice_zvolume is not None:
        values, label = np.asarray(result.slice_zvolume, dtype=float), "z>4: {:.1f} %"
    else:
        values, label = np.asarray(result.slice_losses, dtype=float), "ℓ2 = {:.4g}"
    valid = np.flatnonzero(np.isfinite(values))
    order = valid[np.argsort(values[valid], kind="stable")[::-1]][:k]
    return [(int(result.slice_indices[i]), label.format(values[i])) for i in order]
