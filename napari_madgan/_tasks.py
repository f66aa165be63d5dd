"""Tie long-running work to the napari window's lifetime.

napari's main window asks registered tasks to cancel when it closes (and lists
busy ones in its close confirmation). We register ours there, so closing
napari stops scoring workers and training processes cleanly, and also hook
``QApplication.aboutToQuit`` for the case without a window.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from qtpy.QtWidgets import QApplication

log = logging.getLogger(__name__)


class WindowTask:
    """A busy task registered with the viewer's window until :meth:`done` is called.

    Args:
        viewer: the napari viewer (may be ``None`` outside napari).
        description: shown in napari's close confirmation.
        cancel: called when the window closes while the task is busy; must stop the work.
    """

    def __init__(self, viewer, description: str, cancel: Callable[[], object]):
        self._cancel = cancel
        window = getattr(viewer, "window", None)
        # Widgets opened from the Plugins menu hold a public-only proxy of the viewer. The
        # task registry is napari's private API: use it on the real window where it exists,
        # and rely on ``aboutToQuit`` alone where a future napari has removed it.
        self._window = getattr(window, "__wrapped__", window)
        self._id = None
        self._finished = False
        register = getattr(self._window, "_register_task_status", None)
        if register is not None:
            from napari.utils.task_status import Status

            self._id = register(
                "napari-madgan", Status.BUSY, description, cancel_callback=self.cancel
            )
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.cancel)

    def cancel(self) -> bool:
        if self._finished:
            return True
        try:
            self._cancel()
        finally:
            self.done(cancelled=True)
        return True

    def done(self, cancelled: bool = False) -> None:
        if self._finished:
            return
        self._finished = True
        app = QApplication.instance()
        if app is not None:
            with contextlib.suppress(TypeError, RuntimeError):
                app.aboutToQuit.disconnect(self.cancel)
        update = getattr(self._window, "_update_task_status", None)
        if update is not None and self._id is not None:
            from napari.utils.task_status import Status

            update(self._id, Status.CANCELLED if cancelled else Status.COMPLETED, "")
