"""The review's exports: the heatmap as NIfTI, the report as PDF/PNG and, for a DICOM
input, the results as new series of the scan's study. Each asks for its destination."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog

from madgan_core.errors import MadganError
from napari_madgan.review._report import export_dicom_results, export_heatmap, write_report

if TYPE_CHECKING:
    from napari_madgan.review._controller import ShownResult


def default_export(shown: ShownResult | None, suffix: str) -> str:
    """``<scan folder>/<scan name><suffix>`` (the home folder for scans without a file)."""
    scan = None if shown is None else shown.request.scan
    folder = scan.path.parent if scan is not None and scan.path is not None else Path.home()
    stem = shown.result.name if shown is not None else "scan"
    return str(folder / f"{stem}{suffix}")


class ResultExports:
    """Exports of the result a review widget shows (``widget.controller.shown``)."""

    def __init__(self, widget):
        self.widget = widget

    def _shown(self) -> ShownResult:
        shown = self.widget.controller.shown
        if shown is None:
            raise MadganError("nothing to export: run the model first")
        return shown

    def _screenshot(self):
        return self.widget.viewer.screenshot(canvas_only=True, flash=False)

    def heatmap(self, path: str | Path) -> Path:
        shown = self._shown()
        return export_heatmap(shown.result, shown.request.scan, path)

    def report(self, path: str | Path) -> Path:
        shown = self._shown()
        slice_z = self.widget.current_slice()
        return write_report(
            path,
            self._screenshot(),
            shown.result,
            slice_z,
            shown.model_name,
            self.widget.headline(),
        )

    def dicom(self, folder: str | Path) -> Path:
        """The result as new series of the scan's DICOM study, in ``folder/<scan>/``."""
        shown = self._shown()
        written = export_dicom_results(
            folder,
            self._screenshot(),
            shown.result,
            shown.request.scan,
            self.widget.current_slice(),
            shown.model_name,
            shown.request.sequence,
            self.widget.headline(),
        )
        return written.folder

    def ask_heatmap(self) -> None:
        self._ask_file("heatmap", "_l2_heatmap.nii.gz", "NIfTI (*.nii.gz *.nii)", self.heatmap)

    def ask_report(self) -> None:
        self._ask_file("report", "_madgan_report.pdf", "PDF (*.pdf);;PNG (*.png)", self.report)

    def _ask_file(self, what: str, suffix: str, filters: str, export) -> None:
        default = default_export(self.widget.controller.shown, suffix)
        path, _ = QFileDialog.getSaveFileName(self.widget, f"Export {what}", default, filters)
        if path:
            show_info(f"{what.capitalize()} saved to {export(path)}")

    def ask_dicom(self) -> None:
        start = str(Path(default_export(self.widget.controller.shown, "")).parent)
        folder = QFileDialog.getExistingDirectory(self.widget, "Export DICOM results into", start)
        if folder:
            show_info(f"DICOM results saved to {self.dicom(folder)}")
