"""Keep a widget's errors inside the widget.

PyQt aborts the whole process when a slot raises (``qFatal`` on an unhandled
exception in a virtual or a slot), which would take the user's viewer and their
unsaved layers with it. Every slot a widget connects goes through
:func:`guarded`: the error is logged with its traceback, shown in napari's
notifications and, where the widget has one (``show_status``), on its status line.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from madgan_core.errors import MadganError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def describe_error(exc: BaseException) -> str:
    """One line for the user: a product error as it is, anything else with its type."""
    if isinstance(exc, MadganError | OSError | ValueError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def report_error(widget: object, exc: BaseException) -> None:
    """Show ``exc`` on the widget's status line (if any) and as a napari notification."""
    from napari.utils.notifications import show_error

    text = describe_error(exc)
    if not isinstance(exc, MadganError | OSError | ValueError):
        log.error("napari-madgan: %s", text, exc_info=exc)
    show_status = getattr(widget, "show_status", None)
    if show_status is not None:
        with contextlib.suppress(RuntimeError):  # the widget is gone (window closing)
            show_status(f"Error: {text}")
    show_error(f"MADGAN: {text}")


def _is_deleted_widget_error(exc: BaseException) -> bool:
    """A slot that ran after its Qt widget was deleted (the dock or window closed)."""
    return isinstance(exc, RuntimeError) and "has been deleted" in str(exc)


def guarded(method: F) -> F:
    """Decorate a widget method that serves as a slot: signal arguments it does not take
    are dropped, and an exception is reported on the widget instead of reaching Qt.

    It stays a method, so napari's event emitters hold it weakly, as they hold any
    bound method, and a closed widget is not kept alive by the viewer's events.
    """
    params = list(inspect.signature(method).parameters.values())[1:]  # without self
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        accepted = None
    else:
        accepted = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *(args if accepted is None else args[:accepted]))
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed silently
            if _is_deleted_widget_error(exc):
                log.debug("napari-madgan: slot %s ran after its widget closed", method.__name__)
            else:
                report_error(self, exc)
            return None

    return wrapper  # type: ignore[return-value]
