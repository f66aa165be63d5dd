"""The GPU check: the paper preset's speed and memory on a CUDA device, in one JSON, in under 8 minutes.

At the paper preset (256 x 176 slices, 64-channel U-Net, batch 16), for the variants
none, sa3 and sa7:

- ``forward``: generator forward per batch, bf16 and fp16, eager and ``torch.compile``
  (bf16), GFLOP/s and the fraction of the matmul peak (:mod:`bench.forward`'s cases);
- ``scan``: one default 1 mm phantom from file to score, stage by stage, bf16 and fp16
  (:mod:`bench.score_scan`'s stages; ``bench/cohort_throughput.py --gpu-json`` reads them);
- ``scan_device_ops``: the stages around the network (prepare, ℓ2, z-map, post), with
  numpy/scipy on the host and with torch on the device, and their largest differences
  (:mod:`bench._device_ops`);
- ``train``: one training step (critic, then generator), bf16 and fp16 with its
  GradScaler, with the peak memory (``torch.cuda.max_memory_allocated``), and
  ``schedule``: that step time times the paper's 1.8 M steps;
- ``train_compile``: a training step of ``none`` in bf16 with both networks compiled;
- ``ddp``: a few training steps in a 1-GPU NCCL process group with both networks in
  DistributedDataParallel, in a process of its own (``torch.multiprocessing``);
- ``engines``: the training step of each variant with ``train.engine`` eager and graph
  (the whole step captured in a CUDA graph), batches on the device, its counted FLOPs,
  TFLOP/s and share of the bf16 peak (:mod:`bench.train_engine`); ``graph_schedule``: the
  paper's 1.8 M steps at the captured step's time, per variant;
- ``train_reduce_overhead``: the eager step with both networks in
  ``torch.compile(mode="reduce-overhead")``;
- ``loader``: batches per second from the data loader against slabs resident on the GPU;
- ``cohort``: scans per second against loader processes, through ``madgan score``'s
  path (``bench/cohort_throughput.py --sweep-only``), in a process of its own;
- ``peaks``: square matmuls in fp32, bf16 and fp16, measured in the same run.

Sections run in that order of value. One that would overrun ``--budget-s`` is skipped
and listed in ``skipped``; one that fails lists its error in ``errors`` and the check
goes on. ``--smoke`` runs the same code at tiny sizes with one or two repetitions, on a
CPU too (fp32 and bf16 stand in for bf16 and fp16 there, gloo for NCCL).

    python bench/gpu_check.py --out gpu_check.json            # on a GPU node
    python bench/gpu_check.py --smoke --device cpu            # the check of the check
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import tempfile
import time
import traceback
from argparse import Namespace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    base_parser,
    emit,
    header,
    peaks,
    phantom_file,
    precisions_for,
    random_model,
    resolve,
    rounded,
)

log = logging.getLogger("gpu_check")

VARIANTS = ("none", "sa3", "sa7")
RESERVE_S = 20.0  # kept for writing the JSON and leaving cleanly
COMPILE_NEEDS_S = 120.0  # a compile at the paper size takes about a minute or two
FULL = {"height": 256, "width": 176, "base": 64, "batch": 16, "voxel_mm": 1.0,
        "forward_reps": 20, "scan_reps": 3, "warmup": 3, "steps": 10, "ddp_steps": 5,
        "burst": 100, "loader_scans": 300, "loader_batches": 500, "cohort_scans": 48}  # fmt: skip
SMOKE = {"height": 32, "width": 32, "base": 4, "batch": 2, "voxel_mm": 4.0, "pixel_mm": 6.0,
         "forward_reps": 2, "scan_reps": 1, "warmup": 0, "steps": 1, "ddp_steps": 1,
         "burst": 2, "loader_scans": 3, "loader_batches": 3, "cohort_scans": 2}  # fmt: skip


class Check:
    """Runs the sections within a time budget and keeps what each found, skipped or failed."""

    def __init__(self, budget_s: float, device: torch.device):
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.device = device
        self.skipped: list[dict] = []
        self.errors: list[dict] = []

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def run(self, name: str, fn, needs_s: float = 0.0):
        """``fn()``, unless fewer than ``needs_s`` seconds are left; None if skipped or failed."""
        if self.left() < needs_s + RESERVE_S:
            self.skipped.append({"case": name, "why": f"time budget ({self.left():.0f} s left)"})
            return None
        log.info("%s (%.0f s left)", name, self.left())
        try:
            return fn()
        except Exception as exc:  # a benchmark records the failure and goes on
            traceback.print_exc(file=sys.stderr)
            self.errors.append({"case": name, "error": f"{type(exc).__name__}: {exc}"[:800]})
            return None
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()


def peak_mib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return rounded(torch.cuda.max_memory_allocated(device) / 2**20)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------- sections


def model_for(variant: str, device: torch.device, sizes: dict):
    model = random_model(variant, device, size=(sizes["height"], sizes["width"], sizes["base"]))
    if "pixel_mm" in sizes:
        model.config.preprocess.pixel_mm = sizes["pixel_mm"]
    return model


def forward_case(variant, precision, compiled, device, sizes, peak) -> dict:
    from bench.forward import count_flops, run_case

    generator = model_for(variant, device, sizes).generator
    shape = (sizes["batch"], 3, sizes["height"], sizes["width"])
    x = torch.randn(*shape, device=device).contiguous(memory_format=torch.channels_last)
    flops = count_flops(generator, x)
    reset_peak(device)
    try:
        case = run_case(generator, x, device, precision, sizes["forward_reps"], compiled)
    finally:
        if compiled:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = False  # run_case sets it for inference; not for training
            torch._dynamo.reset()
    gflops = flops / case["seconds_per_batch"] / 1e9
    return {
        "variant": variant,
        "precision": precision,
        "compiled": compiled,
        **case,
        "gflop_per_window": rounded(flops / sizes["batch"] / 1e9),
        "gflops": rounded(gflops),
        "fraction_of_peak": rounded(gflops / peak[precision], 3) if precision in peak else None,
        "peak_memory_mib": peak_mib(device),
    }


def scan_case(variant, precision, device, sizes, path) -> dict:
    import statistics

    from bench.score_scan import best_of, staged

    model = model_for(variant, device, sizes)
    staged(model, path, precision)  # warm-up
    reset_peak(device)
    passes = [staged(model, path, precision) for _ in range(sizes["scan_reps"])]
    best = best_of(passes)
    best["reps"] = len(passes)
    best["median_total_s"] = rounded(statistics.median(p["seconds"]["total"] for p in passes))
    best["peak_memory_mib"] = peak_mib(device)
    return best


def train_namespace(device: torch.device, sizes: dict) -> Namespace:
    return Namespace(
        device=str(device), height=sizes["height"], width=sizes["width"], base=sizes["base"],
        batch_size=sizes["batch"], warmup=sizes["warmup"], steps=sizes["steps"],
    )  # fmt: skip


def train_case(variant, precision, device, sizes, compiled=False) -> dict:
    import statistics

    from bench.train_step import make_trainer, time_steps

    prepare = None
    if compiled:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = False

        def prepare(g, c):
            return torch.compile(g), torch.compile(c)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(train_namespace(device, sizes), variant, precision, tmp, prepare)
        first = time.perf_counter()
        trainer.train_step()  # compiles, when compiled
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        first = time.perf_counter() - first
        times, _ = time_steps(trainer, sizes["warmup"], sizes["steps"])
    if compiled:
        torch._dynamo.reset()
    return {
        "variant": variant,
        "precision": trainer.precision,
        "compiled": compiled,
        "grad_scaler": trainer.scaler.is_enabled(),
        "first_step_s": rounded(first),
        "best_s": rounded(min(times)),
        "median_s": rounded(statistics.median(times)),
        "steps": len(times),
        "samples_per_s": rounded(sizes["batch"] / statistics.median(times)),
        "peak_memory_mib": peak_mib(device),
    }


def schedule(cases: list[dict]) -> dict:
    """The paper's schedule (its number of generator steps) at each measured median step time."""
    from madgan_core.config import paper_preset

    steps = paper_preset().train.steps
    out: dict = {"steps": steps}
    for case in cases:
        if case and not case["compiled"]:
            hours = case["median_s"] * steps / 3600
            key = f"{case['variant']}_{case['precision']}"
            out[key] = {"hours": rounded(hours, 3), "days": rounded(hours / 24, 3)}
    return out


