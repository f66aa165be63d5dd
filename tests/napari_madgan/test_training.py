"""The training dialog runs a tiny ``madgan train`` process: live curves, stop, resume, hand-over."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import pytest

from napari_madgan.review import ReviewWidget
from napari_madgan.training import TrainingWidget
from napari_madgan.training._metrics import MetricsTail, format_eta

from .conftest import TINY

TINY_TRAIN = {
    **TINY,
    "train": {"log_every": 1, "preview_every": 1, "checkpoint_every": 1000, "num_workers": 0},
}


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory) -> Path:
    from madgan_core.phantom import make_subject

    folder = tmp_path_factory.mktemp("healthy_scans")
    for seed in range(2):
        volume, affine, _ = make_subject("healthy", seed=seed, voxel_mm=4.0)
        nib.save(nib.Nifti1Image(volume, affine), str(folder / f"healthy{seed}.nii.gz"))
    return folder


@pytest.fixture
def dialog(make_napari_viewer, scan_folder, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN train")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_TRAIN))
    widget.manifest_edit.setText(str(scan_folder))
    widget.out_edit.setText(str(tmp_path / "run"))
    widget.config_edit.setText(str(config))
    widget.device_combo.setCurrentText("cpu")
    widget.batch_spin.setValue(2)
    return viewer, widget


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_train_stop_resume_and_hand_over(dialog, qtbot, tmp_path):
    viewer, widget = dialog
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="MADGAN review")
    widget.steps_spin.setValue(4)
    assert widget.start()
    assert widget.runner.running
    qtbot.waitUntil(lambda: widget.metrics.last is not None, timeout=60_000)
    assert "Step 1 / 4" in widget.status_label.text() or "Step" in widget.status_label.text()
    widget.stop()
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=60_000)
    assert "Stopped" in widget.status_label.text()
    out = tmp_path / "run"
    assert list((out / "checkpoints").glob("*.pt")), "stop must save a checkpoint"
    stopped_at = widget.metrics.last["step"]
    assert stopped_at < 4
    assert widget.resume_btn.isEnabled()

    widget.resume_btn.click()
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=90_000)
    assert "Finished" in widget.status_label.text(), widget.log_view.toPlainText()[-2000:]
    model = out / "model.pt"
    assert model.is_file()
    # curves, preview and time left were shown
    assert widget.metrics.last["step"] == 4
    assert widget.curves.lines["loss_l1"].get_xdata()[-1] == 4
    assert widget.preview_label.pixmap() is not None and not widget.preview_label.pixmap().isNull()
    # the model is offered to the review widget and remembered
    assert review.model_path == str(model.resolve())
    from napari_madgan._settings import recent_models

    assert str(model.resolve()) in recent_models()


def test_closing_napari_stops_training(dialog, qtbot, tmp_path):
    viewer, widget = dialog
    widget.steps_spin.setValue(1000)
    assert widget.start()
    pid = int(widget.runner.process.processId())
    qtbot.waitUntil(lambda: widget.metrics.last is not None, timeout=60_000)
    viewer.close()
    assert not _alive(pid)
    assert list((tmp_path / "run" / "checkpoints").glob("*.pt")), "closing must save a checkpoint"


def test_metrics_tail_reads_complete_lines_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.poll() == []
    path.write_text('{"step": 1, "loss_l1": 0.5}\n{"step": 2, "loss')
    assert [r["step"] for r in tail.poll()] == [1]
    with path.open("a") as fh:
        fh.write('_l1": 0.4}\n')
    assert [r["step"] for r in tail.poll()] == [2]
    assert tail.series("loss_l1") == ([1, 2], [0.5, 0.4])
    path.write_text('{"step": 1}\n')  # a fresh run truncates the file
    tail.poll()
    assert [r["step"] for r in tail.records] == [1]
    assert format_eta(3725) == "1 h 02 min" and format_eta(None) == "unknown"
