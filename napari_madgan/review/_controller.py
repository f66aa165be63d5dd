"""Score a scan off the GUI thread and show the result as layers.

The widget hands :meth:`ReviewController.start` a frozen :class:`ReviewRequest`;
the worker reads nothing else. The controller keeps references to the layers it
made, so it finds them again however the user renames or reorders them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils import progress
from qtpy.QtCore import QObject, QTimer, Signal

from madgan_core.errors import MadganError
from napari_madgan._layers import SCAN_KEY, in_viewer, real_layer
from napari_madgan._tasks import WindowTask
from napari_madgan.review._layers import HEATMAP, ZMAP, LayerSpec, apply_layer, result_layer_specs
from napari_madgan.review._model_cache import ModelCache

if TYPE_CHECKING:
    from napari.layers import Image

    from madgan_core.scans.covariates import Covariates
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.result import ScanScore


@dataclass(frozen=True)
class ReviewRequest:
    """Everything one scoring run needs, fixed when Run is pressed."""

    scan: Scan
    layer_name: str
    model_path: str
    device: str = "auto"
    sequence: str = "T1"
    heatmap_range: tuple[float, float] = (0.0, 0.2)
    covariates: Covariates | None = None  # age and sex, for adjusted percentiles


@dataclass(frozen=True)
class ReviewOutcome:
    """What the worker hands back: the score, the model's file name and the layers to add."""

    request: ReviewRequest
    result: ScanScore
    model_name: str
    specs: tuple[LayerSpec, ...]


@dataclass
class ShownResult:
    """The result on screen, with the layers made for it (kind -> layer)."""

    request: ReviewRequest
    result: ScanScore
    model_name: str
    layers: dict[str, Image] = field(default_factory=dict)


def scan_of_layer(layer) -> Scan:
    """The :class:`Scan` behind an image layer (from the reader/sample data, or wrapped from its data)."""
    from madgan_core.scans.scan import Scan

    scan = layer.metadata.get(SCAN_KEY)
    if isinstance(scan, Scan):
        return scan
    data = np.asarray(layer.data)
    if data.ndim != 3 or layer.rgb:
        raise MadganError(f"layer {layer.name!r} is not a 3-D scalar volume (shape {data.shape})")
    # A plain layer: take its data as (z, y, x) with the display convention, 1 mm voxels.
    from napari_madgan._geometry import from_display

    return Scan.from_array(np.ascontiguousarray(from_display(data), dtype=np.float32), np.eye(4))


