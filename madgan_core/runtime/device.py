"""Device and numeric precision: one place for training and scoring.

``auto`` precision is bf16 where the hardware runs it natively (CUDA GPUs with bf16,
CPUs with AMX or AVX512-BF16) and fp32 elsewhere. fp16 is CUDA-only and needs a
:class:`torch.amp.GradScaler` for training.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn

from madgan_core.config import DEVICES, PRECISIONS
from madgan_core.errors import ConfigError

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    if isinstance(device, torch.device):
        return device
    name = str(device)
    base = name.split(":")[0]
    if base not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES} (or cuda:N), got {device!r}")
    if base == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles or AVX512-BF16 instructions."""
    checks = (
        getattr(torch.cpu, "_is_amx_tile_supported", None),
        getattr(torch.cpu, "_is_avx512_bf16_supported", None),
        getattr(getattr(torch._C, "_cpu", None), "_is_amx_tile_supported", None),
    )
    for check in checks:
        if check is None:
            continue
        try:
            if check():
                return True
        except Exception:  # private probes: absent or failing means "not known to be fast"
            continue
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """Turn ``auto|fp32|bf16|fp16`` into a concrete precision for ``device``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device) if isinstance(device, str) else device
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu" and cpu_has_fast_bf16():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed-precision autocast for ``bf16``/``fp16``; a no-op for ``fp32``."""
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def inference_context(device: torch.device, precision: str) -> Iterator[None]:
    """``torch.inference_mode`` plus autocast: for scoring."""
    with torch.inference_mode(), autocast_context(device, precision):
        yield


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A scaler enabled only for fp16 on CUDA (a disabled scaler is a pass-through)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convolution nets run faster in NHWC on CPUs (oneDNN) and tensor-core GPUs."""
    return module.to(memory_format=torch.channels_last)


def prepare_input(x: torch.Tensor, device: torch.device, non_blocking: bool = True) -> torch.Tensor:
    """Move a batch to ``device`` in channels_last layout."""
    x = x.to(device, non_blocking=non_blocking and device.type == "cuda")
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def describe(device: torch.device, precision: str) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({precision})"
    return f"CPU, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()} ({precision})"
