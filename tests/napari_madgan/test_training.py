"""The training dialog runs a tiny ``madgan train`` process: live curves, stop, resume, hand-over."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import pytest

from madgan_core.config import MadganConfig, demo_preset
from napari_madgan.review import ReviewWidget
from napari_madgan.training import TrainingWidget
from napari_madgan.training._metrics import MetricsTail, format_eta
from napari_madgan.training._request import TrainRequest, changed_settings, form_values

# a metrics line and a preview every step; checkpoints only on stop and at the end
LIVE = {"log_every": 1, "preview_every": 1, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory) -> Path:
    from madgan_core.phantom import make_subject

    folder = tmp_path_factory.mktemp("healthy_scans")
    for seed in range(2):
        volume, affine, _ = make_subject("healthy", seed=seed, voxel_mm=4.0)
        nib.save(nib.Nifti1Image(volume, affine), str(folder / f"healthy{seed}.nii.gz"))
    return folder


@pytest.fixture
def dialog(make_napari_viewer, scan_folder, tmp_path, tiny_config_file):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN train")
    config = tiny_config_file(tmp_path / "tiny.json", train=LIVE)
    widget.manifest_edit.setText(str(scan_folder))
    widget.out_edit.setText(str(tmp_path / "run"))
    widget.config_edit.setText(str(config))
    widget.device_combo.setCurrentText("cpu")
    widget.batch_spin.setValue(2)
    return viewer, widget


# ------------------------------------------------------------------ the form and its command line


def _train_config(request) -> MadganConfig:
    """The configuration ``madgan train`` builds from the dialog's command line."""
    from madgan_core.cli import build_parser
    from madgan_core.commands.train import build_config

    argv = request.arguments()
    assert argv[:3] == ["-m", "madgan_core.cli", "train"]
    return build_config(build_parser().parse_args(argv[2:]))


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"model": {"variant": "sa3"}, "train": {"steps": 7}}))
    return path


def test_a_config_file_sets_steps_and_variant(config_file, tmp_path):
    values = form_values("demo", str(config_file))
    assert values["steps"] == 7 and values["variant"] == "sa3"
    request = TrainRequest(str(tmp_path), str(tmp_path / "run"), "demo", str(config_file))
    cfg = _train_config(request)
    assert cfg.train.steps == 7 and cfg.model.variant == "sa3"
    # what the user changes is sent on top of the file, and nothing else
    current = {**values, "device": "cpu"}
    changed = changed_settings(values, current)
    assert changed == {"train.device": "cpu"}
    cfg = _train_config(
        TrainRequest(str(tmp_path), str(tmp_path / "run"), "demo", str(config_file), changed)
    )
    assert (cfg.train.steps, cfg.model.variant, cfg.train.device) == (7, "sa3", "cpu")


def test_the_dialog_sends_only_what_the_user_changed(make_napari_viewer, config_file, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    demo = demo_preset()
    assert widget.preset_combo.currentText() == "demo"
    assert widget.steps_spin.value() == demo.train.steps  # read from config.py, not copied
    assert widget.batch_spin.value() == demo.train.batch_size
    widget.manifest_edit.setText(str(tmp_path))
    widget.out_edit.setText(str(tmp_path / "run"))
    widget.config_edit.setText(str(config_file))
    assert widget.steps_spin.value() == 7 and widget.variant_combo.currentText() == "sa3"
    request = widget.current_request()
    assert request.settings == {} and request.steps == 7
    cfg = _train_config(request)
    assert cfg.train.steps == 7 and cfg.model.variant == "sa3"
    widget.batch_spin.setValue(3)
    assert widget.current_request().settings == {"train.batch_size": 3}
    cfg = _train_config(widget.current_request())
    assert (cfg.train.steps, cfg.model.variant, cfg.train.batch_size) == (7, "sa3", 3)
    widget.preset_combo.setCurrentText("paper")  # the form starts again from the new preset
    assert widget.steps_spin.value() == 7 and widget.current_request().settings == {}
    assert _train_config(widget.current_request()).preprocess.height == 256


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
    # the status line was updated with the metrics line just read, and the run's total
    step = widget.metrics.last["step"]
    assert widget.status_label.text().startswith(f"Step {step} / 4, "), widget.status_label.text()
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
