"""Training: the :class:`Trainer` loop and :func:`prepare_training`, which assembles its parts.

One step is ``critic_steps`` critic updates (WGAN-GP, with the paper's periodic real/fake
swap) followed by one generator update (adversarial + ℓ1). The generator's prediction
of the last critic batch is reused for its own update, as in pix2pix.
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from madgan_core import checkpoint as ckpt
from madgan_core.config import MadganConfig
from madgan_core.distributed import DistInfo, any_flag, sync_buffers, unwrap
from madgan_core.errors import CheckpointError
from madgan_core.io import atomic_path, atomic_write_text
from madgan_core.losses import critic_loss, generator_loss, gradient_penalty, swap_labels

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
Batch = tuple[torch.Tensor, torch.Tensor]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizers(
    generator: nn.Module, critic: nn.Module, cfg: MadganConfig
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam(lr, betas) for both networks; betas (0.5, 0.9) as in WGAN-GP (the paper gives only lr)."""
    t = cfg.train
    return (
        torch.optim.Adam(generator.parameters(), lr=t.lr, betas=tuple(t.betas)),
        torch.optim.Adam(critic.parameters(), lr=t.lr, betas=tuple(t.betas)),
    )


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
        device, precision: from :mod:`madgan_core.device` (``fp32``, ``bf16`` or ``fp16``).
        scaler: GradScaler (enabled for fp16 only).
        dist: the process's place in a DDP run (only rank 0 writes files).
        progress: called with a dict after every step (``kind="step"``) and on
            metrics, previews, checkpoints and the end (``kind`` says which).
        start_step: steps already done (when resuming).
        tensorboard: also log scalars to ``out_dir/tensorboard`` if TensorBoard is installed.
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
    ):
        from madgan_core.device import make_grad_scaler

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
        self.stop_requested = False
        self._writer = self._tensorboard() if tensorboard and self.dist.is_main else None
        self._sums: dict[str, float | torch.Tensor] = {}
        self._count = 0
        self._step_time: float | None = None
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------ paths

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    @property
    def model_path(self) -> Path:
        return self.out_dir / "model.pt"

    # ------------------------------------------------------------ one step

    def _autocast(self):
        from madgan_core.device import autocast_context

        return autocast_context(self.device, self.precision)

    def _next_batch(self) -> Batch:
        from madgan_core.device import prepare_input

        x, y = next(self.batches)
        return prepare_input(x, self.device), prepare_input(y, self.device)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One training step (critic update(s), then generator update); returns detached metrics."""
        t = self.cfg.train
        self.generator.train()
        self.critic.train()
        swap = swap_labels(self.step, t.label_swap_every)
        for i in range(t.critic_steps):
            x, y = self._next_batch()
            last = i == t.critic_steps - 1
            with self._autocast(), torch.set_grad_enabled(last):
                fake = self.generator(x)
            fake_d = fake.detach()
            with self._autocast():
                scores = self.critic(torch.cat([x, x]), torch.cat([y, fake_d]))
            score_real, score_fake = scores.float().chunk(2)
            adv_c = critic_loss(score_real, score_fake, swap=swap)
            gp = gradient_penalty(self.raw_critic, x, y, fake_d)
            loss_c = adv_c + t.gp_weight * gp
            self.optim_c.zero_grad(set_to_none=True)
            self.scaler.scale(loss_c).backward()
            self.scaler.step(self.optim_c)
            self.scaler.update()

        self.raw_critic.requires_grad_(False)
        try:
            with self._autocast():
                score_gen = self.raw_critic(x, fake)
            loss_g, adv_g, l1 = generator_loss(score_gen, fake, y, t.adv_weight, t.l1_weight)
            self.optim_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g).backward()
            self.scaler.step(self.optim_g)
            self.scaler.update()
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

    # ------------------------------------------------------------ loop

    def fit(self) -> TrainResult:
        """Train until ``cfg.train.steps``; SIGINT/SIGTERM stop after the current step with a checkpoint."""
        t = self.cfg.train
        main = self.dist.is_main
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._truncate_metrics(self.step)
        restore = self._install_signal_handlers()
        batch_total = t.batch_size * self.dist.world_size
        try:
            while self.step < t.steps:
                start = time.perf_counter()
                metrics = self.train_step()
                self.step += 1
                for k, v in metrics.items():
                    self._sums[k] = self._sums.get(k, 0.0) + v
                self._count += 1
                elapsed = time.perf_counter() - start
                self._step_time = (
                    elapsed if self._step_time is None else 0.9 * self._step_time + 0.1 * elapsed
                )
                eta = self._step_time * (t.steps - self.step)
                info = {
                    "kind": "step",
                    "step": self.step,
                    "steps": t.steps,
                    "step_time": self._step_time,
                    "samples_per_s": batch_total / self._step_time,
                    "eta_s": eta,
                }
                if self.step % t.log_every == 0 or self.step == t.steps:
                    info = self._log_metrics(info)
                if main and self.step % t.preview_every == 0:
                    self._preview()
                stop = any_flag(self.stop_requested, self.dist, self.device)
                if (
                    self.step % t.checkpoint_every == 0
                    or self.step in t.milestones
                    or self.step == t.steps
                    or stop
                ):
                    self.save_checkpoint()
                self._emit(info)
                if stop and self.step < t.steps:
                    log.info("stopped at step %d; continue with --resume", self.step)
                    self._emit({"kind": "stopped", "step": self.step, "steps": t.steps})
                    return TrainResult(self.step, True, self.out_dir, None, self.last_checkpoint)
            if self.last_checkpoint != ckpt.checkpoint_path(self.checkpoint_dir, self.step):
                self.save_checkpoint()
            model_path = self.save_model()
            self._emit(
                {"kind": "done", "step": self.step, "steps": t.steps, "model_path": str(model_path)}
            )
            return TrainResult(self.step, False, self.out_dir, model_path, self.last_checkpoint)
        finally:
            restore()
            if self._writer is not None:
                self._writer.close()

    def _emit(self, info: dict[str, Any]) -> None:
        if self.progress is not None and self.dist.is_main:
            self.progress(info)

    def _log_metrics(self, info: dict[str, Any]) -> dict[str, Any]:
        means = {k: float(v) / self._count for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        record = {
            "step": self.step,
            **{k: round(v, 6) for k, v in means.items()},
            "step_time": round(info["step_time"], 4),
            "samples_per_s": round(info["samples_per_s"], 2),
            "lr": self.optim_g.param_groups[0]["lr"],
            "eta_s": round(info["eta_s"], 1),
            "time": time.time(),
        }
        if self.dist.is_main:
            with self.metrics_path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if self._writer is not None:
                for k, v in means.items():
                    self._writer.add_scalar(f"train/{k}", v, self.step)
        return {**info, **record, "kind": "metrics"}

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines past ``step`` (written after the checkpoint we resume from)."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        atomic_write_text(self.metrics_path, "".join(k + "\n" for k in kept))

    # ------------------------------------------------------------ files

    def checkpoint_record(self, full: bool = True) -> dict:
        return ckpt.make_checkpoint(
            self.cfg,
            self.step,
            self.raw_generator,
            self.raw_critic,
            self.optim_g if full else None,
            self.optim_c if full else None,
            self.scaler if full else None,
            include_rng=full,
        )

    def save_checkpoint(self) -> Path | None:
        """``checkpoints/ckpt_{step:08d}.pt`` on rank 0, then prune old ones."""
        if not self.dist.is_main:
            return None
        path = ckpt.checkpoint_path(self.checkpoint_dir, self.step)
        ckpt.save_checkpoint(self.checkpoint_record(), path)
        t = self.cfg.train
        ckpt.prune_checkpoints(self.checkpoint_dir, t.keep_last, tuple(t.milestones))
        self.last_checkpoint = path
        log.debug("checkpoint %s", path)
        self._emit({"kind": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def save_model(self) -> Path | None:
        """``model.pt``: the final weights and config, without optimizer or RNG state."""
        sync_buffers(self.generator, self.dist)
        if not self.dist.is_main:
            return None
        return ckpt.save_checkpoint(self.checkpoint_record(full=False), self.model_path)

    def _preview(self) -> Path:
        x, y, p = (a.float().cpu().numpy() for a in self._last)
        path = self.out_dir / "previews" / f"step_{self.step:07d}.png"
        write_preview(path, x, y, p, self.step)
        self._emit({"kind": "preview", "step": self.step, "path": str(path)})
        return path

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("TensorBoard is not installed; --tensorboard ignored")
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step or None)

    # ------------------------------------------------------------ signals

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum, frame):
            if self.stop_requested:  # second signal: give up at once
                raise KeyboardInterrupt
            log.info(
                "%s received: saving a checkpoint after this step", signal.Signals(signum).name
            )
            self.stop_requested = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


def write_preview(path: Path, x: np.ndarray, y: np.ndarray, p: np.ndarray, step: int) -> Path:
    """A PNG of input | target | prediction | ℓ2 map for one window, written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    err = ((p - y) ** 2).mean(axis=0)
    fig = Figure(figsize=(10, 3.2), dpi=80)
    panels = [
        (x[-1], "input (last slice)", "gray", (-1, 1)),
        (y[0], "target (next slice)", "gray", (-1, 1)),
        (p[0], "prediction", "gray", (-1, 1)),
        (err, "ℓ2 map (mean over slices)", "inferno", (0, max(float(err.max()), 1e-6))),
    ]
    for i, (img, title, cmap, (lo, hi)) in enumerate(panels):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"step {step}", fontsize=10)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


