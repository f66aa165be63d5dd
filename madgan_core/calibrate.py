"""Calibration: score held-out healthy scans into the :class:`HealthyReference` a model keeps."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from madgan_core.errors import MadganError
from madgan_core.reference import HealthyReference
from madgan_core.score import slab_scorer
from madgan_core.zmap import (
    FOREGROUND_LEVEL,
    NOISE_ADJUSTED,
    NoiseFit,
    ZStats,
    ZStatsBuilder,
    brain_features,
    log_noise,
)

if TYPE_CHECKING:
    from madgan_core.checkpoint import LoadedModel
    from madgan_core.manifest import ManifestRow

Features = Callable[[np.ndarray, np.ndarray], dict[str, float]]
"""Scores of a z-map over a boolean brain mask, such as :func:`madgan_core.zmap.brain_features`."""

# z-statistics need 3 controls of a sequence; the noise-adjusted modes a few more for their fit.
MIN_ZSTATS_CONTROLS = 3
MIN_NOISE_FIT_CONTROLS = 6


def build_reference(
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    batch_size: int = 0,
) -> HealthyReference:
    """Score healthy scans and collect their score distribution and z-map statistics.

    Each control's ℓ2 maps are needed twice: for the z-statistics, and again to score
    the control against the statistics without it. In between they wait in a temporary
    folder (float16), so memory does not grow with the number of controls.
    """
    from madgan_core.io import load_scan
    from madgan_core.preprocess import preprocess

    if not rows:
        raise MadganError("no healthy scans to calibrate on")
    cfg = model.config
    shape = (cfg.preprocess.height, cfg.preprocess.width)
    score = slab_scorer(model, precision, batch_size)
    names: list[str] = []
    sequences: list[str] = []
    collected: dict[str, list[float]] = {}
    controls: dict[str, list[_Control]] = {}
    builders: dict[str, ZStatsBuilder] = {}
    with tempfile.TemporaryDirectory(prefix="madgan-calib-") as spill:
        for i, row in enumerate(rows):
            scan = load_scan(row.path)
            slab = preprocess(scan, cfg.preprocess)
            errors, scores, _ = score(slab, maps=True)
            names.append(scan.name)
            sequences.append(row.sequence)
            for mode, value in scores.items():
                collected.setdefault(mode, []).append(value)
            control = _Control(Path(spill) / f"{i}.npz", log_noise(slab.slices), i)
            stored = control.save(errors.slice_maps()[0], slab.slices > FOREGROUND_LEVEL)
            builders.setdefault(row.sequence, ZStatsBuilder(shape, cfg.score)).add(stored)
            controls.setdefault(row.sequence, []).append(control)
            if progress is not None:
                progress(i + 1, len(rows))
        reference = HealthyReference(
            {m: np.asarray(v) for m, v in collected.items()}, names, sequences
        )
        zscores = {mode: np.full(len(names), np.nan) for mode in ("ztail", *NOISE_ADJUSTED)}
        for sequence, items in controls.items():
            if len(items) < MIN_ZSTATS_CONTROLS:
                continue
            reference.zstats[sequence] = _sequence_zstats(items, builders[sequence], zscores)
    for mode, values in zscores.items():
        if np.isfinite(values).any():  # NaN for sequences with too few controls
            reference.scores[mode] = values
    return reference


class _Control(NamedTuple):
    """One calib scan in the leave-one-out pass: its ℓ2 maps and brain mask wait on disk."""

    path: Path
    log_noise: float
    index: int  # position among all controls

    def save(self, errors: np.ndarray, brain: np.ndarray) -> np.ndarray:
        """Store the maps (float16) and the mask; returns the maps as stored, as float32."""
        stored = errors.astype(np.float16)
        np.savez(self.path, errors=stored, brain=brain)
        return stored.astype(np.float32)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """The (n, H, W) ℓ2 maps as stored (float16 values, as float32) and the brain mask."""
        with np.load(self.path) as data:
            return data["errors"].astype(np.float32), data["brain"]


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
    zscores["ztail"][index] = [f["ztail"] for f in features]
    if len(items) < MIN_NOISE_FIT_CONTROLS or not np.all(np.isfinite(noises)):
        return stats
    for mode in NOISE_ADJUSTED:
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
        features: scores of a z-map over a brain mask (default: ``ztail``, ``zmean`` and
            ``zvolume`` unadjusted, as :func:`madgan_core.zmap.brain_features` with the
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
) -> HealthyReference:
    """Score the manifest's healthy ``calib`` scans and store the reference in the model file.

    ``score`` changes the model's score settings (e.g. ``{"top_windows": 5}``) before its
    controls are scored, and is stored with the model, so later scans are scored alike.
    """
    from dataclasses import replace

    from madgan_core.checkpoint import load_model, update_checkpoint

    chosen = calibration_rows(rows)
    if not chosen:
        raise MadganError("the manifest has no healthy scans in the 'calib' split", model_path)
    model = load_model(model_path, device=device)
    stored = {}
    if score:
        model = replace(model, config=model.config.updated({"score": score}, source=""))
        stored["config"] = model.config.to_dict()
    reference = build_reference(model, chosen, progress, precision, batch_size)
    update_checkpoint(model_path, healthy_reference=reference.to_dict(), **stored)
    return reference