def engine_namespace(device: torch.device, sizes: dict) -> Namespace:
    """:mod:`bench.train_engine`'s settings at this check's sizes."""
    return Namespace(
        device=str(device), height=sizes["height"], width=sizes["width"], base=sizes["base"],
        batch_size=sizes["batch"], warmup=max(sizes["warmup"], 3), steps=sizes["steps"],
        burst=sizes["burst"], scans=sizes["loader_scans"], slices=60,
        loader_batches=sizes["loader_batches"],
    )  # fmt: skip


def graph_schedule(cases: list[dict]) -> dict:
    """The paper's schedule at each variant's captured step time (burst), in hours."""
    from madgan_core.config import paper_preset

    steps = paper_preset().train.steps
    out: dict = {"steps": steps}
    for case in cases:
        if case and case["engine"] == "graph":
            hours = case["step_s"] * steps / 3600
            out[f"{case['variant']}_{case['precision']}"] = {"hours": rounded(hours, 3)}
    return out


def cohort_case(device: torch.device, sizes: dict, timeout_s: float) -> dict:
    """Scans per second against loader processes (``bench/cohort_throughput.py``'s sweep),
    the paper's 64-channel network on copies of the 1 mm phantom, as ``madgan score`` runs."""
    import os
    import subprocess

    cores = os.cpu_count() or 1
    workers = sorted({0, 1, 2, 4, 8, max(cores - 1, 0)} & set(range(cores)))
    script = Path(__file__).resolve().parent / "cohort_throughput.py"
    cmd = [sys.executable, str(script), "--device", str(device), "--peak-reps", "0",
           "--sweep-only", "--scans", str(sizes["cohort_scans"]), "--voxel-mm",
           str(sizes["voxel_mm"]), "--height", str(sizes["height"]), "--width",
           str(sizes["width"]), "--base-channels", str(sizes["base"]),
           "--sweep-workers", *map(str, workers)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-800:])
    return json.loads(proc.stdout)["worker_sweep"]


