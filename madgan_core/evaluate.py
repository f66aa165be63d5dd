"""Cohort evaluation: per-scan scores, the paper's AUC tables, ROC and distribution plots.

Scores are written to ``scores.csv`` one scan at a time, so an interrupted run
restarted on the same folder skips the scans already done.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from madgan_core.config import CALIBRATED_MODES
from madgan_core.errors import MadganError
from madgan_core.io import atomic_write_text, load_scan
from madgan_core.preprocess import preprocess
from madgan_core.score import (
    Predictor,
    copy_predictor,
    default_batch_size,
    generator_predictor,
    score_slab,
)

if TYPE_CHECKING:
    import torch

    from madgan_core.checkpoint import LoadedModel
    from madgan_core.manifest import ManifestRow

log = logging.getLogger(__name__)

GROUP_LABELS = {"ad": "AD-like", "mets": "Metastasis-like", "various": "Various diseases"}
STAGE_LABELS = {
    "ad": {1: "stage 1 (CDR 0.5-like)", 2: "stage 2 (CDR 1-like)", 3: "stage 3 (CDR 2-like)"}
}
META_COLUMNS = ("path", "subject", "group", "stage", "sequence")


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


def score_columns(methods: Sequence[str], calibrated: Sequence[str] = ()) -> list[str]:
    """``method:mode`` columns: baselines get the paper's two modes, MADGAN ``ratio`` and
    the ``calibrated`` z-map modes too."""
    columns = []
    for method in methods:
        modes = ["mean", "top10"]
        if method == "madgan":
            modes += ["ratio", *calibrated]
        columns += [f"{method}:{mode}" for mode in modes]
    return columns


def calibrated_modes(model: LoadedModel) -> list[str]:
    """The z-map modes the model's healthy reference supports (empty if uncalibrated)."""
    from madgan_core.calibrate import HealthyReference

    reference = HealthyReference.from_model(model)
    if reference is None or not reference.zstats:
        return []
    fitted = set.intersection(*(set(z.noise_fits) for z in reference.zstats.values()))
    return [m for m in CALIBRATED_MODES if m == "ztail" or m in fitted]


def score_cohort(
    predictors: dict[str, Predictor],
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    out_csv: Path,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
) -> list[dict[str, object]]:
    """Score every row with every predictor; resume from ``out_csv`` if it exists."""
    from madgan_core.calibrate import HealthyReference
    from madgan_core.device import resolve_precision

    reference = HealthyReference.from_model(model)
    columns = [*META_COLUMNS, *score_columns(list(predictors), calibrated_modes(model))]
    fingerprint = _model_fingerprint(model)
    done = _read_done(out_csv, columns, fingerprint)
    records = [done[str(r.path)] for r in rows if str(r.path) in done]
    todo = [r for r in rows if str(r.path) not in done]
    if records:
        log.info("%s: resuming, %d of %d scans already scored", out_csv, len(records), len(rows))
    cfg = model.config
    precision = resolve_precision(precision, model.device)
    batch = cfg.score.batch_size or default_batch_size(
        model.device, (cfg.preprocess.height, cfg.preprocess.width)
    )
    new_file = not out_csv.exists() or not done
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    if new_file:
        atomic_write_text(_meta_path(out_csv), json.dumps(fingerprint))
    with open(out_csv, "w" if new_file else "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new_file:
            writer.writeheader()
            for record in records:
                writer.writerow(record)
        for row in todo:
            slab = preprocess(load_scan(row.path), cfg.preprocess)
            record: dict[str, object] = {
                "path": str(row.path),
                "subject": row.subject,
                "group": row.group,
                "stage": row.stage,
                "sequence": row.sequence,
            }
            for method, predictor in predictors.items():
                zstats = None
                if reference is not None and method == "madgan":
                    zstats = reference.zstats_for(row.sequence)
                _, scores, _ = score_slab(
                    predictor, slab, cfg, model.device, precision, batch, zstats=zstats
                )
                for mode, value in scores.items():
                    if f"{method}:{mode}" in columns:
                        record[f"{method}:{mode}"] = value
            writer.writerow(record)
            handle.flush()
            os.fsync(handle.fileno())
            records.append(record)
            if progress is not None:
                progress(len(records), len(rows))
    return [_typed(r) for r in records]


def _read_done(path: Path, columns: list[str], fingerprint: dict) -> dict[str, dict[str, object]]:
    """Rows already scored by the same model, after dropping an unfinished last line."""
    if not path.exists():
        return {}
    meta = _meta_path(path)
    if not meta.exists() or json.loads(meta.read_text() or "{}") != fingerprint:
        log.info("%s: scored by another model; scoring again", path)
        return {}
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        # The process stopped while writing a row: drop the partial line.
        with open(path, "r+b") as handle:
            handle.truncate(raw.rfind(b"\n") + 1)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != columns:
            log.info("%s: columns differ from this run; scoring again", path)
            return {}
        done = {}
        for record in reader:
            if all(record.get(c) not in (None, "") for c in columns):
                done[record["path"]] = record
        return done


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".model.json")


