"""What ``madgan score --dicom-out`` writes for a scored DICOM scan: maps, overlay and report
(the report page of :mod:`madgan_core.outputs.report`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from madgan_core.errors import MadganError
from madgan_core.outputs.dicom.export import DicomExport, export_dicom
from madgan_core.outputs.report import report_bytes
from madgan_core.scans.dicom import is_dicom_path

if TYPE_CHECKING:
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore


def require_dicom_inputs(paths: Iterable[str | os.PathLike]) -> None:
    """Refuse, before any scoring, inputs that are not DICOM series (nothing to write back to)."""
    for path in paths:
        if not is_dicom_path(path):
            raise MadganError(
                "--dicom-out writes results into the study of a DICOM series, "
                "but this input is no DICOM series (give a series folder or file)",
                path,
            )


def write_dicom_results(
    result: ScanScore, scan: Scan, out: str | Path, model_name: str, sequence: str | None = None
) -> DicomExport:
    """The scan's maps and overlay as new series of its study, with the report (PDF and DICOM)."""
    report = report_bytes(result, model_name, scan=scan, sequence=sequence)
    return export_dicom(result, scan, out, sequence=sequence, report_pdf=report)
