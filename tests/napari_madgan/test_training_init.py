"""The training dialog's "Start from" field: a trained model sent to ``madgan train`` as ``--init``."""

from __future__ import annotations

from madgan_core.config import MadganConfig, demo_preset
from madgan_core.model.train import init_config
from napari_madgan.training import TrainingWidget
from napari_madgan.training._request import TrainRequest


def _train_config(argv: list[str]) -> MadganConfig:
    """The configuration ``madgan train`` builds from the dialog's command line."""
    from madgan_core.cli import build_parser
    from madgan_core.commands.train import build_config

    assert argv[:3] == ["-m", "madgan_core.cli", "train"]
    return build_config(build_parser().parse_args(argv[2:]))


def test_the_dialog_passes_the_model_to_start_from(make_napari_viewer, tiny_model_file, tmp_path):
    model = tiny_model_file(tmp_path / "site" / "model.pt", step=5)
    widget = TrainingWidget(make_napari_viewer())
    form = widget.form
    form.manifest.value = tmp_path
    form.out.value = tmp_path / "run"
    assert form.init_path == ""
    request = widget.current_request()
    assert request.init == "" and "--init" not in request.arguments()  # from scratch
    form.init.value = model
    request = widget.current_request()
    assert request.init == str(model.resolve())
    for resume in (False, True):
        argv = request.arguments(resume)
        assert argv[argv.index("--init") + 1] == str(model.resolve())
    cfg = _train_config(request.arguments())
    stored = init_config(model)
    assert cfg.preprocess == stored.preprocess and cfg.model == stored.model
    assert cfg.train.steps == demo_preset().train.steps  # the preset's training settings


def test_a_missing_model_to_start_from_is_reported(make_napari_viewer, tmp_path):
    widget = TrainingWidget(make_napari_viewer())
    widget.form.manifest.value = tmp_path
    widget.form.out.value = tmp_path / "run"
    widget.form.init.value = tmp_path / "nowhere.pt"
    assert not widget.start()
    assert "nowhere.pt" in widget.status_text and not widget.controller.running


def test_a_request_without_init_is_unchanged(tmp_path):
    plain = TrainRequest(str(tmp_path), str(tmp_path / "run"), "demo")
    assert plain.arguments() == [
        "-m",
        "madgan_core.cli",
        "train",
        "--manifest",
        str(tmp_path),
        "--out",
        str(tmp_path / "run"),
        "--preset",
        "demo",
        "--no-progress",
    ]
