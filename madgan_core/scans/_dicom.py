"""The DICOM reader of the registry: a series from a folder, ``folder::series`` or DICOM files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from madgan_core.scans.dicom import is_dicom_path, load_series, split_selector
from madgan_core.scans.dicom.files import DICOM_SUFFIXES
from madgan_core.scans.reader import PathLike
from madgan_core.scans.scan import Scan


@dataclass(frozen=True)
class DicomReader:
    """DICOM series (:mod:`madgan_core.scans.dicom`): a folder, searched recursively,
    ``folder::series`` to pick one of its series, or DICOM files (by suffix or ``DICM`` marker)."""

    name: str = "DICOM"
    suffixes: tuple[str, ...] = DICOM_SUFFIXES
    takes_folders: ClassVar[bool] = True

    def claims(self, path: PathLike, look_inside: bool = True) -> bool:
        return is_dicom_path(path, look_inside=look_inside)

    def source(self, path: PathLike) -> Path:
        return split_selector(path)[0]

    def read(self, path: PathLike) -> Scan:
        return load_series(path)
