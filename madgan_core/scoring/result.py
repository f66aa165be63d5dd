"""The result of scoring one scan: :class:`ScanScore`, with its flat row.

What a reader is told about it is worded in :mod:`madgan_core.outputs.wording`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from madgan_core.model.normative import Adjustment
from madgan_core.model.reference import UNUSUAL_PERCENTILE
from madgan_core.scans.covariates import Covariates
from madgan_core.scoring.domain import DomainCheck, domain_columns
from madgan_core.scoring.findings import Finding, describe_findings


class ScanSource(Protocol):
    """What a score needs of its scan when the slab is given: a name and a path."""

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path | None: ...


@dataclass
class ScanScore:
    """Everything scoring one scan produces.

    Attributes:
        name: scan name (file stem).
        path: source file, if any.
        scores: scan score per mode (see :func:`madgan_core.modes.score_modes`).
        window_losses: mean ℓ2 of each window, ``(w,)``.
        copy_losses: the copy-last-slice predictor's ℓ2 on the same windows, ``(w,)``.
        slice_losses: mean ℓ2 per slab slice over the windows that predict it; NaN if none.
        slice_coverage: how many windows predicted each slab slice.
        slice_indices: RAS+ axial voxel index of each slab slice.
        heatmap: RAS+ volume of per-voxel ℓ2 (mean over windows); NaN where not predicted.
        reconstruction: RAS+ volume of the prediction in the scan's intensity units; NaN where not predicted.
        zmap: RAS+ volume of healthy-normalised z-scores of ℓ2 (needs a reference with
            z-statistics); NaN outside the foreground, where no z-map score looks.
        residual: RAS+ volume of the scan minus its prediction in the scan's units,
            smoothed over 2 mm, around the z-map's regions (0 elsewhere); its sign
            outlines the findings. With maps, a z-map and ``score.finding_sign``; else None.
        foreground: RAS+ mask of the voxels the model sees as brain (or head), with maps.
        brain_mask: RAS+ brain mask the brain step made or was given, with maps; None
            when the scan was used as given (already skull-stripped, or no brain step).
        slice_zvolume: per slab slice, the percentage of its brain with z above 4 (with a z-map).
        percentiles: percentile of each score among the model's healthy controls.
        n_controls: number of healthy controls behind the percentiles (0: no reference).
        headline: the mode reports lead with (``score.mode``, ``auto`` resolved).
        findings: connected regions of the z-map above ``score.finding_threshold``,
            strongest first (:mod:`madgan_core.scoring.findings`); None without a z-map.
        finding_labels: RAS+ volume (uint8) in which value ``r`` marks the outline of the
            finding ranked ``r`` (0: none); with maps and a z-map, else None.
        driver: the z-map score that sets the ``anomaly`` headline (``zmean``: diffuse
            change), or None.
        domain: the domain check (:mod:`madgan_core.scoring.domain`); None without profiles.
        controls: the controls in words (``"healthy controls (T1, 1.0 mm)"``), or empty.
        spread: the share of the brain's regions the z-map departs in
            (:func:`madgan_core.scoring.spread.departure_spread`); None without a z-map.
        covariates: the person's age, sex and site, as given; None when none was.
        adjustments: per mode, how its percentile was adjusted for age and sex, or why
            it was not (:mod:`madgan_core.model.normative`); empty: plain percentiles.
    """

    name: str
    path: Path | None
    scores: dict[str, float]
    window_losses: np.ndarray
    copy_losses: np.ndarray
    slice_losses: np.ndarray
    slice_coverage: np.ndarray
    slice_indices: np.ndarray
    heatmap: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    zmap: np.ndarray | None = None
    residual: np.ndarray | None = None
    slice_zvolume: np.ndarray | None = None
    foreground: np.ndarray | None = None
    brain_mask: np.ndarray | None = None
    percentiles: dict[str, float] = field(default_factory=dict)
    n_controls: int = 0
    headline: str = "mean"
    findings: list[Finding] | None = None
    finding_labels: np.ndarray | None = None
    driver: str | None = None
    domain: DomainCheck | None = None
    controls: str = ""
    spread: float | None = None
    covariates: Covariates | None = None
    adjustments: dict[str, Adjustment] = field(default_factory=dict)

    @property
    def brain_wide(self) -> bool:
        """Diffuse change carries the scan: the ``zmean`` part drives an unusual headline."""
        pct = self.percentiles.get(self.headline)
        return self.driver == "zmean" and pct is not None and pct >= UNUSUAL_PERCENTILE

    def findings_text(self) -> str:
        """E.g. ``2 regions: 14.2 mL at (31, -12, 18) mm, peak z 9.1; ...``."""
        if self.findings is None:
            return "no z-map (calibrate the model for this sequence)"
        return describe_findings(self.findings, self.brain_wide)

    @property
    def score_mean(self) -> float:
        return self.scores["mean"]

    @property
    def score_top(self) -> float:
        return self.scores["top10"]

    @property
    def percentile_mean(self) -> float | None:
        return self.percentiles.get("mean")

    @property
    def percentile_top(self) -> float | None:
        return self.percentiles.get("top10")

    def to_row(self) -> dict[str, object]:
        """A flat, JSON-friendly summary (no volumes)."""
        row: dict[str, object] = {
            "name": self.name,
            "path": "" if self.path is None else str(self.path),
        }
        for mode, value in self.scores.items():
            row[f"score_{mode}"] = float(value)
            pct = self.percentiles.get(mode)
            row[f"percentile_{mode}"] = None if pct is None else float(pct)
        row["n_controls"] = self.n_controls
        row["headline"] = self.headline
        people = self.covariates or Covariates()
        row.update(age=people.age, sex=people.sex, site=people.site)
        row.update(self.adjustments.get(self.headline, Adjustment()).to_dict())
        row.update(domain_columns(self.domain))
        row["departure_spread"] = None if self.spread is None else float(self.spread)
        if self.findings is not None:
            row["findings"] = self.findings_text()
            row["brain_wide"] = self.brain_wide
            row["regions"] = [f.to_dict() for f in self.findings]
        row["slice_indices"] = [int(z) for z in self.slice_indices]
        row["slice_losses"] = [None if np.isnan(v) else float(v) for v in self.slice_losses]
        return row
