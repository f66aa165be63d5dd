"""Results back as DICOM: new series in the source's study, on its frame of reference.

For a scan read from a DICOM series, :func:`export_dicom` writes into
``OUT/<scan name>/``:

* ``heatmap/``: the ℓ2 heatmap as a derived MR series (one image per source
  slice, 16-bit with RescaleSlope, so every PACS and ITK reader shows it and
  can fuse it with the scan);
* ``zmap/``: the z-map the same way, when the model has healthy z-statistics;
* ``overlay/``: an RGB secondary capture of the jet overlay on the scan, as the
  review widget draws it, slice by slice with the source's plane geometry, with
  each finding outlined in white;
* ``findings.dcm``: the findings as a DICOM Segmentation, one segment per finding
  (:mod:`madgan_core.outputs.dicom.seg`), when the z-map has any;
* ``report.dcm`` and ``report.pdf``: the report as DICOM encapsulated PDF, and as
  PDF beside it, when one is given.

Every series keeps the source's StudyInstanceUID and FrameOfReferenceUID, gets
new Series and SOP Instance UIDs, and references the source image of each slice
(SourceImageSequence). The patient and study attributes are copied from the
source so that a PACS files the results with the scan; nothing else carries
them: file and folder names come from the scan's opaque name.

Voxels without a value (slices the model never predicts, the z-map outside the
brain) are written as 0. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    EncapsulatedPDFStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from scipy import ndimage

from madgan_core import __version__
from madgan_core.config import HEATMAP_RANGE, ZMAP_RANGE
from madgan_core.errors import MadganError
from madgan_core.outputs.dicom._write import (
    MANUFACTURER,
    PATIENT_STUDY_KEYWORDS,
    decimal_string,
    save_dataset,
    set_pixels,
)
from madgan_core.outputs.dicom.seg import write_findings_seg
from madgan_core.scans.atomic import atomic_write_with
from madgan_core.scans.dicom.geometry import LPS_FROM_RAS
from madgan_core.scans.dicom.naming import patient_identifiers, without_quoted_values

if TYPE_CHECKING:
    from madgan_core.scans.dicom import DicomSource
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore

log = logging.getLogger(__name__)

OVERLAY_OPACITY = 0.55
SERIES_NUMBERS = {"heatmap": 9901, "zmap": 9902, "overlay": 9903, "report": 9904}
DESCRIPTIONS = {
    "heatmap": "MADGAN L2 heatmap",
    "zmap": "MADGAN z-map vs healthy",
    "overlay": "MADGAN overlay",
    "report": "MADGAN report",
}
MR_KEYWORDS = {  # MR Image module: Type 1 values default to research-mode placeholders
    "ScanningSequence": "RM",
    "SequenceVariant": "NONE",
    "ScanOptions": "",
    "MRAcquisitionType": "",
    "EchoTime": "",
    "EchoTrainLength": "",
    "RepetitionTime": "",
}


@dataclass(frozen=True)
class DicomExport:
    """What :func:`export_dicom` wrote: its folder and each series' files."""

    folder: Path
    series: dict[str, tuple[Path, ...]]

    @property
    def files(self) -> list[Path]:
        return [path for paths in self.series.values() for path in paths]


def dicom_source(scan: Scan) -> DicomSource:
    """The DICOM series a scan was read from, or a :class:`MadganError` saying it has none."""
    if scan.dicom is None:
        raise MadganError(
            "results can be written as DICOM only for a scan read from a DICOM series",
            scan.path,
        )
    return scan.dicom


