"""Scan I/O with nibabel: RAS+ volumes in, native-space NIfTI out, atomic writes.

The :class:`~madgan_core.scans.scan.Scan` type and the atomic writers live in their own
modules (:mod:`madgan_core.scans.scan`, :mod:`madgan_core.scans.atomic`), so the DICOM reader can
use them without importing this module, which dispatches to it.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from madgan_core.errors import ScanError
from madgan_core.scans.atomic import atomic_path, atomic_write_text, atomic_write_with
from madgan_core.scans.scan import SCAN_SUFFIXES, Scan, _describe, _to_scan, scan_stem

__all__ = [
    "SCAN_SUFFIXES",
    "Scan",
    "atomic_path",
    "atomic_write_text",
    "atomic_write_with",
    "is_scan_path",
    "load_scan",
    "save_like",
    "save_nifti",
    "scan_exists",
    "scan_stem",
]


def is_scan_path(path: str | Path) -> bool:
    """A NIfTI/MGZ file name, a DICOM file, or a folder holding DICOM (``folder::series`` too)."""
    if str(path).lower().endswith(SCAN_SUFFIXES):
        return True
    from madgan_core.scans.dicom import is_dicom_path

    return is_dicom_path(path)


def scan_exists(path: str | Path) -> bool:
    """Whether a scan file, a folder (a DICOM series) or the folder of ``folder::series`` exists."""
    from madgan_core.scans.dicom import split_selector

    base, _ = split_selector(path)
    return base.is_file() or base.is_dir()


def load_scan(path: str | Path) -> Scan:
    """Load a 3-D scan (anything nibabel reads, or a DICOM series) as float32 RAS+.

    A 4-D image whose 4th axis has length 1 is accepted; other 4-D images,
    2-D images, complex or RGB data, NaN/Inf voxels and constant volumes are
    refused with a :class:`ScanError` naming the file. A folder, a ``.dcm`` file
    or ``folder::series`` is read as a DICOM series (:func:`madgan_core.scans.dicom.load_series`).
    """
    from madgan_core.scans.dicom import is_dicom_path, load_series

    if is_dicom_path(path, look_inside=False):
        return load_series(path)
    path = Path(path)
    if not path.exists():
        raise ScanError("file not found", path)
    if path.is_dir():
        raise ScanError("is a directory, not a scan file", path)
    if path.stat().st_size == 0:
        raise ScanError("file is empty", path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for foreign files
        raise ScanError(f"not a readable image ({_describe(exc)})", path) from None
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise ScanError("not a spatial image", path)
    return _to_scan(img, path)


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
