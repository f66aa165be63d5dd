"""The GUI stays responsive while a scan is scored, and closing napari stops the worker."""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer

from napari_madgan._layers import scan_layer_tuple
from napari_madgan.review import ReviewWidget

from .conftest import REFERENCE, _save_tiny_model

MAX_GAP_S = 0.5
# Bigger than the tiny model so scoring takes a couple of seconds of real compute.
MEDIUM = {
    "preprocess": {"height": 256, "width": 176, "pixel_mm": 1.0},
    "model": {"base_channels": 64},
}


def test_gui_stays_responsive_while_scoring(make_napari_viewer, qtbot, tmp_path):
    from madgan_core.io import Scan
    from madgan_core.phantom import make_subject

    volume, affine, _ = make_subject("mets", voxel_mm=2.0)
    scan = Scan.from_array(volume, affine)
    model = _save_tiny_model(tmp_path / "model.pt", REFERENCE, MEDIUM)
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(scan, name="scan")
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_model_path(model)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    duration = time.perf_counter() - start
    timer.stop()
    assert widget.result is not None, widget.status_text
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    max_gap = max(gaps)
    print(
        f"scoring took {duration:.2f} s; {len(ticks)} timer ticks; max gap {max_gap * 1000:.0f} ms"
    )
    assert duration > 0.5, "scoring too quick to measure responsiveness"
    assert max_gap < MAX_GAP_S


def test_closing_napari_cancels_scoring(make_napari_viewer, qtbot, phantom_scan, tiny_model):
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(phantom_scan, name="scan")
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_model_path(tiny_model)
    widget.run()
    assert widget.controller.running
    viewer.close()
    # the close handler cancelled the job and waited for the worker to leave the model
    assert widget.controller.cancel_requested
    assert widget.controller.wait_for_worker(0)
