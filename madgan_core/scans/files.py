"""Scan files: scans in through the reader registry, native-space NIfTI out (atomically).

Which paths are scans, and who reads them, is the registry's to say
(:mod:`madgan_core.scans.readers`). The :class:`~madgan_core.scans.scan.Scan` type and the
atomic writers live in their own modules (:mod:`madgan_core.scans.scan`,
:mod:`madgan_core.scans.atomic`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from madgan_core.errors import ScanError
from madgan_core.scans import readers
from madgan_core.scans.atomic import atomic_path
from madgan_core.scans.scan import Scan

__all__ = [
    "is_scan_path",
    "load_scan",
    "save_like",
    "save_nifti",
    "scan_exists",
]


def is_scan_path(path: str | Path) -> bool:
    """Whether a reader claims ``path``: a NIfTI/MGZ file name, a DICOM file, or a folder
    holding DICOM (``folder::series`` too)."""
    return any(reader.claims(path, look_inside=True) for reader in readers.READERS)


def scan_exists(path: str | Path) -> bool:
    """Whether a scan file, a folder (a DICOM series) or the folder of ``folder::series`` exists."""
    return any(_on_disk(reader.source(path)) for reader in readers.READERS)


def _on_disk(path: Path) -> bool:
    return path.is_file() or path.is_dir()


def load_scan(path: str | Path) -> Scan:
    """Load a 3-D scan as float32 RAS+, with the registry's reader for ``path``.

    A 4-D image whose 4th axis has length 1 is accepted; other 4-D images,
    2-D images, complex or RGB data, NaN/Inf voxels and constant volumes are
    refused with a :class:`ScanError` naming the file. A folder, a ``.dcm`` file
    or ``folder::series`` is read as a DICOM series (:func:`madgan_core.scans.dicom.load_series`);
    a file no reader claims is tried with nibabel.
    """
    reader = readers.reader_for(path)
    if reader.takes_folders:
        return reader.read(path)
    path = Path(path)
    if not path.exists():
        raise ScanError("file not found", path)
    if path.is_dir():
        raise ScanError("is a directory, not a scan file", path)
    if path.stat().st_size == 0:
        raise ScanError("file is empty", path)
    return reader.read(path)


def save_like(volume: np.ndarray, scan: Scan, path: str | Path, dtype: type = np.float32) -> Path:
    """Write a volume on ``scan``'s RAS+ grid as NIfTI in the scan's native voxel space
    (masks and label volumes as ``np.uint8``)."""
    native = np.asarray(scan.to_native(volume), dtype=dtype)
    img = nib.Nifti1Image(native, scan.native_affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(scan.native_affine, code=1)
    img.header.set_sform(scan.native_affine, code=1)
    return save_nifti(img, path)


def save_nifti(img: nib.Nifti1Image, path: str | Path) -> Path:
    """Write a NIfTI image atomically (temporary file, then rename)."""
    path = Path(path)
    suffix = ".nii.gz" if str(path).endswith(".nii.gz") else path.suffix
    with atomic_path(path, suffix=suffix) as tmp:
        nib.save(img, str(tmp))
    return path
