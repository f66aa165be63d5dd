"""Calibration: score held-out healthy scans into the :class:`HealthyReference` a model keeps."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from madgan_core.errors import MadganError
from madgan_core.model.reference import HealthyReference
from madgan_core.model.zstats import (
    FOREGROUND_LEVEL,
    NoiseFit,
    ZStats,
    ZStatsBuilder,
    brain_features,
    log_noise,
)
from madgan_core.modes import noise_adjusted_modes, zmap_mode_names
from madgan_core.prep.domain_profile import DomainProfile, ProfileSummary
from madgan_core.prep.loader import LoadedSlab, SlabLoader
from madgan_core.runtime.sharding import PartFolder, SharedRun, run_share
from madgan_core.scans.covariates import Covariates
from madgan_core.scoring.scorer import slab_scorer

if TYPE_CHECKING:
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.runtime.distributed import DistInfo
    from madgan_core.scans.manifest import ManifestRow

Features = Callable[[np.ndarray, np.ndarray], dict[str, float]]
"""Scores of a z-map over a boolean brain mask, such as :func:`madgan_core.model.zstats.brain_features`."""

# z-statistics need 3 controls of a sequence; the noise-adjusted modes a few more for their fit.
MIN_ZSTATS_CONTROLS = 3
MIN_NOISE_FIT_CONTROLS = 6
# A model re-calibrated on new healthy controls that it reconstructs worse than most of
# its previous ones has likely never learned their brains (or scanner).
UNFAMILIAR_PERCENTILE = 90.0
MIN_NEW_CONTROLS = 5

log = logging.getLogger(__name__)


def build_reference(
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    batch_size: int = 0,
    *,
    work_dir: Path | None = None,
    loader: SlabLoader | None = None,
    info: DistInfo | None = None,
) -> HealthyReference | None:
    """Score healthy scans and collect their score distribution and z-map statistics.

    Two passes. The first scores each control and stores its scores and ℓ2 maps
    (float16) in a part file of its own (:mod:`madgan_core.runtime.sharding`), so memory does
    not grow with the number of controls; under torchrun the ranks share this pass, and
    a re-run continues from the parts. The second, on rank 0, adds the stored maps in
    the rows' order into the z-statistics and scores each control against the
    statistics without it: the arithmetic of one process, in its order, so the same
    reference to the last digit.

    Args:
        model: the loaded model.
        rows: the healthy controls (``path`` and ``sequence``).
        progress: ``progress(done, total)`` as controls are scored (each rank its own).
        precision: inference precision.
        batch_size: windows per inference batch (0: chosen per device).
        work_dir: where the parts wait; the caller removes it once the reference is
            safe (default: a temporary folder, removed at the end; one process only).
        loader: how scans are read (default: one ahead, no cache).
        info: this rank under torchrun (default: one process).

    Returns:
        The reference; None on ranks other than 0.
    """
    from madgan_core.model.checkpoint import model_fingerprint
    from madgan_core.runtime.distributed import DistInfo

    if not rows:
        raise MadganError("no healthy scans to calibrate on")
    info = info or DistInfo()
    if work_dir is None:
        if info.enabled:
            raise ValueError("calibration under torchrun needs a work_dir every rank sees")
        with tempfile.TemporaryDirectory(prefix="madgan-calib-") as tmp:
            return build_reference(
                model, rows, progress, precision, batch_size, work_dir=Path(tmp), loader=loader
            )
    score = slab_scorer(model, precision, batch_size)
    fingerprint = {
        **model_fingerprint(model),
        "score": dataclasses.asdict(model.config.score),
        "precision": score.precision,
        "window_batch": score.batch_size,
    }
    run = SharedRun([str(r.path) for r in rows], _Spills(work_dir, fingerprint), info, model.device)
    todo = run.todo()

    def spill(_i: int, prepared: LoadedSlab) -> dict:
        errors, scores, _ = score(prepared.slab, maps=True)
        return {
            "name": prepared.name,
            "scores": scores,
            "log_noise": log_noise(prepared.slab.slices),
            "errors": errors.slice_maps()[0].astype(np.float16),
            "brain": prepared.slab.slices > FOREGROUND_LEVEL,
            "profile": None if prepared.slab.profile is None else prepared.slab.profile.to_dict(),
        }

    slabs = (loader or SlabLoader()).load([rows[i].path for i in todo], model.config.preprocess)
    tick = None if progress is None else lambda k: progress(k, len(todo))
    run_share(run, todo, slabs, spill, tick)
    if not run.finish():
        return None
    return _reference_from_spills(model, rows, run)


def _reference_from_spills(
    model: LoadedModel, rows: Sequence[ManifestRow], run: SharedRun
) -> HealthyReference:
    """The second pass: statistics from every control's stored maps, in the rows' order."""
    cfg = model.config
    shape = (cfg.preprocess.height, cfg.preprocess.width)
    collected: dict[str, list[float]] = {}
    controls: dict[str, list[_Control]] = {}
    builders: dict[str, ZStatsBuilder] = {}
    names = []
    profiles = []
    for i, (row, key) in enumerate(zip(rows, run.keys, strict=True)):
        stored = run.parts.read(key)
        if stored is None:
            raise RuntimeError(f"{run.parts.path(key)}: no scores for {key}")
        names.append(stored["name"])
        profiles.append(stored.get("profile"))
        for mode, value in stored["scores"].items():
            collected.setdefault(mode, []).append(value)
        control = _Control(run.parts, key, stored["log_noise"], i)
        builders.setdefault(row.sequence, ZStatsBuilder(shape, cfg.score)).add(control.load()[0])
        controls.setdefault(row.sequence, []).append(control)
    reference = HealthyReference(
        {m: np.asarray(v) for m, v in collected.items()}, names, [r.sequence for r in rows]
    )
    people = [  # rows without covariate fields (plain path/sequence records) have none
        Covariates.of(getattr(r, "age", None), getattr(r, "sex", None), getattr(r, "site", None))
        for r in rows
    ]
    if any(p.known for p in people):  # for the normative reference
        reference.covariates = [p if p.known else None for p in people]
    if all(p is not None for p in profiles):
        summary = ProfileSummary.of([DomainProfile.from_dict(p) for p in profiles])
        reference.domain = summary.to_dict()
    zscores = {mode: np.full(len(names), np.nan) for mode in zmap_mode_names()}
    for sequence, items in controls.items():
        if len(items) < MIN_ZSTATS_CONTROLS:
            continue
        reference.zstats[sequence] = _sequence_zstats(items, builders[sequence], zscores)
    for mode, values in zscores.items():
        if np.isfinite(values).any():  # NaN for sequences with too few controls
            reference.scores[mode] = values
    return reference


class _Spills(PartFolder):
    """Calibration parts: a control's scores, log-noise, ℓ2 maps (float16) and brain mask.

    Stored as ``.npz`` without pickle: the arrays as they are, the rest as JSON text.
    """

    suffix = ".npz"
    ARRAYS = ("errors", "brain")

    def _dump(self, tmp: Path, key: str, record: dict) -> None:
        rest = {k: v for k, v in record.items() if k not in self.ARRAYS}
        meta = json.dumps({"key": key, "fingerprint": self.fingerprint, "record": rest})
        np.savez(tmp, meta=np.array(meta), **{k: record[k] for k in self.ARRAYS})

    def _load(self, path: Path) -> dict:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))

    def arrays(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """A control's stored ℓ2 maps (float16) and brain mask."""
        with np.load(self.path(key), allow_pickle=False) as data:
            return data["errors"], data["brain"]


