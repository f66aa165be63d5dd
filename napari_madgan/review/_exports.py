"""The review's exports: the heatmap as NIfTI, the report as PDF/PNG and, for a DICOM
input, the results as new series of the scan's study. Each asks for its destination.

What needs the GUI (the result shown, the slider, a screenshot of the canvas) is taken
on the GUI thread; the writing, seconds for a DICOM export of a 1 mm scan, runs in a
worker thread with a busy indicator, so the viewer stays responsive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from napari.qt.threading import thread_worker
from napari.utils import progress
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog

from madgan_core.errors import MadganError
from madgan_core.outputs.report import write_report
from napari_madgan._guard import report_error
from napari_madgan.review._report import export_dicom_results, export_heatmap

if TYPE_CHECKING:
    from napari_madgan.review._controller import ShownResult

Job = Callable[[], Path]


def default_export(shown: ShownResult | None, suffix: str) -> str:
    """``<scan folder>/<scan name><suffix>`` (the home folder for scans without a file)."""
    scan = None if shown is None else shown.request.scan
    folder = scan.path.parent if scan is not None and scan.path is not None else Path.home()
    stem = shown.result.name if shown is not None else "scan"
    return str(folder / f"{stem}{suffix}")


class ResultExports:
    """Exports of the result a review widget shows (``widget.controller.shown``).

    ``heatmap``, ``report`` and ``dicom`` write at once (for scripts and tests); the
    ``ask_*`` methods behind the buttons ask for a destination and write in a worker.
    """

    def __init__(self, widget):
        self.widget = widget
        self.workers: set = set()  # running export workers (kept alive until finished)

    def _shown(self) -> ShownResult:
        shown = self.widget.controller.shown
        if shown is None:
            raise MadganError("nothing to export: run the model first")
        return shown

    def _screenshot(self):
        return self.widget.viewer.screenshot(canvas_only=True, flash=False)

    # ---- each export as a job: GUI state taken now, written when called ---------------------
    def heatmap_job(self, path: str | Path) -> Job:
        shown = self._shown()
        return lambda: export_heatmap(shown.result, shown.request.scan, path)

    def report_job(self, path: str | Path) -> Job:
        shown = self._shown()
        shot, slice_z = self._screenshot(), self.widget.current_slice()
        headline = self.widget.headline()
        return lambda: write_report(
            path,
            shown.result,
            shown.model_name,
            headline=headline,
            picture=shot,
            current_slice=slice_z,
        )

    def dicom_job(self, folder: str | Path) -> Job:
        """The result as new series of the scan's DICOM study, in ``folder/<scan>/``."""
        shown = self._shown()
        shot, slice_z = self._screenshot(), self.widget.current_slice()
        headline = self.widget.headline()

        def job() -> Path:
            return export_dicom_results(
                folder,
                shot,
                shown.result,
                shown.request.scan,
                slice_z,
                shown.model_name,
                shown.request.sequence,
                headline,
            ).folder

        return job

    def heatmap(self, path: str | Path) -> Path:
        return self.heatmap_job(path)()

    def report(self, path: str | Path) -> Path:
        return self.report_job(path)()

    def dicom(self, folder: str | Path) -> Path:
        return self.dicom_job(folder)()

    # ---- the buttons ----------------------------------------------------------------------
    def ask_heatmap(self) -> None:
        self._ask_file("heatmap", "_l2_heatmap.nii.gz", "NIfTI (*.nii.gz *.nii)", self.heatmap_job)

    def ask_report(self) -> None:
        self._ask_file("report", "_madgan_report.pdf", "PDF (*.pdf);;PNG (*.png)", self.report_job)

    def _ask_file(self, what: str, suffix: str, filters: str, make_job) -> None:
        default = default_export(self.widget.controller.shown, suffix)
        path, _ = QFileDialog.getSaveFileName(self.widget, f"Export {what}", default, filters)
        if path:
            self.run_in_background(what, make_job(path), f"{what.capitalize()} saved to {{}}")

    def ask_dicom(self) -> None:
        start = str(Path(default_export(self.widget.controller.shown, "")).parent)
        folder = QFileDialog.getExistingDirectory(self.widget, "Export DICOM results into", start)
        if folder:
            self.run_in_background(
                "DICOM results", self.dicom_job(folder), "DICOM results saved to {}"
            )

    def run_in_background(self, what: str, job: Job, done: str):
        """Run ``job`` in a worker thread; say ``done.format(path)`` when it has written,
        or report its error on the widget. Returns the started worker."""
        worker = thread_worker(job, start_thread=False, ignore_errors=True)()
        busy = progress(total=0, desc=f"MADGAN: writing {what}")
        self.widget.show_status(f"Writing {what}…")

        def finished() -> None:
            busy.close()
            self.workers.discard(worker)

        def written(path: Path) -> None:
            show_info(done.format(path))
            self.widget.show_status(done.format(path))

        worker.returned.connect(written)
        worker.errored.connect(lambda exc: report_error(self.widget, exc))
        worker.finished.connect(finished)
        self.workers.add(worker)
        worker.start()
        return worker