def _model_fingerprint(model: LoadedModel) -> dict[str, object]:
    """What identifies the scores' model: its file, step and contents' size and time."""
    path = Path(model.path)
    stat = path.stat() if path.exists() else None
    return {
        "model": str(path.resolve()),
        "step": int(model.step),
        "size": None if stat is None else stat.st_size,
        "mtime_ns": None if stat is None else stat.st_mtime_ns,
    }


def _typed(record: dict[str, object]) -> dict[str, object]:
    out = dict(record)
    out["stage"] = int(out["stage"])
    for key, value in record.items():
        if ":" in key:
            out[key] = float(value)
    return out


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
    labels = np.r_[np.zeros(len(healthy)), np.ones(len(disease))]
    auc = float(roc_auc_score(labels, np.r_[healthy, disease]))
    rng = np.random.default_rng(seed)
    wins = (disease[:, None] > healthy[None, :]) + 0.5 * (disease[:, None] == healthy[None, :])
    draws_d = rng.multinomial(len(disease), np.full(len(disease), 1 / len(disease)), size=n_boot)
    draws_h = rng.multinomial(len(healthy), np.full(len(healthy), 1 / len(healthy)), size=n_boot)
    samples = np.einsum("bi,ij,bj->b", draws_d, wins, draws_h) / (len(disease) * len(healthy))
    low, high = np.percentile(samples, [2.5, 97.5])
    return AucResult(auc, float(low), float(high), len(healthy), len(disease))


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