class _Control(NamedTuple):
    """One calib scan in the leave-one-out pass: its ℓ2 maps and brain mask wait on disk."""

    spills: _Spills
    key: str
    log_noise: float
    index: int  # position among all controls

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """The (n, H, W) ℓ2 maps as stored (float16 values, as float32) and the brain mask."""
        errors, brain = self.spills.arrays(self.key)
        return errors.astype(np.float32), brain


def _sequence_zstats(
    items: list[_Control], builder: ZStatsBuilder, zscores: dict[str, np.ndarray]
) -> ZStats:
    """One sequence's z-statistics and noise fits; fills in its controls' own z-map scores.

    Each control is scored leaving it out of the statistics, and its noise-adjusted
    scores leave it out of the noise fit too, so its percentile is honest.
    """
    stats = builder.finalize()
    # Each control's maps are the very values added, so leaving it out is exact.
    features = leave_one_out_features(builder, (item.load() for item in items))
    noises = np.array([item.log_noise for item in items])
    index = np.array([item.index for item in items])
    adjusted = noise_adjusted_modes()
    for mode in zmap_mode_names():
        if mode not in adjusted:
            zscores[mode][index] = [f[mode] for f in features]
    if len(items) < MIN_NOISE_FIT_CONTROLS or not np.all(np.isfinite(noises)):
        return stats
    for mode in adjusted:
        values = np.array([f[mode] for f in features])
        stats.noise_fits[mode] = NoiseFit.fit(noises, values)
        for k in range(len(items)):
            others = np.arange(len(items)) != k
            fit = NoiseFit.fit(noises[others], values[others])
            zscores[mode][index[k]] = fit.adjust(values[k], noises[k])
    return stats


