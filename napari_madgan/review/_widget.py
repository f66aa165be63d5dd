"""The "MADGAN review" dock widget: a thin controller over :func:`madgan_core.score.score_scan`.

Controls on top (scan layer, model, device, sequence, heatmap range, run/cancel),
then the score panel, the per-slice ℓ2 plot (synced both ways with the slider),
the most anomalous slices and the exports. All state lives in :class:`ReviewState`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from madgan_core.config import CALIBRATED_MODES, HEATMAP_RANGE, SEQUENCES
from madgan_core.errors import MadganError
from napari_madgan import _settings
from napari_madgan._geometry import slice_world, world_to_slice
from napari_madgan._layers import INFO_KEY, SCAN_KEY
from napari_madgan._tasks import WindowTask
from napari_madgan.review._layers import (
    HEATMAP_NAME,
    ZMAP_NAME,
    ZMAP_RANGE,
    LayerSpec,
    add_result_layers,
    apply_layer,
    result_layer_specs,
)
from napari_madgan.review._model_cache import ModelCache
from napari_madgan.review._panel import MODES, NO_REFERENCE, score_html, top_slices
from napari_madgan.review._plot import SlicePlot
from napari_madgan.review._report import export_dicom_results, export_heatmap, write_report
from napari_madgan.review._state import DEVICE_CHOICES, ReviewState

if TYPE_CHECKING:
    import napari

    from madgan_core.io import Scan
    from madgan_core.score import ScanScore

log = logging.getLogger(__name__)
MODEL_FILTER = "MADGAN models (*.pt *.pth);;All files (*)"
ZMAP_RANGE_TIP = (
    "These set the ℓ2 heatmap's range. The z-map is drawn from z = {lo:g} to {hi:g}; "
    "change that in napari's layer controls (contrast limits)."
)


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    advanced = Signal(int, int)


def scan_of_layer(layer: Image) -> Scan:
    """The :class:`Scan` behind an image layer (from the reader/sample data, or wrapped from its data)."""
    from madgan_core.io import Scan

    scan = layer.metadata.get(SCAN_KEY)
    if isinstance(scan, Scan):
        return scan
    data = np.asarray(layer.data)
    if data.ndim != 3 or layer.rgb:
        raise MadganError(f"layer {layer.name!r} is not a 3-D scalar volume (shape {data.shape})")
    # A plain layer: take its data as (z, y, x) with the display convention, 1 mm voxels.
    from napari_madgan._geometry import from_display

    return Scan.from_array(np.ascontiguousarray(from_display(data), dtype=np.float32), np.eye(4))


def _score_job(cache: ModelCache, model_path: str, scan: Scan, state: ReviewState, relay, done):
    """Worker thread: load (cached) and score, then prepare the result layers' arrays."""
    from madgan_core.score import score_scan

    try:
        model = cache.get(model_path, state.device)
        result = score_scan(
            model,
            scan,
            maps=True,
            progress=relay.advanced.emit,
            should_stop=state.cancel.is_set,
            sequence=state.sequence,
        )
        prefix = f"{state.scan_layer} " if state.scan_layer else ""
        specs = result_layer_specs(scan, result, state.heatmap_range, prefix)
        return result, Path(model.path).name, specs
    finally:
        done.set()


