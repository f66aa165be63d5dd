"""The input formats: one registry of scan readers, each declaring the names it reads.

Every question about which paths are scans is answered here: :func:`madgan_core.scans.files.load_scan`
picks its reader with :func:`reader_for`, :func:`~madgan_core.scans.files.is_scan_path` and
:func:`~madgan_core.scans.files.scan_exists` ask the readers, cohort folders are listed by
:func:`file_suffixes`, and the napari plugin's reader patterns are :func:`filename_patterns`
(``napari.yaml`` must list the same; a test compares them).

A reader is a small object following :class:`~madgan_core.scans.reader.ScanReader`; formats
held in one file derive from :class:`~madgan_core.scans.reader.FileReader`, which claims a path
by its suffix. Add a format by appending its reader to :data:`READERS`.
"""

from __future__ import annotations

from madgan_core.scans._dicom import DicomReader
from madgan_core.scans._nibabel import NibabelReader
from madgan_core.scans.reader import PathLike, ScanReader

READERS: list[ScanReader] = [
    NibabelReader("NIfTI", (".nii", ".nii.gz")),
    NibabelReader("MGZ/MGH", (".mgz", ".mgh")),
    DicomReader(),
]
# Files no reader claims are still tried with nibabel (ANALYZE pairs, MINC, ...).
FALLBACK: ScanReader = NibabelReader("nibabel", ())


def reader_for(path: PathLike, look_inside: bool = False) -> ScanReader:
    """The reader of ``path``: the first in :data:`READERS` claiming it, else :data:`FALLBACK`.

    Readers taking folders are asked first: they look at what a path holds (a folder, a
    file's DICOM marker), the others only at its name, so a folder named ``x.nii`` or a
    DICOM file named ``x.nii`` is read as DICOM.
    """
    for reader in sorted(READERS, key=lambda r: not r.takes_folders):
        if reader.claims(path, look_inside):
            return reader
    return FALLBACK


def scan_suffixes() -> tuple[str, ...]:
    """Every suffix a reader declares, in the registry's order."""
    return tuple(s for reader in READERS for s in reader.suffixes)


def file_suffixes() -> tuple[str, ...]:
    """The suffixes of the formats holding a scan in one file (not the slices of a series)."""
    return tuple(s for reader in READERS if not reader.takes_folders for s in reader.suffixes)


def filename_patterns() -> list[str]:
    """The file name patterns of every reader (``*.nii``, ...), as ``napari.yaml`` lists them."""
    return [f"*{suffix}" for suffix in scan_suffixes()]


def format_names() -> str:
    """The formats read, for messages: ``"NIfTI, MGZ/MGH and DICOM"``."""
    names = [reader.name for reader in READERS]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
