"""The training step as a captured graph, and the device-resident training set; prints JSON.

Three measurements, each also a section of ``bench/gpu_check.py``:

- ``engines``: per variant, a training step with ``train.engine`` ``eager`` and
  ``graph`` (batches already on the device, so both time the step alone), one burst of
  steps timed with a single wait at its end; the step's FLOPs counted op by op, its
  TFLOP/s and share of the same run's matmul peak;
- ``compile``: the eager step with both networks in ``torch.compile(mode=...)``
  (``reduce-overhead`` uses CUDA graphs per network);
- ``loader``: batches per second from the data loader (``BatchStream``, with and
  without workers, copied to the device) and from slabs kept on the device
  (``ResidentBatchStream``), on a synthetic set of training slabs.

On a CPU the graph engine runs the same program eagerly: the figures check the bench
and show the program's own cost, not a GPU's.

    python bench/train_engine.py --device auto [--variants none sa3] [--scans 200] [--out f.json]
    python bench/train_engine.py --device cpu --height 64 --width 48 --base 8 --batch-size 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, header, precisions_for, resolve, rounded


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def burst(trainer, steps: int) -> float:
    """Seconds per step over ``steps`` steps queued back to back, waiting once at the end."""
    device = trainer.device
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        trainer.step += 1
    _sync(device)
    return (time.perf_counter() - start) / steps


def engine_case(args, variant: str, precision: str, engine: str, peak: dict) -> dict:
    """One variant's training step with ``engine``: warm-up (and capture), then timed steps."""
    from bench.train_step import make_trainer, step_flops, time_steps

    device = resolve(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args, variant, precision, tmp, engine=engine, on_device=True)
        flops = step_flops(trainer)
        start = time.perf_counter()
        for _ in range(args.warmup + 1):  # the graph engine captures after its warm-up steps
            trainer.train_step()
            trainer.step += 1
        _sync(device)
        ready_s = time.perf_counter() - start
        times, _ = time_steps(trainer, 0, args.steps)
        per_step = burst(trainer, args.burst)
        captured = trainer.graph_step is not None and trainer.graph_step.captured
        precision = trainer.precision
    tflops = flops / per_step / 1e12
    return {
        "variant": variant,
        "precision": precision,
        "engine": engine,
        "captured": captured,
        "warmup_and_capture_s": rounded(ready_s),
        "step_s_synced_median": rounded(statistics.median(times)),
        "step_s": rounded(per_step),
        "burst_steps": args.burst,
        "gflop_per_step": rounded(flops / 1e9),
        "tflops": rounded(tflops),
        "fraction_of_peak": rounded(tflops * 1e3 / peak[precision], 3) if precision in peak else None,
        "samples_per_s": rounded(args.batch_size / per_step),
    }  # fmt: skip


def compile_case(args, variant: str, precision: str, mode: str) -> dict:
    """The eager step with both networks compiled in ``mode``."""
    import torch._inductor.config as inductor_config

    from bench.train_step import make_trainer, time_steps

    inductor_config.freezing = False

    def prepare(g, c):
        return torch.compile(g, mode=mode), torch.compile(c, mode=mode)

    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = make_trainer(args, variant, precision, tmp, prepare, on_device=True)
            start = time.perf_counter()
            for _ in range(args.warmup + 1):
                trainer.train_step()
                trainer.step += 1
            _sync(trainer.device)
            ready_s = time.perf_counter() - start
            times, _ = time_steps(trainer, 0, args.steps)
            per_step = burst(trainer, args.burst)
    finally:
        torch._dynamo.reset()
    return {
        "variant": variant,
        "precision": trainer.precision,
        "compile_mode": mode,
        "warmup_and_compile_s": rounded(ready_s),
        "step_s_synced_median": rounded(statistics.median(times)),
        "step_s": rounded(per_step),
    }


def loader_case(args, workers: tuple[int, ...] = (0, 4)) -> dict:
    """Batches per second: the data loader (then copied to the device) against resident slabs."""
    import numpy as np

    from madgan_core.config import MadganConfig
    from madgan_core.prep.resident import ResidentBatchStream
    from madgan_core.prep.training_set import BatchStream, WindowDataset
    from madgan_core.runtime.device import prepare_input

    device = resolve(args.device)
    cfg = MadganConfig().updated({"preprocess": {"height": args.height, "width": args.width}})
    rng = np.random.default_rng(0)
    shape = (args.slices, args.height, args.width)
    slabs = [(rng.random(shape, dtype=np.float32) * 2 - 1).astype(np.float16) for _ in range(args.scans)]  # fmt: skip
    dataset = WindowDataset.from_slabs(slabs, cfg)
    out: dict = {"scans": args.scans, "slices_per_scan": args.slices, "windows": len(dataset),
                 "slab_gb": rounded(dataset.nbytes / 1e9), "batch_size": args.batch_size}  # fmt: skip

    def rate(stream, n: int) -> float:
        it = iter(stream)
        x, y = next(it)  # the first batch starts the workers
        _sync(device)
        start = time.perf_counter()
        for _ in range(n):
            x, y = next(it)
            x, y = prepare_input(x, device), prepare_input(y, device)
        _sync(device)
        return n / (time.perf_counter() - start)

    for w in workers:
        stream = BatchStream(
            dataset, args.batch_size, num_workers=w, pin_memory=device.type == "cuda"
        )
        out[f"loader_{w}_workers_batches_per_s"] = rounded(rate(stream, args.loader_batches))
    start = time.perf_counter()
    resident = ResidentBatchStream(dataset, args.batch_size, device)
    _sync(device)
    out["resident_upload_s"] = rounded(time.perf_counter() - start)
    out["resident_batches_per_s"] = rounded(rate(resident, args.loader_batches))
    return out


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["none", "sa3", "sa7"])
    p.add_argument("--precision", default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=176)
    p.add_argument("--base", type=int, default=64, help="base channels (paper: 64)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="steps timed one by one")
    p.add_argument("--burst", type=int, default=50, help="steps timed as one burst")
    p.add_argument("--compile-modes", nargs="*", default=["reduce-overhead"])
    p.add_argument("--scans", type=int, default=200, help="synthetic training slabs (loader)")
    p.add_argument("--slices", type=int, default=60)
    p.add_argument("--loader-batches", type=int, default=200)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    device = resolve(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    result = header("train_engine", device, args.peak_reps)
    if args.peak_reps <= 0 and "peaks" not in result:
        result["peaks"] = {}
    peak = {p: v["best_gflops"] for p, v in result.get("peaks", {}).items()}
    result["settings"] = {k: v for k, v in vars(args).items() if k not in ("out",)}
    result["engines"] = [
        engine_case(args, v, precision, e, peak) for v in args.variants for e in ("eager", "graph")
    ]
    result["compile"] = [compile_case(args, "none", precision, m) for m in args.compile_modes]
    result["loader"] = loader_case(args)
    result["precisions_measured"] = list(precisions_for(device))
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
