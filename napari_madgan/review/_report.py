"""Exports: the heatmap as NIfTI in the scan's native space and, for a scan read from DICOM,
the results with the report page (:mod:`madgan_core.outputs.report`) as new series of its
study."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from madgan_core.outputs.dicom.export import DicomExport
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore


def export_heatmap(result: ScanScore, scan: Scan, path: str | Path) -> Path:
    """Write the ℓ2 heatmap as NIfTI on the scan's native grid (NaN where not predicted)."""
    from madgan_core.errors import MadganError
    from madgan_core.scans.files import save_like

    if result.heatmap is None:
        raise MadganError("this result has no heatmap (scored without maps)")
    return save_like(np.asarray(result.heatmap, dtype=np.float32), scan, path)


def export_dicom_results(
    folder: str | Path,
    screenshot: np.ndarray,
    result: ScanScore,
    scan: Scan,
    current_slice: int,
    model_name: str,
    sequence: str | None = None,
    headline: str = "mean",
) -> DicomExport:
    """The maps, overlay and the report page with ``screenshot`` (PDF) as new series of
    the scan's DICOM study."""
    from madgan_core.outputs.dicom.export import export_dicom
    from madgan_core.outputs.report import report_bytes

    pdf = report_bytes(
        result,
        model_name,
        headline=headline,
        picture=screenshot,
        current_slice=current_slice,
    )
    return export_dicom(result, scan, folder, sequence=sequence, report_pdf=pdf)
