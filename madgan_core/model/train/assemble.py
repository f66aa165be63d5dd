"""The parts of a training run, built from its configuration: device, data, networks,
optimizers and, when resuming, their saved state.

Assembly never changes the configuration it is given: :attr:`TrainingParts.cfg` is a
new object (with the intensity landmarks learned, resumed or taken from the init model,
where the run needs them).

A run may start from a trained model (``init``, fine-tuning): its generator and critic
weights, with fresh optimizers, at step 0. The model's stored configuration is the base
of the run's (:func:`init_config`); its architecture and slice geometry must match, and
its intensity landmarks are kept. Where it came from is stored in every checkpoint and
``model.pt`` as ``init`` (:func:`init_provenance`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.train.loop import Batch, Progress, Trainer
from madgan_core.prep.domain_profile import ProfileSummary
from madgan_core.runtime.distributed import DistInfo

log = logging.getLogger(__name__)


@dataclass
class TrainingParts:
    """Everything :class:`~madgan_core.model.train.loop.Trainer` runs on.

    Attributes:
        cfg: the run's configuration (a copy of the one asked for, landmarks filled in).
        generator, critic: the networks, wrapped for DDP and ``torch.compile`` as asked.
        optim_g, optim_c: their Adam optimizers.
        scaler: the fp16 gradient scaler (disabled otherwise).
        batches: an endless iterator of ``(input, target)`` CPU batches.
        device, precision: where and how the run computes.
        dist: the process's place in a DDP run.
        start_step: steps already done (from the resumed checkpoint).
        training_domain: the training scans' profile summary
            (:class:`~madgan_core.prep.domain_profile.ProfileSummary` as a dict), stored with the model.
        init: the model the run started from (:func:`init_provenance`), stored with
            every checkpoint; None for a run trained from scratch.
    """

    cfg: MadganConfig
    generator: nn.Module
    critic: nn.Module
    optim_g: torch.optim.Optimizer
    optim_c: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: Iterator[Batch]
    device: torch.device
    precision: str
    dist: DistInfo
    start_step: int = 0
    training_domain: dict | None = None
    init: dict | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizers(
    generator: nn.Module, critic: nn.Module, cfg: MadganConfig
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam(lr, betas) for both networks; betas (0.5, 0.9) as in WGAN-GP (the paper gives only lr).

    For a captured step on CUDA (``train.engine = "graph"``) both are fused and capturable:
    one kernel per update, with the step count kept on the device.
    """
    t = cfg.train
    on_cuda = next(generator.parameters()).device.type == "cuda"
    options = {"fused": True, "capturable": True} if t.engine == "graph" and on_cuda else {}
    return (
        torch.optim.Adam(generator.parameters(), lr=t.lr, betas=tuple(t.betas), **options),
        torch.optim.Adam(critic.parameters(), lr=t.lr, betas=tuple(t.betas), **options),
    )


