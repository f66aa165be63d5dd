"""The "MADGAN train" dialog: a form over ``madgan train``, run as a child process.

Start launches ``python -m madgan_core.cli train ...`` with :class:`TrainingProcess`;
a timer follows ``metrics.jsonl`` and the preview folder. Stop sends SIGINT, so
the trainer writes a checkpoint; Resume restarts with ``--resume``. When the run
finishes, its ``model.pt`` joins the recent models and is set in every open
review widget.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from madgan_core.config import DEVICES, PRECISIONS, PRESETS, VARIANTS
from madgan_core.errors import ConfigError
from napari_madgan import _settings
from napari_madgan._guard import guarded
from napari_madgan._tasks import WindowTask
from napari_madgan.training._curves import LossCurves
from napari_madgan.training._metrics import MetricsTail, format_eta, latest_preview
from napari_madgan.training._request import TrainRequest, changed_settings, form_values
from napari_madgan.training._runner import TrainingProcess

if TYPE_CHECKING:
    import napari

POLL_MS = 500


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def _path_row(edit: QLineEdit, *buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    for b in buttons:
        row.addWidget(b)
    return row


class TrainingWidget(QWidget):
    """Configure, start, follow, stop and resume a MADGAN training run."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        # napari's Plugins menu passes the viewer (as a public-only proxy) to a parameter
        # named ``napari_viewer``.
        super().__init__(parent)
        self.viewer = napari_viewer
        self.runner = TrainingProcess(self)
        self.runner.output.connect(self._append_log)
        self.runner.finished.connect(self._on_finished)
        self.metrics: MetricsTail | None = None
        self.request: TrainRequest | None = None
        self._preview: Path | None = None
        self._task: WindowTask | None = None
        self._shown: dict = {}  # the form's values as loaded from the preset and config file
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self._build()

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.manifest_edit = QLineEdit()
        self.manifest_edit.setPlaceholderText("manifest.csv or a folder of healthy scans")
        self.manifest_file_btn = QPushButton("File…")
        self.manifest_dir_btn = QPushButton("Folder…")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("output folder")
        self.out_btn = QPushButton("Folder…")
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESETS))
        self.preset_combo.setCurrentText("demo")
        self.variant_combo = QComboBox()
        self.variant_combo.addItems(list(VARIANTS))
        self.l1_spin = QDoubleSpinBox()
        self.l1_spin.setRange(0.0, 10_000.0)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000_000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(list(PRECISIONS))
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("optional config JSON (overrides the preset)")
        self.config_btn = QPushButton("File…")

        form = QFormLayout()
        form.addRow(
            "Manifest / folder",
            _path_row(self.manifest_edit, self.manifest_file_btn, self.manifest_dir_btn),
        )
        form.addRow("Output folder", _path_row(self.out_edit, self.out_btn))
        form.addRow("Preset", self.preset_combo)
        form.addRow("Variant", self.variant_combo)
        form.addRow("ℓ1 weight", self.l1_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Config", _path_row(self.config_edit, self.config_btn))

        self.start_btn = QPushButton("Start")
        self.stop_btn = QPushButton("Stop")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn.setEnabled(False)
        self.resume_btn.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.stop_btn, self.resume_btn):
            buttons.addWidget(b)

        self.status_label = QLabel("Not running.")
        self.status_label.setWordWrap(True)
        self.curves = LossCurves()
        self.preview_label = QLabel("No preview yet.")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumHeight(120)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.log_view.setMaximumHeight(90)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.log_view)

        self.preset_combo.currentTextChanged.connect(self._load_form)
        self.config_edit.textChanged.connect(self._load_form)
        self.manifest_file_btn.clicked.connect(self._browse_manifest_file)
        self.manifest_dir_btn.clicked.connect(self._browse_manifest_dir)
        self.out_btn.clicked.connect(self._browse_out_dir)
        self.config_btn.clicked.connect(self._browse_config)
        self.start_btn.clicked.connect(self._start_clicked)
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn.clicked.connect(self._resume_clicked)
        self._load_form()

    def show_status(self, text: str) -> None:
        """The dialog's one-line status (errors included)."""
        self.status_label.setText(text)

    @guarded
    def _load_form(self, *_) -> None:
        """Show the preset's values, with the config file's over them; the user's edits start here."""
        config = self.config_edit.text().strip()
        try:
            values = form_values(self.preset_combo.currentText(), _absolute(config))
        except ConfigError as exc:
            if config and Path(config).expanduser().is_file():
                self.status_label.setText(f"Config: {exc}")
            return
        self.variant_combo.setCurrentText(values["variant"])
        self.l1_spin.setValue(values["l1_weight"])
        self.steps_spin.setValue(values["steps"])
        self.batch_spin.setValue(values["batch_size"])
        self.device_combo.setCurrentText(values["device"])
        self.precision_combo.setCurrentText(values["precision"])
        self._shown = self._form_values()

    def _form_values(self) -> dict:
        return {
            "variant": self.variant_combo.currentText(),
            "l1_weight": self.l1_spin.value(),
            "steps": self.steps_spin.value(),
            "batch_size": self.batch_spin.value(),
            "device": self.device_combo.currentText(),
            "precision": self.precision_combo.currentText(),
        }

    @guarded
    def _browse_manifest_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Cohort manifest", "", "Manifest (*.csv);;All files (*)"
        )
        if path:
            self.manifest_edit.setText(path)

    @guarded
    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Config JSON", "", "JSON (*.json);;All files (*)"
        )
        if path:
            self.config_edit.setText(path)

    @guarded
    def _browse_manifest_dir(self) -> None:
        self._browse_dir(self.manifest_edit, "Folder of healthy scans")

    @guarded
    def _browse_out_dir(self) -> None:
        self._browse_dir(self.out_edit, "Output folder")

    @guarded
    def _start_clicked(self) -> None:
        self.start()

    @guarded
    def _resume_clicked(self) -> None:
        self.start(resume=True)

    def _browse_dir(self, edit: QLineEdit, title: str) -> None:
        path = QFileDialog.getExistingDirectory(self, title, edit.text())
        if path:
            edit.setText(path)

    # ---- run control ----------------------------------------------------------------------
    def current_request(self) -> TrainRequest:
        """The form as a :class:`TrainRequest` (paths made absolute): only the settings the
        user changed are sent, so the preset and the config file decide the rest."""
        return TrainRequest(
            manifest=_absolute(self.manifest_edit.text().strip()),
            out=_absolute(self.out_edit.text().strip()),
            preset=self.preset_combo.currentText(),
            config=_absolute(self.config_edit.text().strip()),
            settings=changed_settings(self._shown, self._form_values()),
            steps=self.steps_spin.value(),
        )

    def start(self, resume: bool = False) -> bool:
        """Launch (or resume) a run; returns False and says why when the form is incomplete."""
        if self.runner.running:
            return False
        if not self.manifest_edit.text().strip() or not self.out_edit.text().strip():
            show_error(
                "MADGAN train: choose a manifest (or folder of healthy scans) and an output folder"
            )
            return False
        request = self.current_request()
        if not Path(request.manifest).exists():
            show_error(f"MADGAN train: {request.manifest}: not found")
            return False
        self.request = request
        self.metrics = MetricsTail(Path(request.out) / "metrics.jsonl")
        self._preview = None
        try:
            self.runner.start(request, resume=resume)
        except (OSError, RuntimeError) as exc:
            show_error(f"MADGAN train: could not start: {exc}")
            return False
        self._task = WindowTask(self.viewer, f"training into {request.out}", self._stop_and_wait)
        self.start_btn.setEnabled(False)
        self.resume_btn.setEnabled(False)
        self.stop_btn.setEnabled(True)
        self.status_label.setText(
            ("Resuming" if resume else "Starting") + f" training into {request.out}…"
        )
        self.timer.start()
        return True

    @guarded
    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and exit."""
        if self.runner.running:
            self.status_label.setText("Stopping: saving a checkpoint…")
            self.stop_btn.setEnabled(False)
            self.runner.stop()

    def _stop_and_wait(self) -> None:
        self.timer.stop()
        self.runner.stop_and_wait()

    @guarded
    def poll(self) -> None:
        """Read new metrics and the newest preview; update curves and status."""
        if self.metrics is None or self.request is None:
            return
        if self.metrics.poll():
            self.curves.update_from(self.metrics)
            last = self.metrics.last
            speed = last.get("samples_per_s")
            speed_text = f", {speed:.1f} samples/s" if isinstance(speed, int | float) else ""
            self.status_label.setText(
                f"Step {last['step']} / {self.request.steps}{speed_text}, "
                f"time left {format_eta(last.get('eta_s'))}"
            )
        preview = latest_preview(self.request.out)
        if preview is not None and preview != self._preview:
            pixmap = QPixmap(str(preview))
            if not pixmap.isNull():
                self._preview = preview
                self.preview_label.setPixmap(
                    pixmap.scaledToWidth(
                        min(360, max(120, self.width() - 20)),
                        Qt.TransformationMode.SmoothTransformation,
                    )
                )
                self.preview_label.setToolTip(str(preview))

    @guarded
    def _append_log(self, text: str) -> None:
        self.log_view.appendPlainText(text.rstrip("\n"))

    @guarded
    def _on_finished(self, code: int) -> None:
        self.timer.stop()
        self.poll()
        stopped = self.runner.stopping
        if self._task is not None:
            self._task.done()
            self._task = None
        self.start_btn.setEnabled(True)
        self.stop_btn.setEnabled(False)
        self.resume_btn.setEnabled(True)
        model = self.request.model_path if self.request is not None else None
        if code == 0 and model is not None and model.is_file() and not stopped:
            self.status_label.setText(f"Finished: {model}")
            self.offer_model(model)
        elif stopped:
            self.status_label.setText(
                f"Stopped (exit code {code}); Resume continues from the last checkpoint."
            )
        else:
            self.status_label.setText(f"Training failed (exit code {code}); see the log below.")
            show_error(f"MADGAN train: training exited with code {code}: {self._last_log_line()}")

    def _last_log_line(self) -> str:
        lines = [line for line in self.log_view.toPlainText().splitlines() if line.strip()]
        return lines[-1] if lines else "no output"

    def offer_model(self, model: Path) -> int:
        """Add ``model`` to the recent models and set it in every open review widget."""
        from napari_madgan.review import ReviewWidget

        _settings.add_recent_model(model)
        widgets = self._review_widgets(ReviewWidget)
        for widget in widgets:
            widget.set_model_path(model, remember=False)
        where = (
            f" and set in {len(widgets)} review widget(s)"
            if widgets
            else "; open MADGAN review to use it"
        )
        show_info(f"MADGAN: trained model {model} added to recent models{where}")
        return len(widgets)

    def _review_widgets(self, cls) -> list:
        """The review widgets docked in this viewer's window (napari's public mapping)."""
        window = getattr(self.viewer, "window", None)
        docked = getattr(window, "dock_widgets", {})
        return [widget for widget in docked.values() if isinstance(widget, cls)]
