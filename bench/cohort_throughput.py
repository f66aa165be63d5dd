"""Cohort throughput: scans per second against processes and threads, prefetch off and on.

A cohort of phantom scans (the default 1 mm phantom written as NIfTI, copied ``--scans``
times) is scored through the production path, ``score_cohort`` (part files, merge), by
P processes of T torch threads each, joined in a process group as under torchrun. Each
configuration runs with the loader's prefetch off (every scan read and preprocessed
between two network passes) and on (the next scan read in a worker thread), and the
single-process one also from a warm slab cache. Per run: wall time, scans per second,
and, summed over the processes, where their time went: the network (the predictor's
calls), waiting for the next slab, and the rest (scores, part files, merge); the
model's share is network time / (P x wall).

The projection for 2,000 and 40,000 scans on 1, 8 and 64 workers uses only measured
per-scan costs: from this run (workers like this machine's processes), or, with
``--gpu-json``, the per-scan stages ``bench/gpu_check.py`` measured on a GPU node
(load, preprocess, inference, post). A worker with prefetch takes
max(read + preprocess, network + rest) per scan; without, their sum.

    python bench/cohort_throughput.py --device auto [--scans 6] [--configs 1x2 2x1]
        [--base-channels 16] [--gpu-json gpu_check.json] [--sweep-workers 0 1 2 4]
        [--sweep-maps] [--out f.json]

The worker sweep scores the same cohort as ``madgan score`` does (``score_files``: one
process, scans prepared by ``--workers`` loader processes, post-processing in threads
beside the network) for each worker count of ``--sweep-workers`` (default 0, 1, 2, 4, ...
up to cores - 1; 0 is the loader's prefetch thread), and reports scans per second over
the whole run (loader processes' start included) and in steady state (first scan to
last). ``--sweep-maps`` also writes every scan's maps, as ``madgan score --maps``.

The default (a 16-channel U-Net at the paper's 256 x 176, 6 scans, configurations
1x1, 1xC and Cx1 for C cores, then the sweep) takes about 3 minutes on 2 cores;
``--base-channels 64`` is the paper's network.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, header, phantom_file, resolve, rounded

PROJECT_SCANS = (2_000, 40_000)
PROJECT_WORKERS = (1, 8, 64)


# ---------------------------------------------------------------- one process of a run


def worker(args) -> dict:
    """Runs in each process: score the cohort's share, report where the time went."""
    import torch

    torch.set_num_threads(args.threads)
    from bench._common import random_model, sync
    from madgan_core.cohort.evaluation.cohort import score_cohort
    from madgan_core.prep.loader import SlabLoader
    from madgan_core.runtime.distributed import cohort_group
    from madgan_core.scans.manifest import ManifestRow

    files = json.loads(Path(args.files).read_text())
    rows = [ManifestRow(Path(f), f"s{i}", "healthy", 0, "T1", "test") for i, f in enumerate(files)]
    with cohort_group(args.device) as (info, device):
        model = random_model(
            args.variant, device, size=(args.height, args.width, args.base_channels)
        )
        clock = {"network": 0.0, "wait": 0.0, "prepare": 0.0, "scans": 0}

        def predictor(inputs, _targets):
            t0 = time.perf_counter()
            out = model.generator(inputs)
            sync(device)
            clock["network"] += time.perf_counter() - t0
            return out

        class TimedLoader(SlabLoader):
            def load(self, paths, cfg, keep_scan=False):
                items = super().load(paths, cfg, keep_scan)
                while True:
                    t0 = time.perf_counter()
                    item = next(items, None)
                    clock["wait"] += time.perf_counter() - t0
                    if item is None:
                        return
                    clock["prepare"] += item.seconds
                    clock["scans"] += 1
                    yield item

        # Warm-up (oneDNN primitives, cuDNN plans) on the first scan, outside the clock.
        warm = Path(args.out_dir) / f"warmup{info.rank}.csv"
        score_cohort(
            {"madgan": predictor}, model, rows[:1], warm, precision=args.precision,
            loader=SlabLoader(prefetch=0),
        )  # fmt: skip
        clock.update(network=0.0, wait=0.0, prepare=0.0, scans=0)
        loader = TimedLoader(prefetch=args.prefetch, cache_dir=args.cache_dir)
        if info.enabled:
            torch.distributed.barrier()
        t0 = time.perf_counter()
        score_cohort(
            {"madgan": predictor}, model, rows, Path(args.out_dir) / "scores.csv",
            precision=args.precision, loader=loader, info=info,
        )  # fmt: skip
        wall = time.perf_counter() - t0
    return {"rank": info.rank, "wall_s": wall, **clock}