def assemble(
    cfg: MadganConfig,
    scans: Sequence,
    out_dir: str | Path,
    resume: bool = False,
    scan_progress: Callable[[int, int, str], None] | None = None,
    flip: bool = False,
    init: str | Path | None = None,
) -> TrainingParts:
    """Build a run's parts and, with ``resume``, restore the newest checkpoint in
    ``out_dir/checkpoints``.

    With ``init`` (a model file or any checkpoint) the networks start from its weights,
    unless the run resumes from a checkpoint of its own. Under torchrun this also joins
    the process group and wraps the networks in DDP.

    Raises:
        CheckpointError: the init model is missing, unreadable, or its architecture or
            slice geometry differs from ``cfg`` (the message names the file).
    """
    from madgan_core.model.networks import build_critic, build_generator
    from madgan_core.prep.training_set import WindowDataset
    from madgan_core.runtime.device import (
        make_grad_scaler,
        resolve_device,
        resolve_precision,
        to_channels_last,
    )
    from madgan_core.runtime.distributed import init_distributed, wrap

    cfg = copy.deepcopy(cfg)
    t = cfg.train
    dist_info, device = init_distributed(resolve_device(t.device))
    precision = resolve_precision(t.precision, device)
    resumed = _newest_checkpoint(Path(out_dir), cfg) if resume else None
    start_step = resumed.step if resumed is not None else 0
    start = None
    if init is not None and resumed is not None:
        log.info("resuming the run; --init %s is not applied again", init)
    elif init is not None:
        start = _read_init(Path(init), cfg)
    if cfg.preprocess.intensity == "landmarks" and cfg.preprocess.landmarks is None:
        cfg.preprocess.landmarks = _landmarks(scans, cfg, resumed or start)
    if start is not None:
        _check_preprocessing(start, cfg)

    seed_everything(t.seed)
    dataset = WindowDataset(scans, cfg, progress=scan_progress)
    log.info(
        "%d windows from %d scans (%.1f MB cached)",
        len(dataset),
        len(dataset.slabs),
        dataset.nbytes / 1e6,
    )
    generator = to_channels_last(build_generator(cfg.model).to(device))
    critic = to_channels_last(build_critic(cfg.model).to(device))
    optim_g, optim_c = make_optimizers(generator, critic, cfg)
    scaler = make_grad_scaler(device, precision)
    if resumed is not None:
        _restore(resumed, generator, critic, optim_g, optim_c, scaler)
    elif start is not None:
        _load_init(start, generator, critic)
    if dist_info.enabled:
        # different dropout/penalty draws per rank, reproducible per (seed, rank, step)
        torch.manual_seed(t.seed * 7919 + dist_info.rank * 104_729 + start_step)
    generator = wrap(generator, dist_info, device)
    critic = wrap(critic, dist_info, device)
    if t.compile:
        generator = torch.compile(generator, mode=t.compile_mode)
        critic = torch.compile(critic, mode=t.compile_mode)
    batches = _batches(dataset, cfg, device, dist_info, flip, start_step)
    return TrainingParts(
        cfg, generator, critic, optim_g, optim_c, scaler, iter(batches), device, precision,
        dist_info, start_step,
        ProfileSummary.of(dataset.profiles).to_dict() if dataset.profiles else None,
        resumed.record.get("init") if resumed is not None else _provenance(start),
    )  # fmt: skip


def _batches(dataset, cfg: MadganConfig, device: torch.device, dist_info: DistInfo, flip: bool,
             start_step: int):  # fmt: skip
    """The run's batch stream: through a data loader, or cut on the device (``train.resident``)."""
    from madgan_core.prep.resident import ResidentBatchStream
    from madgan_core.prep.training_set import BatchStream

    t = cfg.train
    shared = {"seed": t.seed, "rank": dist_info.rank, "world_size": dist_info.world_size,
              "flip": flip, "start_batch": start_step * t.critic_steps}  # fmt: skip
    if t.resident:
        return ResidentBatchStream(dataset, t.batch_size, device, **shared)
    return BatchStream(dataset, t.batch_size, num_workers=t.num_workers,
                       pin_memory=device.type == "cuda", **shared)  # fmt: skip


def prepare_training(
    cfg: MadganConfig,
    scans: Sequence,
    out_dir: str | Path,
    resume: bool = False,
    progress: Progress | None = None,
    scan_progress: Callable[[int, int, str], None] | None = None,
    tensorboard: bool = False,
    flip: bool = False,
    init: str | Path | None = None,
) -> Trainer:
    """A :class:`Trainer` on freshly :func:`assemble`-d parts; its ``cfg`` is the run's configuration.

    ``init``: a trained model to start from (fine-tuning); see :func:`assemble`.
    """
    parts = assemble(cfg, scans, out_dir, resume, scan_progress, flip, init)
    return Trainer(
        parts.generator,
        parts.critic,
        parts.optim_g,
        parts.optim_c,
        parts.batches,
        parts.cfg,
        out_dir,
        parts.device,
        parts.precision,
        scaler=parts.scaler,
        dist=parts.dist,
        progress=progress,
        start_step=parts.start_step,
        tensorboard=tensorboard,
        training_domain=parts.training_domain,
        init=parts.init,
    )


