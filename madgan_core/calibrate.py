"""Healthy reference: score held-out healthy scans and rank new scans against them."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from madgan_core.errors import MadganError
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

# Percentile bands shown to readers.
UNUSUAL_PERCENTILE = 90.0
HIGHLY_UNUSUAL_PERCENTILE = 99.0
# z-statistics need 3 controls of a sequence; the noise-adjusted modes a few more for their fit.
MIN_ZSTATS_CONTROLS = 3
MIN_NOISE_FIT_CONTROLS = 6


@dataclass
class HealthyReference:
    """Score distribution of held-out healthy controls, stored with a model.

    Attributes:
        scores: per scoring mode, the controls' scan scores.
        names: the controls' scan names, in the same order.
        sequences: the controls' sequences (T1, T1c), in the same order.
        zstats: per sequence, healthy ℓ2 statistics for z-maps (:mod:`madgan_core.zmap`).
    """

    scores: dict[str, np.ndarray]
    names: list[str]
    sequences: list[str] = field(default_factory=list)
    zstats: dict[str, ZStats] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.names)

    def _controls(self, sequence: str | None) -> np.ndarray:
        """Indices of the controls of ``sequence`` (all controls if it has none)."""
        chosen = [i for i, s in enumerate(self.sequences) if s == sequence]
        return np.asarray(chosen if chosen else range(self.n), dtype=np.int64)

    def n_for(self, sequence: str | None = None) -> int:
        return len(self._controls(sequence))

    def _control_scores(self, mode: str, sequence: str | None) -> np.ndarray:
        """The ``mode`` scores of the controls of ``sequence``; NaN (no statistics) left out."""
        values = self.scores.get(mode)
        if values is None or len(values) == 0:
            return np.zeros(0)
        values = values[self._controls(sequence)]
        return values[np.isfinite(values)]

    def percentile(self, score: float, mode: str = "mean", sequence: str | None = None) -> float:
        """Percentage of controls scoring at or below ``score`` (0 below all, 100 above all)."""
        values = self._control_scores(mode, sequence)
        if len(values) == 0:
            raise MadganError(f"the healthy reference has no scores for mode {mode!r}")
        return float(100.0 * np.count_nonzero(values <= score) / len(values))

    def percentiles(
        self, scores: dict[str, float], sequence: str | None = None
    ) -> dict[str, float]:
        """Percentiles of each mode in ``scores`` that the controls of ``sequence`` have."""
        return {
            mode: self.percentile(value, mode, sequence)
            for mode, value in scores.items()
            if len(self._control_scores(mode, sequence))
        }

    def zstats_for(self, sequence: str | None) -> ZStats | None:
        """Statistics of ``sequence``; with no sequence given, the only ones there are."""
        if sequence is None:
            return next(iter(self.zstats.values())) if len(self.zstats) == 1 else None
        return self.zstats.get(sequence)

    def to_dict(self) -> dict[str, object]:
        return {
            "scores": {mode: [float(v) for v in values] for mode, values in self.scores.items()},
            "names": list(self.names),
            "sequences": list(self.sequences),
            "zstats": {seq: stats.to_dict() for seq, stats in self.zstats.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> HealthyReference:
        scores = {
            mode: np.asarray(values, dtype=np.float64) for mode, values in data["scores"].items()
        }
        names = [str(n) for n in data["names"]]
        sequences = [str(s) for s in data.get("sequences", [])]
        zstats = {seq: ZStats.from_dict(d) for seq, d in (data.get("zstats") or {}).items()}
        return cls(scores=scores, names=names, sequences=sequences, zstats=zstats)

    @classmethod
    def from_model(cls, model: LoadedModel) -> HealthyReference | None:
        data = getattr(model, "healthy_reference", None)
        return None if not data else cls.from_dict(data)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_percentile(p: float, n: int) -> str:
    """E.g. ``"98th percentile of 120 healthy controls"``; the extremes say so plainly."""
    controls = "healthy control" if n == 1 else "healthy controls"
    if p >= 100.0:
        return f"above all {n} {controls}"
    if p <= 0.0:
        return f"below all {n} {controls}"
    return f"{ordinal(int(math.floor(p)))} percentile of {n} {controls}"


def percentile_band(p: float) -> str:
    """Plain-language reading of a percentile against healthy controls."""
    if p >= HIGHLY_UNUSUAL_PERCENTILE:
        return "highly unusual"
    if p >= UNUSUAL_PERCENTILE:
        return "unusual"
    return "within the healthy range"


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
    from madgan_core.score import slab_scorer

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
            builders.setdefault(row.sequence, ZStatsBuilder(shape)).add(stored)
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
    features = []
    for item in items:
        err, brain = item.load()  # the very values added, so leaving it out is exact
        z = builder.finalize(leave_out=err).zmap(err)
        features.append(brain_features(z, brain))
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