def leave_one_out_features(
    builder: ZStatsBuilder,
    controls: Iterable[tuple[np.ndarray, np.ndarray]],
    features: Features | None = None,
) -> list[dict[str, float]]:
    """Each control's z-map scores, its z-map taken against the statistics of all the others.

    Args:
        builder: holds every control's ℓ2 maps (:meth:`ZStatsBuilder.add`).
        controls: per control, its ``(n, H, W)`` ℓ2 maps exactly as added and its brain
            mask; a generator keeps only one control in memory.
        features: scores of a z-map over a brain mask (default: every z-map mode
            unadjusted, as :func:`madgan_core.model.zstats.brain_features` with the
            builder's settings).
    """
    if features is None:

        def features(z: np.ndarray, brain: np.ndarray) -> dict[str, float]:
            return brain_features(z, brain, builder.settings)

    return [features(builder.leave_one_out_zmap(err), brain) for err, brain in controls]


def calibration_rows(rows: Sequence[ManifestRow]) -> list[ManifestRow]:
    """Healthy scans of the ``calib`` split."""
    return [r for r in rows if r.group == "healthy" and r.split == "calib"]


def calibrate_model(
    model_path: str | Path,
    rows: Sequence[ManifestRow],
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    batch_size: int = 0,
    score: dict | None = None,
    loader: SlabLoader | None = None,
) -> HealthyReference | None:
    """Score the manifest's healthy ``calib`` scans and store the reference in the model file.

    ``score`` changes the model's score settings (e.g. ``{"top_windows": 5}``) before its
    controls are scored, and is stored with the model, so later scans are scored alike.
    The controls' parts wait in ``<model file>.calibration/`` until the reference is
    stored, so a stopped run continues; under torchrun the ranks share the controls and
    rank 0 stores the reference (the other ranks return None).
    """
    from madgan_core.model.checkpoint import load_model, update_checkpoint
    from madgan_core.runtime.distributed import cohort_group

    chosen = calibration_rows(rows)
    if not chosen:
        raise MadganError("the manifest has no healthy scans in the 'calib' split", model_path)
    model_path = Path(model_path)
    with cohort_group(device) as (info, dev):
        model = load_model(model_path, device=dev)
        stored = {}
        if score:
            model = model.with_score(score)
            stored["config"] = model.config.to_dict()
        work_dir = model_path.with_name(model_path.name + ".calibration")
        reference = build_reference(
            model, chosen, progress, precision, batch_size,
            work_dir=work_dir, loader=loader, info=info,
        )  # fmt: skip
    if reference is not None:
        update_checkpoint(model_path, healthy_reference=reference.to_dict(), **stored)
        shutil.rmtree(work_dir, ignore_errors=True)
        for warning in unfamiliar_controls(model.reference, reference):
            log.warning("%s: %s", model_path, warning)
    return reference


def unfamiliar_controls(previous: HealthyReference | None, new: HealthyReference) -> list[str]:
    """A warning per sequence whose new healthy controls the model reconstructs worse than
    most of its previous controls: their median ``mean`` ℓ2 at or above the
    :data:`UNFAMILIAR_PERCENTILE` th percentile of the previous controls of that sequence
    (at least :data:`MIN_NEW_CONTROLS` new controls, and as many previous ones; controls
    in both references are left out).

    On leave-one-anatomy-out cohorts the healthy scans of the brain a model never saw sat
    at the 100th percentile of its controls in every split, those of the brains it knew
    at the 20th-60th (docs/real-scans.md).
    """
    if previous is None:
        return []
    warnings = []
    known = set(previous.names)
    for sequence in sorted(set(new.sequences)):
        if sequence not in previous.sequences:
            continue
        before = previous.control_scores("mean", sequence)
        values = [
            float(new.scores["mean"][i])
            for i, (name, seq) in enumerate(zip(new.names, new.sequences, strict=True))
            if seq == sequence and name not in known and np.isfinite(new.scores["mean"][i])
        ]
        if len(values) < MIN_NEW_CONTROLS or len(before) < MIN_NEW_CONTROLS:
            continue
        median = float(np.median([previous.percentile(v, "mean", sequence) for v in values]))
        if median >= UNFAMILIAR_PERCENTILE:
            warnings.append(
                f"the model reconstructs these {len(values)} healthy {sequence} controls worse "
                f"than its previous ones (their median scores at or above {median:.0f} % of its "
                f"{len(before)} previous {sequence} controls): it has likely not learned this "
                "site's brains or scanner. Fine-tune it on healthy scans from this site, then "
                "calibrate (madgan train --init; docs/real-scans.md, 'Adapting the model to a site')"
            )
    return warnings