class ReviewWidget(QWidget):
    """Score the selected scan layer with a MADGAN model and browse the result."""

    def __init__(self, viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.state = ReviewState()
        self.cache = ModelCache()
        self._relay = _ProgressRelay()
        self._relay.advanced.connect(self._on_progress)
        self._pbar: progress | None = None
        self._task: WindowTask | None = None
        self._worker_done = threading.Event()
        self._model_name = ""
        self._build()
        self._connect()
        self._refresh_layers()
        self._refresh_models()

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText("model.pt")
        self.browse_btn = QPushButton("Browse…")
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.browse_btn)
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICE_CHOICES))
        self.sequence_combo = QComboBox()
        self.sequence_combo.addItems(list(SEQUENCES))
        self.mode_combo = QComboBox()
        for mode, label in MODES:
            self.mode_combo.addItem(label, mode)
        # Which overlay shows: the raw ℓ2 heatmap or the healthy-normalised z-map.
        self.overlay_combo = QComboBox()
        self.overlay_combo.addItem("ℓ2 heatmap", HEATMAP_NAME)
        self.overlay_combo.addItem("z-map vs healthy", ZMAP_NAME)
        self.range_lo = QDoubleSpinBox()
        self.range_hi = QDoubleSpinBox()
        for box in (self.range_lo, self.range_hi):
            box.setDecimals(4)
            box.setRange(0.0, 10.0)
            box.setSingleStep(0.01)
        self.range_lo.setValue(self.state.heatmap_range[0])
        self.range_hi.setValue(self.state.heatmap_range[1])
        range_row = QHBoxLayout()
        range_row.addWidget(self.range_lo)
        range_row.addWidget(QLabel("to"))
        range_row.addWidget(self.range_hi)

        form = QFormLayout()
        form.addRow("Scan layer", self.layer_combo)
        form.addRow("Model", model_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Sequence", self.sequence_combo)
        form.addRow("Headline score", self.mode_combo)
        form.addRow("Overlay", self.overlay_combo)
        form.addRow("Heatmap range", range_row)

        self.run_btn = QPushButton("Run")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.cancel_btn)
        self.status_label = QLabel("Choose a scan layer and a model, then Run.")
        self.status_label.setWordWrap(True)

        self.score_label = QLabel("No result yet.")
        self.score_label.setWordWrap(True)
        self.score_label.setTextFormat(Qt.TextFormat.RichText)
        self.score_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        score_box = QGroupBox("Scan score")
        QVBoxLayout(score_box).addWidget(self.score_label)

        self.plot = SlicePlot(on_pick=self.go_to_slice)
        self.slice_label = QLabel("")
        self.top_list = QListWidget()
        self.top_list.setMaximumHeight(140)
        plot_box = QGroupBox("ℓ2 per axial slice (click to jump)")
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.addWidget(self.plot)
        plot_layout.addWidget(self.slice_label)
        self.top_label = QLabel("Most anomalous slices")
        plot_layout.addWidget(self.top_label)
        plot_layout.addWidget(self.top_list)

        self.export_heatmap_btn = QPushButton("Export heatmap…")
        self.export_report_btn = QPushButton("Export report…")
        self.export_dicom_btn = QPushButton("Export DICOM…")
        self.export_dicom_btn.setToolTip(
            "Write the maps, the overlay and the report as new series of the scan's DICOM study"
        )
        exports = QHBoxLayout()
        exports.addWidget(self.export_heatmap_btn)
        exports.addWidget(self.export_report_btn)
        exports.addWidget(self.export_dicom_btn)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(score_box)
        layout.addWidget(plot_box, 1)
        layout.addLayout(exports)
        self._set_result_enabled(False)

    def _connect(self) -> None:
        layers = self.viewer.layers.events
        layers.inserted.connect(self._refresh_layers)
        layers.removed.connect(self._refresh_layers)
        layers.moved.connect(self._refresh_layers)
        self.viewer.dims.events.point.connect(self._on_dims)
        self.browse_btn.clicked.connect(self._browse_model)
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.sequence_combo.currentTextChanged.connect(self.set_sequence)
        self.layer_combo.currentTextChanged.connect(self._layer_chosen)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.overlay_combo.currentIndexChanged.connect(self._apply_overlay)
        self.range_lo.valueChanged.connect(self._range_edited)
        self.range_hi.valueChanged.connect(self._range_edited)
        self.device_combo.currentTextChanged.connect(self._device_changed)
        self.model_combo.currentTextChanged.connect(self._model_changed)
        self.top_list.itemClicked.connect(self._top_clicked)
        self.export_heatmap_btn.clicked.connect(self._export_heatmap_clicked)
        self.export_report_btn.clicked.connect(self._export_report_clicked)
        self.export_dicom_btn.clicked.connect(self._export_dicom_clicked)

    def _set_result_enabled(self, enabled: bool) -> None:
        self.export_heatmap_btn.setEnabled(enabled)
        self.export_report_btn.setEnabled(enabled)
        scan = self.state.scan
        self.export_dicom_btn.setEnabled(enabled and scan is not None and scan.dicom is not None)

    # ---- inputs ---------------------------------------------------------------------------
    def _refresh_layers(self, event=None) -> None:
        current = self.layer_combo.currentText()
        names = [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and layer.name not in self.state.result_layers
            and layer.ndim == 3
        ]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        elif (
            event is not None
            and getattr(event, "type", "") == "inserted"
            and event.value.name in names
        ):
            self.layer_combo.setCurrentText(event.value.name)
        self.layer_combo.blockSignals(False)
        self._layer_chosen(self.layer_combo.currentText())

    def _refresh_models(self) -> None:
        current = self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(_settings.recent_models())
        self.model_combo.setEditText(current or self.model_combo.itemText(0))
        self.model_combo.blockSignals(False)
        self.state.model_path = self.model_combo.currentText()

    def set_model_path(self, path: str | Path, remember: bool = True) -> None:
        """Use this model file (and add it to the recent models)."""
        path = str(Path(path).resolve())
        if remember:
            _settings.add_recent_model(path)
        self._refresh_models()
        self.model_combo.setEditText(path)
        self.state.model_path = path

    def set_score_mode(self, mode: str) -> None:
        """Lead the score panel with ``mode`` (one of :data:`madgan_core.config.SCORE_MODES`)."""
        index = self.mode_combo.findData(mode)
        if index < 0:
            raise ValueError(f"unknown score mode {mode!r}")
        self.mode_combo.setCurrentIndex(index)

    def _mode_changed(self, _index: int) -> None:
        self.state.score_mode = self.mode_combo.currentData()
        # A z-map score is best read on the z-map, an ℓ2 score on the heatmap.
        self.set_overlay(ZMAP_NAME if self.state.score_mode in CALIBRATED_MODES else HEATMAP_NAME)
        if self.state.result is not None:
            self._show_scores(self.state.result)

    def set_overlay(self, name: str) -> None:
        """Show the ``HEATMAP_NAME`` or the ``ZMAP_NAME`` overlay of the result."""
        self.overlay_combo.setCurrentIndex(self.overlay_combo.findData(name))

    def _apply_overlay(self, _index: int | None = None) -> None:
        wanted = self.overlay_combo.currentData()
        present = [n for n in self.state.result_layers if n in self.viewer.layers]
        if wanted == ZMAP_NAME and not any(n.endswith(ZMAP_NAME) for n in present):
            wanted = HEATMAP_NAME  # no z-map: the model has no z-statistics for this sequence
            if present:
                note = "No z-map: calibrate the model with healthy scans of this sequence."
                if note not in self.status_label.text():
                    self.status_label.setText(f"{self.status_label.text()} {note}".strip())
        for name in present:
            if name.endswith((HEATMAP_NAME, ZMAP_NAME)):
                self.viewer.layers[name].visible = name.endswith(wanted)
        # The range boxes set the ℓ2 heatmap's limits; the z-map keeps its fixed z range.
        on_heatmap = wanted == HEATMAP_NAME
        for box in (self.range_lo, self.range_hi):
            box.setEnabled(on_heatmap)
            box.setToolTip(
                "" if on_heatmap else ZMAP_RANGE_TIP.format(lo=ZMAP_RANGE[0], hi=ZMAP_RANGE[1])
            )

    def _show_scores(self, result: ScanScore) -> None:
        title = self.state.scan_layer or None
        self.score_label.setText(score_html(result, title, self.state.score_mode))
        self._fill_top_slices(result)

    def _fill_top_slices(self, result: ScanScore) -> None:
        """List the most anomalous slices: by the z-map for a z-map headline score, else by ℓ2."""
        by_zmap = self.state.score_mode in CALIBRATED_MODES and result.slice_zvolume is not None
        self.top_label.setText(
            "Most anomalous slices (z-map)" if by_zmap else "Most anomalous slices (ℓ2)"
        )
        self.top_list.clear()
        for z, label in top_slices(result, by_zmap=by_zmap):
            item = QListWidgetItem(f"z = {z}    {label}")
            item.setData(Qt.ItemDataRole.UserRole, z)
            self.top_list.addItem(item)

    def set_scan_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def _layer_chosen(self, name: str) -> None:
        """Follow the sequence recorded with a layer (phantom samples carry theirs)."""
        if name in self.viewer.layers:
            sequence = (self.viewer.layers[name].metadata.get(INFO_KEY) or {}).get("sequence")
            if sequence in SEQUENCES and sequence != self.state.sequence:
                self.set_sequence(sequence)

    def _browse_model(self) -> None:
        start = str(Path(self.state.model_path).parent) if self.state.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a MADGAN model", start, MODEL_FILTER)
        if path:
            self.set_model_path(path)

    def _model_changed(self, text: str) -> None:
        self.state.model_path = text.strip()

    def _device_changed(self, text: str) -> None:
        self.state.device = DEVICE_CHOICES[text]

    def set_sequence(self, sequence: str) -> None:
        """Switch sequence: the heatmap range resets to that sequence's default."""
        self.state.sequence = sequence
        if self.sequence_combo.currentText() != sequence:
            self.sequence_combo.setCurrentText(sequence)
        self.set_heatmap_range(HEATMAP_RANGE[sequence])

    def set_heatmap_range(self, limits: tuple[float, float]) -> None:
        lo, hi = (float(v) for v in limits)
        for box, value in ((self.range_lo, lo), (self.range_hi, hi)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._apply_range((lo, hi))

    def _range_edited(self, _value=None) -> None:
        lo, hi = self.range_lo.value(), self.range_hi.value()
        if hi > lo:
            self._apply_range((lo, hi))

    def _apply_range(self, limits: tuple[float, float]) -> None:
        self.state.heatmap_range = limits
        for name in self.state.result_layers:
            if name.endswith(HEATMAP_NAME) and name in self.viewer.layers:
                self.viewer.layers[name].contrast_limits = limits

    # ---- scoring --------------------------------------------------------------------------
    def run(self) -> None:
        """Score the selected layer in a background worker."""
        if self.state.running:
            return
        name = self.layer_combo.currentText()
        if not name or name not in self.viewer.layers:
            show_error("MADGAN: choose a scan layer first")
            return
        model_path = self.model_combo.currentText().strip()
        if not model_path:
            show_error("MADGAN: choose a model file first")
            return
        if not Path(model_path).is_file():
            show_error(f"MADGAN: model file not found: {model_path}")
            return
        try:
            scan = scan_of_layer(self.viewer.layers[name])
        except MadganError as exc:
            show_error(f"MADGAN: {exc}")
            return
        self.state.model_path = model_path
        _settings.add_recent_model(model_path)
        self.state.scan, self.state.scan_layer = scan, name
        self.state.cancel.clear()
        self._worker_done.clear()
        worker = thread_worker(_score_job, start_thread=False, ignore_errors=True)(
            self.cache, model_path, scan, self.state, self._relay, self._worker_done
        )
        worker.returned.connect(self._on_result)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.state.worker = worker
        self._pbar = progress(total=0, desc=f"MADGAN scoring {name}")
        self._task = WindowTask(self.viewer, f"scoring {name}", self._stop_and_wait)
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status_label.setText(f"Scoring {name}…")
        worker.start()

    def cancel(self) -> None:
        """Ask the running worker to stop after the current batch."""
        if self.state.running:
            self.state.cancel.set()
            self.status_label.setText("Cancelling…")

    def _stop_and_wait(self, timeout: float = 30.0) -> None:
        """Cancel and block until the worker has left the model (used when napari closes)."""
        if self.state.worker is not None:
            self.state.cancel.set()
            self._worker_done.wait(timeout)

    def _on_progress(self, done: int, total: int) -> None:
        if self._pbar is None:
            return
        if self._pbar.total != total:
            self._pbar.total = total
        self._pbar.update(done - self._pbar.n)
        self.status_label.setText(f"Scoring… {done}/{total} windows")

    def _on_result(self, value: tuple[ScanScore, str, list[LayerSpec]]) -> None:
        result, model_name, specs = value
        self._model_name = model_name
        self.state.pending = len(specs) + 1
        # One layer per event-loop turn: napari needs a few hundred ms per volume layer,
        # and spreading them keeps every pause of the GUI short.
        self._apply_next(result, specs, [])

    def _apply_next(self, result: ScanScore, specs: list[LayerSpec], names: list[str]) -> None:
        if self.state.scan is None:
            self.state.pending = 0
            return
        if specs:
            names.append(apply_layer(self.viewer, specs[0]))
            self.state.pending -= 1
            QTimer.singleShot(0, lambda: self._apply_next(result, specs[1:], names))
            return
        self.show_result(result, layer_names=names)
        self.state.pending = 0

    def _on_error(self, exc: BaseException) -> None:
        from madgan_core.score import ScoringCancelled

        if isinstance(exc, ScoringCancelled):
            self.status_label.setText("Scoring cancelled.")
            show_info("MADGAN: scoring cancelled")
        elif isinstance(exc, MadganError):
            self.status_label.setText(f"Error: {exc}")
            show_error(f"MADGAN: {exc}")
        else:
            self.status_label.setText(f"Unexpected error: {type(exc).__name__}: {exc}")
            show_error(f"MADGAN: unexpected error while scoring: {type(exc).__name__}: {exc}")
            log.error("scoring failed", exc_info=exc)

    def _on_finished(self) -> None:
        self.state.worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self._task is not None:
            self._task.done()
            self._task = None
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    # ---- results --------------------------------------------------------------------------
    def show_result(self, result: ScanScore, layer_names: list[str] | None = None) -> None:
        """Show ``result``: its layers (added unless given), score panel, plot and slice list."""
        scan = self.state.scan
        self.state.result = result
        if layer_names is None:
            prefix = f"{self.state.scan_layer} " if self.state.scan_layer else ""
            layer_names = add_result_layers(
                self.viewer, scan, result, self.state.heatmap_range, prefix
            )
        self.state.result_layers = layer_names
        self._refresh_layers()
        if self.state.scan_layer in self.viewer.layers:
            self.viewer.layers.selection.active = self.viewer.layers[self.state.scan_layer]
        self._show_scores(result)
        self.plot.set_data(result.slice_indices, result.slice_losses, self.current_slice())
        self._on_dims()
        self._set_result_enabled(result.heatmap is not None)
        note = "" if result.n_controls else f" ({NO_REFERENCE})"
        self.status_label.setText(
            f"Scored {self.state.scan_layer or result.name}: {len(result.window_losses)} windows{note}."
        )
        self._apply_overlay()

    def current_slice(self) -> int:
        """The axial (RAS+ z) index of the scored scan under the slider."""
        scan = self.state.scan
        if scan is None:
            return 0
        return world_to_slice(self.viewer.dims.point[0], scan.affine, scan.data.shape)

    def go_to_slice(self, z: int) -> None:
        """Move the viewer's axial slider to slice ``z`` of the scored scan."""
        scan = self.state.scan
        if scan is None:
            return
        self.viewer.dims.set_point(0, slice_world(z, scan.affine, scan.data.shape))

    def _on_dims(self, event=None) -> None:
        if self.state.scan is None or self.state.result is None:
            return
        z = self.current_slice()
        self.state.current_slice = z
        self.plot.set_current(z)
        result = self.state.result
        hits = np.flatnonzero(np.asarray(result.slice_indices) == z)
        if hits.size and np.isfinite(result.slice_losses[hits[0]]):
            self.slice_label.setText(f"Slice z = {z}: ℓ2 = {result.slice_losses[hits[0]]:.4g}")
        else:
            self.slice_label.setText(f"Slice z = {z}: not scored")

    def _top_clicked(self, item: QListWidgetItem) -> None:
        self.go_to_slice(int(item.data(Qt.ItemDataRole.UserRole)))

    # ---- exports --------------------------------------------------------------------------
    def export_heatmap(self, path: str | Path) -> Path:
        if self.state.result is None or self.state.scan is None:
            raise MadganError("nothing to export: run the model first")
        return export_heatmap(self.state.result, self.state.scan, path)

    def export_report(self, path: str | Path) -> Path:
        if self.state.result is None:
            raise MadganError("nothing to export: run the model first")
        shot = self.viewer.screenshot(canvas_only=True, flash=False)
        return write_report(path, shot, self.state.result, self.current_slice(), self._model_name)

    def export_dicom(self, folder: str | Path) -> Path:
        """Write the result as new series of the scan's DICOM study into ``folder/<scan>/``."""
        if self.state.result is None or self.state.scan is None:
            raise MadganError("nothing to export: run the model first")
        shot = self.viewer.screenshot(canvas_only=True, flash=False)
        written = export_dicom_results(
            folder,
            shot,
            self.state.result,
            self.state.scan,
            self.current_slice(),
            self._model_name,
            self.state.sequence,
        )
        return written.folder

    def _default_export(self, suffix: str) -> str:
        scan = self.state.scan
        folder = scan.path.parent if scan is not None and scan.path is not None else Path.home()
        stem = self.state.result.name if self.state.result is not None else "scan"
        return str(folder / f"{stem}{suffix}")

    def _export_heatmap_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export heatmap",
            self._default_export("_l2_heatmap.nii.gz"),
            "NIfTI (*.nii.gz *.nii)",
        )
        if path:
            self._guarded(lambda: show_info(f"Heatmap saved to {self.export_heatmap(path)}"))

    def _export_report_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export report",
            self._default_export("_madgan_report.pdf"),
            "PDF (*.pdf);;PNG (*.png)",
        )
        if path:
            self._guarded(lambda: show_info(f"Report saved to {self.export_report(path)}"))

    def _export_dicom_clicked(self) -> None:
        start = str(Path(self._default_export("")).parent)
        folder = QFileDialog.getExistingDirectory(self, "Export DICOM results into", start)
        if folder:
            self._guarded(lambda: show_info(f"DICOM results saved to {self.export_dicom(folder)}"))

    @staticmethod
    def _guarded(action) -> None:
        try:
            action()
        except (MadganError, OSError) as exc:
            show_error(f"MADGAN: {exc}")
