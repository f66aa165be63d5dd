"""Every sentence a reader sees about a scored scan: percentiles, domain warnings, findings.

The review panel, the report page, the DICOM report and ``madgan score`` all word a
result with these functions, so a reading is said the same way wherever it is shown:

- a percentile names its controls and reads it in a band, e.g. ``98th percentile of
  120 healthy controls: highly unusual`` (the controls' description may hold its own
  parentheses, e.g. ``(T1, 1.0 mm)``, so the band follows a colon);
- for a scan outside the model's domain the band is left out and the domain warning
  (``outside the model's domain: <reasons>; ...``) is said beside the scores;
- the findings are listed one per line, strongest first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from madgan_core.model.reference import HIGHLY_UNUSUAL_PERCENTILE, UNUSUAL_PERCENTILE
from madgan_core.modes import headline_mode, score_modes

if TYPE_CHECKING:
    from madgan_core.scoring.result import ScanScore

NO_REFERENCE = "no healthy reference stored with this model"
OUT_OF_DOMAIN = "outside the model's domain"
REPORT_FINDINGS = 5  # findings listed one per line, strongest first


def ordinal(n: int) -> str:
    """E.g. ``"1st"``, ``"12th"``, ``"23rd"``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_percentile(
    p: float, n: int, controls: str | None = None, adjusted_for: str = ""
) -> str:
    """E.g. ``"98th percentile of 120 healthy controls"``; the extremes say so plainly.

    ``controls`` names them, e.g. ``"healthy controls (T1, 1.0 mm)"``: then
    ``"97th percentile among 40 healthy controls (T1, 1.0 mm)"``. A percentile against
    controls of the scan's age and sex says so: ``"89th percentile among healthy
    controls (T1, 1.0 mm), adjusted for age 74 and sex F (n = 120)"``.
    """
    if controls is None:
        controls = "healthy control" if n == 1 else "healthy controls"
        among = "of"
    else:
        among = "among"
    if adjusted_for:
        tail = f", adjusted for {adjusted_for} (n = {n})"
        if p >= 100.0:
            return f"above all {controls}{tail}"
        if p <= 0.0:
            return f"below all {controls}{tail}"
        return f"{ordinal(int(math.floor(p)))} percentile among {controls}{tail}"
    if p >= 100.0:
        return f"above all {n} {controls}"
    if p <= 0.0:
        return f"below all {n} {controls}"
    return f"{ordinal(int(math.floor(p)))} percentile {among} {n} {controls}"


def percentile_band(p: float) -> str:
    """Plain-language reading of a percentile against healthy controls."""
    if p >= HIGHLY_UNUSUAL_PERCENTILE:
        return "highly unusual"
    if p >= UNUSUAL_PERCENTILE:
        return "unusual"
    return "within the healthy range"


def domain_warning(result: ScanScore) -> str:
    """The warning for a scan outside the model's domain, else an empty text."""
    check = result.domain
    if check is None or check.in_domain:
        return ""
    return f"{OUT_OF_DOMAIN}: {'; '.join(check.reasons)}; the score is not comparable with its controls"


NOT_ADJUSTED = "not age-adjusted"  # a fallback note said once, on the headline's line


def percentile_reading(result: ScanScore, mode: str, brief: bool = False) -> str | None:
    """``mode``'s percentile among the controls and its band, e.g. ``98th percentile of
    120 healthy controls: highly unusual``; None without a percentile.

    For a scan outside the model's domain the band is left out ("highly unusual" would
    compare the incomparable): :func:`domain_warning` says why. ``brief`` shortens why a
    percentile was not adjusted for age and sex to :data:`NOT_ADJUSTED`.
    """
    pct = result.percentiles.get(mode)
    if pct is None or result.n_controls == 0:
        return None
    adjustment = result.adjustments.get(mode)
    if adjustment is not None and adjustment.adjusted:
        controls = result.controls or "healthy controls"
        where = describe_percentile(pct, adjustment.n, controls, adjustment.covariates)
    else:
        where = describe_percentile(pct, result.n_controls, result.controls or None)
        if adjustment is not None and adjustment.note:
            where = f"{where} ({NOT_ADJUSTED if brief else adjustment.note})"
    if result.domain is not None and not result.domain.in_domain:
        return where
    return f"{where}: {percentile_band(pct)}"


def score_lines(result: ScanScore, headline: str = "mean") -> list[str]:
    """One line per scoring mode, headline first, e.g. ``Mean ℓ2: 0.0123 — 98th percentile
    of 120 healthy controls: highly unusual``."""
    lines = []
    for mode in sorted(score_modes(), key=lambda m: m.name != headline):
        value = result.scores.get(mode.name)
        if value is None:
            continue
        brief = mode.name != headline  # the headline's line gives the full reason
        reading = percentile_reading(result, mode.name, brief) or NO_REFERENCE
        lines.append(f"{mode.label}: {value:.4g} — {reading}")
    return lines


def finding_lines(result: ScanScore, limit: int = REPORT_FINDINGS) -> list[str]:
    """``Findings: ...`` and up to ``limit`` findings, one line each, strongest first."""
    findings = result.findings
    if not findings:  # no z-map, or no focal region
        return [f"Findings: {result.findings_text()}"]
    noun = "region" if len(findings) == 1 else "regions"
    diffuse = "; brain-wide elevation" if result.brain_wide else ""
    lines = [f"Findings: {len(findings)} {noun}{diffuse}"]
    for finding in findings[:limit]:
        first, last = finding.slices
        lines.append(
            f"  {finding.rank}. {finding.summary()}, mean z {finding.mean_z:.1f}, "
            f"slices {first}-{last}"
        )
    if len(findings) > limit:
        lines.append(f"  ... and {len(findings) - limit} more")
    return lines


def report_lines(result: ScanScore, model_name: str, headline: str = "mean") -> list[str]:
    """The report's text: the model, any domain warning, the scores (``headline`` first)
    and the findings, one line each."""
    lines = [f"Model: {model_name}"]
    warning = domain_warning(result)
    if warning:
        lines.append(f"Warning: {warning}")
    return lines + score_lines(result, headline) + finding_lines(result)


def summary_line(result: ScanScore, mode: str) -> str:
    """``madgan score``'s line for a scan: the headline score, its percentile and band
    (or the domain warning), the other modes, and the findings on a second line."""
    mode = headline_mode(mode, result.scores)
    line = f"{result.name}: {mode} score {result.scores[mode]:.5f}"
    for said in (percentile_reading(result, mode), domain_warning(result)):
        if said:
            line += f", {said}"
    others = ", ".join(f"{m} {v:.4g}" for m, v in result.scores.items() if m != mode)
    line = f"{line} ({others})"
    if result.findings is not None:
        line += f"\n  findings: {result.findings_text()}"
    return line
