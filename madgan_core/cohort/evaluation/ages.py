"""The age confound: each comparison with and without the normative reference.

An ageing healthy brain departs from a young one in the way an atrophying one does, so
when the diseased scans are older than the controls, a plain score credits age as
disease. With ages in the manifest and in the model's controls, each scan's score is
also read as its residual from the controls' model of that score on age and sex
(:meth:`madgan_core.model.reference.HealthyReference.normative_fit`): its AUCs are
reported beside the plain ones, with the hard case of old healthy scans against young
diseased ones, where age works against the plain score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.cohort.evaluation.stats import (
    AucResult,
    Comparison,
    bootstrap_auc,
    comparisons_for,
    split_scores,
)
from madgan_core.scans.covariates import Covariates

if TYPE_CHECKING:
    from madgan_core.model.reference import HealthyReference
    from madgan_core.scans.manifest import ManifestRow

ADJUSTED = " (age/sex adjusted)"  # suffix of an adjusted score's column
OLD_HEALTHY_AGE = 75.0  # the hard case: healthy scans of at least this age ...
YOUNG_DISEASE_AGE = 70.0  # ... against diseased scans under this age


def with_adjusted_scores(
    records: Sequence[dict[str, object]],
    rows: Sequence[ManifestRow],
    reference: HealthyReference,
    columns: Sequence[str],
) -> list[dict[str, object]]:
    """The records with ``age`` and ``sex`` from the manifest and, for each ``madgan:``
    column, ``<column> (age/sex adjusted)``: the score minus what the controls' model
    predicts for the scan's age and sex (NaN where it cannot be adjusted)."""
    people = {str(r.path): Covariates.of(r.age, r.sex) for r in rows}
    out = []
    for record in records:
        person = people.get(str(record["path"]), Covariates())
        added: dict[str, object] = {"age": person.age, "sex": person.sex}
        for column in columns:
            method, _, mode = column.partition(":")
            if method != "madgan":
                continue
            fit, plan = reference.normative_fit(mode, str(record["sequence"]), person)
            value = float(record[column])
            if fit is not None:
                added[column + ADJUSTED] = value - fit.predict(person)
            else:  # as the reference reads it: plain where the fit failed its check
                added[column + ADJUSTED] = value if plan.failed_check else math.nan
        out.append({**record, **added})
    return out


@dataclass(frozen=True)
class ConfoundRow:
    """One comparison's AUCs, plain and adjusted, and the median ages of its two sides."""

    label: str
    plain: AucResult
    adjusted: AucResult
    median_age_healthy: float
    median_age_disease: float


def age_confound_rows(
    records: Sequence[dict[str, object]], column: str, n_boot: int = 1000
) -> list[ConfoundRow]:
    """Per comparison, on the scans with an age the adjustment covers: the plain and the
    adjusted AUC; after each group's row, the hard case of its old healthy scans against
    its young diseased ones."""
    adjusted = column + ADJUSTED
    covered = [r for r in records if r.get("age") is not None and math.isfinite(float(r[adjusted]))]

    def row(label: str, scans: Sequence[dict[str, object]], comparison: Comparison):
        ages = split_scores(scans, comparison, "age")
        if not (len(ages[0]) and len(ages[1])):
            return None
        return ConfoundRow(
            label,
            bootstrap_auc(*split_scores(scans, comparison, column), n_boot=n_boot),
            bootstrap_auc(*split_scores(scans, comparison, adjusted), n_boot=n_boot),
            float(np.median(ages[0])),
            float(np.median(ages[1])),
        )

    found = []
    for comparison in comparisons_for(covered):
        found.append(row(comparison.label, covered, comparison))
        if comparison.stage is not None or comparison.group is None:
            continue
        hard = [
            r
            for r in covered
            if (r["group"] == "healthy" and float(r["age"]) >= OLD_HEALTHY_AGE)
            or (r["group"] != "healthy" and float(r["age"]) < YOUNG_DISEASE_AGE)
        ]
        label = (
            f"{comparison.label.removesuffix(', all')}: healthy aged {OLD_HEALTHY_AGE:g}+ "
            f"against diseased under {YOUNG_DISEASE_AGE:g}"
        )
        found.append(row(label, hard, comparison))
    return [r for r in found if r is not None]


def age_confound_markdown(
    records: Sequence[dict[str, object]], columns: Sequence[str], n_boot: int = 1000
) -> list[str]:
    """The report's section: per comparison, each column's AUC plain and adjusted; empty
    without ages on both sides of any comparison."""
    tables = {column: age_confound_rows(records, column, n_boot) for column in columns}
    first = next((rows for rows in tables.values() if rows), None)
    if first is None:
        return []
    names = ", ".join(f"`{c}`" for c in columns)
    header = ["comparison", "n (healthy/diseased)", "median age (healthy/diseased)"]
    for column in columns:
        header += [f"{column} plain", f"{column} adjusted"]
    lines = [
        "## The age confound",
        "",
        f"{names} as scored (plain) and as read by the normative reference (adjusted: the "
        "residual from the healthy controls' line of the score on age and sex, or the "
        "plain score where that line predicts nothing out of sample; docs/user-guide.md, "
        "'Age- and sex-adjusted percentiles'), on the test scans with an age. AUC with its "
        "95 % bootstrap interval.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    by_label = {c: {r.label: r for r in rows} for c, rows in tables.items()}
    for r in first:
        cells = [
            r.label,
            f"{r.plain.n_healthy}/{r.plain.n_disease}",
            f"{r.median_age_healthy:.0f}/{r.median_age_disease:.0f}",
        ]
        for column in columns:
            found = by_label[column].get(r.label)
            cells += ["-", "-"] if found is None else [_auc(found.plain), _auc(found.adjusted)]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _auc(result: AucResult) -> str:
    return f"{result.auc:.3f} [{result.low:.2f}, {result.high:.2f}]"
