"""Evaluation figures: ROC curves, score distributions and AUC against training step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from madgan_core.cohort.evaluation.stats import auc, comparisons_for, roc_inputs, split_scores


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rocs(records: Sequence[dict[str, object]], columns: Sequence[str], path: Path) -> Path:
    """One panel of ROC curves per comparison, one curve per score column."""
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    comps = comparisons_for(records)
    ncols = min(3, max(1, len(comps)))
    nrows = int(np.ceil(len(comps) / ncols)) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4 * nrows), squeeze=False)
    for ax, comp in zip(axes.flat, comps, strict=False):
        for col in columns:
            healthy, disease = split_scores(records, comp, col)
            if len(healthy) and len(disease):
                fpr, tpr, _ = roc_curve(*roc_inputs(healthy, disease))
                ax.plot(fpr, tpr, label=f"{col} ({auc(healthy, disease):.2f})")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        ax.set_title(comp.label, fontsize=9)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(comps) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_distributions(records: Sequence[dict[str, object]], column: str, path: Path) -> Path:
    """Score distribution per group and stage, as in the paper's Figs. 6 and 7."""
    plt = _pyplot()
    sequences = sorted({str(r["sequence"]) for r in records})
    fig, axes = plt.subplots(1, len(sequences), figsize=(5.5 * len(sequences), 4), squeeze=False)
    for ax, sequence in zip(axes.flat, sequences, strict=True):
        seq = [r for r in records if r["sequence"] == sequence]
        keys = sorted(
            {(str(r["group"]), int(r["stage"])) for r in seq}, key=lambda k: (k[0] != "healthy", k)
        )
        data = [[float(r[column]) for r in seq if (r["group"], int(r["stage"])) == k] for k in keys]
        labels = [g if g == "healthy" or s == 0 else f"{g} {s}" for g, s in keys]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20)
        rng = np.random.default_rng(0)
        for i, values in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=8, alpha=0.6)
        ax.set_title(f"{sequence}: {column}")
        ax.set_ylabel("anomaly score")
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_auc_vs_step(curve: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """AUC against training step across checkpoints, as in the paper's Figs. 8 and 9."""
    fig, ax = _rate_axes("training step", "AUC (madgan:mean)")
    for label, points in curve.items():
        steps, aucs = zip(*points, strict=True)
        ax.plot(steps, aucs, marker="o", label=label)
    return _finish_rate_plot(fig, ax, path)


def _rate_axes(xlabel: str, ylabel: str):
    """A 6 x 4 in figure for a quantity in [0, 1] against ``xlabel``."""
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.02)
    return fig, ax


def _finish_rate_plot(fig, ax, path: Path) -> Path:
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from madgan_core.scans.atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def plot_froc(summaries, path: Path) -> Path:
    """Lesions detected against false-positive regions per healthy scan, one curve a group."""
    fig, ax = _rate_axes("false-positive regions per healthy scan", "lesions detected")
    for s in summaries:
        if not s.curve:
            continue
        fp = [point[1] for point in s.curve]
        found = [point[2] for point in s.curve]
        ax.step(fp, found, where="post", label=f"{s.group} ({s.sequence}, {s.n_lesions} lesions)")
    for rate in (1.0, 5.0):
        ax.axvline(rate, color="grey", lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=1.0)
    return _finish_rate_plot(fig, ax, path)
