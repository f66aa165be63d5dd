"""Shared helpers of the benchmark scripts: device choice, timing, peaks, test inputs.

Every script prints one JSON object on stdout and takes ``--device cpu|cuda|auto``,
so the same command runs on a laptop, this 2-core CPU box or a GPU node.

The measurement protocol (docs/performance.md): nothing else running; the machine's
matmul peaks measured in the same run (:func:`peaks`, in every timing benchmark's
JSON as ``peaks``); at least 5 repetitions, the best and the median reported
(:func:`repeat` and :func:`spread`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from madgan_core.config import DEVICES  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# The protocol's peaks: square matmuls of these sizes, best of PEAK_REPS each, within
# PEAK_SECONDS per precision (a slow CPU stops at a smaller size or fewer repetitions).
PEAK_SIZES = (1024, 2048, 4096)
PEAK_REPS = 5
PEAK_SECONDS = 20.0
NOT_NATIVE_BF16 = "not native on this CPU (no AVX-512 BF16 or AMX): emulated, far below fp32"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--peak-reps",
        type=int,
        default=PEAK_REPS,
        help=f"repetitions of each peak matmul (default {PEAK_REPS}; 0: no peaks, for quick checks)",
    )
    return parser


def resolve(device: str) -> torch.device:
    from madgan_core.runtime.device import resolve_device

    return resolve_device(device)


def precisions_for(device: torch.device) -> list[str]:
    """The precisions the device runs natively: fp32, bf16 and fp16 on CUDA; fp32 on a
    CPU, and bf16 where the CPU has native bf16 instructions (:func:`skipped_precisions`)."""
    if device.type == "cuda":
        return ["fp32", "bf16", "fp16"]
    return ["fp32", *(["bf16"] if not skipped_precisions(device) else [])]


def skipped_precisions(device: torch.device) -> dict[str, str]:
    """Precisions left out on this device, with the reason (for the JSON)."""
    from madgan_core.runtime.device import cpu_has_fast_bf16

    if device.type == "cpu" and not cpu_has_fast_bf16():
        return {"bf16": NOT_NATIVE_BF16}
    return {}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 1) -> float:
    """Best (minimum) seconds of ``fn()`` over ``reps`` runs after ``warmup`` runs.

    The minimum, not the median: on a shared machine other jobs only ever add time.
    """
    return float(min(repeat(fn, device, reps, warmup)))


def repeat(
    fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 1
) -> list[float]:
    """Seconds of each of ``reps`` runs of ``fn()``, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def spread(times: list[float]) -> dict[str, float | int]:
    """The protocol's summary of repeated timings: best, median and how many."""
    return {
        "best_s": rounded(min(times)),
        "median_s": rounded(statistics.median(times)),
        "reps": len(times),
    }


def matmul_peak(device: torch.device, precision: str, reps: int = PEAK_REPS) -> float:
    """Best achieved GFLOP/s of square matmuls in ``precision``: the practical peak."""
    return peaks(device, (precision,), reps=reps)[precision]["best_gflops"]


def peaks(
    device: torch.device,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    sizes: tuple[int, ...] = PEAK_SIZES,
    reps: int = PEAK_REPS,
    seconds: float = PEAK_SECONDS,
) -> dict[str, dict]:
    """The machine's practical peaks in this run: GFLOP/s of square matmuls per precision.

    For each size, the best and the median of ``reps`` timed products after one warm-up;
    per precision, the size with the best: ``best_gflops``, ``median_gflops`` (same size)
    and every size's figures in ``by_size``. On GPUs larger sizes are added (8192), since
    4096 does not fill one. Each precision gets ``seconds``: a size whose products would
    not fit what is left is not started, repetitions stop when it runs out (at least one
    timed product per size started), and ``capped`` says whether that happened.
    """
    if device.type == "cuda":
        sizes = (*sizes, 8192)
    out: dict[str, dict] = {}
    for precision in precisions:
        by_size = {}
        capped = False
        deadline = time.perf_counter() + seconds
        last_s, last_n = 0.0, 1
        for n in sorted(sizes):
            expected = last_s * (n / last_n) ** 3 * (reps + 1)  # a product grows as n³
            if by_size and time.perf_counter() + expected > deadline:
                capped = True
                break
            a = torch.randn(n, n, device=device).to(DTYPES[precision])
            b = torch.randn(n, n, device=device).to(DTYPES[precision])
            times = []
            with torch.inference_mode():
                for k in range(reps + 1):  # the first is the warm-up
                    t0 = time.perf_counter()
                    a @ b
                    sync(device)
                    if k:
                        times.append(time.perf_counter() - t0)
                    if time.perf_counter() > deadline and times:
                        capped = capped or k < reps
                        break
            last_s, last_n = min(times), n
            flop = 2.0 * n**3
            by_size[str(n)] = {
                "best_gflops": rounded(flop / min(times) / 1e9),
                "median_gflops": rounded(flop / statistics.median(times) / 1e9),
                "reps": len(times),
            }
        top = max(by_size.values(), key=lambda v: v["best_gflops"])
        out[precision] = {**top, "reps": reps, "capped": capped, "by_size": by_size}
    return out


def header(name: str, device: torch.device, peak_reps: int = PEAK_REPS) -> dict:
    """The start of a benchmark's JSON: its name, the machine and the peaks of this run."""
    result: dict = {"bench": name, "machine": machine(device)}
    if peak_reps > 0:
        result["peaks"] = peaks(device, tuple(precisions_for(device)), reps=peak_reps)
    skipped = skipped_precisions(device)
    if skipped:
        result["skipped_precisions"] = skipped
    return result


def machine(device: torch.device) -> dict[str, object]:
    """What ran the benchmark: CPU model, cores, threads, torch, accelerator."""
    info: dict[str, object] = {
        "cpu": _lscpu_model(),
        "cores": _lscpu_field("CPU(s)"),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    from madgan_core.runtime.device import cpu_has_fast_bf16

    info["cpu_fast_bf16"] = cpu_has_fast_bf16()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _lscpu_field(name: str) -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def _lscpu_model() -> str:
    return _lscpu_field("Model name") or platform.processor()


def random_model(
    variant: str = "none",
    device: torch.device | None = None,
    seed: int = 0,
    size: tuple[int, int, int] | None = None,
):
    """A paper-preset :class:`LoadedModel` with random weights, ready for scoring.

    ``size`` = ``(height, width, base_channels)`` replaces the paper's 256 x 176 x 64.
    """
    from madgan_core.config import paper_preset
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.model.networks import build_generator
    from madgan_core.runtime.device import to_channels_last

    device = device or torch.device("cpu")
    cfg = paper_preset()
    cfg.model.variant = variant
    if size is not None:
        cfg.preprocess.height, cfg.preprocess.width, cfg.model.base_channels = size
        cfg.model.critic_channels = size[2]
    torch.manual_seed(seed)
    generator = to_channels_last(build_generator(cfg.model).to(device)).eval()
    return LoadedModel(generator, cfg, 0, Path("random.pt"), None, device)


def phantom_file(directory: Path, voxel_mm: float = 1.0) -> Path:
    """The default phantom scan (healthy, seed 0) written as NIfTI."""
    import nibabel as nib

    from madgan_core.cohort.phantom import make_subject

    volume, affine, _ = make_subject("healthy", voxel_mm=voxel_mm)
    path = Path(directory) / f"phantom_healthy_{voxel_mm:g}mm.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(volume, np.float32), affine), str(path))
    return path


def emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2, default=_jsonable)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def _jsonable(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def rounded(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")
