"""The bundled models as the widgets show them: display name, file and intended use.

A thin view of :mod:`madgan_core.model.bundled`; nothing here is cached, so the
registry is read afresh whenever a widget is built.
"""

from __future__ import annotations

from pathlib import Path

from madgan_core.errors import CheckpointError
from madgan_core.model import bundled
from madgan_core.model.bundled import BundledModel


def installed() -> list[tuple[BundledModel, Path]]:
    """The bundled models this installation holds, with their files, in registry order."""
    found = []
    for name in bundled.bundled_names():
        try:
            found.append((bundled.bundled_entry(name), bundled.bundled_path(name)))
        except CheckpointError:
            continue
    return found


def default() -> tuple[BundledModel, Path] | None:
    """The default bundled model and its file, or None where none is installed."""
    path = bundled.default_model()
    if path is None:
        return None
    entry = bundled.bundled_entry_of(path)
    return None if entry is None else (entry, path)


def entry_of(path: str | Path) -> BundledModel | None:
    """The bundled model whose installed file ``path`` is (None for any other file)."""
    return bundled.bundled_entry_of(path) if str(path).strip() else None


def tooltip(entry: BundledModel, path: str | Path) -> str:
    """A bundled model's file and what it is for."""
    return f"{entry.display_name}\n{path}\nIntended use: {entry.intended_use}."