def sweep_worker(args) -> dict:
    """Runs in its own process: ``madgan score``'s path with ``args.workers`` loader processes."""
    import torch

    torch.set_num_threads(args.threads)
    from bench._common import random_model
    from madgan_core.cohort.score_files import score_files
    from madgan_core.prep.loader import SlabLoader
    from madgan_core.runtime.device import resolve_device

    files = json.loads(Path(args.files).read_text())
    device = resolve_device(args.device)
    model = random_model(args.variant, device, size=(args.height, args.width, args.base_channels))
    out = Path(args.out_dir)
    # Warm-up (oneDNN primitives, cuDNN plans) on the first scan, outside the clock.
    score_files(
        model, files[:1], out / "warmup", maps=args.sweep_maps, precision=args.precision,
        loader=SlabLoader(prefetch=0),
    )  # fmt: skip
    ticks: list[float] = []
    t0 = time.perf_counter()
    score_files(
        model, files, out / "scores", maps=args.sweep_maps, precision=args.precision,
        loader=SlabLoader(prefetch=1, workers=args.workers),
        progress=lambda _k, _n: ticks.append(time.perf_counter()),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    steady = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 else None
    return {
        "workers": args.workers,
        "scans": len(files),
        "wall_s": rounded(wall),
        "scans_per_s": rounded(len(files) / wall),
        "first_scan_s": rounded(ticks[0] - t0),
        "steady_scans_per_s": None if steady is None else rounded(steady),
    }


def default_sweep() -> list[int]:
    """0, 1, 2, 4, ... loader processes, up to one fewer than the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    top = max((cores or 1) - 1, 1)
    counts = [0, 1]
    while counts[-1] * 2 <= top:
        counts.append(counts[-1] * 2)
    return counts if counts[-1] == top else [*counts, top]


def sweep(args, files: Path, work: Path) -> dict:
    """Scans per second against the number of loader processes, ``madgan score``'s path."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = args.sweep_threads or cores or 1
    runs = []
    for workers in args.sweep_workers:
        out_dir = work / f"sweep_w{workers}"
        out_dir.mkdir(parents=True)
        cmd = [
            sys.executable, __file__, "--sweep-run", "--files", str(files),
            "--out-dir", str(out_dir), "--device", args.device, "--precision", args.precision,
            "--variant", args.variant, "--height", str(args.height), "--width", str(args.width),
            "--base-channels", str(args.base_channels), "--threads", str(threads),
            "--workers", str(workers),
        ]  # fmt: skip
        if args.sweep_maps:
            cmd.append("--sweep-maps")
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"sweep run failed ({done.returncode}): {' '.join(cmd)}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    return {
        "path": "score_files (madgan score): one process, loader processes, post threads",
        "network_threads": threads,
        "maps": args.sweep_maps,
        "runs": runs,
    }


