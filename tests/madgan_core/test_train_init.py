"""Fine-tuning: a run started from a trained model (``init``), in the core and ``madgan train --init``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.train import init_config, prepare_training

from .conftest import synthetic_brain

# As in test_train.py: 2 mm synthetic brains, with self-attention.
ON_SCANS = {"preprocess": {"pixel_mm": 2.0}, "model": {"variant": "sa3"}}


@pytest.fixture
def tiny_cfg(tiny_config):
    """``tiny_cfg(steps=2, ...)``: the tiny training configuration with these train keys."""
    return lambda **train: tiny_config(**ON_SCANS, train=train)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("site")
    paths = []
    for i in range(2):
        path = folder / f"healthy_{i}.nii.gz"
        nib.save(nib.Nifti1Image(synthetic_brain(seed=i), np.diag([2.0, 2.0, 2.0, 1.0])), path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(scans, tmp_path_factory, tiny_config) -> Path:
    """A model trained 2 steps with learned intensity landmarks (generator and critic stored)."""
    cfg = tiny_config(**ON_SCANS, train={"steps": 2, "seed": 11, "checkpoint_every": 2}).updated(
        {"preprocess": {"intensity": "landmarks"}}
    )
    out = tmp_path_factory.mktemp("trained")
    return prepare_training(cfg, scans, out).fit().model_path


def _distance(a: dict, b: dict) -> float:
    return sum(
        float((a[k].float() - b[k].float()).abs().sum()) for k in a if a[k].is_floating_point()
    )


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_init_loads_generator_and_critic_and_starts_at_step_0(scans, trained, tmp_path):
    record = ckpt.read_checkpoint(trained)
    cfg = init_config(trained).updated({"train": {"steps": 2, "seed": 5}})
    tuned = prepare_training(cfg, scans, tmp_path / "tuned", init=trained)
    fresh = prepare_training(cfg, scans, tmp_path / "fresh")
    assert tuned.step == 0
    assert _distance(_state(tuned.raw_generator), record["generator"]) == 0
    assert _distance(_state(tuned.raw_critic), record["critic"]) == 0
    assert _distance(_state(fresh.raw_generator), record["generator"]) > 0
    assert not tuned.optim_g.state  # fresh optimizers
    tuned.train_step()
    after = _state(tuned.raw_generator)
    assert _distance(after, record["generator"]) < _distance(after, _state(fresh.raw_generator))


def test_init_provenance_is_stored_and_readers_ignore_it(scans, trained, tmp_path):
    cfg = init_config(trained).updated({"train": {"steps": 2, "checkpoint_every": 1}})
    result = prepare_training(cfg, scans, tmp_path, init=trained).fit()
    want = {
        "path": str(trained.resolve()),
        "sha256": hashlib.sha256(trained.read_bytes()).hexdigest(),
        "step": 2,
    }
    record = ckpt.read_checkpoint(result.model_path)
    assert record["init"] == want and record["format_version"] == ckpt.FORMAT_VERSION
    assert record["step"] == 2
    for _, path in ckpt.list_checkpoints(tmp_path / "checkpoints"):
        assert ckpt.read_checkpoint(path)["init"] == want
    model = ckpt.load_model(result.model_path, "cpu")
    assert model.step == 2
    ckpt.update_checkpoint(result.model_path, healthy_reference=None)  # calibration's rewrite
    assert ckpt.read_checkpoint(result.model_path)["init"] == want
    # a run from scratch stores no init
    assert "init" not in ckpt.read_checkpoint(trained)


def test_landmarks_are_kept_from_the_init_model(scans, trained, tmp_path, monkeypatch):
    import madgan_core.prep.slab as slab

    def relearn(*_args, **_kwargs):
        raise AssertionError("landmarks relearned")

    monkeypatch.setattr(slab, "learn_landmarks", relearn)
    stored = init_config(trained).preprocess.landmarks
    assert stored is not None
    base = init_config(trained).updated({"train": {"steps": 1}})
    on_site = prepare_training(base, scans[:1], tmp_path / "a", init=trained)
    assert on_site.cfg.preprocess.landmarks == stored
    # a configuration without landmarks takes the model's
    bare = MadganConfig.from_dict(base.to_dict())
    bare.preprocess.landmarks = None
    assert prepare_training(bare, scans[:1], tmp_path / "b", init=trained).cfg == on_site.cfg


def test_mismatched_architecture_or_geometry_names_the_file(scans, trained, tmp_path, tiny_cfg):
    other_variant = init_config(trained).updated({"model": {"variant": "none"}})
    with pytest.raises(CheckpointError, match=str(trained)) as err:
        prepare_training(other_variant, scans, tmp_path, init=trained)
    assert "model configuration differs" in str(err.value)
    other_size = init_config(trained).updated({"preprocess": {"height": 48}})
    with pytest.raises(CheckpointError, match="slice size differs"):
        prepare_training(other_size, scans, tmp_path, init=trained)
    with pytest.raises(CheckpointError, match="not found"):
        prepare_training(tiny_cfg(), scans, tmp_path, init=tmp_path / "missing.pt")


def test_a_model_without_critic_gets_a_fresh_critic(
    scans, tmp_path, tiny_cfg, tiny_model_file, caplog
):
    model = tiny_model_file(tmp_path / "generator_only.pt", seed=3, **ON_SCANS)
    record = ckpt.read_checkpoint(model)
    assert record["critic"] is None
    with caplog.at_level(logging.WARNING, logger="madgan_core.model.train.assemble"):
        trainer = prepare_training(tiny_cfg(steps=1), scans, tmp_path / "run", init=model)
    assert "no critic state" in caplog.text and str(model) in caplog.text
    assert _distance(_state(trainer.raw_generator), record["generator"]) == 0
    trainer.train_step()


def test_resume_does_not_apply_init_again(scans, trained, tmp_path, tiny_model_file):
    cfg = init_config(trained).updated({"train": {"steps": 2, "checkpoint_every": 1}})
    out = tmp_path / "run"
    prepare_training(cfg, scans, out, init=trained).fit()
    last = ckpt.read_checkpoint(ckpt.list_checkpoints(out / "checkpoints")[-1][1])
    resumed = prepare_training(
        cfg.updated({"train": {"steps": 3}}), scans, out, resume=True, init=trained
    )
    assert resumed.step == 2
    assert _distance(_state(resumed.raw_generator), last["generator"]) == 0
    assert resumed.init == last["init"] and resumed.init["path"] == str(trained.resolve())


# ---------------------------------------------------------------- command line


def _no_calibration(monkeypatch) -> list:
    import madgan_core.cohort.training as training

    called = []
    monkeypatch.setattr(
        training, "calibrate_trained", lambda path, rows, cfg, progress: called.append(path)
    )
    return called


def test_cli_init_end_to_end(scans, trained, tmp_path, monkeypatch):
    from madgan_core.cli import main

    called = _no_calibration(monkeypatch)
    out = tmp_path / "site_run"
    argv = ["train", "--manifest", str(scans[0].parent), "--out", str(out), "--init", str(trained)]
    assert main([*argv, "--steps", "2", "--set", "train.lr=0.0001", "--no-progress"]) == 0
    stored = init_config(trained)
    saved = MadganConfig.load_json(out / "config.json")
    assert saved.preprocess == stored.preprocess and saved.model == stored.model
    assert saved.train.steps == 2 and saved.train.lr == 0.0001
    record = ckpt.read_checkpoint(out / "model.pt")
    assert record["step"] == 2 and record["init"]["path"] == str(trained.resolve())
    assert called == [out / "model.pt"]
    # --resume continues the run (from its own config.json and checkpoints)
    assert main([*argv, "--steps", "3", "--resume", "--no-progress"]) == 0
    record = ckpt.read_checkpoint(out / "model.pt")
    assert record["step"] == 3 and record["init"]["path"] == str(trained.resolve())


def test_cli_init_precedence_with_preset_and_config(trained, tmp_path):
    from madgan_core.cli import build_parser
    from madgan_core.commands.train import build_config
    from madgan_core.config import demo_preset

    config = tmp_path / "site.json"
    config.write_text(json.dumps({"train": {"steps": 40, "batch_size": 3}}))
    parse = build_parser().parse_args
    base = ["train", "--manifest", str(tmp_path), "--out", str(tmp_path / "o")]
    base += ["--init", str(trained)]
    stored = init_config(trained)
    cfg = build_config(parse([*base, "--config", str(config), "--batch-size", "5"]))
    assert cfg.preprocess == stored.preprocess and cfg.model == stored.model
    assert cfg.train.steps == 40 and cfg.train.batch_size == 5 and cfg.train.seed == 11
    cfg = build_config(parse([*base, "--preset", "demo", "--set", "train.steps=9"]))
    assert cfg.preprocess == stored.preprocess and cfg.model == stored.model
    assert cfg.train.lr == demo_preset().train.lr and cfg.train.steps == 9
    assert cfg.train.milestones == demo_preset().train.milestones


@pytest.mark.parametrize("bad", ["missing.pt", "not_a_model.pt"])
def test_cli_init_bad_file_exits_2(scans, tmp_path, capsys, bad):
    from madgan_core.cli import main

    model = tmp_path / bad
    if bad == "not_a_model.pt":
        torch.save({"weights": torch.zeros(2)}, model)
    argv = ["train", "--manifest", str(scans[0].parent), "--out", str(tmp_path / "o")]
    assert main([*argv, "--init", str(model), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"madgan train: error: {model}: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_init_base_does_not_carry_the_training_hardware(trained, tmp_path):
    from madgan_core.commands.train import init_base

    record = ckpt.read_checkpoint(trained)
    record["config"]["train"].update(device="cuda", precision="bf16")
    elsewhere = tmp_path / "gpu_model.pt"
    ckpt.save_checkpoint(record, elsewhere)
    cfg = init_base(elsewhere)
    assert (cfg.train.device, cfg.train.precision) == ("auto", "auto")
    assert cfg.preprocess == init_config(trained).preprocess
