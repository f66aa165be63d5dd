"""Multi-process work under ``torchrun``: environment detection, DDP wrapping, helpers.

Without ``RANK``/``WORLD_SIZE`` in the environment everything here is a no-op for one
process. Under ``torchrun --nproc_per_node=N madgan train ...`` each process joins a
process group (NCCL on CUDA, gloo on CPU), takes its own share of the windows and
wraps both networks in DistributedDataParallel. Only rank 0 logs, previews and saves.
Cohort work (``madgan score``, ``calibrate``, ``evaluate``) joins the same way through
:func:`cohort_group` and shares its scans with :mod:`madgan_core.runtime.sharding`.

The gradient penalty is computed on the *unwrapped* critic: the critic's loss then has
one DDP forward (real and fake in one batch) and one backward, and the penalty's
parameter gradients reach the same AccumulateGrad nodes before DDP's hooks fire, so
they are all-reduced with the rest (checked by ``tests/madgan_core/test_distributed.py``:
both ranks end with identical weights).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

# Cohort ranks wait for each other only where their shares end; a share's scans differ
# in size, so allow for a long wait there (a dead rank is noticed by torchrun, not here).
COHORT_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank, world size and local rank from torchrun's environment variables."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(
    device: torch.device, timeout: timedelta | None = None
) -> tuple[DistInfo, torch.device]:
    """Join the process group if launched by torchrun; returns the info and this rank's device.

    ``timeout`` bounds every collective (default: torch's, 10-30 minutes by backend).
    """
    info = env_info()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        extra = {} if timeout is None else {"timeout": timeout}
        dist.init_process_group(backend=backend, **extra)
        log.info("rank %d/%d joined the %s process group", info.rank, info.world_size, backend)
    return info, device


@contextmanager
def cohort_group(
    device: str | torch.device = "auto",
) -> Iterator[tuple[DistInfo, torch.device]]:
    """Join torchrun's process group for cohort work, if launched by it, and leave it after.

    Yields this rank's :class:`DistInfo` and device (``cuda:LOCAL_RANK`` on GPUs). A group
    joined already (by a caller) is left to that caller; without torchrun this only
    resolves the device.
    """
    from madgan_core.runtime.device import resolve_device

    joined = dist.is_available() and dist.is_initialized()
    info, dev = init_distributed(resolve_device(device), COHORT_TIMEOUT)
    try:
        yield info, dev
    finally:
        if not joined:
            cleanup(info)


def broadcast_flags(flags: Sequence[bool], info: DistInfo, device: torch.device) -> list[bool]:
    """Rank 0's ``flags`` on every rank (the other ranks pass any list of the same length)."""
    if not info.enabled:
        return [bool(f) for f in flags]
    t = torch.tensor([bool(f) for f in flags], dtype=torch.uint8, device=device)
    dist.broadcast(t, src=0)
    return [bool(v) for v in t.tolist()]


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``module`` when distributed, else ``module`` itself."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=True)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


def any_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (e.g. a stop request)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def sync_buffers(module: nn.Module, info: DistInfo) -> None:
    """Broadcast rank 0's buffers (BatchNorm running statistics) to every rank."""
    if not info.enabled:
        return
    for buf in unwrap(module).buffers():
        dist.broadcast(buf, src=0)


def barrier(info: DistInfo, device: torch.device | None = None) -> None:
    """Wait for every rank (NCCL is told this rank's GPU, so it need not guess)."""
    if not info.enabled:
        return
    if device is not None and device.type == "cuda" and dist.get_backend() == "nccl":
        dist.barrier(device_ids=[device.index or 0])
    else:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
