"""``report.md``: the model, the AUC table, ROC curves and score distributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from madgan_core.cohort.evaluation.plots import plot_auc_vs_step, plot_distributions, plot_rocs
from madgan_core.cohort.evaluation.stats import AucResult, auc_table, format_table
from madgan_core.errors import MadganError
from madgan_core.modes import score_mode
from madgan_core.scans.atomic import atomic_write_text

if TYPE_CHECKING:
    from madgan_core.model.checkpoint import LoadedModel

BASELINES = {
    "copy": "the next slices predicted as copies of the last input slice",
    "autoencoder": "a single-slice convolutional autoencoder trained on the same healthy slices",
}


def columns_note(columns: Sequence[str]) -> str:
    """What each method and mode among ``columns`` is, from the score-mode registry."""
    modes = dict.fromkeys(c.split(":", 1)[1] for c in columns)
    methods = dict.fromkeys(c.split(":", 1)[0] for c in columns)
    described = "; ".join(f"`{m}`: {score_mode(m).description}" for m in modes)
    baselines = "; ".join(f"`{m}`: {BASELINES[m]}" for m in methods if m in BASELINES)
    note = f"- Columns: `method:mode`. Modes: {described}. `madgan:mean` is the paper's default."
    if baselines:
        note += f" Baselines: {baselines}."
    return note


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
    cfg = model.config
    lines = [
        "# MADGAN evaluation report",
        "",
        f"- Model: `{model.path}` (step {model.step}, variant `{cfg.model.variant}`, "
        f"ℓ1 weight {cfg.train.l1_weight:g}, {cfg.preprocess.height}x{cfg.preprocess.width})",
        f"- Test scans: {len(records)}",
        "- AUC from scikit-learn; 95% confidence intervals from 1,000 stratified bootstrap resamples.",
        columns_note(columns),
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
