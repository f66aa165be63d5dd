"""The findings as a DICOM Segmentation (SEG) of the source series, written with highdicom.

One binary segment per finding, in rank order, on the source's own frames, so a
PACS or a viewer such as 3D Slicer or OHIF overlays the outlines on the scan and
lists them by name. The Segmentation references every source image, keeps the
source's study and frame of reference, and copies its patient module (as
highdicom does, like the other result series).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from madgan_core import __version__
from madgan_core.errors import MadganError
from madgan_core.outputs.dicom._write import MANUFACTURER, PATIENT_STUDY_KEYWORDS
from madgan_core.scans.atomic import atomic_write_with
from madgan_core.scans.dicom.naming import without_quoted_values

if TYPE_CHECKING:
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.findings import Finding

SEG_SERIES_NUMBER = 9905
SEG_DESCRIPTION = "MADGAN findings"
SEGMENT_LABEL_CHARS = 64  # SegmentLabel is a LO


def segment_label(finding: Finding) -> str:
    """E.g. ``Finding 1: 14.2 mL, peak z 9.1, brighter``."""
    text = f"Finding {finding.rank}: {finding.volume_ml:.1f} mL, peak z {finding.peak_z:.1f}"
    if finding.signal:
        text += f", {finding.signal}"
    return text[:SEGMENT_LABEL_CHARS]


@without_quoted_values
def write_findings_seg(labels: np.ndarray, findings: list[Finding], scan: Scan, path: Path) -> Path:
    """Write ``findings`` (at least one; their outlines: ``labels`` on the scan's RAS+ grid,
    valued by rank) as a Segmentation of the scan's source series."""
    import highdicom as hd

    source = scan.dicom
    if source is None:
        raise MadganError("a Segmentation needs a scan read from a DICOM series", scan.path)
    native = np.asarray(scan.to_native(labels))  # (columns, rows, slices)
    by_uid = {header.SOPInstanceUID: _with_patient_study(header) for header in source.headers}
    frames = [ref.frame for ref in source.slices]
    if all(frame is None for frame in frames):
        # One image per slice: the source images and their frames in slice order.
        images = [by_uid[ref.sop_instance_uid] for ref in source.slices]
        order = np.arange(native.shape[2])
    else:
        # One multi-frame image: its frames in their own order.
        images = [by_uid[source.slices[0].sop_instance_uid]]
        order = np.argsort(frames)
    pixels = np.stack([native[:, :, k].T for k in order])  # (frames, rows, columns)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="MADGAN z-map findings",
        version=__version__,
        family=codes.cid7162.ArtificialIntelligence,
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=finding.rank,
            segment_label=segment_label(finding),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for finding in findings
    ]
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="MADGAN",
        software_versions=__version__,
        device_serial_number="none",
        series_description=SEG_DESCRIPTION,
        omit_empty_frames=True,
    )
    return atomic_write_with(path, lambda tmp: seg.save_as(tmp), ".dcm")


def _with_patient_study(header: Dataset) -> Dataset:
    """A copy of a source header with every patient and study attribute the Segmentation
    copies present (empty where the source leaves one out, as anonymised data may)."""
    header = copy.deepcopy(header)
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword not in header:
            setattr(header, keyword, "")
    return header
