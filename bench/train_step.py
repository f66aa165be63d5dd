"""Benchmark one MADGAN training step per variant and precision; prints JSON.

Each (variant, precision) runs in its own subprocess so the CPU peak memory
(``ru_maxrss``) belongs to that configuration alone.

    python bench/train_step.py --device cpu --variants none sa3 sa7 --precisions fp32 bf16 --steps 5

The output holds each case's median and best step time and the matmul peaks of the run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This checkout's package, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_trainer(
    args: argparse.Namespace,
    variant: str,
    precision: str,
    out_dir,
    prepare=None,
    engine: str = "eager",
    on_device: bool = False,
):
    """A :class:`Trainer` on random batches at ``args``' sizes; ``prepare(g, c)`` may wrap the
    networks (DDP, ``torch.compile``) before the trainer gets them. ``engine``: the
    trainer's ``train.engine``; ``on_device``: the batches already live on the device, as
    with ``train.resident``, so no host-to-device copy is timed."""
    import torch

    from madgan_core.config import MadganConfig
    from madgan_core.model.networks import build_critic, build_generator
    from madgan_core.model.train import Trainer, make_optimizers
    from madgan_core.runtime.device import resolve_device, resolve_precision, to_channels_last

    torch.manual_seed(0)
    cfg = MadganConfig().updated(
        {
            "preprocess": {"height": args.height, "width": args.width},
            "model": {"variant": variant, "base_channels": args.base, "critic_channels": args.base},
            "train": {"batch_size": args.batch_size, "engine": engine},
        }
    )
    device = resolve_device(args.device)
    precision = resolve_precision(precision, device)
    g = to_channels_last(build_generator(cfg.model).to(device))
    c = to_channels_last(build_critic(cfg.model).to(device))
    og, oc = make_optimizers(g, c, cfg)
    if prepare is not None:
        g, c = prepare(g, c)
    shape = (args.batch_size, 3, args.height, args.width)

    def batches():
        x, y = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1
        if on_device:
            x, y = x.to(device), y.to(device)
        while True:
            yield x, y

    return Trainer(g, c, og, oc, batches(), cfg, out_dir, device, precision)


def step_flops(trainer) -> int:
    """FLOPs of one training step (both networks forward and backward, the gradient
    penalty's double backward), counted op by op on the device as it runs; a
    multiply-add counts 2. The step is a real one: it updates the weights."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        # FlopCounterMode's module tracker refuses autograd.grad, which the penalty needs
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    engine = trainer.cfg.train.engine
    trainer.cfg.train.engine = "eager"  # count the program's ops, not a graph replay
    try:
        with Counter() as counter:
            trainer.train_step()
    finally:
        trainer.cfg.train.engine = engine
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    return int(counter.total)


def time_steps(trainer, warmup: int, steps: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of ``steps`` training steps after ``warmup`` steps;
    CUDA's peak memory counts from the first timed step."""
    import torch

    device = trainer.device
    times, cpu_times = [], []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            if i == warmup:
                torch.cuda.reset_peak_memory_stats(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def measure(args: argparse.Namespace, variant: str, precision: str) -> dict:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(args, variant, precision, tmp)
        times, cpu_times = time_steps(trainer, args.warmup, args.steps)
    device, precision = trainer.device, trainer.precision
    step = statistics.median(times)
    result = {
        "variant": variant,
        "precision": precision,
        "device": str(device),
        "batch_size": args.batch_size,
        "shape": [args.height, args.width],
        "base_channels": args.base,
        "threads": torch.get_num_threads(),
        "step_time_s": round(step, 4),
        "step_time_min_s": round(min(times), 4),
        "steps": len(times),
        "samples_per_s": round(args.batch_size / step, 3),
        # CPU seconds per step / threads: the wall time on otherwise idle cores
        "cpu_time_per_thread_s": round(statistics.median(cpu_times) / torch.get_num_threads(), 4),
    }
    if device.type == "cuda":
        result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="+", default=["none", "sa3", "sa7"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=5, help="timed steps (after warm-up)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=176)
    p.add_argument("--base", type=int, default=64, help="base channels (paper: 64)")
    p.add_argument(
        "--peak-reps", type=int, default=5, help="repetitions of each peak matmul (0: no peaks)"
    )
    p.add_argument("--single", nargs=2, metavar=("VARIANT", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single:
        print(json.dumps(measure(args, *args.single)))
        return
    results = []
    passthrough = [
        "--device", args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--batch-size", str(args.batch_size), "--height", str(args.height),
        "--width", str(args.width), "--base", str(args.base),
    ]  # fmt: skip
    for variant in args.variants:
        for precision in args.precisions:
            proc = subprocess.run(
                [sys.executable, __file__, *passthrough, "--single", variant, precision],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                results.append(
                    {
                        "variant": variant,
                        "precision": precision,
                        "error": proc.stderr.strip()[-500:],
                    }
                )
            else:
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    out: dict = {"results": results}
    if args.peak_reps > 0:
        from bench._common import peaks, precisions_for, resolve

        device = resolve(args.device)
        out["peaks"] = peaks(device, tuple(precisions_for(device)), reps=args.peak_reps)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
