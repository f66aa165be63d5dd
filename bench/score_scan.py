"""Full-scan scoring from file to score, split into load / preprocess / inference / post-processing.

The default phantom scan (``make_subject("healthy", voxel_mm=1.0)``) is written as NIfTI
and scored with a random-weight paper-preset generator, in fp32 eager and in bf16.
The stages are timed with the same public functions :func:`score_scan` calls
(``load_scan``, ``preprocess``, a ``slab_scorer`` pass, ``scan_result``), and the
whole path is also timed as one ``load_scan`` + ``score_scan`` call. Each precision
reports its best pass (``seconds``) and the median of each stage over the passes.

A raw skull-on scan (``--raw FILE``; by default Colin27's ``ch2.nii.gz`` where MRIcron's
templates are installed, else a ``madgan phantom --head`` scan) is scored with the
bundled model, its prepare stage timed step by step (:mod:`bench._raw_scan`), and
file to score timed through the CLI (``madgan score``, imports included).

    python bench/score_scan.py --device auto [--reps 5] [--out f.json]
    python bench/score_scan.py --device cpu --raw-only [--raw FILE] [--raw-reps 3]

``--device-ops`` times the stages around the network with numpy/scipy and with torch on
``--device`` (:mod:`bench._device_ops`), then stops.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    base_parser,
    emit,
    header,
    phantom_file,
    precisions_for,
    random_model,
    resolve,
    rounded,
    sync,
)
from bench._device_ops import device_ops_case
from bench._raw_scan import raw_case


def staged(model, path: Path, precision: str, maps: bool = True, fold: bool = True) -> dict:
    """One scoring pass with each stage timed; returns seconds per stage and the mean score.

    The stages are the very calls :func:`score_scan` makes, in its order.
    """
    from madgan_core.prep.slab import preprocess
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import scan_result, slab_scorer

    cfg = model.config
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    scan = load_scan(path)
    times["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    slab = preprocess(scan, cfg.preprocess)
    times["preprocess"] = time.perf_counter() - t0

    score = slab_scorer(model, precision, fold=fold)
    t0 = time.perf_counter()
    errors, scores, z = score(slab, maps=maps)
    sync(model.device)
    times["inference"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = scan_result(scan, slab, errors, scores, z, cfg.score, maps=maps)
    times["post"] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    return {
        "precision": score.precision,
        "batch": score.batch_size,
        "windows": len(errors.window_losses),
        "slices": slab.n_slices,
        "seconds": {k: rounded(v) for k, v in times.items()},
        "score_mean": float(result.scores["mean"]),
    }


def end_to_end(model, path: Path, precision: str) -> tuple[float, float]:
    """``load_scan`` + ``score_scan`` (maps included): seconds and the mean score."""
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import score_scan

    t0 = time.perf_counter()
    result = score_scan(model, load_scan(path), precision=precision)
    sync(model.device)
    return time.perf_counter() - t0, result.scores["mean"]


def best_of(runs: list[dict]) -> dict:
    """The run with the least total time (other jobs on a shared machine only add time)."""
    return min(runs, key=lambda r: r["seconds"]["total"])


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="scoring passes per precision")
    parser.add_argument("--variant", default="none")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=None,
        help="default: those the device runs natively (fp32, and bf16 where the CPU has it)",
    )
    parser.add_argument(
        "--unfolded",
        action="store_true",
        help="run the network with its BatchNorms as trained (not folded), for comparison",
    )
    parser.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="a raw skull-on scan to time step by step with the bundled model (default: "
        "Colin27's ch2.nii.gz when installed, else a --head phantom)",
    )
    parser.add_argument("--raw-reps", type=int, default=3, help="passes of the raw scan")
    parser.add_argument(
        "--raw-only", action="store_true", help="time the raw scan only (no random-weight runs)"
    )
    parser.add_argument("--no-raw", action="store_true", help="leave the raw scan out")
    parser.add_argument(
        "--device-ops",
        action="store_true",
        help="time the prepare, l2, z-map and post stages with numpy/scipy and with torch on "
        "--device (no network), then stop",
    )
    args = parser.parse_args(argv)

    device = resolve(args.device)
    result: dict = header("score_scan", device, args.peak_reps)
    if not args.no_raw:
        result["raw_scan"] = raw_case(args.raw, device, args.raw_reps)
        print("raw", result["raw_scan"], file=sys.stderr, flush=True)
    if args.raw_only:
        emit(result, args.out)
        return result
    model = random_model(args.variant, device)
    if args.device_ops:
        with tempfile.TemporaryDirectory() as tmp:
            result["device_ops"] = device_ops_case(
                model, phantom_file(Path(tmp)), device, args.reps
            )
        emit(result, args.out)
        return result
    result["variant"] = args.variant
    result["batchnorm_folded"] = not args.unfolded
    with tempfile.TemporaryDirectory() as tmp:
        path = phantom_file(Path(tmp))
        result["scan"] = {"file": path.name, "bytes": path.stat().st_size}
        runs: dict[str, dict] = {}
        for precision in args.precisions or precisions_for(device):
            fold = not args.unfolded
            staged(model, path, precision, fold=fold)  # warm-up: oneDNN primitives, page cache
            passes = [staged(model, path, precision, fold=fold) for _ in range(args.reps)]
            best = best_of(passes)
            best["reps"] = len(passes)
            best["median_seconds"] = {
                k: rounded(statistics.median(p["seconds"][k] for p in passes))
                for k in best["seconds"]
            }
            secs = best["seconds"]
            non_forward = secs["total"] - secs["inference"]
            best["non_inference_fraction"] = rounded(non_forward / secs["total"], 3)
            e2e, score = end_to_end(model, path, precision)
            best["end_to_end_s"] = rounded(e2e)
            best["end_to_end_score_mean"] = score
            best["windows_per_s"] = rounded(best["windows"] / secs["inference"])
            runs[precision] = best
            print(precision, best, file=sys.stderr, flush=True)
        result["runs"] = runs
    if "fp32" in runs and "bf16" in runs:
        f, b = runs["fp32"], runs["bf16"]
        result["bf16_speedup_total"] = rounded(f["seconds"]["total"] / b["seconds"]["total"], 3)
        result["bf16_speedup_inference"] = rounded(
            f["seconds"]["inference"] / b["seconds"]["inference"], 3
        )
        result["bf16_relative_score_diff"] = rounded(
            abs(b["score_mean"] - f["score_mean"]) / abs(f["score_mean"]), 3
        )
    result["torch_threads"] = torch.get_num_threads()
    result["numpy"] = np.__version__
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
