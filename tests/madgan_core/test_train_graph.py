"""The captured training step and the device-resident training set, proven on the CPU.

A CPU has no CUDA graphs, so ``engine="graph"`` runs its program eagerly there; these
tests hold that program (fixed buffers, the label swap as a device sign, batches cut
from resident slabs) to the eager trainer's arithmetic, bit for bit.
"""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from madgan_core.errors import ConfigError
from madgan_core.model.train import prepare_training
from madgan_core.prep.resident import ResidentBatchStream
from madgan_core.prep.training_set import BatchStream, WindowDataset

from . import test_train
from .test_train import ON_SCANS

scans = test_train.scans  # the training tests' 2 mm healthy scans (a fixture)


@pytest.fixture
def cfg(tiny_config):
    return lambda **train: tiny_config(**ON_SCANS, train={"num_workers": 0, **train})


def _weights(trainer) -> list[torch.Tensor]:
    modules = (trainer.raw_generator, trainer.raw_critic)
    return [v.detach().clone() for m in modules for v in m.state_dict().values()]


def _run(trainer, steps: int) -> list[dict[str, float]]:
    metrics = []
    for _ in range(steps):
        metrics.append({k: float(v) for k, v in trainer.train_step().items()})
        trainer.step += 1
    return metrics


@pytest.mark.parametrize("critic_steps", [1, 2])
def test_graph_engine_gives_the_eager_weights_bit_for_bit(
    scans, tmp_path, cfg, critic_steps, caplog
):
    # 7 steps cross two label swaps (steps 2 and 5); resident batches stand in for the loader
    # each run is assembled right before it runs: assembly seeds the global RNG (dropout, penalty)
    eager = prepare_training(cfg(critic_steps=critic_steps), scans, tmp_path / "eager")
    eager_metrics = _run(eager, 7)
    graph_cfg = cfg(critic_steps=critic_steps, engine="graph", resident=True)
    with caplog.at_level("INFO", logger="madgan_core.prep.resident"):
        graph = prepare_training(graph_cfg, scans, tmp_path / "graph")
    assert "training slices on cpu" in caplog.text  # the batches are cut from resident slabs
    assert _run(graph, 7) == eager_metrics
    for a, b in zip(_weights(eager), _weights(graph), strict=True):
        assert torch.equal(a, b)
    assert graph.graph_step is not None and not graph.graph_step.captured  # nothing to capture


def test_graph_engine_fits_and_resumes_like_eager(scans, tmp_path, cfg):
    settings = {"steps": 6, "checkpoint_every": 3, "log_every": 2, "preview_every": 3}
    eager = prepare_training(cfg(**settings), scans, tmp_path / "eager").fit()

    def stop_at_4(info):
        if info.get("step") == 4:
            graph.stop_requested = True

    graph_cfg = cfg(**settings, engine="graph", resident=True)
    graph = prepare_training(graph_cfg, scans, tmp_path / "graph", progress=stop_at_4)
    assert graph.fit().stopped
    resumed = prepare_training(graph_cfg, scans, tmp_path / "graph", resume=True).fit()
    assert resumed.step == 6 and not resumed.stopped
    want = torch.load(eager.model_path, weights_only=True)["generator"]
    got = torch.load(resumed.model_path, weights_only=True)["generator"]
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_resident_batches_are_the_loaders(scans, cfg):
    dataset = WindowDataset(scans, cfg())
    loader = BatchStream(dataset, 4, seed=3, flip=True)
    resident = ResidentBatchStream(dataset, 4, torch.device("cpu"), seed=3, flip=True)
    assert resident.nbytes == dataset.nbytes
    n = 2 * loader.batches_per_epoch + 2
    for (x0, y0), (x1, y1) in zip(islice(loader, n), islice(resident, n), strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1) and x1.dtype == torch.float32
    # resuming mid-epoch, and a rank's share under two processes
    k = loader.batches_per_epoch + 1
    for kwargs in ({"start_batch": k}, {"rank": 1, "world_size": 2}):
        a = iter(BatchStream(dataset, 4, seed=3, **kwargs))
        b = iter(ResidentBatchStream(dataset, 4, torch.device("cpu"), seed=3, **kwargs))
        for _ in range(3):
            (x0, y0), (x1, y1) = next(a), next(b)
            assert torch.equal(x0, x1) and torch.equal(y0, y1)


def test_resident_stream_with_fewer_windows_than_a_batch(scans, cfg):
    dataset = WindowDataset(scans[:1], cfg())
    big = len(dataset) + 5
    a, b = iter(BatchStream(dataset, big)), iter(ResidentBatchStream(dataset, big, "cpu"))
    for _ in range(2):
        (x0, _), (x1, _) = next(a), next(b)
        assert x1.shape[0] == len(dataset) and torch.equal(x0, x1)


def test_graph_engine_refuses_fp16_with_the_reason(cfg):
    with pytest.raises(ConfigError, match="fp16's gradient scaler"):
        cfg(engine="graph", precision="fp16")


def test_graph_engine_and_compile_are_one_or_the_other(cfg):
    with pytest.raises(ConfigError, match="leave train.compile off"):
        cfg(engine="graph", compile=True)


def test_unknown_engine_is_refused(cfg):
    with pytest.raises(ConfigError, match="train.engine must be one of"):
        cfg(engine="fast")
