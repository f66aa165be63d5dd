"""Run one frozen :class:`TrainRequest` as a ``madgan train`` process and follow it.

The widget hands :meth:`TrainingController.start` a request; the controller reads
nothing else from the form. It launches the process (:class:`TrainingProcess`),
polls ``metrics.jsonl`` and the preview folder on a timer, and reports to a
:class:`TrainingView` (the dock widget) by calling its methods. Closing napari
stops the run, and the trainer saves a checkpoint first
(:class:`~napari_madgan._tasks.WindowTask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qtpy.QtCore import QObject, QTimer

from napari_madgan._guard import guarded
from napari_madgan._tasks import WindowTask
from napari_madgan.training._metrics import MetricsTail, latest_preview, progress_line
from napari_madgan.training._request import TrainRequest
from napari_madgan.training._runner import TrainingProcess

POLL_MS = 500


@dataclass(frozen=True)
class RunEnd:
    """How a run ended.

    Attributes:
        request: the run's request.
        code: the process's exit code.
        stopped: the run was stopped (Stop, or napari closing); Resume continues it.
        last_line: the last line the process wrote ("" for none).
    """

    request: TrainRequest
    code: int
    stopped: bool
    last_line: str = ""

    @property
    def model(self) -> Path | None:
        """The trained model, when the run completed and wrote it."""
        model = self.request.model_path
        return model if self.code == 0 and not self.stopped and model.is_file() else None


class TrainingView(Protocol):
    """What the controller reports to; the controller calls these on the GUI thread."""

    def show_status(self, text: str) -> None:
        """The one-line status (the controller's own errors go there too)."""

    def append_log(self, text: str) -> None:
        """New output text of the process."""

    def show_progress(self, metrics: MetricsTail, line: str) -> None:
        """New metrics records were read; ``line`` is the status line for the last one."""

    def show_preview(self, path: Path) -> bool | None:
        """A new preview image; True once shown (a half-written file is offered again)."""

    def run_ended(self, end: RunEnd) -> None:
        """The process has exited."""


class TrainingController:
    """Starts, follows, stops and resumes one training run at a time.

    Args:
        viewer: the napari viewer (or the public proxy napari hands a plugin widget).
        view: what the run is reported to.
        parent: the Qt object that owns the process and the timer.
    """

    def __init__(self, viewer, view: TrainingView, parent: QObject | None = None):
        self.viewer = viewer
        self.view = view
        self.runner = TrainingProcess(parent)
        self.runner.output.connect(self._output)
        self.runner.finished.connect(self._finished)
        self.timer = QTimer(parent)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.request: TrainRequest | None = None
        self.metrics: MetricsTail | None = None
        self.preview: Path | None = None  # the preview on screen
        self._last_line = ""
        self._task: WindowTask | None = None

    @property
    def running(self) -> bool:
        return self.runner.running

    def show_status(self, text: str) -> None:
        self.view.show_status(text)

    def start(self, request: TrainRequest, resume: bool = False) -> None:
        """Launch ``request`` (with ``--resume`` to continue from its last checkpoint).

        Raises:
            OSError, RuntimeError: the process could not be started.
        """
        self.request = request
        self.metrics = MetricsTail(Path(request.out) / "metrics.jsonl")
        self.preview = None
        self._last_line = ""
        self.runner.start(request, resume=resume)
        self._task = WindowTask(self.viewer, f"training into {request.out}", self.stop_and_wait)
        self.timer.start()

    def stop(self) -> bool:
        """Ask the trainer to save a checkpoint and exit; False when nothing runs."""
        if not self.running:
            return False
        self.runner.stop()
        return True

    def stop_and_wait(self) -> None:
        """Stop and block until the checkpoint is written (used when napari closes)."""
        self.timer.stop()
        self.runner.stop_and_wait()

    @guarded
    def poll(self) -> None:
        """Read new metrics and the newest preview, and report them."""
        if self.metrics is None or self.request is None:
            return
        if self.metrics.poll():
            self.view.show_progress(
                self.metrics, progress_line(self.metrics.last, self.request.steps)
            )
        preview = latest_preview(self.request.out)
        if preview is not None and preview != self.preview and self.view.show_preview(preview):
            self.preview = preview

    @guarded
    def _output(self, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            self._last_line = lines[-1]
        self.view.append_log(text)

    @guarded
    def _finished(self, code: int) -> None:
        self.timer.stop()
        self.poll()
        if self._task is not None:
            self._task.done()
            self._task = None
        if self.request is not None:
            self.view.run_ended(RunEnd(self.request, code, self.runner.stopping, self._last_line))