# ---------------------------------------------------------------- runs and their summary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, procs: int, threads: int, prefetch: int, files: Path, work: Path, cache=None):
    """One configuration: ``procs`` processes of ``threads`` threads, as torchrun starts them."""
    out_dir = work / f"run_{procs}x{threads}_p{prefetch}{'_cache' if cache else ''}"
    out_dir.mkdir(parents=True)
    port = free_port()
    cmd = [
        sys.executable, __file__, "--worker", "--files", str(files), "--out-dir", str(out_dir),
        "--device", args.device, "--precision", args.precision, "--variant", args.variant,
        "--height", str(args.height), "--width", str(args.width),
        "--base-channels", str(args.base_channels), "--threads", str(threads),
        "--prefetch", str(prefetch),
    ]  # fmt: skip
    if cache is not None:
        cmd += ["--cache-dir", str(cache)]
    children = []
    for rank in range(procs):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if procs > 1:
            env.update(
                RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(procs),
                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
            )  # fmt: skip
        children.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    ranks = []
    for child in children:
        stdout, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"worker failed ({child.returncode}): {' '.join(cmd)}")
        ranks.append(json.loads(stdout.strip().splitlines()[-1]))
    return summarise(procs, threads, prefetch, cache is not None, ranks)


def summarise(procs: int, threads: int, prefetch: int, cached: bool, ranks: list[dict]) -> dict:
    wall = max(r["wall_s"] for r in ranks)
    scans = sum(r["scans"] for r in ranks)
    network = sum(r["network"] for r in ranks)
    wait = sum(r["wait"] for r in ranks)
    busy = procs * wall
    return {
        "processes": procs,
        "threads": threads,
        "prefetch": prefetch,
        "warm_cache": cached,
        "scans": scans,
        "wall_s": rounded(wall),
        "scans_per_s": rounded(scans / wall),
        "model_share": rounded(network / busy, 3),
        "wait_share": rounded(wait / busy, 3),
        "rest_share": rounded(max(busy - network - wait, 0.0) / busy, 3),
        "per_scan_s": {
            "prepare": rounded(sum(r["prepare"] for r in ranks) / scans),
            "network": rounded(network / scans),
            "wait": rounded(wait / scans),
        },
    }


def measured_costs(run: dict) -> dict:
    """Per-scan costs from a run without prefetch: read + preprocess, network, the rest."""
    per = run["per_scan_s"]
    wall_per_scan = run["processes"] * run["wall_s"] / run["scans"]
    rest = max(wall_per_scan - per["prepare"] - per["network"], 0.0)
    return {
        "prepare_s": per["prepare"],
        "network_s": per["network"],
        "rest_s": rounded(rest),
        "source": f"this run: {run['processes']} process x {run['threads']} threads, prefetch off",
    }


def gpu_costs(path: Path, variant: str, precision: str) -> dict:
    """Per-scan costs from ``bench/gpu_check.py``'s JSON: its scan stages on the GPU node."""
    data = json.loads(Path(path).read_text())
    stages = data["scan"][variant][precision]["seconds"]
    return {
        "prepare_s": rounded(stages["load"] + stages["preprocess"]),
        "network_s": stages["inference"],
        "rest_s": stages["post"],
        "source": f"{path}: scan stages on {data['machine'].get('gpu', data['machine']['device'])}, "
        f"{variant}, {precision}",
    }


def projection(costs: dict) -> dict:
    """Hours for each cohort size on each number of workers, from per-scan costs only."""
    serial = costs["prepare_s"] + costs["network_s"] + costs["rest_s"]
    overlapped = max(costs["prepare_s"], costs["network_s"] + costs["rest_s"])
    table = {}
    for n in PROJECT_SCANS:
        for w in PROJECT_WORKERS:
            scans_each = math.ceil(n / w)
            table[f"{n}_scans_{w}_workers"] = {
                "hours_prefetch_on": rounded(scans_each * overlapped / 3600, 3),
                "hours_prefetch_off": rounded(scans_each * serial / 3600, 3),
            }
    return {
        "costs": costs,
        "per_scan_s": {"prefetch_on": rounded(overlapped), "prefetch_off": rounded(serial)},
        "assumes": "workers independent (one process per GPU, or per core group as measured), "
        "each with a core for its loader thread; no shared-storage limit; startup and the "
        "final merge not counted",
        "hours": table,
    }


