"""The "MADGAN train" dock widget: a form over ``madgan train``, run as a child process.

The inputs are a magicgui form (:class:`TrainingForm`); below them sit the live
loss curves, the newest preview and the log. Start freezes the form into a
:class:`TrainRequest` that :class:`TrainingController` runs as
``python -m madgan_core.cli train ...`` and follows. Stop sends SIGINT, so the
trainer writes a checkpoint; Resume restarts with ``--resume``. When the run
finishes, its ``model.pt`` joins the recent models and is set in every open
review widget.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from madgan_core.errors import ConfigError, MadganError
from napari_madgan import _settings
from napari_madgan._guard import guarded, report_error
from napari_madgan.training._controller import RunEnd, TrainingController
from napari_madgan.training._curves import LossCurves
from napari_madgan.training._form import TrainingForm
from napari_madgan.training._metrics import MetricsTail
from napari_madgan.training._request import TrainRequest

if TYPE_CHECKING:
    import napari


class TrainingWidget(QWidget):
    """Configure, start, follow, stop and resume a MADGAN training run."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        # napari's Plugins menu passes the viewer (as a public-only proxy) to a parameter
        # named ``napari_viewer``.
        super().__init__(parent)
        self.viewer = napari_viewer
        self.form = TrainingForm()
        self.controller = TrainingController(napari_viewer, view=self, parent=self)
        self._build()
        self._connect()
        self._load_form()

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.curves = LossCurves()
        self.preview_label = QLabel("No preview yet.")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumHeight(120)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.log_view.setMaximumHeight(90)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.preview_label)
        layout.addWidget(self.log_view)

    def _connect(self) -> None:
        form = self.form
        form.preset.changed.connect(self._load_form)
        form.config.changed.connect(self._load_form)
        form.manifest_folder_button.clicked.connect(self._choose_manifest_folder)
        form.start_button.clicked.connect(self._start_clicked)
        form.stop_button.clicked.connect(self.stop)
        form.resume_button.clicked.connect(self._resume_clicked)

    def show_status(self, text: str) -> None:
        """The dialog's one-line status (errors included)."""
        self.form.status.value = text

    @property
    def status_text(self) -> str:
        return str(self.form.status.value)

    # ---- inputs ---------------------------------------------------------------------------
    @guarded
    def _load_form(self, _value=None) -> None:
        """Show the preset's values, with the config file's over them."""
        try:
            self.form.load()
        except ConfigError as exc:
            # a path still being typed is not an error; a file that exists and is bad is
            config = self.form.config_path
            if config and Path(config).expanduser().is_file():
                self.show_status(f"Config: {exc}")

    @guarded
    def _choose_manifest_folder(self) -> None:
        self.form.choose_manifest_folder()

    def current_request(self) -> TrainRequest:
        """The form as a frozen :class:`TrainRequest`; only the settings the user changed
        are sent, so the preset and the config file decide the rest."""
        return self.form.request()

    # ---- run control ----------------------------------------------------------------------
    @guarded
    def _start_clicked(self) -> None:
        self.start()

    @guarded
    def _resume_clicked(self) -> None:
        self.start(resume=True)

    def start(self, resume: bool = False) -> bool:
        """Launch (or resume) a run; returns False and says why when it cannot start."""
        if self.controller.running:
            return False
        try:
            request = self.form.request()
            self.controller.start(request, resume=resume)
        except MadganError as exc:
            report_error(self, exc)
            return False
        except (OSError, RuntimeError) as exc:
            report_error(self, MadganError(f"could not start training: {exc}"))
            return False
        self.form.set_running(True)
        self.show_status(("Resuming" if resume else "Starting") + f" training into {request.out}…")
        return True

    @guarded
    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and exit."""
        if self.controller.stop():
            self.show_status("Stopping: saving a checkpoint…")
            self.form.stop_button.enabled = False

    # ---- what the run reports (the controller's TrainingView) ---------------------------------
    @guarded
    def show_progress(self, metrics: MetricsTail, line: str) -> None:
        self.curves.update_from(metrics)
        self.show_status(line)

    @guarded
    def show_preview(self, path: Path) -> bool:
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            return False  # still being written
        width = min(360, max(120, self.width() - 20))
        self.preview_label.setPixmap(
            pixmap.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        )
        self.preview_label.setToolTip(str(path))
        return True

    @guarded
    def append_log(self, text: str) -> None:
        self.log_view.appendPlainText(text.rstrip("\n"))

    @guarded
    def run_ended(self, end: RunEnd) -> None:
        self.form.set_running(False)
        if end.model is not None:
            self.show_status(f"Finished: {end.model}")
            self.offer_model(end.model)
        elif end.stopped:
            self.show_status(
                f"Stopped (exit code {end.code}); Resume continues from the last checkpoint."
            )
        else:
            self.show_status(f"Training failed (exit code {end.code}); see the log below.")
            last = end.last_line or "no output"
            show_error(f"MADGAN train: training exited with code {end.code}: {last}")

    # ---- hand-over ------------------------------------------------------------------------
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
