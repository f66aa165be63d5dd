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
    from madgan_core.cohort.phantom import make_subject

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
    widget.form.manifest.value = scan_folder
    widget.form.out.value = tmp_path / "run"
    widget.form.config.value = config
    widget.form.device.value = "cpu"
    widget.form.batch_size.value = 2
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
    assert widget.form.preset.value == "demo"
    assert widget.form.steps.value == demo.train.steps  # read from config.py, not copied
    assert widget.form.batch_size.value == demo.train.batch_size
    widget.form.manifest.value = tmp_path
    widget.form.out.value = tmp_path / "run"
    widget.form.config.value = config_file
    assert widget.form.steps.value == 7 and widget.form.variant.value == "sa3"
    request = widget.current_request()
    assert request.settings == {} and request.steps == 7
    cfg = _train_config(request)
    assert cfg.train.steps == 7 and cfg.model.variant == "sa3"
    widget.form.batch_size.value = 3
    assert widget.current_request().settings == {"train.batch_size": 3}
    cfg = _train_config(widget.current_request())
    assert (cfg.train.steps, cfg.model.variant, cfg.train.batch_size) == (7, "sa3", 3)
    widget.form.preset.value = "paper"  # the form starts again from the new preset
    assert widget.form.steps.value == 7 and widget.current_request().settings == {}
    assert _train_config(widget.current_request()).preprocess.height == 256


def test_the_manifest_is_a_csv_file_or_a_folder(make_napari_viewer, monkeypatch, tmp_path):
    from magicgui.backends._qtpy import widgets as qt_backend
    from magicgui.types import FileDialogMode

    csv, folder = tmp_path / "cohort.csv", tmp_path / "healthy"
    asked = []

    def pick_file(parent, caption, start, file_filter):
        asked.append(("file", file_filter))
        return str(csv), ""

    def pick_folder(parent, caption, start):
        asked.append(("folder", caption))
        return str(folder)

    dialogs = qt_backend.QFILE_DIALOG_MODES
    monkeypatch.setitem(dialogs, FileDialogMode.EXISTING_FILE, pick_file)
    monkeypatch.setitem(dialogs, FileDialogMode.EXISTING_DIRECTORY, pick_folder)
    form = TrainingWidget(make_napari_viewer()).form
    form.manifest.choose_btn.native.click()
    assert form.manifest_path == str(csv) and asked[-1][0] == "file"
    assert "*.csv" in asked[-1][1]
    form.manifest_folder_button.native.click()
    assert form.manifest_path == str(folder) and asked[-1] == ("folder", "Folder of healthy scans")


def test_start_says_what_is_missing(make_napari_viewer, tmp_path):
    widget = TrainingWidget(make_napari_viewer())
    assert not widget.start()
    assert "choose a manifest" in widget.status_text
    widget.form.manifest.value = tmp_path / "nowhere"
    widget.form.out.value = tmp_path / "run"
    assert not widget.start()
    assert widget.status_text.endswith(f"{tmp_path / 'nowhere'}: not found"), widget.status_text
    assert not widget.controller.running and widget.form.start_button.enabled
    assert not (tmp_path / "run").exists()


def test_a_failed_run_says_why(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    from napari_madgan.training import _widget

    errors = []
    monkeypatch.setattr(_widget, "show_error", errors.append)
    widget = TrainingWidget(make_napari_viewer())
    (tmp_path / "empty").mkdir()
    widget.form.manifest.value = tmp_path / "empty"
    widget.form.out.value = tmp_path / "run"
    assert widget.start()
    assert not widget.form.start_button.enabled and widget.form.stop_button.enabled
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    qtbot.waitUntil(lambda: "failed" in widget.status_text, timeout=10_000)
    assert widget.status_text.startswith("Training failed (exit code 2)"), widget.status_text
    assert len(errors) == 1 and "contains no scans" in errors[0], errors
    assert "contains no scans" in widget.log_view.toPlainText()
    assert widget.form.start_button.enabled and widget.form.resume_button.enabled
    assert not widget.form.stop_button.enabled


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
    widget.form.steps.value = 4
    assert widget.start()
    assert widget.controller.running
    metrics = widget.controller.metrics
    qtbot.waitUntil(lambda: metrics.last is not None, timeout=60_000)
    # the status line was updated with the metrics line just read, and the run's total
    step = metrics.last["step"]
    assert widget.status_text.startswith(f"Step {step} / 4, "), widget.status_text
    widget.stop()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    assert "Stopped" in widget.status_text
    out = tmp_path / "run"
    assert list((out / "checkpoints").glob("*.pt")), "stop must save a checkpoint"
    stopped_at = metrics.last["step"]
    assert stopped_at < 4
    assert widget.form.resume_button.enabled

    widget.form.resume_button.native.click()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=90_000)
    assert "Finished" in widget.status_text, widget.log_view.toPlainText()[-2000:]
    model = out / "model.pt"
    assert model.is_file()
    # curves, preview and time left were shown
    assert widget.controller.metrics.last["step"] == 4
    assert widget.curves.lines["loss_l1"].get_xdata()[-1] == 4
    assert widget.preview_label.pixmap() is not None and not widget.preview_label.pixmap().isNull()
    # the model is offered to the review widget and remembered
    assert review.model_path == str(model.resolve())
    from napari_madgan._settings import recent_models

    assert str(model.resolve()) in recent_models()


def test_closing_napari_stops_training(dialog, qtbot, tmp_path):
    viewer, widget = dialog
    widget.form.steps.value = 1000
    assert widget.start()
    pid = int(widget.controller.runner.process.processId())
    qtbot.waitUntil(lambda: widget.controller.metrics.last is not None, timeout=60_000)
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
