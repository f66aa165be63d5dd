"""Run ``madgan train`` as a child process without blocking napari (QProcess)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from qtpy.QtCore import QObject, QProcess, Signal

from napari_madgan.training._request import TrainRequest


class TrainingProcess(QObject):
    """One ``madgan train`` child process.

    Signals:
        output(str): new stdout/stderr text.
        finished(int): exit code once the process has ended (also after a stop).
    """

    output = Signal(str)
    finished = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.stopping = False

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, request: TrainRequest, resume: bool = False) -> None:
        if self.running:
            raise RuntimeError("a training process is already running")
        self.stopping = False
        env = self.process.processEnvironment()
        if env.isEmpty():
            from qtpy.QtCore import QProcessEnvironment

            env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        Path(request.out).mkdir(parents=True, exist_ok=True)
        self.process.start(sys.executable, request.arguments(resume))

    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and exit (SIGINT; terminate() on Windows)."""
        if not self.running:
            return
        self.stopping = True
        pid = int(self.process.processId())
        if os.name == "posix" and pid > 0:
            os.kill(pid, signal.SIGINT)
        else:
            self.process.terminate()

    def stop_and_wait(self, timeout_ms: int = 60_000) -> bool:
        """Stop, wait for the checkpoint to be written; kill only if it never exits."""
        if not self.running:
            return True
        self.stop()
        if self.process.waitForFinished(timeout_ms):
            return True
        self.process.kill()
        return self.process.waitForFinished(5_000)

    def _read(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        if text:
            self.output.emit(text)

    def _finished(self, code: int, _status=None) -> None:
        self._read()
        self.finished.emit(int(code))
