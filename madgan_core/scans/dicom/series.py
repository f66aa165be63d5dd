"""Find DICOM series: files grouped by SeriesInstanceUID, described, checked and picked.

:func:`find_series` reads the headers (not the pixels) of every DICOM file in a
folder (recursively) or a list of files and groups them by SeriesInstanceUID.
Each :class:`SeriesInfo` says what the series is (description, sequence, slice
count, spacing) and, when it cannot be read as one 3-D volume, why not
(:attr:`SeriesInfo.problem`): non-image objects, colour images, pixel data no
installed decoder handles, images without patient geometry, and every stack
problem of :mod:`madgan_core.scans.dicom.geometry`. :func:`pick_series` chooses one
by UID or description, or by itself when there is one T1-like series.

Privacy: a series is named by its description and a hash of its UID
(:func:`~madgan_core.scans.dicom.naming.series_name`), never by patient identifiers,
and nothing here logs or formats PatientName, PatientID, PatientBirthDate or
AccessionNumber. Finding files is :mod:`.files`' job; names and sequences are
:mod:`.naming`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from madgan_core.errors import ScanError
from madgan_core.scans.dicom.files import (
    DIRECTORY_SOP_CLASS,
    SELECT_SEPARATOR,
    files_of,
    read_header,
)
from madgan_core.scans.dicom.frames import Frame, frames_of
from madgan_core.scans.dicom.geometry import StackError, StackGeometry, stack_geometry
from madgan_core.scans.dicom.naming import (
    guess_sequence,
    header_text,
    patient_identifiers,
    series_name,
    without_quoted_values,
)

T1_LIKE = ("T1", "T1c")


@dataclass
class SeriesInfo:
    """One series found on disk, described from its headers.

    Attributes:
        uid: SeriesInstanceUID.
        description: SeriesDescription (or ProtocolName), stripped of patient identifiers.
        number: SeriesNumber, if any.
        modality: Modality (``MR``, ``CT``, ...).
        sop_class: SOP class name (``MR Image Storage``, ...).
        sequence: guessed from the description: ``T1``, ``T1c``, ``T2``, ``FLAIR``, ``DWI``,
            ``localizer`` or ``""``.
        files: the series' files, sorted by path.
        frames: every 2-D image, in file order.
        rows, columns: image size.
        problem: why the series cannot be read as one 3-D volume; ``None`` if it can.
        geometry: slice order and affine when there is no problem.
        headers: each file's header, without pixel data (kept to write results that
            reference the series; holds patient identifiers, never shown).
    """

    uid: str
    description: str
    number: int | None
    modality: str
    sop_class: str
    sequence: str
    files: list[Path]
    frames: list[Frame]
    rows: int
    columns: int
    problem: str | None = None
    geometry: StackGeometry | None = None
    headers: list[Dataset] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        """An opaque, file-name-safe key: the description and a hash of the UID."""
        return series_name(self.description, self.uid)

    @property
    def n_slices(self) -> int:
        return len(self.frames)

    @property
    def spacing(self) -> tuple[float, float, float] | None:
        """Voxel size (column, row, slice) in mm, when the series is a regular stack."""
        if self.geometry is None:
            return None
        return tuple(float(v) for v in np.linalg.norm(self.geometry.affine[:3, :3], axis=0))

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def label(self) -> str:
        """How the series is named in messages: number and description."""
        number = f"#{self.number} " if self.number is not None else ""
        return f"{number}{self.description or '(no description)'}".strip()

    def summary(self, uid: bool = True) -> str:
        """One line: label, modality and sequence, slices, size, spacing or problem (and UID)."""
        kind = ", ".join(v for v in (self.modality, self.sequence) if v)
        if self.rows and self.columns:
            what = f"{self.n_slices} slice{'s' if self.n_slices != 1 else ''}"
            what += f" of {self.columns} x {self.rows}"
        else:
            what = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        if self.spacing is not None:
            what += ", " + " x ".join(f"{v:.3g}" for v in self.spacing) + " mm"
        state = "" if self.problem is None else f"; cannot be read: it {self.problem}"
        kind = f" ({kind})" if kind else ""
        return f"{self.label}{kind}: {what}{state}" + (f" [uid {self.uid}]" if uid else "")


@without_quoted_values
def find_series(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[SeriesInfo]:
    """Every DICOM series in a folder (searched recursively) or a list of files.

    Series come sorted by SeriesNumber, then description. Files that are not
    DICOM, hidden files and DICOMDIR indexes are skipped.

    Raises:
        ScanError: nothing DICOM was found (naming the folder or the first file).
    """
    where, files = files_of(source)
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    indexes = 0
    for path in files:
        header = read_header(path)
        if header is not None and header.get("SOPClassUID") == DIRECTORY_SOP_CLASS:
            indexes += 1
            continue
        if header is None:
            continue
        uid = str(header.get("SeriesInstanceUID", "") or f"(no SeriesInstanceUID: {path.name})")
        groups.setdefault(uid, []).append((path, header))
    if not groups:
        if indexes and not where.is_dir():
            raise ScanError("is a DICOMDIR index; give the folder of the files it lists", where)
        if where.is_dir():
            raise ScanError(
                "is a directory without DICOM files; give a scan file (NIfTI, MGZ) "
                "or a folder of DICOM files",
                where,
            )
        raise ScanError(
            "is not a DICOM file pydicom can read (or it names no SOP class and no series)", where
        )
    found = [
        _describe_or_refuse(uid, sorted(items, key=lambda item: str(item[0])))
        for uid, items in groups.items()
    ]
    return sorted(found, key=lambda s: (s.number is None, s.number or 0, s.description, s.uid))


def pick_series(
    series: Sequence[SeriesInfo], select: str | None = None, where: str | os.PathLike | None = None
) -> SeriesInfo:
    """The series chosen by ``select`` (a SeriesInstanceUID, or a description), or by itself.

    Without ``select``: the only series; else the only readable T1-like one; else the
    only readable one. Otherwise a :class:`ScanError` lists the series and how to choose.
    """
    if select is not None:
        wanted = select.strip()
        hits = [s for s in series if s.uid == wanted]
        hits = hits or [s for s in series if s.description.lower() == wanted.lower()]
        hits = hits or [s for s in series if s.name == wanted]
        if len(hits) == 1:
            return hits[0]
        reason = (
            f"{len(hits)} series match {wanted!r}; choose one by its UID"
            if hits
            else f"no series matches {wanted!r} (by UID or description)"
        )
        raise ScanError(_listing(reason, hits or series, where), where)
    if len(series) == 1:
        return series[0]
    readable = [s for s in series if s.usable]
    t1 = [s for s in readable if s.sequence in T1_LIKE]
    if len(t1) == 1:
        return t1[0]
    if len(readable) == 1:
        return readable[0]
    reason = (
        f"holds {len(series)} series and none can be read as a 3-D volume"
        if not readable
        else f"holds {len(readable)} readable series and not one single T1-like one; "
        "choose one by UID or description"
    )
    raise ScanError(_listing(reason, series, where, example=bool(readable)), where)


def default_choice(series: Sequence[SeriesInfo]) -> int:
    """Index of the series to offer first when asking the user: the T1-like one, else the first readable."""
    readable = [i for i, s in enumerate(series) if s.usable]
    t1 = [i for i in readable if series[i].sequence in T1_LIKE]
    return (t1 or readable or [0])[0]


def _listing(
    reason: str, series: Iterable[SeriesInfo], where: str | os.PathLike | None, example: bool = True
) -> str:
    series = list(series)
    lines = [reason + ":"] + [f"  {s.summary()}" for s in series]
    readable = [s for s in series if s.usable]
    if example and readable and where is not None:
        chosen = readable[default_choice(readable)]
        key = chosen.description if chosen.description else chosen.uid
        lines.append(f"  e.g. give '{os.fspath(where)}{SELECT_SEPARATOR}{key}'")
    return "\n".join(lines)


def _describe_or_refuse(uid: str, items: list[tuple[Path, Dataset]]) -> SeriesInfo:
    """The series described; one whose headers hold malformed values is described as damaged."""
    try:
        return _describe(uid, items)
    except Exception as exc:  # malformed values raise many types deep inside pydicom
        text = " ".join(str(exc).split())[:160]
        return SeriesInfo(
            uid=uid,
            description="",
            number=None,
            modality="",
            sop_class="",
            sequence="",
            files=[path for path, _ in items],
            frames=[],
            rows=0,
            columns=0,
            problem=f"has a damaged header ({type(exc).__name__}: {text})",
            headers=[header for _, header in items],
        )


def _describe(uid: str, items: list[tuple[Path, Dataset]]) -> SeriesInfo:
    files = [path for path, _ in items]
    headers = [header for _, header in items]
    first = headers[0]
    description = header_text(first, "SeriesDescription") or header_text(first, "ProtocolName")
    if any(s.lower() in description.lower() for s in patient_identifiers(first)):
        description = ""  # never let a description carry the patient's identity
    number = first.get("SeriesNumber")
    frames: list[Frame] = []
    for index, header in enumerate(headers):
        frames.extend(frames_of(index, header))
    info = SeriesInfo(
        uid=uid,
        description=description,
        number=int(number) if number not in (None, "") else None,
        modality=header_text(first, "Modality"),
        sop_class=_sop_class_name(first),
        sequence=guess_sequence(first, description),
        files=files,
        frames=frames,
        rows=int(first.get("Rows", 0) or 0),
        columns=int(first.get("Columns", 0) or 0),
        headers=headers,
    )
    info.problem, info.geometry = _check(info)
    return info


# Objects that label a scan rather than image it: segmentations and RT structure sets.
LABEL_MODALITIES = ("SEG", "RTSTRUCT")


def _check(info: SeriesInfo) -> tuple[str | None, StackGeometry | None]:
    first = info.headers[0]
    if not info.rows or not info.columns:
        return (
            f"is not an image (its {info.sop_class} objects have no pixel rows and columns)",
            None,
        )
    if info.modality in LABEL_MODALITIES:
        return (
            f"is a {info.sop_class} object (labels drawn on a scan, such as the findings "
            "madgan writes), not a scan; give the series it was made from"
        ), None
    if any(int(h.get("SamplesPerPixel", 1) or 1) != 1 for h in info.headers):
        return (
            f"holds colour images ({header_text(first, 'PhotometricInterpretation') or 'RGB'}, "
            f"{info.sop_class}); give a grayscale scan"
        ), None
    problem = _decoder_problem(info.headers)
    if problem:
        return problem, None
    if any(f.position is None or f.orientation is None or f.spacing is None for f in info.frames):
        return (
            "has images without patient geometry (ImagePositionPatient, "
            f"ImageOrientationPatient, PixelSpacing), as {info.sop_class} objects may"
        ), None
    sizes = [(int(h.get("Rows", 0)), int(h.get("Columns", 0))) for h in info.headers]
    try:
        geometry = stack_geometry(
            np.array([f.position for f in info.frames]),
            np.array([f.orientation for f in info.frames]),
            np.array([f.spacing for f in info.frames]),
            np.array([sizes[f.file] for f in info.frames]),
        )
    except StackError as exc:
        return str(exc), None
    return None, geometry


def _decoder_problem(headers: Sequence[Dataset]) -> str | None:
    from pydicom.pixels import get_decoder

    for syntax in sorted({str(h.file_meta.get("TransferSyntaxUID", "")) for h in headers} - {""}):
        uid = UID(syntax)
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:
            return f"uses transfer syntax {uid.name} ({uid}), for which pydicom has no decoder"
        if not decoder.is_available:
            needs = "; or ".join(decoder.missing_dependencies) or "a decoder plugin"
            return (
                f"is compressed as {uid.name} ({uid}), which no installed decoder reads: "
                f"install one ({needs}) or export the series uncompressed"
            )
    return None


def _sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    if not uid:
        return "DICOM (no SOP class)"
    name = UID(str(uid)).name
    return name if name != str(uid) else f"SOP class {uid}"
