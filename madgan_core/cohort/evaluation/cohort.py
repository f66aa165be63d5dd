"""Cohort scoring: every scan of a manifest with MADGAN and its baselines, resumably.

Each scan's scores are stored as soon as they are known (a part file per scan,
:mod:`madgan_core.runtime.sharding`), so an interrupted run restarted on the same table skips
the scans already done, and under torchrun the ranks share the scans. Research scripts
that need each scan's ℓ2 maps rather than its scores use :func:`reconstruct_cohort`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.model.checkpoint import model_fingerprint
from madgan_core.modes import ANOMALY, calibrated_mode_names, noise_adjusted_modes, score_modes
from madgan_core.prep.loader import LoadedSlab, SlabLoader
from madgan_core.runtime.sharding import PartFolder, SharedRun, run_share
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scoring.reconstruct import Predictor, SlabErrors
from madgan_core.scoring.scorer import SlabScorer, inference_settings, slab_scorer

if TYPE_CHECKING:
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.prep.slab import Slab
    from madgan_core.runtime.distributed import DistInfo
    from madgan_core.scans.manifest import ManifestRow

log = logging.getLogger(__name__)

META_COLUMNS = ("path", "subject", "group", "stage", "sequence")


def score_columns(methods: Sequence[str], calibrated: Sequence[str] = ()) -> list[str]:
    """``method:mode`` columns: baselines get the modes marked ``for_baselines`` (the
    paper's two), MADGAN every mode of an uncalibrated model and the ``calibrated`` ones."""
    columns = []
    for method in methods:
        if method == "madgan":
            modes = [m.name for m in score_modes() if not m.needs_calibration] + [*calibrated]
        else:
            modes = [m.name for m in score_modes() if m.for_baselines]
        columns += [f"{method}:{mode}" for mode in modes]
    return columns


def calibrated_modes(model: LoadedModel) -> list[str]:
    """The calibrated modes the model's healthy reference supports (empty if uncalibrated)."""
    reference = model.reference
    if reference is None or not reference.zstats:
        return []
    fitted = reference.fitted_modes()
    adjusted = noise_adjusted_modes()
    modes = [m for m in calibrated_mode_names() if m not in adjusted or m in fitted]
    if not all(reference.supports_anomaly(sequence) for sequence in reference.zstats):
        modes.remove(ANOMALY)
    return modes


def score_cohort(
    predictors: dict[str, Predictor],
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    out_csv: Path,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    *,
    loader: SlabLoader | None = None,
    info: DistInfo | None = None,
) -> list[dict[str, object]] | None:
    """Score every row with every predictor into ``out_csv``, resumably, shared among ranks.

    Each scan's scores go to a part file of its own in ``<out_csv>.parts/`` as soon as
    they are known (:mod:`madgan_core.runtime.sharding`); rank 0 then writes ``out_csv`` in the
    rows' order and removes the parts. A run stopped half-way, with any number of ranks,
    continues from its parts; a finished ``out_csv`` of the same model is reused too.

    Args:
        predictors: the methods to score, by column prefix.
        model: the loaded model (its preprocessing, device and reference).
        rows: the scans.
        out_csv: the table to write.
        progress: ``progress(done, total)`` as scans are scored (on each rank, its own).
        precision: inference precision.
        loader: how scans are read (default: one scan ahead, no cache).
        info: this rank under torchrun (default: one process).

    Returns:
        The records in the rows' order, typed; None on ranks other than 0.
    """
    from madgan_core.runtime.distributed import DistInfo

    info = info or DistInfo()
    loader = loader or SlabLoader()
    reference = model.reference
    columns = [*META_COLUMNS, *score_columns(list(predictors), calibrated_modes(model))]
    cfg = model.config
    precision, batch = inference_settings(model, precision)
    fingerprint = {
        **model_fingerprint(model),
        "score": asdict(cfg.score),
        "precision": precision,
        "window_batch": batch,
    }
    scorers = {
        method: SlabScorer(cfg, model.device, predictor, precision, batch)
        for method, predictor in predictors.items()
    }
    run = SharedRun(
        [str(r.path) for r in rows],
        PartFolder(out_csv.with_name(out_csv.name + ".parts"), {**fingerprint, "columns": columns}),
        info,
        model.device,
    )
    # An earlier table of the same model (finished, or an older journal cut short).
    earlier = _read_done(out_csv, columns, fingerprint) if info.is_main else {}
    todo = run.todo(earlier)
    already = len(rows) - len(todo) if info.world_size == 1 else 0

    def score(i: int, prepared: LoadedSlab) -> dict[str, object]:
        row = rows[i]
        record: dict[str, object] = {c: getattr(row, c) for c in META_COLUMNS}
        record["path"] = str(row.path)
        for method, scorer in scorers.items():
            zstats = None
            if reference is not None and method == "madgan":
                zstats = reference.zstats_for(row.sequence)
            _, scores, _ = scorer(prepared.slab, zstats=zstats)
            if zstats is not None:
                scores = reference.with_anomaly(scores, row.sequence)
            for mode, value in scores.items():
                if f"{method}:{mode}" in columns:
                    record[f"{method}:{mode}"] = value
        return record

    if progress is not None:
        progress(already, already + len(todo))
    paths = loader.load([rows[i].path for i in todo], cfg.preprocess)
    tick = None if progress is None else lambda k: progress(already + k, already + len(todo))
    run_share(run, todo, paths, score, tick)
    if not run.finish():
        return None
    records = run.merged(earlier)
    _write_table(out_csv, columns, records, fingerprint)
    run.parts.remove()
    if progress is not None:
        progress(len(rows), len(rows))
    return [_typed(r) for r in records]


def _write_table(
    path: Path, columns: list[str], records: list[dict[str, object]], fingerprint: dict
) -> None:
    """``scores.csv``, then its model record, each written atomically.

    The old record goes first: a stop in between leaves a table without a record, which
    the next run does not trust (its parts are still there), never an old table under
    a new record.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    _meta_path(path).unlink(missing_ok=True)
    atomic_write_text(path, buffer.getvalue())
    atomic_write_text(_meta_path(path), json.dumps(fingerprint))


def read_scores(path: Path) -> list[dict[str, object]]:
    """The records of a ``scores.csv`` that :func:`score_cohort` wrote, typed."""
    with open(path, newline="") as handle:
        return [_typed(record) for record in csv.DictReader(handle)]


def _read_done(path: Path, columns: list[str], fingerprint: dict) -> dict[str, dict[str, object]]:
    """Rows already scored by the same model, but for an unfinished last line.

    Tables are written whole now; an unfinished line comes from an older version,
    which appended to ``scores.csv`` as it went.
    """
    if not path.exists():
        return {}
    meta = _meta_path(path)
    if not meta.exists() or json.loads(meta.read_text() or "{}") != fingerprint:
        log.info("%s: scored by another model or with other settings; scoring again", path)
        return {}
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the process stopped while writing a row
    with io.StringIO(text, newline="") as handle:
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


def _typed(record: dict[str, object]) -> dict[str, object]:
    out = dict(record)
    out["stage"] = int(out["stage"])
    for key, value in record.items():
        if ":" in key:
            out[key] = float(value)
    return out


@dataclass
class Reconstruction:
    """One scan of a cohort, reconstructed by the model's generator.

    Attributes:
        row: its manifest row.
        slab: the preprocessed slab (model space).
        errors: the ℓ2 bookkeeping, with maps (``errors.slice_maps()``).
        scores: its scores in every mode the model gives it.
        zmap: its z-map in model space, when asked for and the model has statistics.
    """

    row: ManifestRow
    slab: Slab
    errors: SlabErrors
    scores: dict[str, float]
    zmap: np.ndarray | None


def reconstruct_cohort(
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    *,
    zmaps: bool = False,
    scorer: SlabScorer | None = None,
    loader: SlabLoader | None = None,
) -> Iterator[Reconstruction]:
    """Preprocess and reconstruct each row's scan, one at a time, ℓ2 maps included.

    Args:
        model: the loaded model.
        rows: the scans, as manifest rows.
        zmaps: also z-map each scan against the model's statistics for its sequence.
        scorer: how to score slabs (default: :func:`madgan_core.scoring.scorer.slab_scorer`).
        loader: how scans are read (default: the next one read ahead, no cache).
    """
    score = scorer or slab_scorer(model)
    reference = model.reference
    prepared = (loader or SlabLoader()).load([r.path for r in rows], model.config.preprocess)
    for row, item in zip(rows, prepared, strict=True):
        zstats = None
        if zmaps and reference is not None:
            zstats = reference.zstats_for(row.sequence)
        errors, scores, z = score(item.slab, zstats=zstats, maps=True)
        yield Reconstruction(row, item.slab, errors, scores, z)