def _ddp_worker(_index: int, device_name: str, sizes: dict, port: int, out: str) -> None:
    """A 1-process group (NCCL on CUDA, gloo on CPU) training with both networks in DDP."""
    import statistics

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from bench.train_step import make_trainer, time_steps

    device = resolve(device_name)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        ids = [device.index or 0] if device.type == "cuda" else None

        def prepare(g, c):
            return tuple(
                DistributedDataParallel(m, device_ids=ids, broadcast_buffers=True) for m in (g, c)
            )

        precision = "bf16"
        with tempfile.TemporaryDirectory() as tmp:
            trainer = make_trainer(train_namespace(device, sizes), "none", precision, tmp, prepare)
            times, _ = time_steps(trainer, 1, sizes["ddp_steps"])
        result = {
            "backend": backend,
            "world_size": dist.get_world_size(),
            "variant": "none",
            "precision": trainer.precision,
            "steps": len(times),
            "best_s": rounded(min(times)),
            "median_s": rounded(statistics.median(times)),
            "wrapped": type(trainer.generator).__name__,
        }
        if device.type == "cuda":
            version = torch.cuda.nccl.version()
            result["nccl"] = (
                ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
            )
        Path(out).write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def ddp_case(device: torch.device, sizes: dict) -> dict:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        start = time.perf_counter()
        mp.spawn(_ddp_worker, args=(str(device), sizes, port, str(out)), nprocs=1, join=True)
        result = json.loads(out.read_text())
    result["process_s"] = rounded(time.perf_counter() - start)
    return result


