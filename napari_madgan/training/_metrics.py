"""Read a training run's ``metrics.jsonl`` incrementally (no Qt: plain file bookkeeping)."""

from __future__ import annotations

import json
from pathlib import Path

CURVES = ("loss_critic", "loss_gen_adv", "loss_l1")


class MetricsTail:
    """Follows ``metrics.jsonl`` as the trainer appends to it.

    Only complete lines are parsed; a half-written last line waits for the next
    :meth:`poll`. If the file shrinks (a fresh run in the same folder), reading
    starts over.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: list[dict] = []
        self._offset = 0
        self._partial = b""

    def reset(self) -> None:
        self.records.clear()
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[dict]:
        """New records since the last call."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self._offset:
            self.reset()
        if size == self._offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(size - self._offset)
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        new = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "step" in record:
                new.append(record)
        self.records.extend(new)
        return new

    @property
    def last(self) -> dict | None:
        return self.records[-1] if self.records else None

    def series(self, key: str) -> tuple[list[int], list[float]]:
        steps, values = [], []
        for r in self.records:
            value = r.get(key)
            if isinstance(value, int | float):
                steps.append(int(r["step"]))
                values.append(float(value))
        return steps, values


def latest_preview(out_dir: str | Path) -> Path | None:
    """The newest ``previews/step_XXXXXXX.png`` of a run, if any."""
    previews = sorted(Path(out_dir, "previews").glob("step_*.png"))
    return previews[-1] if previews else None


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def progress_line(record: dict, total_steps: int) -> str:
    """The status line for a metrics record: step of total, speed and time left."""
    speed = record.get("samples_per_s")
    speed_text = f", {speed:.1f} samples/s" if isinstance(speed, int | float) else ""
    return (
        f"Step {record['step']} / {total_steps}{speed_text}, "
        f"time left {format_eta(record.get('eta_s'))}"
    )
