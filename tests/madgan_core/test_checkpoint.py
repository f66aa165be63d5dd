"""Checkpoints: round trip, the model bundle API, and refusal of unsafe or mismatched files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from madgan_core import checkpoint as ckpt
from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError
from madgan_core.models import build_critic, build_generator
from madgan_core.train import make_optimizers


@pytest.fixture
def record_of(tiny_config):
    """``record_of(variant)``: a tiny config and a checkpoint record after one update of each network."""

    def make(variant: str = "none") -> tuple[MadganConfig, dict]:
        torch.manual_seed(0)
        cfg = tiny_config(model={"variant": variant})
        g, c = build_generator(cfg.model), build_critic(cfg.model)
        og, oc = make_optimizers(g, c, cfg)
        loss = (
            g(torch.randn(2, 3, 32, 32)).mean()
            + c(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)).mean()
        )
        loss.backward()
        og.step()
        oc.step()
        return cfg, ckpt.make_checkpoint(cfg, 7, g, c, og, oc)

    return make


@pytest.fixture
def saved(tmp_path, record_of) -> Path:
    return ckpt.save_checkpoint(record_of("sa3")[1], tmp_path / "ckpt_00000007.pt")


def test_round_trip_and_load_model(saved):
    record = ckpt.read_checkpoint(saved)
    assert record["format_version"] == ckpt.FORMAT_VERSION and record["step"] == 7
    assert isinstance(record["rng"]["numpy"]["keys"], list)
    model = ckpt.load_model(saved, device="cpu")
    assert model.step == 7 and model.config.model.variant == "sa3"
    assert not model.generator.training and model.healthy_reference is None
    assert model.path == saved and model.device == torch.device("cpu")
    with torch.no_grad():
        assert model.generator(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_update_checkpoint(saved):
    ckpt.update_checkpoint(
        saved, healthy_reference={"scores": {"mean": [0.1, 0.2]}, "names": ["a", "b"]}
    )
    assert ckpt.load_model(saved, "cpu").healthy_reference["names"] == ["a", "b"]
    with pytest.raises(CheckpointError):
        ckpt.update_checkpoint(saved, format_version=2)


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = ckpt.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_corrupt_file(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        ckpt.load_model(bad, "cpu")


def test_truncated_file(saved, tmp_path):
    cut = tmp_path / "truncated.pt"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*(corrupt|truncated)"):
        ckpt.read_checkpoint(cut)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_model(tmp_path / "nope.pt", "cpu")


def test_newer_format_version(tmp_path, record_of):
    _, record = record_of()
    record["format_version"] = ckpt.FORMAT_VERSION + 1
    path = ckpt.save_checkpoint(record, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="future.pt.*newer"):
        ckpt.load_model(path, "cpu")


def test_foreign_dict(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="foreign.pt.*not a napari-madgan checkpoint"):
        ckpt.load_model(path, "cpu")


def test_mismatched_variant(tmp_path, record_of):
    _, record = record_of("sa3")
    record["config"]["model"]["variant"] = "none"
    path = ckpt.save_checkpoint(record, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="mismatch.pt.*architecture mismatch"):
        ckpt.load_model(path, "cpu")


def test_resume_with_other_architecture_is_refused(saved):
    record = ckpt.read_checkpoint(saved)
    stored = ckpt.config_of(record, saved)
    other = stored.updated({"model": {"variant": "sa7"}})
    with pytest.raises(CheckpointError, match="model configuration differs"):
        ckpt.check_compatible(stored, other, saved)


class _Exploit:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "payload": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        ckpt.load_model(path, "cpu")
    assert not marker.exists()
    # a plain pickle file (not a torch zip) is refused the same way
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError, match="evil.pkl"):
        ckpt.read_checkpoint(raw)
    assert not marker.exists()


def test_list_and_prune(tmp_path):
    for step in (1, 2, 3, 4, 5):
        (tmp_path / f"ckpt_{step:08d}.pt").write_bytes(b"x")
    (tmp_path / "model.pt").write_bytes(b"x")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 2, 3, 4, 5]
    ckpt.prune_checkpoints(tmp_path, keep_last=2, milestones=(2,))
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4, 5]
    assert ckpt.list_checkpoints(tmp_path / "missing") == []


def test_prune_removes_temporary_files_of_a_killed_write(tmp_path):
    for step in (1, 2):
        ckpt.checkpoint_path(tmp_path, step).write_bytes(b"x")
    stale = tmp_path / ".ckpt_00000003.pt.abc123.tmp.pt"
    stale.write_bytes(b"half a checkpoint")
    ckpt.prune_checkpoints(tmp_path, keep_last=5)
    assert not stale.exists()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 2]
