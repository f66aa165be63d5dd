"""Where DICOM files are: folders walked, files recognised, headers read, series selectors split."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from madgan_core.errors import ScanError

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
SELECT_SEPARATOR = "::"
DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"  # DICOMDIR: an index, not an object to read
DEFER_BYTES = 4096  # large header values (private blobs) are read only if asked for


def split_selector(path: str | os.PathLike) -> tuple[Path, str | None]:
    """``"study::T1 MPRAGE"`` -> ``(Path("study"), "T1 MPRAGE")``; other paths have no selector."""
    text = os.fspath(path)
    if SELECT_SEPARATOR in text:
        base, select = text.rsplit(SELECT_SEPARATOR, 1)
        if base and select.strip():
            return Path(base), select.strip()
    return Path(text), None


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether a file starts like DICOM (the ``DICM`` marker) or has a DICOM suffix."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    return _has_marker(path)


def is_dicom_path(path: str | os.PathLike, look_inside: bool = True) -> bool:
    """Whether ``path`` is for the DICOM reader: a folder, ``folder::series``, or a DICOM file.

    With ``look_inside`` a folder counts only if it holds DICOM files (:func:`has_dicom`).
    """
    base, select = split_selector(path)
    if base.is_dir():
        return not look_inside or has_dicom(base)
    if select is not None or not base.is_file():
        return False
    return is_dicom_file(base)


def has_dicom(folder: str | os.PathLike, limit: int = 2000) -> bool:
    """Whether a folder (or a sub-folder) holds a file with the ``DICM`` marker.

    Looks at no more than ``limit`` files, so a large folder of something else answers fast.
    """
    for i, path in enumerate(walk(Path(folder))):
        if i >= limit:
            return False
        if _has_marker(path) or (path.suffix.lower() in DICOM_SUFFIXES and read_header(path)):
            return True
    return False


def files_of(source) -> tuple[Path, list[Path]]:
    """The folder to name in messages, and the files to look at, of a folder, file or list."""
    if isinstance(source, str | os.PathLike):
        where = Path(source)
        if where.is_dir():
            return where, list(walk(where))
        if not where.exists():
            raise ScanError("file or folder not found", where)
        return where, [where]
    paths = [Path(p) for p in source]
    if not paths:
        raise ScanError("no DICOM files given")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ScanError(
            f"file not found (and {len(missing) - 1} more)"
            if len(missing) > 1
            else "file not found",
            missing[0],
        )
    return paths[0].parent, paths


def walk(folder: Path) -> Iterable[Path]:
    """Every file under ``folder``, sorted, without hidden files and folders."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root) / name


def _has_marker(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_header(path: Path) -> Dataset | None:
    """The header of a DICOM file, or ``None`` for anything else.

    Files without the ``DICM`` marker (old exports) are tried only when they have a
    DICOM suffix or none, and kept only if they name a SOP class or a series.
    """
    marked = _has_marker(path)
    if not marked and path.suffix.lower() not in (*DICOM_SUFFIXES, ""):
        return None
    try:
        header = dcmread(path, stop_before_pixels=True, defer_size=DEFER_BYTES, force=not marked)
        if "SOPClassUID" not in header and "SeriesInstanceUID" not in header:
            return None
        header.get("SeriesInstanceUID")  # parse now: a damaged header fails here, not later
    except Exception:  # pydicom raises many types for foreign or damaged files
        return None
    return header
