"""SIGINT/SIGTERM during training: the first asks for a checkpoint and a stop, the second gives up."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)


class StopRequest:
    """A flag that the signal handlers (or any caller) set to stop after the current step."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """While active, SIGINT and SIGTERM set ``stop.requested``; a second signal raises
    :class:`KeyboardInterrupt`. The previous handlers come back on exit.

    Signal handlers can only be installed from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.requested:  # second signal: give up at once
            raise KeyboardInterrupt
        log.info("%s received: saving a checkpoint after this step", signal.Signals(signum).name)
        stop.requested = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