# ---------------------------------------------------------------- the check


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument(
        "--budget-s", type=float, default=450.0, help="stop starting sections after this"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument(
        "--sections", nargs="+",
        default=["engines", "forward", "scan", "train", "loader", "cohort", "ddp", "compile"],
        help="which sections to run (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None,
        help="torch.compile cases (default: on, off with --smoke)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)

    device = resolve(args.device)
    sizes = dict(SMOKE if args.smoke else FULL)
    compile_on = (not args.smoke) if args.compile is None else args.compile
    precisions = ["bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    check = Check(args.budget_s, device)
    result = header("gpu_check", device, 0)
    if args.peak_reps > 0:
        tiny = {"sizes": (256, 512), "reps": 1} if args.smoke else {"reps": args.peak_reps}
        result["peaks"] = peaks(device, tuple(precisions_for(device)), **tiny)
    result["settings"] = {
        **sizes,
        "smoke": args.smoke,
        "precisions": precisions,
        "compile": compile_on,
    }
    if device.type != "cuda":
        result["note"] = "not a CUDA device: figures are for checking the check, not the GPU"
    peak = {p: v["best_gflops"] for p, v in result.get("peaks", {}).items()}
    sections = set(args.sections)

    if "engines" in sections:
        from bench.train_engine import engine_case

        ns, main_precision = engine_namespace(device, sizes), precisions[0]
        result["engines"] = [
            check.run(f"engine {v} {e}", lambda v=v, e=e: engine_case(ns, v, main_precision, e, peak))
            for v in args.variants for e in ("eager", "graph")
        ]  # fmt: skip
        result["graph_schedule"] = graph_schedule(result["engines"])
    if "forward" in sections:
        result["forward"] = [
            check.run(f"forward {v} {p}", lambda v=v, p=p: forward_case(v, p, False, device, sizes, peak))
            for v in args.variants for p in precisions
        ]  # fmt: skip
    if "scan" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            path = check.run("phantom", lambda: phantom_file(Path(tmp), sizes["voxel_mm"]))
            if path is not None:
                result["scan"] = {
                    v: {
                        p: check.run(f"scan {v} {p}", lambda v=v, p=p: scan_case(v, p, device, sizes, path))
                        for p in precisions
                    }
                    for v in args.variants
                }  # fmt: skip
    if "scan" in sections:
        from bench._device_ops import device_ops_case

        def device_ops() -> dict:
            with tempfile.TemporaryDirectory() as tmp:
                path = phantom_file(Path(tmp), sizes["voxel_mm"])
                model = model_for("none", device, sizes)
                return device_ops_case(model, path, device, sizes["scan_reps"])

        result["scan_device_ops"] = check.run("scan pre/post numpy vs torch", device_ops)
    if "train" in sections:
        result["train"] = [
            check.run(f"train {v} {p}", lambda v=v, p=p: train_case(v, p, device, sizes))
            for v in args.variants for p in precisions
        ]  # fmt: skip
        result["schedule"] = schedule(result["train"])
    if "loader" in sections:
        from bench.train_engine import loader_case

        ns = engine_namespace(device, sizes)
        result["loader"] = check.run("loader", lambda: loader_case(ns), needs_s=30.0)
    if "cohort" in sections:
        result["cohort"] = check.run(
            "cohort scans/s against loader processes",
            lambda: cohort_case(device, sizes, max(check.left() - RESERVE_S, 1.0)),
            needs_s=60.0,
        )
    if "ddp" in sections:
        result["ddp"] = check.run("ddp", lambda: ddp_case(device, sizes), needs_s=30.0)
    if "compile" in sections and compile_on:
        needs = 0.0 if args.smoke else COMPILE_NEEDS_S
        result["forward_compile"] = [
            check.run(f"forward {v} bf16 compiled", lambda v=v: forward_case(v, "bf16", True, device, sizes, peak), needs)
            for v in args.variants
        ]  # fmt: skip
        result["train_compile"] = check.run(
            "train none bf16 compiled",
            lambda: train_case("none", "bf16", device, sizes, True),
            needs,
        )
        if "engines" in sections:
            from bench.train_engine import compile_case

            ns = engine_namespace(device, sizes)
            result["train_reduce_overhead"] = check.run(
                "train none compiled reduce-overhead",
                lambda: compile_case(ns, "none", precisions[0], "reduce-overhead"),
                needs,
            )
    result["skipped"] = check.skipped
    result["errors"] = check.errors
    result["elapsed_s"] = rounded(time.perf_counter() - check.start)
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
