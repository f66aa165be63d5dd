"""What a scan reader is: the :class:`ScanReader` protocol, and :class:`FileReader` for one-file formats.

The registry of readers is :mod:`madgan_core.scans.readers`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from madgan_core.scans.scan import Scan

PathLike = str | os.PathLike


class ScanReader(Protocol):
    """One input format: the names it reads, and how it reads them.

    Attributes:
        name: the format as users know it (``"NIfTI"``).
        suffixes: lower-case endings of the file names it reads (``".nii.gz"``); each is
            one suffix, or one followed by ``.gz``, so that ``scan_stem`` drops it.
        takes_folders: whether a folder (or ``folder::series``) is one scan of this format.
            Its files are then parts of a scan, not scans, so folder listings skip them.
    """

    name: str
    suffixes: tuple[str, ...]
    takes_folders: bool

    def claims(self, path: PathLike, look_inside: bool = True) -> bool:
        """Whether ``path`` is for this reader.

        With ``look_inside`` a reader may look into a folder to decide (a folder reader claims
        only folders holding its format); without, it takes any folder, so that
        :func:`~madgan_core.scans.files.load_scan` hands it one and it says what is wrong.
        """
        ...

    def source(self, path: PathLike) -> Path:
        """The file or folder that ``path`` names on disk (a folder reader drops a selector)."""
        ...

    def read(self, path: PathLike) -> Scan:
        """The scan at ``path``, or a :class:`~madgan_core.errors.ScanError` naming the file.

        A reader without ``takes_folders`` is handed an existing, non-empty file.
        """
        ...


@dataclass(frozen=True)
class FileReader:
    """Base of the formats holding a scan in one file: a path is theirs by its suffix.

    A subclass implements :meth:`read`.
    """

    name: str
    suffixes: tuple[str, ...]
    takes_folders: ClassVar[bool] = False

    def claims(self, path: PathLike, look_inside: bool = True) -> bool:
        return os.fspath(path).lower().endswith(self.suffixes)

    def source(self, path: PathLike) -> Path:
        return Path(path)

    def read(self, path: PathLike) -> Scan:
        raise NotImplementedError(f"{type(self).__name__} reads no files")
