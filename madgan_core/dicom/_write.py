"""Writing DICOM files: decimal strings and atomic saves shared by the exporters."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from madgan_core.io import atomic_write_with


def decimal_string(value: float) -> str:
    """A number as a DICOM decimal string (DS holds at most 16 characters)."""
    text = f"{float(value):.10g}"
    return text if len(text) <= 16 else f"{float(value):.8g}"


def save_dataset(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (explicit VR little endian), atomically."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return atomic_write_with(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
