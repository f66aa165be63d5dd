"""Healthy reference: score held-out healthy scans and rank new scans against them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.errors import MadganError

if TYPE_CHECKING:
    from madgan_core.checkpoint import LoadedModel
    from madgan_core.manifest import ManifestRow

# Percentile bands shown to readers.
UNUSUAL_PERCENTILE = 90.0
HIGHLY_UNUSUAL_PERCENTILE = 99.0


@dataclass
class HealthyReference:
    """Score distribution of held-out healthy controls, stored with a model.

    Attributes:
        scores: per scoring mode, the controls' scan scores.
        names: the controls' scan names, in the same order.
    """

    scores: dict[str, np.ndarray]
    names: list[str]

    @property
    def n(self) -> int:
        return len(self.names)

    def percentile(self, score: float, mode: str = "mean") -> float:
        """Percentage of controls scoring at or below ``score`` (0 below all, 100 above all)."""
        values = self.scores.get(mode)
        if values is None or len(values) == 0:
            raise MadganError(f"the healthy reference has no scores for mode {mode!r}")
        return float(100.0 * np.count_nonzero(values <= score) / len(values))

    def percentiles(self, scores: dict[str, float]) -> dict[str, float]:
        return {
            mode: self.percentile(value, mode)
            for mode, value in scores.items()
            if mode in self.scores
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "scores": {mode: [float(v) for v in values] for mode, values in self.scores.items()},
            "names": list(self.names),
        }

    @classmethod
    def from_dict(cls, data: dict) -> HealthyReference:
        scores = {
            mode: np.asarray(values, dtype=np.float64) for mode, values in data["scores"].items()
        }
        return cls(scores=scores, names=[str(n) for n in data["names"]])

    @classmethod
    def from_model(cls, model: LoadedModel) -> HealthyReference | None:
        data = getattr(model, "healthy_reference", None)
        return None if not data else cls.from_dict(data)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_percentile(p: float, n: int) -> str:
    """E.g. ``"98th percentile of 120 healthy controls"``."""
    controls = "healthy control" if n == 1 else "healthy controls"
    return f"{ordinal(int(round(p)))} percentile of {n} {controls}"


def percentile_band(p: float) -> str:
    """Plain-language reading of a percentile against healthy controls."""
    if p >= HIGHLY_UNUSUAL_PERCENTILE:
        return "highly unusual"
    if p >= UNUSUAL_PERCENTILE:
        return "unusual"
    return "within the healthy range"


def build_reference(
    model: LoadedModel,
    scan_paths: Sequence[Path],
    progress: Callable[[int, int], None] | None = None,
) -> HealthyReference:
    """Score healthy scans (no maps) and collect their score distribution."""
    from madgan_core.io import load_scan
    from madgan_core.score import score_scan

    if not scan_paths:
        raise MadganError("no healthy scans to calibrate on")
    names: list[str] = []
    collected: dict[str, list[float]] = {}
    for i, path in enumerate(scan_paths):
        result = score_scan(model, load_scan(path), maps=False)
        names.append(result.name)
        for mode, value in result.scores.items():
            collected.setdefault(mode, []).append(value)
        if progress is not None:
            progress(i + 1, len(scan_paths))
    return HealthyReference({m: np.asarray(v) for m, v in collected.items()}, names)


def calibration_rows(rows: Sequence[ManifestRow]) -> list[ManifestRow]:
    """Healthy scans of the ``calib`` split."""
    return [r for r in rows if r.group == "healthy" and r.split == "calib"]


def calibrate_model(
    model_path: str | Path,
    rows: Sequence[ManifestRow],
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> HealthyReference:
    """Score the manifest's healthy ``calib`` scans and store the reference in the model file."""
    from madgan_core.checkpoint import load_model, update_checkpoint

    chosen = calibration_rows(rows)
    if not chosen:
        raise MadganError("the manifest has no healthy scans in the 'calib' split", model_path)
    model = load_model(model_path, device=device)
    reference = build_reference(model, [r.path for r in chosen], progress)
    update_checkpoint(model_path, healthy_reference=reference.to_dict())
    return reference
