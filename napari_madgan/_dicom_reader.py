"""DICOM reader: a folder of DICOM files (or .dcm files) becomes one image layer.

A folder with one readable series opens it. With several, the user chooses in
a small dialog (:mod:`napari_madgan._series_dialog`), the T1-like series offered
first; series that cannot be read are listed with the reason but cannot be
chosen. The choice logic here is Qt-free: :func:`choose_series` takes the
asking function. Folders without DICOM get ``None`` from
:func:`get_dicom_reader`, so other readers get their turn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from madgan_core.config import SEQUENCES
from madgan_core.scans.dicom import (
    SeriesInfo,
    default_choice,
    find_series,
    has_dicom,
    is_dicom_file,
    pick_series,
    read_series,
)
from napari_madgan._layers import scan_layer_tuple

Ask = Callable[[Sequence[SeriesInfo], int], "int | None"]
NOTHING_CHOSEN = [(None,)]  # napari's "read, but no layers" (the user cancelled)


def get_dicom_reader(paths: list[str]) -> Callable | None:
    """:func:`read_dicom` for a folder holding DICOM files or a list of DICOM files, else ``None``."""
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return read_dicom if has_dicom(paths[0]) else None
    if all(os.path.isfile(p) and is_dicom_file(p) for p in paths):
        return read_dicom
    return None


def read_dicom(path: str | Sequence[str]) -> list[tuple]:
    """The chosen series of a folder or of a list of files, as one image layer."""
    paths = [path] if isinstance(path, str) else list(path)
    source: str | list[str] = paths[0] if len(paths) == 1 else paths
    where = Path(paths[0]) if os.path.isdir(paths[0]) else Path(paths[0]).parent
    series = find_series(source)
    from napari_madgan import _series_dialog

    chosen = choose_series(series, _series_dialog.ask_series, where)
    if chosen is None:
        return NOTHING_CHOSEN
    scan = read_series(chosen, where)
    info = {"sequence": chosen.sequence} if chosen.sequence in SEQUENCES else None
    return [scan_layer_tuple(scan, info=info)]


def choose_series(
    series: Sequence[SeriesInfo], ask: Ask, where: str | os.PathLike | None = None
) -> SeriesInfo | None:
    """The series to open: the only readable one, else the user's choice (``None``: cancelled).

    ``ask(series, default)`` returns the index of the chosen series, or ``None``.
    Without any readable series this raises the reader's refusal.
    """
    readable = [s for s in series if s.usable]
    if len(readable) <= 1:
        return pick_series(series, where=where)
    index = ask(series, default_choice(series))
    if index is None:
        return None
    if not series[index].usable:  # the dialog does not offer these; a caller might
        raise ValueError(f"series {series[index].label} cannot be read: {series[index].problem}")
    return series[index]
