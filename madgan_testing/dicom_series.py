"""Write a volume as a DICOM MR series: a fixture of the tests, screenshots and benchmarks.

A RAS+ volume and its affine become a series of single-frame MR images (one
file per slice) or one enhanced multi-frame MR file, with the geometry in
ImagePositionPatient / ImageOrientationPatient and the intensities stored as
16-bit integers under RescaleSlope / RescaleIntercept. The volume's voxel axes
``(i, j, k)`` are the images' columns, rows and slices, so any affine (axial,
sagittal, oblique, even sheared for a gantry tilt) is written as given.

The patient module is filled with made-up values (:class:`Patient`): nothing
here comes from a real person.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    EnhancedMRImageStorage,
    MRImageStorage,
    generate_uid,
)

from madgan_core.outputs.dicom._write import decimal_string, save_dataset, set_pixels
from madgan_core.scans.dicom.geometry import LPS_FROM_RAS


@dataclass(frozen=True)
class Patient:
    """Made-up patient and study identifiers for a synthetic series."""

    name: str = "PHANTOM^BRAIN"
    id: str = "PHANTOM-0001"
    birth_date: str = "19700101"
    accession: str = "ACC0001"
    study_uid: str = field(default_factory=generate_uid)
    frame_of_reference_uid: str = field(default_factory=generate_uid)


def stored_values(volume: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """The 16-bit integers that hold ``volume`` under ``slope`` and ``intercept``.

    ``slope * stored + intercept`` is the volume rounded to the nearest multiple of ``slope``.
    """
    stored = np.rint((np.asarray(volume, dtype=np.float64) - intercept) / slope)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError(
            f"slope {slope} and intercept {intercept} do not fit the volume in 16 bits"
        )
    return stored.astype(np.int16)


def quantized(volume: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """The volume as a DICOM series written with ``slope`` and ``intercept`` reads back."""
    stored = stored_values(volume, slope, intercept).astype(np.float64)
    return (stored * slope + intercept).astype(np.float32)


def write_series(
    volume: np.ndarray,
    affine: np.ndarray,
    folder: str | Path,
    *,
    description: str = "T1 MPRAGE",
    series_number: int = 1,
    patient: Patient | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    multiframe: bool = False,
    file_names: Sequence[str] | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``volume`` (voxel-to-RAS ``affine``) as a DICOM MR series into ``folder``.

    Args:
        volume: 3-D array; axis 0 becomes the image columns, axis 1 the rows, axis 2 the slices.
        affine: 4x4 voxel-to-world (RAS+, mm) affine of ``volume``.
        folder: where the files go (created if missing).
        description: SeriesDescription.
        series_number: SeriesNumber.
        patient: patient, study and frame of reference (made-up defaults).
        slope, intercept: RescaleSlope and RescaleIntercept of the stored integers.
        multiframe: one enhanced MR file holding every slice as a frame.
        file_names: one name per slice (single-frame), e.g. shuffled; default ``IM0001.dcm``...
        series_uid: SeriesInstanceUID (new by default).

    Returns:
        The files written, in slice order.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {volume.shape}")
    patient = patient or Patient()
    lps = LPS_FROM_RAS @ np.asarray(affine, dtype=float)
    col_step, row_step, slice_step = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    orientation = [*(col_step / np.linalg.norm(col_step)), *(row_step / np.linalg.norm(row_step))]
    spacing = [float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))]
    stored = stored_values(volume, slope, intercept)
    positions = [lps[:3, 3] + k * slice_step for k in range(volume.shape[2])]
    base = _series_dataset(patient, description, series_number, series_uid)
    base.SliceThickness = decimal_string(np.linalg.norm(slice_step))
    folder = Path(folder)
    if multiframe:
        ds = _enhanced(base, stored, orientation, spacing, positions, slope, intercept)
        name = (file_names or ["ENHANCED.dcm"])[0]
        return [save_dataset(ds, folder / name)]
    names = list(file_names) if file_names is not None else _default_names(volume.shape[2])
    if len(names) != volume.shape[2]:
        raise ValueError(f"{len(names)} file names for {volume.shape[2]} slices")
    paths = []
    for k, position in enumerate(positions):
        ds = _copy(base)
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.ImagePositionPatient = [decimal_string(v) for v in position]
        ds.ImageOrientationPatient = [decimal_string(v) for v in orientation]
        ds.PixelSpacing = [decimal_string(v) for v in spacing]
        ds.SliceLocation = decimal_string(
            float(np.dot(position, np.cross(orientation[:3], orientation[3:])))
        )
        ds.RescaleSlope = decimal_string(slope)
        ds.RescaleIntercept = decimal_string(intercept)
        ds.RescaleType = "US"
        set_pixels(ds, stored[:, :, k].T)
        paths.append(save_dataset(ds, folder / names[k]))
    return paths


def _default_names(n: int) -> list[str]:
    return [f"IM{k + 1:04d}.dcm" for k in range(n)]


def _series_dataset(
    patient: Patient,
    description: str,
    series_number: int,
    series_uid: str | None,
) -> Dataset:
    today = "20240101"  # fixed: the same volume gives the same files but for the UIDs
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient.name
    ds.PatientID = patient.id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = "O"
    ds.AccessionNumber = patient.accession
    ds.StudyInstanceUID = patient.study_uid
    ds.StudyDate = today
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.ProtocolName = description
    ds.SeriesDate = today
    ds.Modality = "MR"
    ds.Manufacturer = "napari-madgan phantom"
    ds.FrameOfReferenceUID = patient.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "HEAD"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D"
    ds.EchoTime = "3"
    ds.RepetitionTime = "2000"
    ds.MagneticFieldStrength = "3"
    ds.ContentDate = today
    ds.ContentTime = "120000"
    return ds


def _enhanced(
    base: Dataset,
    stored: np.ndarray,
    orientation: list[float],
    spacing: list[float],
    positions: list[np.ndarray],
    slope: float,
    intercept: float,
) -> Dataset:
    ds = _copy(base)
    ds.SOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(positions)
    ds.ContentQualification = "PRODUCT"
    ds.AcquisitionContrast = "T1"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.ImageComments = ""
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [decimal_string(v) for v in spacing]
    measures.SliceThickness = base.SliceThickness
    shared.PixelMeasuresSequence = [measures]
    plane = Dataset()
    plane.ImageOrientationPatient = [decimal_string(v) for v in orientation]
    shared.PlaneOrientationSequence = [plane]
    rescale = Dataset()
    rescale.RescaleSlope = decimal_string(slope)
    rescale.RescaleIntercept = decimal_string(intercept)
    rescale.RescaleType = "US"
    shared.PixelValueTransformationSequence = [rescale]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k, position in enumerate(positions):
        item = Dataset()
        where = Dataset()
        where.ImagePositionPatient = [decimal_string(v) for v in position]
        item.PlanePositionSequence = [where]
        content = Dataset()
        content.InStackPositionNumber = k + 1
        content.StackID = "1"
        item.FrameContentSequence = [content]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    set_pixels(ds, stored.transpose(2, 1, 0))
    return ds


def _copy(ds: Dataset) -> Dataset:
    return copy.deepcopy(ds)
