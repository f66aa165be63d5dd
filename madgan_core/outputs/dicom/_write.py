"""Writing DICOM files: decimal strings and atomic saves shared by the exporters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from madgan_core.scans.atomic import atomic_write_with

# The Manufacturer every object written back names.
MANUFACTURER = "napari-madgan"
# Copied from the source so a PACS files the results with the scan (and nowhere else).
PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
)


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


def set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """The Image Pixel module from an array of stored values.

    ``pixels`` is ``(rows, columns)`` or ``(frames, rows, columns)`` of int16 (signed
    16-bit grayscale), or ``(rows, columns, 3)`` of uint8 (RGB).
    """
    colour = pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[-1] == 3
    if not colour and pixels.dtype != np.int16:
        raise ValueError(f"expected int16 or RGB uint8 pixels, got {pixels.dtype} {pixels.shape}")
    rows, columns = pixels.shape[:2] if colour else pixels.shape[-2:]
    ds.Rows, ds.Columns = int(rows), int(columns)
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    bits = 8 if colour else 16
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0 if colour else 1
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
