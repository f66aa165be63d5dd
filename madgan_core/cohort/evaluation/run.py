"""The whole evaluation of a model on a cohort, as ``madgan evaluate`` and ``madgan demo`` run it.

Load the model, score the manifest's ``test`` scans with MADGAN and its baselines
(resuming ``scores.csv``; shared among the ranks under torchrun), optionally follow the
AUC across saved checkpoints, and write ``report.md``. Progress is reported through a plain callback, so the CLI, a
script or a GUI can show it as it likes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from madgan_core.cohort.evaluation.ages import age_confound_markdown, with_adjusted_scores
from madgan_core.cohort.evaluation.cohort import calibrated_modes, score_cohort, score_columns
from madgan_core.cohort.evaluation.regions import evaluate_regions, regions_markdown
from madgan_core.cohort.evaluation.report import write_report
from madgan_core.cohort.evaluation.stats import AucResult, comparison_aucs
from madgan_core.errors import MadganError
from madgan_core.scoring.reconstruct import Predictor, copy_predictor, generator_predictor

if TYPE_CHECKING:
    import torch

    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.prep.loader import SlabLoader
    from madgan_core.runtime.distributed import DistInfo
    from madgan_core.scans.manifest import ManifestRow

AGE_COLUMNS = ("madgan:anomaly", "madgan:ratio", "madgan:mean")  # the age-confound section's
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
        "madgan": generator_predictor(model.inference_generator()),
        "copy": copy_predictor(model.config.model.out_slices),
    }
    if autoencoder_path is not None:
        from madgan_core.cohort.baselines import autoencoder_predictor, load_autoencoder

        predictors["autoencoder"] = autoencoder_predictor(
            load_autoencoder(autoencoder_path, device)
        )
    return predictors


def auc_across_checkpoints(
    checkpoints: Sequence[tuple[int, Path]],
    rows: Sequence[ManifestRow],
    out_dir: Path,
    device: str | torch.device = "auto",
    progress: Callable[[int, int], None] | None = None,
    *,
    loader: SlabLoader | None = None,
    info: DistInfo | None = None,
    score: dict[str, Any] | None = None,
) -> dict[str, list[tuple[int, float]]]:
    """AUC of ``madgan:mean`` for each comparison at each saved checkpoint.

    ``score`` changes each checkpoint's score settings for this run, as in :func:`evaluate`.
    Under torchrun every rank scores its share of each checkpoint's cohort; the curve
    is rank 0's (the other ranks return an empty one).
    """
    from madgan_core.model.checkpoint import load_model

    curve: dict[str, list[tuple[int, float]]] = {}
    for i, (step, path) in enumerate(checkpoints):
        model = load_model(path, device=device).with_score(score)
        records = score_cohort(
            {"madgan": generator_predictor(model.inference_generator())},
            model,
            rows,
            out_dir / f"scores_step{step:08d}.csv",
            loader=loader,
            info=info,
        )
        for label, value in comparison_aucs(records or [], "madgan:mean").items():
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
    loader: SlabLoader | None = None,
    score: dict[str, Any] | None = None,
) -> Evaluation | None:
    """Evaluate a model on a manifest's ``test`` scans and write the report.

    When the manifest gives lesion masks and the model is calibrated, the report also
    holds the region-level evaluation of the findings (:mod:`.regions`; rank 0 only).

    Under torchrun the ranks share the scans (:func:`score_cohort`) and rank 0 writes
    the report; the other ranks return None.

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
        loader: how scans are read: prefetch and slab cache (default: one ahead, no cache).
        score: score settings over the model's for this run, e.g. ``{"top_windows": 5}``
            (:meth:`madgan_core.config.MadganConfig.with_score_overrides`); the model file
            is left as it is.
    """
    from madgan_core.model.checkpoint import list_checkpoints, load_model
    from madgan_core.runtime.distributed import cohort_group
    from madgan_core.scans.manifest import read_manifest

    out = Path(out) if out is not None else Path(model_path).parent / "evaluation"
    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    if not rows:
        raise MadganError("the manifest has no scans in the 'test' split", manifest)
    found = list_checkpoints(checkpoints) if checkpoints is not None else []
    if checkpoints is not None and not found:
        raise MadganError("no checkpoints found", checkpoints)
    with cohort_group(device) as (info, dev):
        model = load_model(model_path, device=dev).with_score(score)
        progress = progress if info.is_main else None
        predictors = evaluation_predictors(
            model, None if autoencoder is None else Path(autoencoder), model.device
        )
        stage = _stage(progress, "evaluating", len(rows))
        records = score_cohort(
            predictors, model, rows, out / "scores.csv", stage, precision,
            loader=loader, info=info,
        )  # fmt: skip
        curve = None
        if found:
            stage = _stage(progress, "checkpoints", len(found))
            curve = auc_across_checkpoints(
                found, rows, out / "checkpoints", dev, stage, loader=loader, info=info, score=score
            )
    if records is None:
        return None
    columns = score_columns(list(predictors), calibrated_modes(model))
    regions = []
    if any(r.mask is not None for r in rows) and model.reference is not None:
        stage = _stage(progress, "regions", len(rows))
        regions = evaluate_regions(model, rows, out, stage)
    ages = age_section(records, rows, model, columns)
    notes = "\n".join([*regions_markdown(regions), *ages, notes])
    report, table = write_report(records, columns, out, model, curve, notes)
    return Evaluation(report, table, columns)


def age_section(
    records: Sequence[dict[str, object]],
    rows: Sequence[ManifestRow],
    model: LoadedModel,
    columns: Sequence[str],
) -> list[str]:
    """The report's age-confound section (:mod:`.ages`) for the headline, the mode that
    reads atrophy best and the paper's, when the model's controls and the test scans have
    ages; else nothing."""
    reference = model.reference
    if reference is None or not reference.covariates or not any(r.age is not None for r in rows):
        return []
    chosen = [c for c in AGE_COLUMNS if c in columns]
    if not chosen:
        return []
    adjusted = with_adjusted_scores(records, rows, reference, chosen)
    return age_confound_markdown(adjusted, chosen)


def _stage(
    progress: StageProgress | None, stage: str, total: int
) -> Callable[[int, int], None] | None:
    """``progress`` for one stage, told first that the stage starts (0 of ``total`` done)."""
    if progress is None:
        return None
    progress(stage, 0, total)
    return lambda done, total: progress(stage, done, total)
