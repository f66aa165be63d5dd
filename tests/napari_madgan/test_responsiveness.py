"""The GUI stays responsive while a scan is scored, and closing napari stops the worker."""

from __future__ import annotations

import threading

from qtpy.QtCore import QTimer

from napari_madgan._layers import scan_layer_tuple
from napari_madgan.review import ReviewWidget


def test_scoring_runs_off_the_gui_thread(
    make_napari_viewer, qtbot, monkeypatch, phantom_scan, tiny_model
):
    """Scoring runs in a worker thread while the GUI's event loop keeps turning.

    Once started, scoring waits for a GUI timer to fire before it computes anything.
    On the GUI thread the timer could never fire: the wait would time out and say so.
    """
    import madgan_core.scoring.scorer

    real = madgan_core.scoring.scorer.score_scan
    started, gui_turned = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def observed(*args, **kwargs):
        seen["thread"] = threading.current_thread()
        started.set()
        seen["gui_turned"] = gui_turned.wait(timeout=30)
        return real(*args, **kwargs)

    monkeypatch.setattr(madgan_core.scoring.scorer, "score_scan", observed)
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(phantom_scan, name="scan")
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_model_path(tiny_model)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: started.is_set() and gui_turned.set())
    timer.start()
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    timer.stop()
    assert seen["thread"] is not threading.main_thread()
    assert seen["gui_turned"], "the GUI's event loop stood still while scoring"
    assert widget.result is not None, widget.status_text


def test_closing_napari_cancels_scoring(
    make_napari_viewer, qtbot, phantom_scan, tiny_model, monkeypatch
):
    errors: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", errors.append)
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
    # a result that arrives after the window closed is dropped, not drawn into a dead viewer
    qtbot.wait(300)
    assert not widget.controller.running
    assert errors == []