def score_request(
    cache: ModelCache,
    request: ReviewRequest,
    report: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ReviewOutcome:
    """The worker's job: load the model (cached), score, and prepare the layers' arrays.

    The outcome names the model by its file name, a bundled model by its display name.
    """
    from madgan_core.model.bundled import bundled_entry_of
    from madgan_core.scoring.scorer import score_scan

    model = cache.get(request.model_path, request.device)
    result = score_scan(
        model,
        request.scan,
        maps=True,
        progress=report,
        should_stop=should_stop,
        sequence=request.sequence,
        covariates=request.covariates,
    )
    prefix = f"{request.layer_name} " if request.layer_name else ""
    specs = result_layer_specs(request.scan, result, request.heatmap_range, prefix)
    entry = bundled_entry_of(model.path)
    name = Path(model.path).name if entry is None else entry.display_name
    return ReviewOutcome(request, result, name, tuple(specs))


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    advanced = Signal(int, int)


class ReviewController:
    """Runs one :class:`ReviewRequest` at a time and shows its result in ``viewer``.

    Args:
        viewer: the napari viewer (or the public proxy napari hands a plugin widget).
        on_progress: ``(windows_done, windows_total)`` on the GUI thread.
        on_shown: called with the :class:`ShownResult` once its layers are in the viewer.
        on_error: called with the worker's exception (cancellation included).
        on_finished: called when the run has ended, whatever the outcome.
    """

    def __init__(
        self,
        viewer,
        on_progress: Callable[[int, int], None],
        on_shown: Callable[[ShownResult], None],
        on_error: Callable[[BaseException], None],
        on_finished: Callable[[], None],
    ):
        self.viewer = viewer
        self.cache = ModelCache()
        self.shown: ShownResult | None = None
        self._on_progress, self._on_shown = on_progress, on_shown
        self._on_error, self._on_finished = on_error, on_finished
        self._relay = _ProgressRelay()
        self._relay.advanced.connect(self._progress)
        self._cancel = threading.Event()
        self._worker_done = threading.Event()
        self._worker = None
        self._pending = 0
        self._closing = False  # the window is closing: results are dropped, not shown
        self._pbar: progress | None = None
        self._task: WindowTask | None = None
        # layers made for each scan layer name, reused (updated in place) by the next run
        self._made: dict[str, dict[str, Image]] = {}

    @property
    def running(self) -> bool:
        """Scoring, or still adding the last result's layers."""
        return self._worker is not None or self._pending > 0

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def owns(self, layer) -> bool:
        """True for a layer this controller made (never offered as a scan)."""
        target = real_layer(layer)
        return any(target is made for layers in self._made.values() for made in layers.values())

    def start(self, request: ReviewRequest) -> None:
        if self.running:
            return
        self._cancel.clear()
        self._worker_done.clear()
        self._closing = False
        worker = thread_worker(self._job, start_thread=False, ignore_errors=True)(request)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._finished)
        self._worker = worker
        self._pbar = progress(total=0, desc=f"MADGAN scoring {request.layer_name}")
        self._task = WindowTask(self.viewer, f"scoring {request.layer_name}", self.stop_and_wait)
        worker.start()

    def _job(self, request: ReviewRequest) -> ReviewOutcome:
        try:
            return score_request(
                self.cache, request, self._relay.advanced.emit, self._cancel.is_set
            )
        finally:
            self._worker_done.set()

    def cancel(self) -> None:
        """Ask the worker to stop after the current batch."""
        if self._worker is not None:
            self._cancel.set()

    def stop_and_wait(self, timeout: float = 30.0) -> None:
        """Cancel and block until the worker has left the model (used when napari closes)."""
        self._closing = True
        if self._worker is not None:
            self._cancel.set()
            self._worker_done.wait(timeout)

    def wait_for_worker(self, timeout: float) -> bool:
        return self._worker_done.wait(timeout)

    def _progress(self, done: int, total: int) -> None:
        if self._pbar is not None:
            if self._pbar.total != total:
                self._pbar.total = total
            self._pbar.update(done - self._pbar.n)
        self._on_progress(done, total)

    def _returned(self, outcome: ReviewOutcome) -> None:
        if self._closing:
            return
        previous = dict(self._made.get(outcome.request.layer_name, {}))
        shown = ShownResult(outcome.request, outcome.result, outcome.model_name)
        self._pending = len(outcome.specs) + 1
        # One layer per event-loop turn: napari needs a few hundred ms per volume layer,
        # and spreading them keeps every pause of the GUI short.
        self._add_next(shown, list(outcome.specs), previous)

    def _add_next(self, shown: ShownResult, specs: list[LayerSpec], previous: dict) -> None:
        if self._closing:
            self._pending = 0
            return
        try:
            if specs:
                spec = specs[0]
                old = previous.get(spec.kind)
                if old is not None and not in_viewer(self.viewer, old):
                    old = None
                layer = real_layer(apply_layer(self.viewer, spec, old))
                shown.layers[spec.kind] = layer
                self._made.setdefault(shown.request.layer_name, {})[spec.kind] = layer
                self._pending -= 1
                QTimer.singleShot(0, lambda: self._add_next(shown, specs[1:], previous))
                return
            self._drop_stale(shown, previous)
            self.shown = shown
            self._pending = 0
            self._on_shown(shown)
        except Exception as exc:  # noqa: BLE001 - handed to the widget, which reports it
            self._pending = 0
            self._on_error(exc)

    def _drop_stale(self, shown: ShownResult, previous: dict) -> None:
        """Remove the last run's layers of kinds this result has none of (a z-map from a
        calibrated model, say, after a run with an uncalibrated one)."""
        made = self._made.get(shown.request.layer_name, {})
        for kind, layer in previous.items():
            if kind not in shown.layers:
                made.pop(kind, None)
                if in_viewer(self.viewer, layer):
                    self.viewer.layers.remove(layer)

    def _finished(self) -> None:
        self._worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self._task is not None:
            self._task.done()
            self._task = None
        self._on_finished()

    # ---- the shown result's layers ----------------------------------------------------------
    def overlay_layers(self) -> dict[str, Image]:
        """The shown result's heatmap and z-map layers that are still in the viewer."""
        if self.shown is None:
            return {}
        return {
            kind: layer
            for kind, layer in self.shown.layers.items()
            if kind in (HEATMAP, ZMAP) and in_viewer(self.viewer, layer)
        }
