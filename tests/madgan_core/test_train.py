"""Training on tiny synthetic scans: a step learns, resume reproduces, signals checkpoint, CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from madgan_core.config import MadganConfig
from madgan_core.errors import ConfigError
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.train import prepare_training
from madgan_core.prep.training_set import BatchStream, WindowDataset

from .conftest import synthetic_brain

# Training tests run on 2 mm synthetic brains, with self-attention.
ON_SCANS = {"preprocess": {"pixel_mm": 2.0}, "model": {"variant": "sa3"}}


@pytest.fixture
def tiny_cfg(tiny_config):
    """``tiny_cfg(steps=2, ...)``: the tiny training configuration with these train keys."""
    return lambda **train: tiny_config(**ON_SCANS, train=train)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scans")
    paths = []
    for i in range(2):
        path = folder / f"healthy_{i}.nii.gz"
        nib.save(nib.Nifti1Image(synthetic_brain(seed=i), np.diag([2.0, 2.0, 2.0, 1.0])), path)
        paths.append(path)
    return paths


def _losses(out: Path) -> dict[int, dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    keys = ("loss_critic", "loss_gen_adv", "loss_l1", "gp", "wasserstein")
    return {r["step"]: {k: r[k] for k in keys} for r in map(json.loads, lines)}


def test_dataset_windows(scans, tiny_cfg):
    cfg = tiny_cfg()
    seen = []
    ds = WindowDataset(scans, cfg, progress=lambda d, t, n: seen.append((d, t)))
    assert seen[-1] == (2, 2) and len(ds) > 4
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and y.shape == (3, 32, 32) and x.dtype == torch.float32
    np.testing.assert_allclose(y[0].numpy(), ds.slabs[0][3].astype(np.float32))


def test_batch_stream_is_resumable(scans, tiny_cfg):
    ds = WindowDataset(scans, tiny_cfg())
    full = BatchStream(ds, 4, seed=3, flip=True)
    it = iter(full)
    batches = [next(it) for _ in range(2 * full.batches_per_epoch + 2)]
    k = full.batches_per_epoch + 1
    resumed = iter(BatchStream(ds, 4, seed=3, flip=True, start_batch=k))
    for want in batches[k:]:
        got = next(resumed)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_one_step_changes_weights(scans, tmp_path, tiny_cfg):
    trainer = prepare_training(tiny_cfg(), scans, tmp_path)
    before_g = [p.detach().clone() for p in trainer.raw_generator.parameters()]
    before_c = [p.detach().clone() for p in trainer.raw_critic.parameters()]
    metrics = trainer.train_step()
    assert all(torch.isfinite(v) for v in metrics.values())
    changed = lambda old, new: any(not torch.equal(a, b) for a, b in zip(old, new, strict=True))  # noqa: E731
    assert changed(before_g, trainer.raw_generator.parameters())
    assert changed(before_c, trainer.raw_critic.parameters())


def test_l1_weight_zero_vs_hundred(scans, tmp_path, tiny_cfg):
    totals = {}
    for w in (0.0, 100.0):
        trainer = prepare_training(tiny_cfg(l1_weight=w), scans, tmp_path / str(w))
        m = trainer.train_step()
        totals[w] = (m["loss_gen"].item(), m["loss_gen_adv"].item(), m["loss_l1"].item())
    assert totals[0.0][0] == pytest.approx(totals[0.0][1])
    assert totals[100.0][0] == pytest.approx(totals[100.0][1] + 100 * totals[100.0][2], rel=1e-5)


def test_full_run_outputs_and_resume_equality(scans, tmp_path, tiny_cfg):
    cfg = tiny_cfg()
    events = []
    full = prepare_training(cfg, scans, tmp_path / "full", progress=events.append).fit()
    assert not full.stopped and full.model_path == tmp_path / "full" / "model.pt"
    trained_on = ckpt.load_model(full.model_path, "cpu").training_domain
    assert trained_on is not None and trained_on["n"] == len(scans)  # stored for the guard
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "full" / "checkpoints")] == [4, 6]
    assert sorted(p.name for p in (tmp_path / "full" / "previews").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]
    record = json.loads((tmp_path / "full" / "metrics.jsonl").read_text().splitlines()[-1])
    for key in (
        "step",
        "loss_critic",
        "loss_gen_adv",
        "loss_l1",
        "gp",
        "wasserstein",
        "step_time",
        "samples_per_s",
        "lr",
        "eta_s",
    ):
        assert key in record
    assert {e["kind"] for e in events} >= {"metrics", "checkpoint", "preview", "done"}
    model = ckpt.load_model(full.model_path, "cpu")
    assert model.step == 6 and ckpt.read_checkpoint(full.model_path)["optim_g"] is None

    # interrupted at step 3 (the Stop button), then resumed
    out = tmp_path / "resumed"

    def stop_at_3(info):
        if info["kind"] in ("step", "metrics") and info["step"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled: stop after the next step

    first = prepare_training(cfg, scans, out, progress=stop_at_3).fit()
    assert first.stopped and first.step == 3 and first.model_path is None
    assert ckpt.list_checkpoints(out / "checkpoints")[-1][0] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    # a stray metrics line past the checkpoint must be dropped on resume
    with (out / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 4, "loss_critic": 123.0}) + "\n")
    second = prepare_training(cfg, scans, out, resume=True).fit()
    assert not second.stopped and second.step == 6
    want, got = _losses(tmp_path / "full"), _losses(out)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-7), step
    a = ckpt.read_checkpoint(tmp_path / "full" / "model.pt")["generator"]
    b = ckpt.read_checkpoint(out / "model.pt")["generator"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_with_other_variant_fails(scans, tmp_path, tiny_cfg):
    prepare_training(tiny_cfg(steps=2), scans, tmp_path).fit()
    from madgan_core.errors import CheckpointError

    other = tiny_cfg(steps=2).updated({"model": {"variant": "none"}})
    with pytest.raises(CheckpointError, match="ckpt_00000002.pt"):
        prepare_training(other, scans, tmp_path, resume=True)


def test_cli_train_folder(scans, tmp_path, monkeypatch, tiny_config_file):
    from madgan_core.cli import main

    config = tiny_config_file(tmp_path / "tiny.json", **ON_SCANS, train={"steps": 2})
    called = []
    import madgan_core.cohort.training as training

    monkeypatch.setattr(
        training, "calibrate_trained", lambda path, rows, cfg, progress: called.append(path)
    )
    out = tmp_path / "run"
    argv = ["train", "--manifest", str(scans[0].parent), "--out", str(out), "--config", str(config)]
    assert main([*argv, "--variant", "none", "--l1-weight", "0", "--no-progress"]) == 0
    saved = MadganConfig.load_json(out / "config.json")
    assert saved.model.variant == "none" and saved.train.l1_weight == 0.0 and saved.train.steps == 2
    assert called == [out / "model.pt"]
    assert main([*argv, "--steps", "3", "--resume", "--variant", "none", "--no-progress"]) == 0
    assert ckpt.load_model(out / "model.pt", "cpu").step == 3


def test_cli_bad_config_exits_2(scans, tmp_path, capsys, tiny_cfg):
    from madgan_core.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"variant": "sa5"}}))
    argv = [
        "train",
        "--manifest",
        str(scans[0].parent),
        "--out",
        str(tmp_path / "o"),
        "--config",
        str(bad),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: model.variant must be one of" in err and err.count("\n") == 1
    bad.write_text(json.dumps({"modell": {}}))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: unknown key 'modell'" in err and "overrides" not in err
    with pytest.raises(ConfigError):
        tiny_cfg(batch_size=0)


def test_landmark_intensity_is_learned_stored_and_used(scans, tmp_path, tiny_cfg):
    from madgan_core.prep.slab import learn_landmarks
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import score_scan

    def cfg():
        base = tiny_cfg(steps=2, checkpoint_every=1)
        return base.updated({"preprocess": {"intensity": "landmarks"}})

    asked = cfg()
    trainer = prepare_training(asked, scans, tmp_path)
    assert asked == cfg() and asked.preprocess.landmarks is None  # the caller's config is untouched
    assert trainer.cfg is not asked and trainer.cfg.preprocess.landmarks is not None
    result = trainer.fit()
    model = ckpt.load_model(result.model_path, "cpu")
    expected = learn_landmarks(scans, cfg().preprocess)
    assert model.config.preprocess.landmarks == pytest.approx(expected)
    scored = score_scan(model, load_scan(scans[0]))
    assert np.isfinite(scored.scores["mean"]) and np.isfinite(scored.reconstruction).any()
    # resuming takes the run's landmarks from its checkpoint, it does not relearn them
    resumed = prepare_training(cfg().updated({"train": {"steps": 3}}), scans[:1], tmp_path, True)
    assert resumed.cfg.preprocess.landmarks == pytest.approx(expected)
