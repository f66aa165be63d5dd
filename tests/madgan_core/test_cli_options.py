"""One CLI: shared options spelled, validated and documented alike in every subcommand."""

from __future__ import annotations

import argparse
import logging

import pytest
from tqdm import tqdm

from madgan_core.cli import build_parser, main
from madgan_core.commands._common import progress_bars
from madgan_core.commands.train import build_config
from madgan_core.config import DEVICES, PRECISIONS
from madgan_core.model.checkpoint import load_model
from madgan_core.scans.manifest import ManifestRow, write_manifest
from tests.madgan_core.test_bad_inputs import brain_scan

RUN_THE_MODEL = ("train", "calibrate", "score", "evaluate", "demo")
LONG = ("phantom", *RUN_THE_MODEL)


def _options(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s: a for a in sub.choices[command]._actions for s in a.option_strings}


@pytest.mark.parametrize("command", RUN_THE_MODEL)
def test_device_and_precision_on_every_command_that_runs_the_model(command):
    options = _options(command)
    assert tuple(options["--device"].choices) == DEVICES
    assert tuple(options["--precision"].choices) == PRECISIONS


@pytest.mark.parametrize("command", LONG)
def test_no_progress_on_every_long_command(command):
    assert _options(command)["--no-progress"].dest == "no_progress"


def test_batch_size_is_the_training_batch_and_window_batch_the_inference_one(tmp_path, caplog):
    assert "--window-batch" not in _options("train")
    for command in ("calibrate", "score"):
        assert _options(command)["--window-batch"].dest == "window_batch"
    args = build_parser().parse_args(["train", "--manifest", "m", "--out", str(tmp_path)])
    assert build_config(args).train.batch_size == 16
    args = build_parser().parse_args(
        ["train", "--manifest", "m", "--out", str(tmp_path), "--batch-size", "4"]
    )
    assert build_config(args).train.batch_size == 4
    # score's old spelling still works, hidden from --help and with a warning
    old = _options("score")["--batch-size"]
    assert old.dest == "window_batch" and old.help == argparse.SUPPRESS
    with caplog.at_level(logging.WARNING):
        args = build_parser().parse_args(["score", "m.pt", "s.nii", "--batch-size", "8"])
    assert args.window_batch == 8
    assert "--batch-size is deprecated; use --window-batch" in caplog.text
    assert build_parser().parse_args(["score", "m.pt", "s.nii"]).window_batch == 0


def test_train_set_wins_over_named_options_and_files(tmp_path):
    config = tmp_path / "my.json"
    config.write_text('{"train": {"steps": 7, "lr": 0.001}}')
    argv = ["train", "--manifest", "m", "--out", str(tmp_path), "--config", str(config)]
    argv += ["--steps", "3", "--set", "train.steps=5", "--set", "preprocess.band=0,1"]
    cfg = build_config(build_parser().parse_args(argv))
    assert cfg.train.steps == 5 and cfg.train.lr == 0.001 and cfg.preprocess.band == (0.0, 1.0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--manifest", "m", "--set", "train.stpes=5"], "unknown key 'stpes' in train"),
        (["train", "--manifest", "m", "--set", "train.steps=0"], "train.steps"),
        (["score", "m.pt", "s.nii", "--set", "model.variant=sa3"], "only score.* settings"),
        (["calibrate", "m.pt", "--manifest", "m", "--set", "score.top_windows=x"], "integer"),
    ],
)
def test_bad_set_exits_2_naming_the_key(tmp_path, capsys, argv, message):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"madgan {argv[0]}: error: ") and message in err
    assert not (tmp_path / "run").exists()


def test_score_and_calibrate_take_score_settings(tmp_path, tiny_model_file, capsys):
    model = tiny_model_file(tmp_path / "model.pt")
    scan = brain_scan(tmp_path / "scan.nii.gz")
    argv = ["score", str(model), str(scan), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main([*argv, "--set", "score.mode=ratio", "--window-batch", "4"]) == 0
    assert "scan: ratio score" in capsys.readouterr().out
    assert load_model(model, "cpu").config.score.mode == "auto"  # score leaves the file alone

    rows = [
        ManifestRow(
            brain_scan(tmp_path / f"c{i}.nii.gz", seed=i), f"c{i}", "healthy", 0, "T1", "calib"
        )
        for i in range(2)
    ]
    manifest = write_manifest(rows, tmp_path / "manifest.csv")
    argv = ["calibrate", str(model), "--manifest", str(manifest), "--device", "cpu"]
    assert main([*argv, "--precision", "fp32", "--set", "score.top_windows=2"]) == 0
    # calibration stores the settings its controls were scored with
    assert load_model(model, "cpu").config.score.top_windows == 2


def _disabled(**kwargs) -> bool:
    bar = tqdm(total=3, **kwargs)
    disabled = bar.disable
    bar.close()
    return disabled


def test_no_progress_disables_every_bar_for_the_command_only():
    with progress_bars(enabled=False):
        assert _disabled()
        assert not _disabled(disable=False)  # an explicit choice still wins
    assert not _disabled()
    with progress_bars(enabled=True):
        assert not _disabled()


def test_no_progress_through_the_command_line(tmp_path, tiny_model_file, capsys):
    model = tiny_model_file(tmp_path / "model.pt")
    scan = brain_scan(tmp_path / "scan.nii.gz")
    argv = ["score", str(model), str(scan), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 0
    assert "scoring:" in capsys.readouterr().err
    assert main([*argv, "--no-progress"]) == 0
    assert "scoring:" not in capsys.readouterr().err
