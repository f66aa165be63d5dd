"""The "MADGAN review" dock widget: a thin controller over :func:`madgan_core.scoring.scorer.score_scan`.

The inputs are a magicgui form (:class:`ReviewForm`); below them sit the score
panel, the per-slice ℓ2 plot (synced both ways with the slider), the most
anomalous slices and the exports. Pressing Run freezes the form into a
:class:`ReviewRequest` that :class:`ReviewController` scores off the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from madgan_core.config import HEATMAP_RANGE, SEQUENCES, ZMAP_RANGE
from madgan_core.errors import MadganError
from madgan_core.model.bundled import is_bundled, resolve_model
from madgan_core.modes import AUTO, headline_mode, score_mode
from madgan_core.outputs.wording import NO_REFERENCE
from madgan_core.scans.covariates import Covariates
from napari_madgan import _settings
from napari_madgan._geometry import slice_world, world_of_ras, world_to_slice
from napari_madgan._guard import guarded, report_error
from napari_madgan._layers import INFO_KEY, real_layer
from napari_madgan.review._controller import (
    ReviewController,
    ReviewRequest,
    ShownResult,
    scan_of_layer,
)
from napari_madgan.review._covariates import LayerCovariates
from napari_madgan.review._exports import ResultExports
from napari_madgan.review._findings import FINDINGS_NAME, show_findings
from napari_madgan.review._form import ReviewForm
from napari_madgan.review._layers import HEATMAP, ZMAP
from napari_madgan.review._reader_offer import ReaderOffer
from napari_madgan.review._results import ResultView

if TYPE_CHECKING:
    import napari

    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore

# Zoomed past the whole-slice view by more than this, a picked finding is centred on.
ZOOMED_IN = 1.2
NOT_ADJUSTED = "the model's controls have no ages or sexes: the percentiles are not adjusted"
ZMAP_RANGE_TIP = (
    "These set the ℓ2 heatmap's range. The z-map is drawn from z = {lo:g} to {hi:g}; "
    "change that in napari's layer controls (contrast limits)."
)


def viewer_camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return viewer.camera if scene is None else scene.camera


class ReviewWidget(QWidget):
    """Score the selected scan layer with a MADGAN model and browse the result."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        # napari's Plugins menu passes the viewer (as a public-only proxy) to a parameter
        # named ``napari_viewer``.
        super().__init__(parent)
        self.viewer = napari_viewer
        self.controller = ReviewController(
            napari_viewer,
            on_progress=self._on_progress,
            on_shown=self._on_shown,
            on_error=self._on_error,
            on_finished=self._on_finished,
        )
        self.form = ReviewForm(self._scan_layer_names, _settings.recent_models)
        self._findings_layer = None
        self._covariates = LayerCovariates(self.form)
        self.exports = ResultExports(self)
        self._build()
        self._connect()
        self.form.reset_choices()
        self._layer_chosen()
        recent = _settings.recent_models()
        if recent:
            self.form.model_path = recent[0]
        else:
            self.form.use_bundled()  # the bundled model, where one is installed

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.reader_offer = ReaderOffer()
        self.results = ResultView(on_slice=self.go_to_slice, on_finding=self._finding_picked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.reader_offer)
        layout.addWidget(self.form.native)
        # The results scroll rather than squeeze: the score panel keeps every line.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.results)
        layout.addWidget(scroll, 1)

    def _connect(self) -> None:
        form = self.form
        layers = self.viewer.layers.events
        layers.inserted.connect(self._layers_changed)
        layers.removed.connect(self._layers_changed)
        layers.moved.connect(self._layers_changed)
        self.viewer.dims.events.point.connect(self._on_dims)
        form.scan_layer.changed.connect(self._layer_chosen)
        form.recent_model.changed.connect(self._recent_model_chosen)
        form.use_bundled_button.clicked.connect(self.use_bundled_model)
        form.sequence.changed.connect(self.set_sequence)
        form.headline.changed.connect(self._headline_changed)
        form.overlay.changed.connect(self._apply_overlay)
        form.range_low.changed.connect(self._range_edited)
        form.range_high.changed.connect(self._range_edited)
        form.run_button.clicked.connect(self.run)
        form.cancel_button.clicked.connect(self.cancel)
        for kind, button in self.results.export_buttons.items():
            button.clicked.connect(lambda _=False, k=kind: self._export_clicked(k))

    def show_status(self, text: str) -> None:
        """The widget's one-line status (errors included)."""
        self.form.status.value = text

    @property
    def status_text(self) -> str:
        return str(self.form.status.value)

    # ---- inputs ---------------------------------------------------------------------------
    def _scan_layer_names(self) -> list[str]:
        """3-D image layers that are not results of this widget."""
        return [
            layer.name
            for layer in self.viewer.layers
            if isinstance(layer, Image) and layer.ndim == 3 and not self.controller.owns(layer)
        ]

    @guarded
    def _layers_changed(self, event=None) -> None:
        current = self.form.scan_layer.value
        with self.form.scan_layer.changed.blocked():
            self.form.scan_layer.reset_choices()
            names = self.form.scan_layer.choices
            inserted = getattr(event, "type", "") == "inserted" and event.value.name in names
            if inserted and current not in names:
                self.form.scan_layer.value = event.value.name  # follow a newly opened scan
        if self.form.scan_layer.value != current:
            self._layer_chosen()

    @guarded
    def _layer_chosen(self, _name=None) -> None:
        """Follow the sequence recorded with a layer (phantom samples carry theirs), and
        show the age and sex of its scan."""
        name = self.form.scan_layer.value
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            info = layer.metadata.get(INFO_KEY) or {}
            sequence = info.get("sequence")
            if sequence in SEQUENCES and sequence != self.form.sequence.value:
                self.set_sequence(sequence)
            self._covariates.follow(real_layer(layer))

    def set_covariates(self, age: float | None = None, sex: str | None = None) -> None:
        """Enter the scan's age (years) and sex (``"F"``, ``"M"``); None leaves it unknown."""
        self.form.set_covariates(Covariates(age=age, sex=sex))

    def set_scan_layer(self, name: str) -> None:
        self.form.scan_layer.value = name

    def set_model_path(self, path: str | Path, remember: bool = True) -> None:
        """Use this model file (and add it to the recent models)."""
        path = str(Path(path).resolve())
        if remember:
            _settings.add_recent_model(path)
        with self.form.recent_model.changed.blocked():
            self.form.recent_model.reset_choices()
        self.form.model_path = path

    @property
    def model_path(self) -> str:
        return self.form.model_path

    @guarded
    def use_bundled_model(self) -> None:
        """Go back to the bundled model (remembered once it scores, as any model)."""
        self.form.use_bundled()

    @guarded
    def _recent_model_chosen(self, path: str | None) -> None:
        if path:
            self.form.model_path = path

    @guarded
    def set_sequence(self, sequence: str) -> None:
        """Switch sequence: the heatmap range resets to that sequence's default."""
        if self.form.sequence.value != sequence:
            with self.form.sequence.changed.blocked():
                self.form.sequence.value = sequence
        self.set_heatmap_range(HEATMAP_RANGE[sequence])

    def set_score_mode(self, mode: str) -> None:
        """Lead the score panel with ``mode`` (one of :func:`madgan_core.modes.mode_names`)."""
        if mode != AUTO and mode not in self.form.headline.choices:
            raise ValueError(f"unknown score mode {mode!r}")
        self.form.headline.value = mode

    def headline(self) -> str:
        """The headline mode in force: the form's choice, ``auto`` resolved on the result."""
        result = self.result
        return headline_mode(self.form.headline.value, {} if result is None else result.scores)

    @guarded
    def _headline_changed(self, _mode: str | None = None) -> None:
        mode = self.headline()
        if mode != AUTO:
            # A z-map score is best read on the z-map, an ℓ2 score on the heatmap.
            self.set_overlay(score_mode(mode).overlay)
        if self.controller.shown is not None:
            self._show_scores(self.controller.shown)

    def set_overlay(self, kind: str) -> None:
        """Show the ``HEATMAP`` or the ``ZMAP`` overlay of the result."""
        if kind not in (HEATMAP, ZMAP):
            raise ValueError(f"unknown overlay {kind!r}; expected {HEATMAP!r} or {ZMAP!r}")
        if self.form.overlay.value == kind:
            self._apply_overlay()
        else:
            self.form.overlay.value = kind

    @guarded
    def _apply_overlay(self, _value=None) -> None:
        wanted = self.form.overlay.value or HEATMAP
        layers = self.controller.overlay_layers()
        if wanted == ZMAP and ZMAP not in layers:
            wanted = HEATMAP  # no z-map: the model has no z-statistics for this sequence
            if layers:
                note = "No z-map: calibrate the model with healthy scans of this sequence."
                if note not in self.status_text:
                    self.show_status(f"{self.status_text} {note}".strip())
        for kind, layer in layers.items():
            layer.visible = kind == wanted
        # The range boxes set the ℓ2 heatmap's limits; the z-map keeps its fixed z range.
        on_heatmap = wanted == HEATMAP
        tip = "" if on_heatmap else ZMAP_RANGE_TIP.format(lo=ZMAP_RANGE[0], hi=ZMAP_RANGE[1])
        for box in (self.form.range_low, self.form.range_high):
            box.enabled = on_heatmap
            box.tooltip = tip

    def set_heatmap_range(self, limits: tuple[float, float]) -> None:
        self.form.set_range(limits)
        self._apply_range(tuple(float(v) for v in limits))

    @guarded
    def _range_edited(self, _value=None) -> None:
        low, high = self.form.range_values
        if high > low:
            self._apply_range((low, high))

    def _apply_range(self, limits: tuple[float, float]) -> None:
        heatmap = self.controller.overlay_layers().get(HEATMAP)
        if heatmap is not None:
            heatmap.contrast_limits = limits

    # ---- scoring --------------------------------------------------------------------------
    def current_request(self) -> ReviewRequest:
        """The form's values as a frozen request; a clear error when something is missing."""
        name = self.form.scan_layer.value
        if not name or name not in self.viewer.layers:
            raise MadganError("choose a scan layer first")
        model_path = self.form.model_path
        if not model_path:
            raise MadganError("choose a model file first")
        if is_bundled(model_path):  # a bundled model's name typed in
            model_path = str(resolve_model(model_path))
        if not Path(model_path).is_file():
            raise MadganError(f"model file not found: {model_path}")
        return ReviewRequest(
            scan=scan_of_layer(self.viewer.layers[name]),
            layer_name=name,
            model_path=model_path,
            device=self.form.device.value,
            sequence=self.form.sequence.value,
            heatmap_range=self.form.range_values,
            covariates=self.form.covariates,
        )

    @guarded
    def run(self) -> None:
        """Score the selected layer in a background worker."""
        if self.controller.running:
            return
        request = self.current_request()
        _settings.add_recent_model(request.model_path)
        self.form.set_busy(True)
        self.show_status(f"Scoring {request.layer_name}…")
        self.controller.start(request)

    @guarded
    def cancel(self) -> None:
        """Ask the running worker to stop after the current batch."""
        if self.controller.running:
            self.controller.cancel()
            self.show_status("Cancelling…")

    @guarded
    def _on_progress(self, done: int, total: int) -> None:
        self.show_status(f"Scoring… {done}/{total} windows")

    @guarded
    def _on_error(self, exc: BaseException) -> None:
        from madgan_core.scoring.reconstruct import ScoringCancelled

        if isinstance(exc, ScoringCancelled):
            self.show_status("Scoring cancelled.")
            show_info("MADGAN: scoring cancelled")
            return
        report_error(self, exc)

    @guarded
    def _on_finished(self) -> None:
        self.form.set_busy(False)

    @guarded
    def _on_shown(self, shown: ShownResult) -> None:
        name = shown.request.layer_name
        self.form.scan_layer.reset_choices()
        if name in self.viewer.layers:
            self.viewer.layers.selection.active = self.viewer.layers[name]
        result = shown.result
        self.results.show_curve(result, self.current_slice())
        self._on_dims()
        dicom = getattr(shown.request.scan, "dicom", None) is not None
        self.results.set_exports_enabled(result.heatmap is not None, dicom)
        note = "" if result.n_controls else f" ({NO_REFERENCE})"
        if shown.request.covariates is not None and result.n_controls and not result.adjustments:
            note = f" ({NOT_ADJUSTED})"
        self.show_status(
            f"Scored {name or result.name}: {len(result.window_losses)} windows{note}."
        )
        self._apply_range(self.form.range_values)
        self._show_findings_layer(shown)
        self._headline_changed()

    def _show_scores(self, shown: ShownResult) -> None:
        self.results.show_scores(shown.result, shown.request.layer_name or None, self.headline())

    def _show_findings_layer(self, shown: ShownResult) -> None:
        name = f"{shown.request.layer_name} {FINDINGS_NAME}".strip()
        self._findings_layer = show_findings(
            self.viewer,
            shown.result.findings or [],
            name,
            shown.request.scan,
            self._findings_layer,
        )

    @guarded
    def _finding_picked(self, finding) -> None:
        """Go to the region's peak slice with the result's overlay in view.

        A reader looking at the whole slice keeps seeing all of it (the ring marks the
        region); one zoomed in past it keeps the zoom, centred on the peak.
        """
        self.go_to_slice(finding.peak_voxel[2])
        for kind, layer in self.controller.overlay_layers().items():
            layer.visible = kind == (self.form.overlay.value or HEATMAP)
        camera = viewer_camera(self.viewer)
        zoom = camera.zoom
        self.viewer.reset_view()
        if zoom > ZOOMED_IN * camera.zoom:
            centre = world_of_ras(np.array(finding.peak_mm))[0]
            camera.zoom = zoom
            camera.center = tuple(float(v) for v in centre[1:])

    # ---- slices ---------------------------------------------------------------------------
    @property
    def result(self) -> ScanScore | None:
        return None if self.controller.shown is None else self.controller.shown.result

    @property
    def scan(self) -> Scan | None:
        return None if self.controller.shown is None else self.controller.shown.request.scan

    def current_slice(self) -> int:
        """The axial (RAS+ z) index of the scored scan under the slider."""
        scan = self.scan
        if scan is None:
            return 0
        return world_to_slice(self.viewer.dims.point[0], scan.affine, scan.data.shape)

    @guarded
    def go_to_slice(self, z: int) -> None:
        """Move the viewer's axial slider to slice ``z`` of the scored scan."""
        scan = self.scan
        if scan is not None:
            self.viewer.dims.set_point(0, slice_world(z, scan.affine, scan.data.shape))

    @guarded
    def _on_dims(self, event=None) -> None:
        if self.result is not None:
            self.results.show_slice(self.result, self.current_slice())

    # ---- exports --------------------------------------------------------------------------
    def export_heatmap(self, path: str | Path) -> Path:
        return self.exports.heatmap(path)

    def export_report(self, path: str | Path) -> Path:
        return self.exports.report(path)

    def export_dicom(self, folder: str | Path) -> Path:
        return self.exports.dicom(folder)

    @guarded
    def _export_clicked(self, kind: str) -> None:
        getattr(self.exports, f"ask_{kind}")()
