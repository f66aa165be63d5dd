"""The whole evaluation of a model on a cohort, as ``madgan evaluate`` and ``madgan demo`` run it.

Load the model, score the manifest's ``test`` scans with MADGAN and its baselines
(resuming ``scores.csv``), optionally follow the AUC across saved checkpoints, and
write ``report.md``. Progress is reported through a plain callback, so the CLI, a
script or a GUI can show it as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from madgan_core.errors import MadganError
from madgan_core.evaluation.cohort import calibrated_modes, score_cohort, score_columns
from madgan_core.evaluation.report import write_report
from madgan_core.evaluation.stats import AucResult, comparison_aucs
from madgan_core.reconstruct import Predictor, copy_predictor, generator_predictor

if TYPE_CHECKING:
    import torch

    from madgan_core.checkpoint import LoadedModel
    from madgan_core.manifest import ManifestRow

StageProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: ``evaluating`` (scans), ``checkpoints``."""


class Evaluation(NamedTuple):
    """What an evaluation wrote: the report, its AUC table and the table's columns."""

    report: Path
    table: dict[str, dict[str, AucResult]]
    columns: list[str]


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
        for label, value in comparison_aucs(records, "madgan:mean").items():
            curve.setdefault(label, []).append((step, value))
        if progress is not None:
            progress(i + 1, len(checkpoints))
    return curve


def evaluate(
    model_path: str | Path,
    manifest: str | Path,
    out: str | Path | None = None,
    checkpoints: str | Path | None = None,
    autoencoder: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    notes: str = "",
    progress: StageProgress | None = None,
) -> Evaluation:
    """Evaluate a model on a manifest's ``test`` scans and write the report.

    Args:
        model_path: the model file.
        manifest: the cohort manifest.
        out: the report folder (default: ``<model folder>/evaluation``).
        checkpoints: a folder of checkpoints, for the AUC against training step.
        autoencoder: a single-slice autoencoder file, scored as a baseline.
        device: where to run.
        precision: inference precision.
        notes: markdown appended to the report.
        progress: ``progress(stage, done, total)``.
    """
    from madgan_core.checkpoint import list_checkpoints, load_model
    from madgan_core.manifest import read_manifest

    model = load_model(model_path, device=device)
    out = Path(out) if out is not None else Path(model_path).parent / "evaluation"
    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    if not rows:
        raise MadganError("the manifest has no scans in the 'test' split", manifest)
    predictors = evaluation_predictors(
        model, None if autoencoder is None else Path(autoencoder), model.device
    )
    records = score_cohort(
        predictors,
        model,
        rows,
        out / "scores.csv",
        _stage(progress, "evaluating", len(rows)),
        precision,
    )
    curve = None
    if checkpoints is not None:
        found = list_checkpoints(checkpoints)
        if not found:
            raise MadganError("no checkpoints found", checkpoints)
        curve = auc_across_checkpoints(
            found, rows, out / "checkpoints", device, _stage(progress, "checkpoints", len(found))
        )
    columns = score_columns(list(predictors), calibrated_modes(model))
    report, table = write_report(records, columns, out, model, curve, notes)
    return Evaluation(report, table, columns)


def _stage(
    progress: StageProgress | None, stage: str, total: int
) -> Callable[[int, int], None] | None:
    """``progress`` for one stage, told first that the stage starts (0 of ``total`` done)."""
    if progress is None:
        return None
    progress(stage, 0, total)
    return lambda done, total: progress(stage, done, total)
