"""The training step as one program over fixed buffers, captured in a CUDA graph.

A step of the paper's recipe is a few hundred small kernels (two networks forward and
backward, the gradient penalty's double backward, two Adam updates); at batch 16 on a
large GPU, launching them costs more than running them. :class:`GraphStep` writes each
batch into fixed input buffers, captures the whole step once with
:func:`torch.cuda.graph` after a few eager warm-up steps, and replays it from then on.
Nothing inside reads a value back to the host: the periodic label swap is a sign kept
on the device (``E[C(fake)] - E[C(real)]`` times -1 is the swapped loss, exactly), and
the metrics are device tensors the trainer reads every ``log_every`` steps.

On a CPU there is nothing to capture: the same program runs eagerly and gives the
eager trainer's weights bit for bit (tests check this).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from madgan_core.errors import ConfigError
from madgan_core.model.losses import swap_labels

# The trainer (``madgan_core.model.train.loop.Trainer``), which imports this module.
Trainer = Any

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps on a side stream before capture (optimizer state, cuDNN plans)


class GraphStep:
    """Runs :class:`~madgan_core.model.train.loop.Trainer`'s step as a replayed CUDA graph.

    Args:
        trainer: the trainer whose networks, optimizers and batches the step uses.
        warmup_steps: real training steps run eagerly before the capture.
    """

    def __init__(self, trainer: Trainer, warmup_steps: int = WARMUP_STEPS):
        check_graph_ready(trainer)
        self.trainer = trainer
        self.capture = trainer.device.type == "cuda"
        self.warmup_steps = warmup_steps
        self.steps_run = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.sign = torch.ones((), device=trainer.device)
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.outputs: dict[str, torch.Tensor] = {}
        self._mark: tuple[int, float] | None = None  # (step, time) of the last timing

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def timing(self, step: int, total_steps: int, batch_size: int) -> dict[str, float]:
        """Seconds per step since the last call, waiting for the device once.

        Replays are queued without waiting, so the time a step takes on the host says
        little; the metrics line (every ``log_every`` steps) takes the wall time of the
        whole stretch instead.
        """
        if self.trainer.device.type == "cuda":
            torch.cuda.synchronize(self.trainer.device)
        now = time.perf_counter()
        last_step, last_time = self._mark or (step - 1, now)
        self._mark = (step, now)
        if step <= last_step or now <= last_time:
            return {}
        per_step = (now - last_time) / (step - last_step)
        return {
            "step_time": per_step,
            "samples_per_s": batch_size / per_step,
            "eta_s": per_step * (total_steps - step),
        }

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        """Step number ``step``: new batches into the buffers, then the program."""
        self._load_batches()
        self.sign.fill_(-1.0 if swap_labels(step, self.trainer.cfg.train.label_swap_every) else 1.0)
        self.steps_run += 1
        if not self.capture:
            return self._program()
        if self.graph is None and self.steps_run > self.warmup_steps:
            self._capture()
        if self.graph is None:
            return self._warm_up()
        self.graph.replay()
        return self.outputs

    def _load_batches(self) -> None:
        batches = [self.trainer._next_batch() for _ in range(self.trainer.cfg.train.critic_steps)]
        if not self.inputs:
            self.inputs = [(x.clone(), y.clone()) for x, y in batches]
            return
        for (x_buf, y_buf), (x, y) in zip(self.inputs, batches, strict=True):
            if x.shape != x_buf.shape:
                raise ConfigError(
                    f"train.engine 'graph' needs batches of one shape; got {tuple(x.shape)} "
                    f"after {tuple(x_buf.shape)}"
                )
            x_buf.copy_(x)
            y_buf.copy_(y)

    def _warm_up(self) -> dict[str, torch.Tensor]:
        side = torch.cuda.Stream(self.trainer.device)
        side.wait_stream(torch.cuda.current_stream(self.trainer.device))
        with torch.cuda.stream(side):
            out = self._program()
        torch.cuda.current_stream(self.trainer.device).wait_stream(side)
        return out

    def _capture(self) -> None:
        log.info("capturing the training step in a CUDA graph")
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.trainer.device)
        with torch.cuda.graph(graph):
            self.outputs = self._program()
        self.graph = graph

    def _program(self) -> dict[str, torch.Tensor]:
        """The trainer's step on the input buffers, the label swap read from the device sign."""
        return self.trainer.run_step(
            self.inputs, lambda real, fake: self.sign * (fake.mean() - real.mean())
        )


def check_graph_ready(trainer: Trainer) -> None:
    """Refuse, with the reason, what a captured step cannot run."""
    if trainer.scaler.is_enabled():
        raise ConfigError(
            "train.engine 'graph' runs fp32 or bf16: fp16's gradient scaler reads its "
            "overflow check on the host every step"
        )
    if trainer.dist.enabled:
        raise ConfigError("train.engine 'graph' runs in one process; under torchrun use 'eager'")
    if trainer.device.type == "cuda":
        for optim in (trainer.optim_g, trainer.optim_c):
            if not all(group.get("capturable") for group in optim.param_groups):
                raise ConfigError(
                    "train.engine 'graph' on CUDA needs capturable optimizers "
                    "(make_optimizers(..., engine='graph'))"
                )
