"""The paper's comparisons (healthy against each disease group and stage) and their AUCs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

GROUP_LABELS = {"ad": "AD-like", "mets": "Metastasis-like", "various": "Various diseases"}
STAGE_LABELS = {
    "ad": {1: "stage 1 (CDR 0.5-like)", 2: "stage 2 (CDR 1-like)", 3: "stage 3 (CDR 2-like)"}
}


@dataclass
class Comparison:
    """Healthy controls against one set of diseased scans."""

    label: str
    sequence: str
    group: str | None  # None: all diseases of the sequence
    stage: int | None


@dataclass
class AucResult:
    auc: float
    low: float
    high: float
    n_healthy: int
    n_disease: int


def roc_inputs(healthy: Sequence[float], disease: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, scores)`` for scikit-learn's ROC functions: healthy 0, diseased 1."""
    labels = np.r_[np.zeros(len(healthy)), np.ones(len(disease))]
    return labels, np.r_[np.asarray(healthy, dtype=float), np.asarray(disease, dtype=float)]


def auc(healthy: Sequence[float], disease: Sequence[float]) -> float:
    """The AUC of scores that should be higher for the diseased scans (scikit-learn)."""
    return float(roc_auc_score(*roc_inputs(healthy, disease)))


def comparisons_for(records: Sequence[dict[str, object]]) -> list[Comparison]:
    """The paper's table layout: per sequence, all diseases together, each group, each stage."""
    found: list[Comparison] = []
    for sequence in sorted({str(r["sequence"]) for r in records}):
        seq_records = [r for r in records if r["sequence"] == sequence]
        groups = sorted({str(r["group"]) for r in seq_records} - {"healthy"})
        if not groups or not any(r["group"] == "healthy" for r in seq_records):
            continue
        if len(groups) > 1:
            found.append(Comparison(f"{sequence}: all diseases", sequence, None, None))
        for group in groups:
            name = GROUP_LABELS.get(group, group)
            found.append(Comparison(f"{sequence}: {name}, all", sequence, group, None))
            stages = sorted({int(r["stage"]) for r in seq_records if r["group"] == group})
            if len(stages) > 1:
                for stage in stages:
                    label = STAGE_LABELS.get(group, {}).get(stage, f"stage {stage}")
                    found.append(Comparison(f"{sequence}: {name}, {label}", sequence, group, stage))
    return found


def split_scores(
    records: Sequence[dict[str, object]], comparison: Comparison, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """The ``column`` scores of the comparison's healthy and diseased scans."""
    healthy = [
        float(r[column])
        for r in records
        if r["group"] == "healthy" and r["sequence"] == comparison.sequence
    ]
    disease = [
        float(r[column])
        for r in records
        if r["group"] != "healthy"
        and r["sequence"] == comparison.sequence
        and (comparison.group is None or r["group"] == comparison.group)
        and (comparison.stage is None or int(r["stage"]) == comparison.stage)
    ]
    return np.asarray(healthy), np.asarray(disease)


def bootstrap_auc(
    healthy: np.ndarray, disease: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> AucResult:
    """AUC (scikit-learn) with a stratified bootstrap 95% confidence interval.

    Each resample draws healthy and diseased scans with replacement. Its AUC is the
    Mann-Whitney statistic, computed for all resamples at once from the pairwise
    comparison matrix weighted by how often each scan was drawn.
    """
    if len(healthy) == 0 or len(disease) == 0:
        return AucResult(float("nan"), float("nan"), float("nan"), len(healthy), len(disease))
    value = auc(healthy, disease)
    rng = np.random.default_rng(seed)
    wins = (disease[:, None] > healthy[None, :]) + 0.5 * (disease[:, None] == healthy[None, :])
    draws_d = rng.multinomial(len(disease), np.full(len(disease), 1 / len(disease)), size=n_boot)
    draws_h = rng.multinomial(len(healthy), np.full(len(healthy), 1 / len(healthy)), size=n_boot)
    samples = np.einsum("bi,ij,bj->b", draws_d, wins, draws_h) / (len(disease) * len(healthy))
    low, high = np.percentile(samples, [2.5, 97.5])
    return AucResult(value, float(low), float(high), len(healthy), len(disease))


def auc_table(
    records: Sequence[dict[str, object]], columns: Sequence[str], n_boot: int = 1000
) -> dict[str, dict[str, AucResult]]:
    """``table[comparison label][column] -> AucResult``."""
    return {
        c.label: {
            col: bootstrap_auc(*split_scores(records, c, col), n_boot=n_boot) for col in columns
        }
        for c in comparisons_for(records)
    }


def comparison_aucs(records: Sequence[dict[str, object]], column: str) -> dict[str, float]:
    """The plain AUC of ``column`` per comparison that has healthy and diseased scans."""
    found = {}
    for comparison in comparisons_for(records):
        healthy, disease = split_scores(records, comparison, column)
        if len(healthy) and len(disease):
            found[comparison.label] = auc(healthy, disease)
    return found


def format_table(
    table: dict[str, dict[str, AucResult]], columns: Sequence[str], markdown: bool = True
) -> str:
    """A table of AUCs with 95% CIs, one row per comparison."""
    first = next(iter(table.values()), None)
    header = ["Comparison", "n (healthy/disease)", *columns]
    lines = []
    for label, results in table.items():
        n = next(iter(results.values()))
        cells = [label, f"{n.n_healthy}/{n.n_disease}"]
        cells += [
            f"{results[c].auc:.3f} [{results[c].low:.2f}, {results[c].high:.2f}]" for c in columns
        ]
        lines.append(cells)
    if first is None:
        return "(no comparisons: the cohort needs healthy and diseased test scans of one sequence)"
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *lines]
    )
