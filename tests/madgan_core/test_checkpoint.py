"""Checkpoints: round trip, the model bundle API, and refusal of unsafe or mismatched files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.networks import build_critic, build_generator
from madgan_core.model.train import make_optimizers


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
    assert not model.generator.training and model.reference is None
    assert model.path == saved and model.device == torch.device("cpu")
    with torch.no_grad():
        assert model.generator(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_update_checkpoint(saved):
    ckpt.update_checkpoint(
        saved, healthy_reference={"scores": {"mean": [0.1, 0.2]}, "names": ["a", "b"]}
    )
    assert ckpt.load_model(saved, "cpu").reference.names == ["a", "b"]
    with pytest.raises(CheckpointError):
        ckpt.update_checkpoint(saved, format_version=2)


def test_a_model_saved_before_the_zmap_settings_loads_with_their_defaults(tmp_path, record_of):
    _, record = record_of()
    for key in ("smooth_sigma_px", "tail_fraction", "volume_threshold", "position_bins"):
        del record["config"]["score"][key]
    path = ckpt.save_checkpoint(record, tmp_path / "older.pt")
    score = ckpt.load_model(path, "cpu").config.score
    assert (score.smooth_sigma_px, score.tail_fraction) == (2.0, 0.01)
    assert (score.volume_threshold, score.position_bins) == (4.0, 24)


def _zstats(shape: tuple[int, int, int]) -> dict:
    from madgan_core.model.zstats import ZStats

    return ZStats(np.zeros(shape, np.float32), np.ones(shape, np.float32), 3).to_dict()


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("calibrated", "expected a mapping, got str"),
        ({"names": ["a"]}, "missing 'scores'"),
        ({"scores": [0.1], "names": ["a"]}, "scores must map each mode"),
        ({"scores": {"mean": [0.1, 0.2]}, "names": ["a"]}, r"scores\['mean'\] holds 2 values"),
        ({"scores": {}, "names": ["a", "b"], "sequences": ["T1"]}, "1 sequences for 2 controls"),
        (
            {"scores": {}, "names": ["a"], "zstats": {"T1": _zstats((24, 16, 16))}},
            "z-statistics of T1 are 16x16, the model's slices 32x32",
        ),
        (
            {"scores": {}, "names": ["a"], "zstats": {"T1": {"mean": [1.0], "std": [1.0]}}},
            r"mean and std must both be \(bins, height, width\)",
        ),
    ],
    ids=["not-a-dict", "no-scores", "scores-list", "count", "sequences", "zstats-shape", "zstats"],
)
def test_a_malformed_reference_is_refused_at_load_naming_the_file(
    tmp_path, reference, problem, record_of
):
    _, record = record_of()
    record["healthy_reference"] = reference
    path = ckpt.save_checkpoint(record, tmp_path / "calibrated.pt")
    message = rf"calibrated\.pt: the stored healthy reference is malformed \({problem}"
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_model(path, "cpu")


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


def assert_refusal_explains(error: CheckpointError, found: str) -> None:
    """The refusal says what was found and why it is refused, and never how to load it anyway."""
    text = str(error)
    assert "refused" in text and found in text, text
    assert "could run code" in text and "was not loaded" in text, text
    assert "weights_only" not in text and "False" not in text and "trust" not in text, text


def test_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "payload": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="evil.pt") as refused:
        ckpt.load_model(path, "cpu")
    assert_refusal_explains(refused.value, "refers to the Python callable `getattr`")
    assert not marker.exists()
    # a plain pickle file (not a torch zip) is refused the same way
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError, match="evil.pkl") as refused:
        ckpt.read_checkpoint(raw)
    assert_refusal_explains(refused.value, "a pickle with an instruction")
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