def init_config(path: str | Path) -> MadganConfig:
    """The configuration stored in a trained model, the base of a run started from it.

    Raises:
        CheckpointError: the file is missing, not a model or its configuration is invalid.
    """
    path = Path(path)
    return ckpt.config_of(ckpt.read_checkpoint(path), path)


def init_provenance(path: str | Path, record: dict) -> dict:
    """``{"path", "sha256", "step"}`` of the model a run started from: plain data, stored
    as ``init`` in the run's checkpoints and ``model.pt``."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "step": int(record["step"])}


class _Resumed(NamedTuple):
    """A checkpoint a run resumes (or starts) from: its record, file and stored configuration."""

    record: dict
    path: Path
    config: MadganConfig

    @property
    def step(self) -> int:
        return int(self.record["step"])


def _newest_checkpoint(out_dir: Path, cfg: MadganConfig) -> _Resumed | None:
    """The newest checkpoint, checked against ``cfg``; None without one."""
    found = ckpt.list_checkpoints(out_dir / "checkpoints")
    if not found:
        log.warning("--resume: no checkpoint in %s; starting from step 0", out_dir / "checkpoints")
        return None
    resumed = _read_checked(found[-1][1], cfg)
    log.info("resuming from %s (step %d)", resumed.path, resumed.step)
    return resumed


def _read_init(path: Path, cfg: MadganConfig) -> _Resumed:
    """The model a run starts from, checked against ``cfg`` (architecture, slice size)."""
    start = _read_checked(path, cfg)
    log.info("starting from %s (trained %d steps)", path, start.step)
    return start


def _read_checked(path: Path, cfg: MadganConfig) -> _Resumed:
    """A checkpoint or model file with its stored configuration, checked against ``cfg``."""
    record = ckpt.read_checkpoint(path)
    stored = ckpt.config_of(record, path)
    ckpt.check_compatible(stored, cfg, path)
    return _Resumed(record, path, stored)


def _check_preprocessing(start: _Resumed, cfg: MadganConfig) -> None:
    """Warn where the run preprocesses its scans otherwise than the init model did."""
    if cfg.preprocess != start.config.preprocess:
        log.warning(
            "%s: the run's preprocessing differs from the model's, whose weights were "
            "trained on other inputs: stored %s, run %s",
            start.path,
            start.config.preprocess,
            cfg.preprocess,
        )


def _load_init(start: _Resumed, generator: nn.Module, critic: nn.Module) -> None:
    """Load the init model's generator and critic; a model without a critic gets a fresh one."""
    ckpt.load_state(generator, start.record["generator"], "generator", start.path)
    if start.record.get("critic") is None:
        log.warning("%s holds no critic state; the critic starts from scratch", start.path)
    else:
        ckpt.load_state(critic, start.record["critic"], "critic", start.path)


def _provenance(start: _Resumed | None) -> dict | None:
    return None if start is None else init_provenance(start.path, start.record)


def _landmarks(scans: Sequence, cfg: MadganConfig, resumed: _Resumed | None) -> tuple[float, ...]:
    """A resumed run keeps the landmarks it learned, and a run started from a model keeps
    the model's; a new run learns them from its scans."""
    from madgan_core.prep.slab import learn_landmarks

    if resumed is not None and resumed.config.preprocess.landmarks is not None:
        return resumed.config.preprocess.landmarks
    log.info("learning intensity landmarks from %d scans", len(scans))
    return learn_landmarks(scans, cfg.preprocess)


def _restore(
    resumed: _Resumed,
    generator: nn.Module,
    critic: nn.Module,
    optim_g: torch.optim.Optimizer,
    optim_c: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load a checkpoint's network, optimizer, scaler and RNG state."""
    record, path = resumed.record, resumed.path
    ckpt.load_state(generator, record["generator"], "generator", path)
    ckpt.load_state(critic, record.get("critic"), "critic", path)
    try:
        optim_g.load_state_dict(record["optim_g"])
        optim_c.load_state_dict(record["optim_c"])
        if record.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(record["scaler"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"optimizer state cannot be restored: {exc}", path) from None
    if record.get("rng"):
        ckpt.set_rng_state(record["rng"])