@without_quoted_values
def export_dicom(
    result: ScanScore,
    scan: Scan,
    out: str | Path,
    *,
    sequence: str | None = None,
    report_pdf: bytes | None = None,
) -> DicomExport:
    """Write a scored DICOM scan's maps, overlay and report as new series of its study.

    Args:
        result: the scan's score, with maps (``score_scan(..., maps=True)``).
        scan: the scan as read from DICOM (:func:`madgan_core.scans.dicom.load_series`).
        out: output folder; the series go into ``out/<scan.name>/``.
        sequence: the scan's sequence, for the heatmap's display range (default T1).
        report_pdf: a PDF report to add as encapsulated PDF (and as ``report.pdf``).
    """
    source = dicom_source(scan)
    if result.heatmap is None:
        raise MadganError("this result has no maps to write (score with maps)", scan.path)
    folder = Path(out) / scan.name
    heat_range = HEATMAP_RANGE.get(sequence or source.sequence, HEATMAP_RANGE["T1"])
    series: dict[str, tuple[Path, ...]] = {
        "heatmap": write_map_series(result.heatmap, scan, folder / "heatmap", "heatmap", heat_range)
    }
    if result.zmap is not None:
        series["zmap"] = write_map_series(result.zmap, scan, folder / "zmap", "zmap", ZMAP_RANGE)
    shown, limits = (
        (result.zmap, ZMAP_RANGE) if result.zmap is not None else (result.heatmap, heat_range)
    )
    series["overlay"] = write_overlay_series(
        scan,
        shown,
        limits,
        folder / "overlay",
        foreground=result.foreground,
        outlines=result.finding_labels,
    )
    if result.finding_labels is not None and result.findings:
        try:
            seg = write_findings_seg(
                result.finding_labels, result.findings, scan, folder / "findings.dcm"
            )
            series["findings"] = (seg,)
        except (AttributeError, TypeError, ValueError) as exc:  # highdicom refused the source
            # The Segmentation is one result among several: say why, write the others.
            reason = str(exc)
            if any(value in reason for value in patient_identifiers(source.headers[0])):
                reason = "its reason quotes the patient's header"
            log.warning(
                "%s: the findings were not written as a DICOM Segmentation (%s: %s); the "
                "overlay series outlines them",
                folder,
                type(exc).__name__,
                reason,
            )
    if report_pdf is not None:
        series["report"] = (
            write_encapsulated_pdf(report_pdf, source, folder / "report.dcm"),
            atomic_write_with(folder / "report.pdf", lambda tmp: tmp.write_bytes(report_pdf)),
        )
    return DicomExport(folder, series)


@without_quoted_values
def write_map_series(
    volume: np.ndarray,
    scan: Scan,
    folder: Path,
    kind: str,
    window: tuple[float, float],
) -> tuple[Path, ...]:
    """A RAS+ map on the scan's grid as a derived MR series: one file per source slice."""
    source = dicom_source(scan)
    native = np.nan_to_num(np.asarray(scan.to_native(volume), dtype=np.float64), nan=0.0)
    peak = float(np.abs(native).max())
    slope = peak / 32000.0 if peak > 0 else 1.0
    stored = np.rint(native / slope).astype(np.int16)
    series = _SeriesHeader(source, kind, scan)
    paths = []
    for k in range(native.shape[2]):
        ds = series.image(k, MRImageStorage)
        ds.ImageType = ["DERIVED", "SECONDARY"]
        for keyword, default in MR_KEYWORDS.items():
            setattr(ds, keyword, source.headers[0].get(keyword, default) or default)
        set_pixels(ds, stored[:, :, k].T)
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = "0"
        ds.RescaleType = "US"
        ds.WindowCenter = f"{(window[0] + window[1]) / 2:.6g}"
        ds.WindowWidth = f"{max(window[1] - window[0], 1e-6):.6g}"
        paths.append(save_dataset(ds, folder / f"{k + 1:04d}.dcm"))
    return tuple(paths)


@without_quoted_values
def write_overlay_series(
    scan: Scan,
    volume: np.ndarray,
    limits: tuple[float, float],
    folder: Path,
    foreground: np.ndarray | None = None,
    outlines: np.ndarray | None = None,
) -> tuple[Path, ...]:
    """The jet overlay of ``volume`` on the scan as RGB secondary captures, one per source
    slice, with the regions of the label volume ``outlines`` outlined in white."""
    source = dicom_source(scan)
    rgb = overlay_rgb(scan.data, volume, limits, foreground)
    native = scan.to_native(rgb)  # (i, j, k, 3)
    if outlines is not None:  # edges within each source slice, whatever its plane
        native[region_edges(scan.to_native(outlines))] = 255
    series = _SeriesHeader(source, "overlay", scan)
    paths = []
    for k in range(native.shape[2]):
        ds = series.image(k, SecondaryCaptureImageStorage)
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"
        ds.BurnedInAnnotation = "NO"
        set_pixels(ds, native[:, :, k].transpose(1, 0, 2))
        paths.append(save_dataset(ds, folder / f"{k + 1:04d}.dcm"))
    return tuple(paths)


