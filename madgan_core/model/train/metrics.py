"""Training metrics: running means written to ``metrics.jsonl`` (and TensorBoard), step timing."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from madgan_core.scans.atomic import atomic_write_text

log = logging.getLogger(__name__)


class MetricsLog:
    """Sums step metrics and writes their means as one JSON line per ``record``.

    Args:
        path: ``metrics.jsonl``.
        write: whether this process writes files (rank 0 of a DDP run).
        tensorboard: also log scalars to ``tensorboard/`` beside ``path`` (if installed).
        start_step: steps already done; TensorBoard drops its events past it.
    """

    def __init__(
        self, path: Path, write: bool = True, tensorboard: bool = False, start_step: int = 0
    ):
        self.path = path
        self.write = write
        self._sums: dict[str, float | torch.Tensor] = {}
        self._count = 0
        self._writer = _tensorboard(path.parent, start_step) if tensorboard and write else None

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for k, v in metrics.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1

    def record(self, step: int, timing: dict[str, float], lr: float) -> dict[str, Any]:
        """Write the means since the last record; return the record."""
        means = {k: float(v) / self._count for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        record = {
            "step": step,
            **{k: round(v, 6) for k, v in means.items()},
            "step_time": round(timing["step_time"], 4),
            "samples_per_s": round(timing["samples_per_s"], 2),
            "lr": lr,
            "eta_s": round(timing["eta_s"], 1),
            "time": time.time(),
        }
        if self.write:
            with self.path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if self._writer is not None:
                for k, v in means.items():
                    self._writer.add_scalar(f"train/{k}", v, step)
        return record

    def truncate(self, step: int) -> None:
        """Drop lines past ``step`` (written after the checkpoint a run resumes from)."""
        if not self.write or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class StepTimer:
    """Smoothed seconds per step, throughput and time left."""

    def __init__(self, total_steps: int, samples_per_step: int):
        self.total_steps = total_steps
        self.samples_per_step = samples_per_step
        self.step_time: float | None = None

    def tick(self, elapsed: float, step: int) -> dict[str, float]:
        self.step_time = elapsed if self.step_time is None else 0.9 * self.step_time + 0.1 * elapsed
        return {
            "step_time": self.step_time,
            "samples_per_s": self.samples_per_step / self.step_time,
            "eta_s": self.step_time * (self.total_steps - step),
        }


def eta_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _tensorboard(out_dir: Path, start_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("TensorBoard is not installed; --tensorboard ignored")
        return None
    return SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_step or None)
