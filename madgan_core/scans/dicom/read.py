"""Read one DICOM series as a :class:`~madgan_core.scans.scan.Scan`, like the NIfTI path does.

The images, ordered by position along the slice normal, become a volume whose
voxel axes are (column, row, slice), with RescaleSlope and RescaleIntercept
applied per image and the affine of :func:`~madgan_core.scans.dicom.geometry.stack_geometry`.
From there the volume takes the NIfTI path (:meth:`Scan.from_array`): the same
checks and the same reorientation to RAS+. The scan keeps a
:class:`DicomSource`, which names it without patient identifiers and lets
results be written back as DICOM on the source's frame of reference.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from madgan_core.errors import ScanError
from madgan_core.scans.dicom.files import split_selector
from madgan_core.scans.dicom.naming import without_quoted_values
from madgan_core.scans.dicom.series import SeriesInfo, find_series, pick_series
from madgan_core.scans.scan import Scan


@dataclass(frozen=True)
class SliceRef:
    """The image behind one slice of the volume: SOP class and instance, frame (multi-frame)."""

    sop_class_uid: str
    sop_instance_uid: str
    frame: int | None


@dataclass(frozen=True)
class DicomSource:
    """Where a scan read from DICOM came from: enough to reference it, nothing to show.

    Attributes:
        name: the scan's opaque name (description and UID hash; see ``series_name``).
        series_uid, study_uid, frame_of_reference_uid: the source's UIDs.
        description: SeriesDescription (patient identifiers removed).
        sequence: guessed sequence (``T1``, ``T1c``, ...; ``""`` if unknown).
        modality: ``MR``, ``CT``, ...
        files: the series' files.
        slices: the image behind each slice ``k`` of the native grid (voxel axis 2).
        headers: the files' headers without pixel data, in the order of ``files``
            (they hold patient identifiers: copy them into DICOM outputs, never print them).
    """

    name: str
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    description: str
    sequence: str
    modality: str
    files: tuple[Path, ...]
    slices: tuple[SliceRef, ...]
    headers: tuple[Dataset, ...] = field(repr=False, compare=False)


def load_series(
    source: str | os.PathLike | Sequence[str | os.PathLike], select: str | None = None
) -> Scan:
    """Read a DICOM series as a RAS+ :class:`Scan`.

    Args:
        source: a folder (searched recursively), a file, or a list of files. A folder
            may end in ``::SELECT`` (see ``select``).
        select: the series to read, by SeriesInstanceUID or SeriesDescription; by
            default the only series, or the only readable T1-like one.

    Raises:
        ScanError: naming the folder and the series, when nothing or several series
            qualify, or the chosen one is no regular 3-D volume.
    """
    if isinstance(source, str | os.PathLike):
        given = Path(os.fspath(source))  # the scan's path, selector included
        source, in_path = split_selector(source)
        select = select or in_path
        where = source
    else:
        where = given = Path(os.fspath(source[0])).parent if len(source) else Path(".")
    series = find_series(source)
    return read_series(pick_series(series, select, where), given)


def series_name_of(source: str | os.PathLike) -> str:
    """The name :func:`load_series` gives ``source``'s series, read from headers alone."""
    folder, select = split_selector(source)
    return pick_series(find_series(folder), select, folder).name


@without_quoted_values
def read_series(info: SeriesInfo, where: str | os.PathLike | None = None) -> Scan:
    """Read the pixels of a described series into a :class:`Scan` (``path`` is ``where``)."""
    where = Path(where) if where is not None else info.files[0].parent
    if info.problem is not None or info.geometry is None:
        raise ScanError(f"series {info.label} {info.problem}", where)
    order = info.geometry.order
    slot = np.empty(len(order), dtype=int)
    slot[order] = np.arange(len(order))
    stack = np.empty((len(order), info.rows, info.columns), dtype=np.float32)
    by_file: dict[int, list[int]] = {}
    for index, frame in enumerate(info.frames):
        by_file.setdefault(frame.file, []).append(index)
    for file_index, frame_indices in by_file.items():
        pixels = _pixels(info, file_index, where)
        for index in frame_indices:
            frame = info.frames[index]
            image = pixels[(frame.number or 1) - 1]
            if image.shape != (info.rows, info.columns):
                raise ScanError(
                    f"series {info.label}: {info.files[file_index].name} holds pixel data of "
                    f"shape {image.shape}, not the {info.rows} x {info.columns} its header declares",
                    where,
                )
            values = image.astype(np.float64) * frame.slope + frame.intercept
            stack[slot[index]] = values
    try:
        # voxel axes (column, row, slice), as the affine has them
        scan = Scan.from_array(stack.transpose(2, 1, 0), info.geometry.affine)
    except ScanError as exc:
        raise ScanError(f"series {info.label}: {exc}", where) from None
    return dataclasses.replace(scan, path=where, dicom=_source(info))


def _pixels(info: SeriesInfo, file_index: int, where: Path) -> np.ndarray:
    """The file's images as ``(frames, rows, columns)`` stored values."""
    path = info.files[file_index]
    try:
        ds = dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom's decoders raise many types on damaged data
        text = " ".join(str(exc).split())[:200]
        raise ScanError(
            f"series {info.label}: the pixel data of {path.name} cannot be read "
            f"({type(exc).__name__}: {text})",
            where,
        ) from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if pixels.ndim == 2 and frames == 1:
        pixels = pixels[None]
    if pixels.ndim != 3 or len(pixels) != frames:
        raise ScanError(
            f"series {info.label}: {path.name} holds pixel data of shape {pixels.shape}, "
            f"not {frames} grayscale image(s)",
            where,
        )
    return pixels


def _source(info: SeriesInfo) -> DicomSource:
    first = info.headers[0]
    slices = []
    for index in info.geometry.order:
        frame = info.frames[int(index)]
        header = info.headers[frame.file]
        slices.append(
            SliceRef(
                str(header.get("SOPClassUID", "")),
                str(header.get("SOPInstanceUID", "")),
                frame.number,
            )
        )
    return DicomSource(
        name=info.name,
        series_uid=info.uid,
        study_uid=str(first.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
        description=info.description,
        sequence=info.sequence,
        modality=info.modality,
        files=tuple(info.files),
        slices=tuple(slices),
        headers=tuple(info.headers),
    )
