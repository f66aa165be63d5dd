"""The :class:`Trainer` loop: critic steps, a generator step, then the hooks (metrics, previews,
checkpoints) that fall due.

One step is ``critic_steps`` critic updates (WGAN-GP, with the paper's periodic real/fake
swap) followed by one generator update (adversarial + ℓ1). The generator's prediction
of the last critic batch is reused for its own update, as in pix2pix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from madgan_core.config import MadganConfig
from madgan_core.model import checkpoint as ckpt
from madgan_core.model.losses import critic_loss, generator_loss, gradient_penalty, swap_labels
from madgan_core.model.train.checkpoint_files import CheckpointFiles
from madgan_core.model.train.metrics import MetricsLog, StepTimer
from madgan_core.model.train.preview import preview_path, write_preview
from madgan_core.model.train.signals import StopRequest, stop_on_signals
from madgan_core.runtime.distributed import DistInfo, any_flag, sync_buffers, unwrap

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
Batch = tuple[torch.Tensor, torch.Tensor]
CriticLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainResult:
    step: int
    stopped: bool
    out_dir: Path
    model_path: Path | None
    last_checkpoint: Path | None


class Trainer:
    """Runs the MADGAN training loop on injected parts.

    Args:
        generator, critic: the networks (possibly DDP/compile-wrapped).
        optim_g, optim_c: their optimizers.
        batches: an endless iterator of ``(input, target)`` CPU batches.
        cfg: the run's configuration.
        out_dir: where metrics, previews, checkpoints and ``model.pt`` go.
        device, precision: from :mod:`madgan_core.runtime.device` (``fp32``, ``bf16`` or ``fp16``).
        scaler: GradScaler (enabled for fp16 only).
        dist: the process's place in a DDP run (only rank 0 writes files).
        progress: called with a dict after every step (``kind="step"``) and on
            metrics, previews, checkpoints and the end (``kind`` says which).
        start_step: steps already done (when resuming).
        tensorboard: also log scalars to ``out_dir/tensorboard`` if TensorBoard is installed.
        training_domain: the training scans' profile summary, stored with the model.
        init: the model the run started from (plain data), stored as ``init`` with every
            checkpoint and the model; None for a run trained from scratch.
    """

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        optim_g: torch.optim.Optimizer,
        optim_c: torch.optim.Optimizer,
        batches: Iterator[Batch],
        cfg: MadganConfig,
        out_dir: str | Path,
        device: torch.device,
        precision: str = "fp32",
        scaler: torch.amp.GradScaler | None = None,
        dist: DistInfo | None = None,
        progress: Progress | None = None,
        start_step: int = 0,
        tensorboard: bool = False,
        training_domain: dict | None = None,
        init: dict | None = None,
    ):
        from madgan_core.runtime.device import make_grad_scaler

        self.generator = generator
        self.critic = critic
        self.raw_generator = unwrap(generator)
        self.raw_critic = unwrap(critic)
        self.optim_g = optim_g
        self.optim_c = optim_c
        self.batches = batches
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = device
        self.precision = precision
        self.scaler = scaler if scaler is not None else make_grad_scaler(device, precision)
        self.dist = dist or DistInfo()
        self.progress = progress
        self.step = start_step
        self.training_domain = training_domain
        self.init = init
        self.stop = StopRequest()
        self.graph_step = None  # built on the first step when cfg.train.engine is "graph"
        self.files = CheckpointFiles(self.out_dir, cfg.train)
        self.metrics = MetricsLog(
            self.out_dir / "metrics.jsonl", self.dist.is_main, tensorboard, start_step
        )

    # ------------------------------------------------------------ paths and state

    @property
    def checkpoint_dir(self) -> Path:
        return self.files.directory

    @property
    def metrics_path(self) -> Path:
        return self.metrics.path

    @property
    def model_path(self) -> Path:
        return self.files.model_path

    @property
    def last_checkpoint(self) -> Path | None:
        return self.files.last

    @property
    def stop_requested(self) -> bool:
        """Set (by SIGINT/SIGTERM, or by a caller) to stop after the current step."""
        return self.stop.requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self.stop.requested = value

    # ------------------------------------------------------------ one step

    def _autocast(self):
        from madgan_core.runtime.device import autocast_context

        return autocast_context(self.device, self.precision)

    def _next_batch(self) -> Batch:
        from madgan_core.runtime.device import prepare_input

        x, y = next(self.batches)
        return prepare_input(x, self.device), prepare_input(y, self.device)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One training step (critic update(s), then generator update); returns detached metrics.

        With ``cfg.train.engine == "graph"`` the step runs as a captured program
        (:class:`~madgan_core.model.train.graph_step.GraphStep`) of the same arithmetic.
        """
        t = self.cfg.train
        if t.engine == "graph":
            if self.graph_step is None:
                from madgan_core.model.train.graph_step import GraphStep

                self.graph_step = GraphStep(self)
            return self.graph_step(self.step)
        swap = swap_labels(self.step, t.label_swap_every)
        batches = (self._next_batch() for _ in range(t.critic_steps))
        return self.run_step(batches, lambda real, fake: critic_loss(real, fake, swap=swap))

    def run_step(
        self, batches: Iterable[Batch], adversarial: CriticLoss
    ) -> dict[str, torch.Tensor]:
        """The step's arithmetic on ``cfg.train.critic_steps`` batches, read as they are needed.

        ``adversarial(score_real, score_fake)`` is the critic's Wasserstein term (with the
        step's label swap applied). Returns the detached metrics.
        """
        t = self.cfg.train
        self.generator.train()
        self.critic.train()
        for i, (x, y) in enumerate(batches):
            last = i == t.critic_steps - 1
            with self._autocast(), torch.set_grad_enabled(last):
                fake = self.generator(x)
            fake_d = fake.detach()
            with self._autocast():
                scores = self.critic(torch.cat([x, x]), torch.cat([y, fake_d]))
            score_real, score_fake = scores.float().chunk(2)
            adv_c = adversarial(score_real, score_fake)
            gp = gradient_penalty(self.raw_critic, x, y, fake_d)
            loss_c = adv_c + t.gp_weight * gp
            self._update(self.optim_c, loss_c)

        self.raw_critic.requires_grad_(False)
        try:
            with self._autocast():
                score_gen = self.raw_critic(x, fake)
            loss_g, adv_g, l1 = generator_loss(score_gen, fake, y, t.adv_weight, t.l1_weight)
            self._update(self.optim_g, loss_g)
        finally:
            self.raw_critic.requires_grad_(True)

        self._last = (x[0].detach(), y[0].detach(), fake[0].detach())
        return {
            "loss_critic": loss_c.detach(),
            "loss_gen": loss_g.detach(),
            "loss_gen_adv": adv_g.detach(),
            "loss_l1": l1.detach(),
            "gp": gp.detach(),
            "wasserstein": (score_real.mean() - score_fake.mean()).detach(),
        }

    def _update(self, optim: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optim.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optim)
        self.scaler.update()

    # ------------------------------------------------------------ loop

    def fit(self) -> TrainResult:
        """Train until ``cfg.train.steps``; SIGINT/SIGTERM stop after the current step with a checkpoint."""
        t = self.cfg.train
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.metrics.truncate(self.step)
        timer = StepTimer(t.steps, t.batch_size * self.dist.world_size)
        try:
            with stop_on_signals(self.stop):
                return self._run(timer)
        finally:
            self.metrics.close()

    def _run(self, timer: StepTimer) -> TrainResult:
        t = self.cfg.train
        while self.step < t.steps:
            start = time.perf_counter()
            self.metrics.add(self.train_step())
            self.step += 1
            info = {"kind": "step", "step": self.step, "steps": t.steps}
            info.update(timer.tick(time.perf_counter() - start, self.step))
            stopping = self._after_step(info)
            if stopping and self.step < t.steps:
                log.info("stopped at step %d; continue with --resume", self.step)
                self._emit({"kind": "stopped", "step": self.step, "steps": t.steps})
                return self._result(stopped=True, model_path=None)
        if self.last_checkpoint != self.files.path(self.step):
            self.save_checkpoint()
        model_path = self.save_model()
        self._emit(
            {"kind": "done", "step": self.step, "steps": t.steps, "model_path": str(model_path)}
        )
        return self._result(stopped=False, model_path=model_path)

    def _after_step(self, info: dict[str, Any]) -> bool:
        """The hooks that fall due after a step; returns whether the run is stopping."""
        t = self.cfg.train
        if self.step % t.log_every == 0 or self.step == t.steps:
            if self.graph_step is not None:
                info = {**info, **self.graph_step.timing(self.step, t.steps, t.batch_size)}
            record = self.metrics.record(self.step, info, self.optim_g.param_groups[0]["lr"])
            info = {**info, **record, "kind": "metrics"}
        if self.dist.is_main and self.step % t.preview_every == 0:
            self._preview()
        stopping = any_flag(self.stop.requested, self.dist, self.device)
        if self.files.due(self.step, stopping):
            self.save_checkpoint()
        self._emit(info)
        return stopping

    def _result(self, stopped: bool, model_path: Path | None) -> TrainResult:
        return TrainResult(self.step, stopped, self.out_dir, model_path, self.last_checkpoint)

    def _emit(self, info: dict[str, Any]) -> None:
        if self.progress is not None and self.dist.is_main:
            self.progress(info)

    # ------------------------------------------------------------ files

    def checkpoint_record(self, full: bool = True) -> dict:
        record = ckpt.make_checkpoint(
            self.cfg,
            self.step,
            self.raw_generator,
            self.raw_critic,
            self.optim_g if full else None,
            self.optim_c if full else None,
            self.scaler if full else None,
            include_rng=full,
            training_domain=self.training_domain,
        )
        if self.init is not None:
            record["init"] = self.init
        return record

    def save_checkpoint(self) -> Path | None:
        """``checkpoints/ckpt_{step:08d}.pt`` on rank 0, then prune old ones."""
        if not self.dist.is_main:
            return None
        path = self.files.save(self.checkpoint_record(), self.step)
        self._emit({"kind": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def save_model(self) -> Path | None:
        """``model.pt``: the final weights and config, without optimizer or RNG state."""
        sync_buffers(self.generator, self.dist)
        if not self.dist.is_main:
            return None
        return self.files.save_model(self.checkpoint_record(full=False))

    def _preview(self) -> Path:
        x, y, p = (a.float().cpu().numpy() for a in self._last)
        path = write_preview(preview_path(self.out_dir, self.step), x, y, p, self.step)
        self._emit({"kind": "preview", "step": self.step, "path": str(path)})
        return path
