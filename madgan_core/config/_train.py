"""The ``train`` section: optimisation, schedule and bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

from madgan_core.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("eager", "graph")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass
class TrainConfig:
    """Optimisation, schedule and bookkeeping.

    Adam betas default to (0.5, 0.9), the usual WGAN-GP choice (Gulrajani et al.);
    the paper gives only the learning rate.

    Attributes:
        steps: Generator updates (the paper: 1.8 M).
        batch_size: Windows per batch (the paper: 16).
        lr: Adam learning rate of both networks (the paper: 2e-4).
        betas: Adam betas.
        l1_weight: Weight of the ℓ1 reconstruction term (the paper: 100; 0 for the
            paper's variant without it).
        adv_weight: Weight of the generator's adversarial term (0: ℓ1 only).
        gp_weight: WGAN-GP gradient-penalty weight.
        critic_steps: Critic updates per generator update.
        label_swap_every: The critic's real/synthetic labels are swapped on one step in
            this many (the paper: 3; 0 never).
        seed: Seed of weights, data order and dropout.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 where the hardware runs it natively), ``fp32``,
            ``bf16`` or ``fp16`` (CUDA only).
        compile: Wrap both networks in ``torch.compile``.
        compile_mode: ``torch.compile``'s mode: ``default``, ``reduce-overhead`` (CUDA
            graphs per network) or ``max-autotune``.
        engine: How a step runs. ``eager``: op by op, as written. ``graph``: the whole
            step (critic update with its gradient penalty, generator update) is captured
            once in a CUDA graph and replayed, with fused capturable Adam; the same
            arithmetic, without the per-op launch cost. On a CPU ``graph`` runs the same
            program eagerly. fp32 or bf16, one process.
        resident: Keep the training slabs in the device's memory and cut each batch's
            windows there, with no data loader; the same batches as the loader.
        num_workers: Data-loading worker processes.
        log_every: Steps between metric lines in ``metrics.jsonl``.
        preview_every: Steps between preview images.
        checkpoint_every: Steps between checkpoints.
        keep_last: Newest checkpoints kept (milestones are kept besides).
        milestones: Steps whose checkpoints are always kept, for AUC against step.
    """

    steps: int = 1_800_000
    batch_size: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    l1_weight: float = 100.0
    adv_weight: float = 1.0
    gp_weight: float = 10.0
    critic_steps: int = 1
    label_swap_every: int = 3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    compile_mode: str = "default"
    engine: str = "eager"
    resident: bool = False
    num_workers: int = 2
    log_every: int = 50
    preview_every: int = 1000
    checkpoint_every: int = 10_000
    keep_last: int = 3
    milestones: tuple[int, ...] = (150_000, 300_000, 600_000, 900_000, 1_800_000)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.l1_weight < 0 or self.gp_weight < 0 or self.adv_weight < 0:
            raise ConfigError("train.l1_weight, adv_weight and gp_weight must be >= 0")
        if self.critic_steps < 1:
            raise ConfigError("train.critic_steps must be >= 1")
        if self.label_swap_every < 0:
            raise ConfigError("train.label_swap_every must be >= 0 (0 disables the swap)")
        if self.device not in DEVICES:
            raise ConfigError(f"train.device must be one of {DEVICES}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.engine not in ENGINES:
            raise ConfigError(f"train.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(
                f"train.compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}"
            )
        if self.engine == "graph" and self.compile:
            raise ConfigError(
                "train.engine 'graph' captures the step itself; leave train.compile off "
                "(or use train.compile_mode 'reduce-overhead' with the eager engine)"
            )
        if self.engine == "graph" and self.precision == "fp16":
            raise ConfigError(
                "train.engine 'graph' runs fp32 or bf16: fp16's gradient scaler reads its "
                "overflow check on the host every step"
            )
        if self.checkpoint_every < 1 or self.keep_last < 1 or self.log_every < 1:
            raise ConfigError("train.checkpoint_every, keep_last and log_every must be >= 1")
