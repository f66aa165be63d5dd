"""Cohort scoring: every scan of a manifest with MADGAN and its baselines, resumably.

Scores are written to ``scores.csv`` one scan at a time, so an interrupted run
restarted on the same file skips the scans already done. Research scripts that need
each scan's ℓ2 maps rather than its scores use :func:`reconstruct_cohort`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.io import atomic_write_text, load_scan
from madgan_core.modes import CALIBRATED_MODES
from madgan_core.preprocess import Slab, preprocess
from madgan_core.reconstruct import Predictor, SlabErrors
from madgan_core.reference import ANOMALY
from madgan_core.score import SlabScorer, inference_settings, slab_scorer
from madgan_core.zmap import NOISE_ADJUSTED

if TYPE_CHECKING:
    from madgan_core.checkpoint import LoadedModel
    from madgan_core.manifest import ManifestRow

log = logging.getLogger(__name__)

META_COLUMNS = ("path", "subject", "group", "stage", "sequence")
# Modes every method is scored in; MADGAN adds ``ratio`` and its calibrated modes.
BASE_MODES = ("mean", "top10")


def score_columns(methods: Sequence[str], calibrated: Sequence[str] = ()) -> list[str]:
    """``method:mode`` columns: baselines get the paper's two modes, MADGAN ``ratio`` and
    the ``calibrated`` z-map modes too."""
    columns = []
    for method in methods:
        modes = list(BASE_MODES)
        if method == "madgan":
            modes += ["ratio", *calibrated]
        columns += [f"{method}:{mode}" for mode in modes]
    return columns


def calibrated_modes(model: LoadedModel) -> list[str]:
    """The z-map modes the model's healthy reference supports (empty if uncalibrated)."""
    reference = model.reference
    if reference is None or not reference.zstats:
        return []
    fitted = reference.fitted_modes()
    modes = [m for m in CALIBRATED_MODES if m not in NOISE_ADJUSTED or m in fitted]
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
) -> list[dict[str, object]]:
    """Score every row with every predictor; resume from ``out_csv`` if it exists."""
    reference = model.reference
    columns = [*META_COLUMNS, *score_columns(list(predictors), calibrated_modes(model))]
    fingerprint = _model_fingerprint(model)
    done = _read_done(out_csv, columns, fingerprint)
    records = [done[str(r.path)] for r in rows if str(r.path) in done]
    todo = [r for r in rows if str(r.path) not in done]
    if records:
        log.info("%s: resuming, %d of %d scans already scored", out_csv, len(records), len(rows))
    cfg = model.config
    precision, batch = inference_settings(model, precision)
    scorers = {
        method: SlabScorer(cfg, model.device, predictor, precision, batch)
        for method, predictor in predictors.items()
    }
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
            for method, score in scorers.items():
                zstats = None
                if reference is not None and method == "madgan":
                    zstats = reference.zstats_for(row.sequence)
                _, scores, _ = score(slab, zstats=zstats)
                if zstats is not None:
                    scores = reference.with_anomaly(scores, row.sequence)
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


def read_scores(path: Path) -> list[dict[str, object]]:
    """The records of a ``scores.csv`` that :func:`score_cohort` wrote, typed."""
    with open(path, newline="") as handle:
        return [_typed(record) for record in csv.DictReader(handle)]


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
) -> Iterator[Reconstruction]:
    """Preprocess and reconstruct each row's scan, one at a time, ℓ2 maps included.

    Args:
        model: the loaded model.
        rows: the scans, as manifest rows.
        zmaps: also z-map each scan against the model's statistics for its sequence.
        scorer: how to score slabs (default: :func:`madgan_core.score.slab_scorer`).
    """
    score = scorer or slab_scorer(model)
    reference = model.reference
    for row in rows:
        slab = preprocess(load_scan(row.path), model.config.preprocess)
        zstats = None
        if zmaps and reference is not None:
            zstats = reference.zstats_for(row.sequence)
        errors, scores, z = score(slab, zstats=zstats, maps=True)
        yield Reconstruction(row, slab, errors, scores, z)