# ---------------------------------------------------------------- assembly


def prepare_training(
    cfg: MadganConfig,
    scans: Sequence,
    out_dir: str | Path,
    resume: bool = False,
    progress: Progress | None = None,
    scan_progress: Callable[[int, int, str], None] | None = None,
    tensorboard: bool = False,
    flip: bool = False,
) -> Trainer:
    """Build everything a run needs (device, data, networks, optimizers) and, with ``resume``,
    restore the newest checkpoint in ``out_dir/checkpoints``.

    Under torchrun this also joins the process group and wraps the networks in DDP.
    """
    from madgan_core.data import BatchStream, WindowDataset
    from madgan_core.device import (
        make_grad_scaler,
        resolve_device,
        resolve_precision,
        to_channels_last,
    )
    from madgan_core.distributed import init_distributed, wrap
    from madgan_core.models import build_critic, build_generator
    from madgan_core.preprocess import learn_landmarks

    t = cfg.train
    out_dir = Path(out_dir)
    dist_info, device = init_distributed(resolve_device(t.device))
    precision = resolve_precision(t.precision, device)

    record = stored = None
    if resume:
        found = ckpt.list_checkpoints(out_dir / "checkpoints")
        if not found:
            log.warning(
                "--resume: no checkpoint in %s; starting from step 0", out_dir / "checkpoints"
            )
        else:
            record = ckpt.read_checkpoint(found[-1][1])
            stored = ckpt.config_of(record, found[-1][1])
            ckpt.check_compatible(stored, cfg, found[-1][1])
            log.info("resuming from %s (step %d)", found[-1][1], record["step"])
    start_step = int(record["step"]) if record else 0

    if cfg.preprocess.intensity == "landmarks" and cfg.preprocess.landmarks is None:
        if stored is not None:  # a resumed run keeps the landmarks it learned
            cfg.preprocess.landmarks = stored.preprocess.landmarks
        if cfg.preprocess.landmarks is None:
            log.info("learning intensity landmarks from %d scans", len(scans))
            cfg.preprocess.landmarks = learn_landmarks(scans, cfg.preprocess)
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
    if record is not None:
        path = found[-1][1]
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
    if dist_info.enabled:
        # different dropout/penalty draws per rank, reproducible per (seed, rank, step)
        torch.manual_seed(t.seed * 7919 + dist_info.rank * 104_729 + start_step)
    generator = wrap(generator, dist_info, device)
    critic = wrap(critic, dist_info, device)
    if t.compile:
        generator = torch.compile(generator)
        critic = torch.compile(critic)
    batches = BatchStream(
        dataset,
        t.batch_size,
        seed=t.seed,
        num_workers=t.num_workers,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
        pin_memory=device.type == "cuda",
        flip=flip,
        start_batch=start_step * t.critic_steps,
    )
    return Trainer(
        generator,
        critic,
        optim_g,
        optim_c,
        iter(batches),
        cfg,
        out_dir,
        device,
        precision,
        scaler=scaler,
        dist=dist_info,
        progress=progress,
        start_step=start_step,
        tensorboard=tensorboard,
    )


def eta_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
