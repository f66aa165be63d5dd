"""NIfTI / MGZ / DICOM reader: a scan file or series becomes one image layer in the display convention.

The formats are those of madgan_core's reader registry (:mod:`madgan_core.scans.readers`).
Paths that are not scans (wrong suffix) get ``None``, so napari tries other
readers; a folder goes to :mod:`napari_madgan._dicom_reader` when it holds DICOM files.
A file with a scan suffix that cannot be used (corrupt, 4-D with
several volumes, constant, ...) raises its :class:`~madgan_core.errors.ScanError`:
napari shows that message to the user, which says more than "no reader found".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from madgan_core.scans.files import is_scan_path, load_scan
from madgan_core.scans.readers import file_suffixes
from napari_madgan._layers import scan_layer_tuple


def _paths(path: str | Sequence[str]) -> list[str] | None:
    paths = (
        [path] if isinstance(path, str) else list(path) if isinstance(path, list | tuple) else None
    )
    if not paths or not all(isinstance(p, str) for p in paths):
        return None
    return paths


def napari_get_reader(path: str | Sequence[str]) -> Callable | None:
    """:func:`read_scans` when every path is a scan file (NIfTI, MGZ, ...: a one-file format of
    the registry); the DICOM reader for a folder holding DICOM files or for DICOM files; else
    ``None``."""
    paths = _paths(path)
    if paths is None:
        return None
    from napari_madgan._dicom_reader import get_dicom_reader

    dicom = get_dicom_reader(paths)
    if dicom is not None:
        return dicom
    if not all(_is_scan_file(p) for p in paths):
        return None
    return read_scans


def _is_scan_file(path: str) -> bool:
    """A one-file format's name that is not a folder (a folder named ``x.nii`` is someone else's)."""
    return (
        str(path).lower().endswith(file_suffixes())
        and is_scan_path(path)
        and not os.path.isdir(path)
    )


def read_scans(path: str | Sequence[str]) -> list[tuple]:
    """Read one or several scans as image layer data tuples."""
    paths = _paths(path) or []
    return [scan_layer_tuple(load_scan(p)) for p in paths]