def default_configs() -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    configs = ["1x1"]
    if cores and cores > 1:
        configs += [f"1x{cores}", f"{cores}x1"]
    return configs


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=6, help="cohort size (copies of one phantom)")
    parser.add_argument("--voxel-mm", type=float, default=1.0, help="phantom voxel size")
    parser.add_argument("--configs", nargs="+", default=None, help="PxT: processes x threads")
    parser.add_argument("--variant", default="none")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument("--base-channels", type=int, default=16, help="U-Net width (paper: 64)")
    parser.add_argument("--gpu-json", type=Path, help="bench/gpu_check.py output to project from")
    parser.add_argument("--gpu-precision", default="bf16", help="precision read from --gpu-json")
    parser.add_argument(
        "--sweep-workers", type=int, nargs="*", default=None,
        help="loader processes to sweep (default: 0 1 2 4 ... cores - 1; none: no sweep)",
    )  # fmt: skip
    parser.add_argument("--sweep-maps", action="store_true", help="the sweep writes maps too")
    parser.add_argument(
        "--sweep-only", action="store_true", help="only the worker sweep (no PxT runs)"
    )
    parser.add_argument(
        "--sweep-threads", type=int, default=0, help="the sweep's torch threads (default: cores)"
    )
    # One process of a run (started by this script itself).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sweep-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--prefetch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return {}
    if args.sweep_run:
        print(json.dumps(sweep_worker(args)), flush=True)
        return {}
    if args.sweep_workers is None:
        args.sweep_workers = default_sweep()

    device = resolve(args.device)
    configs = args.configs or default_configs()
    result = header("cohort_throughput", device, args.peak_reps)
    result["model"] = {
        "variant": args.variant,
        "shape": [args.height, args.width],
        "base_channels": args.base_channels,
        "precision": args.precision,
    }
    runs = []
    with tempfile.TemporaryDirectory(prefix="madgan-cohort-bench-") as tmp:
        work = Path(tmp)
        source = phantom_file(work, args.voxel_mm)
        paths = []
        for i in range(args.scans):
            paths.append(work / f"scan{i:04d}.nii.gz")
            shutil.copyfile(source, paths[-1])
        files = work / "files.json"
        files.write_text(json.dumps([str(p) for p in paths]))
        result["cohort"] = {"scans": args.scans, "file_bytes": source.stat().st_size}
        if args.sweep_only:
            result["worker_sweep"] = sweep(args, files, work)
            emit(result, args.out)
            return result
        for spec in configs:
            procs, threads = (int(v) for v in spec.lower().split("x"))
            for prefetch in (0, 1):
                runs.append(launch(args, procs, threads, prefetch, files, work))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        # The same files scored again from a warm slab cache (one process, most threads).
        procs, threads = 1, max(int(s.lower().split("x")[1]) for s in configs)
        cache = work / "cache"
        launch(args, procs, threads, 0, files, work / "fill", cache)
        runs.append(launch(args, procs, threads, 1, files, work, cache))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        result["worker_sweep"] = sweep(args, files, work) if args.sweep_workers else None
    result["runs"] = runs
    serial = [r for r in runs if r["prefetch"] == 0 and not r["warm_cache"]]
    base = max(serial, key=lambda r: (r["processes"] == 1, r["threads"]))
    result["projection_this_machine"] = projection(measured_costs(base))
    if args.gpu_json is not None:
        costs = gpu_costs(args.gpu_json, args.variant, args.gpu_precision)
        result["projection_gpu"] = projection(costs)
    else:
        result["projection_gpu"] = None
        result["projection_gpu_needs"] = "--gpu-json: the output of bench/gpu_check.py on a GPU"
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