def overlay_rgb(
    scan_volume: np.ndarray,
    volume: np.ndarray,
    limits: tuple[float, float],
    foreground: np.ndarray | None = None,
    opacity: float = OVERLAY_OPACITY,
) -> np.ndarray:
    """RGB (uint8) of the scan in gray with ``volume`` blended in jet over ``limits``.

    Voxels without a value (NaN) or outside ``foreground`` show the bare scan.
    """
    from matplotlib import colormaps

    gray = _window(scan_volume)
    base = np.repeat(gray[..., None], 3, axis=-1)
    values = np.asarray(volume, dtype=np.float64)
    shown = np.isfinite(values)
    if foreground is not None:
        shown &= np.asarray(foreground, dtype=bool)
    lo, hi = limits
    scaled = np.clip((np.nan_to_num(values, nan=lo) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    colour = colormaps["jet"](scaled)[..., :3]
    alpha = np.where(shown, opacity, 0.0)[..., None]
    return np.rint(255 * ((1 - alpha) * base + alpha * colour)).astype(np.uint8)


def region_edges(labels: np.ndarray) -> np.ndarray:
    """Voxels of a label volume on the edge of their region within their slice (the
    plane of the first two axes)."""
    labels = np.asarray(labels)
    inner = np.ones((3, 3, 1), bool)  # neighbours within the slice
    same = ndimage.minimum_filter(labels, footprint=inner, mode="nearest") == labels
    same &= ndimage.maximum_filter(labels, footprint=inner, mode="nearest") == labels
    return (labels > 0) & ~same


def _window(volume: np.ndarray) -> np.ndarray:
    """The scan scaled to [0, 1] between robust percentiles of its non-zero voxels."""
    values = np.asarray(volume, dtype=np.float64)
    sample = values[values != 0] if np.count_nonzero(values) > 0.01 * values.size else values
    lo, hi = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 1.0)
    return np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


@without_quoted_values
def write_encapsulated_pdf(pdf: bytes, source: DicomSource, path: Path) -> Path:
    """A PDF as a DICOM Encapsulated PDF object in its own series of the source's study."""
    if not pdf.startswith(b"%PDF"):
        raise MadganError("the report to encapsulate is not a PDF", path)
    series = _SeriesHeader(source, "report")
    ds = series.base(EncapsulatedPDFStorage, instance=1)
    ds.Modality = "DOC"
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "NO"
    ds.DocumentTitle = DESCRIPTIONS["report"]
    ds.ConceptNameCodeSequence = []
    ds.AcquisitionDateTime = series.now.strftime("%Y%m%d%H%M%S")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.SourceInstanceSequence = [_reference(ref) for ref in source.slices[:1]]
    return save_dataset(ds, path)


class _SeriesHeader:
    """The attributes every object of one new series shares; images on the source's grid."""

    def __init__(self, source: DicomSource, kind: str, scan: Scan | None = None):
        self.source = source
        self.kind = kind
        self.uid = generate_uid()
        self.now = datetime.datetime.now()
        if scan is not None:
            self.shape = scan.native_shape
            self.lps = LPS_FROM_RAS @ scan.native_affine

    def base(self, sop_class: str, instance: int) -> Dataset:
        reference = self.source.headers[0]
        ds = Dataset()
        charset = reference.get("SpecificCharacterSet")
        if charset:
            ds.SpecificCharacterSet = charset
        for keyword in PATIENT_STUDY_KEYWORDS:
            setattr(ds, keyword, reference.get(keyword, ""))
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = instance
        ds.SeriesInstanceUID = self.uid
        ds.SeriesNumber = SERIES_NUMBERS[self.kind]
        ds.SeriesDescription = DESCRIPTIONS[self.kind]
        ds.SeriesDate = ds.ContentDate = self.now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = self.now.strftime("%H%M%S")
        ds.Modality = self.source.modality or "MR"
        ds.Manufacturer = MANUFACTURER
        ds.SoftwareVersions = __version__
        return ds

    def image(self, k: int, sop_class: str) -> Dataset:
        """An image of the series on slice ``k`` of the source's native grid."""
        ds = self.base(sop_class, instance=k + 1)
        columns, rows, step = (self.lps[:3, axis] for axis in range(3))
        position = (self.lps @ [0.0, 0.0, float(k), 1.0])[:3]
        normal = np.cross(columns, rows)
        ds.FrameOfReferenceUID = self.source.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [decimal_string(v) for v in position]
        ds.ImageOrientationPatient = [
            decimal_string(v)
            for v in (*columns / np.linalg.norm(columns), *rows / np.linalg.norm(rows))
        ]
        ds.PixelSpacing = [
            decimal_string(np.linalg.norm(rows)),
            decimal_string(np.linalg.norm(columns)),
        ]
        ds.SliceThickness = decimal_string(np.linalg.norm(step))
        ds.SliceLocation = decimal_string(np.dot(position, normal / np.linalg.norm(normal)))
        ds.DerivationDescription = f"{DESCRIPTIONS[self.kind]} computed by {MANUFACTURER}"
        ds.SourceImageSequence = [_reference(self.source.slices[k])]
        return ds


def _reference(ref) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    if ref.frame is not None:
        item.ReferencedFrameNumber = ref.frame
    return item