def plot_rocs(records: Sequence[dict[str, object]], columns: Sequence[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = comparisons_for(records)
    ncols = min(3, max(1, len(comps)))
    nrows = int(np.ceil(len(comps) / ncols)) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4 * nrows), squeeze=False)
    for ax, comp in zip(axes.flat, comps, strict=False):
        for col in columns:
            healthy, disease = split_scores(records, comp, col)
            if len(healthy) and len(disease):
                labels = np.r_[np.zeros(len(healthy)), np.ones(len(disease))]
                fpr, tpr, _ = roc_curve(labels, np.r_[healthy, disease])
                auc = roc_auc_score(labels, np.r_[healthy, disease])
                ax.plot(fpr, tpr, label=f"{col} ({auc:.2f})")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in curve.items():
        steps, aucs = zip(*points, strict=True)
        ax.plot(steps, aucs, marker="o", label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("AUC (madgan:mean)")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save_figure(fig, path)


def _save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from madgan_core.io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def auc_across_checkpoints(
    checkpoints: Sequence[tuple[int, Path]],
    rows: Sequence[ManifestRow],
    out_dir: Path,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[tuple[int, float]]]:
    """AUC of ``madgan:mean`` for each comparison at each saved checkpoint."""
    from madgan_core.checkpoint import load_model

    curve: dict[str, list[tuple[int, float]]] = {}
    for i, (step, path) in enumerate(checkpoints):
        model = load_model(path, device=device)
        records = score_cohort(
            {"madgan": generator_predictor(model.generator)},
            model,
            rows,
            out_dir / f"scores_step{step:08d}.csv",
        )
        for comp in comparisons_for(records):
            healthy, disease = split_scores(records, comp, "madgan:mean")
            if len(healthy) and len(disease):
                labels = np.r_[np.zeros(len(healthy)), np.ones(len(disease))]
                curve.setdefault(comp.label, []).append(
                    (step, float(roc_auc_score(labels, np.r_[healthy, disease])))
                )
        if progress is not None:
            progress(i + 1, len(checkpoints))
    return curve


def evaluation_predictors(
    model: LoadedModel, autoencoder_path: Path | None, device: torch.device
) -> dict[str, Predictor]:
    """MADGAN and its baselines, all scored by the same harness."""
    predictors: dict[str, Predictor] = {
        "madgan": generator_predictor(model.generator),
        "copy": copy_predictor(model.config.model.out_slices),
    }
    if autoencoder_path is not None:
        from madgan_core.baselines import autoencoder_predictor, load_autoencoder

        predictors["autoencoder"] = autoencoder_predictor(
            load_autoencoder(autoencoder_path, device)
        )
    return predictors


def write_report(
    records: Sequence[dict[str, object]],
    columns: Sequence[str],
    out_dir: Path,
    model: LoadedModel,
    curve: dict[str, list[tuple[int, float]]] | None = None,
    notes: str = "",
) -> tuple[Path, dict[str, dict[str, AucResult]]]:
    """Write ``report.md`` and its PNGs into ``out_dir``; return the report path and AUC table."""
    if not records:
        raise MadganError("no scans were scored; the manifest has no test scans")
    table = auc_table(records, columns)
    plot_rocs(records, columns, out_dir / "roc.png")
    modes = [c.split(":", 1)[1] for c in columns if c.startswith("madgan:") and c != "madgan:ratio"]
    for mode in modes:
        plot_distributions(records, f"madgan:{mode}", out_dir / f"distributions_{mode}.png")
    lines = [
        "# MADGAN evaluation report",
        "",
        f"- Model: `{model.path}` (step {model.step}, variant `{model.config.model.variant}`, "
        f"ℓ1 weight {model.config.train.l1_weight:g}, {model.config.preprocess.height}x{model.config.preprocess.width})",
        f"- Test scans: {len(records)}",
        "- AUC from scikit-learn; 95% confidence intervals from 1,000 stratified bootstrap resamples.",
        "- Columns: `method:mode`. `madgan:mean` is the paper's default score (mean ℓ2 over all windows), "
        "`:top10` the mean of the 10 contiguous windows with the highest loss, `madgan:ratio` the mean ℓ2 "
        "divided by the copy-last-slice predictor's ℓ2 on the same windows, `madgan:ztail` the mean of the top 1% "
        "of the healthy-normalised z-map over the brain, `madgan:zvolume` the percentage of the brain with z above 4 "
        "and `madgan:zmean` the mean z over the brain, both adjusted for the scan's noise level. "
        "`copy` and `autoencoder` are baselines.",
        "",
        "## AUC: healthy against each disease group and stage",
        "",
        format_table(table, columns),
        "",
        "## ROC curves",
        "",
        "![ROC curves](roc.png)",
        "",
        "## Score distributions",
        *(line for mode in modes for line in ("", f"![{mode}](distributions_{mode}.png)")),
    ]
    if curve:
        plot_auc_vs_step(curve, out_dir / "auc_vs_step.png")
        lines += ["", "## AUC against training step", "", "![AUC vs step](auc_vs_step.png)"]
    if notes:
        lines += ["", notes]
    report = out_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report, table
