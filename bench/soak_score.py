"""Soak: score many phantom scans in a row in one process and watch resident memory.

A leak in scan I/O, preprocessing, scoring or map building shows as RSS that keeps
growing after the first scans (allocator warm-up). A few distinct 2 mm phantoms are
generated once and scored in turn, each loaded from disk and scored with maps, with
the demo preset's geometry (128 x 96 at 2 mm) and a narrow generator of random weights.

    python bench/soak_score.py [--scans 200] [--distinct 8] [--device cpu] [--out f.json]

Prints one JSON object: RSS (MiB) at start (model loaded), after 20 scans and at the end,
and the growth between the last two.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import emit  # noqa: E402
from madgan_core.config import DEVICES  # noqa: E402


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc; elsewhere peak RSS via resource)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def main(argv: list[str] | None = None) -> dict:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--distinct", type=int, default=8, help="distinct phantoms, scored in turn")
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch

    from madgan_core.cohort.phantom import generate_cohort
    from madgan_core.config import demo_preset
    from madgan_core.model.checkpoint import load_model, make_checkpoint, save_checkpoint
    from madgan_core.model.networks import build_generator
    from madgan_core.scans.files import load_scan
    from madgan_core.scans.manifest import read_manifest
    from madgan_core.scoring.scorer import score_scan

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        healthy = max(1, args.distinct // 2)
        manifest = generate_cohort(
            tmp / "cohort", healthy=healthy, ad=0, mets=0, various=0, seed=1, voxel_mm=2.0
        )
        paths = [r.path for r in read_manifest(manifest)][: args.distinct]
        generated_s = time.perf_counter() - t0

        cfg = demo_preset().updated(
            {"model": {"base_channels": args.base_channels, "critic_channels": args.base_channels}}
        )
        torch.manual_seed(0)
        model_path = save_checkpoint(
            make_checkpoint(cfg, 0, build_generator(cfg.model)), tmp / "model.pt"
        )
        model = load_model(model_path, device=args.device)
        # one scan to warm up allocators and lazy imports before the baseline
        score_scan(model, load_scan(paths[0]), maps=True)
        gc.collect()
        samples = {"start": rss_mib()}
        t1 = time.perf_counter()
        for i in range(args.scans):
            result = score_scan(model, load_scan(paths[i % len(paths)]), maps=True)
            del result
            if i + 1 == 20:
                gc.collect()
                samples["after_20"] = rss_mib()
        gc.collect()
        samples["end"] = rss_mib()
        elapsed = time.perf_counter() - t1

    report = {
        "bench": "soak_score",
        "scans": args.scans,
        "distinct_phantoms": len(paths),
        "voxel_mm": 2.0,
        "model": f"demo preset geometry {cfg.preprocess.height}x{cfg.preprocess.width}, base_channels {args.base_channels}, random weights",
        "device": str(model.device),
        "torch": torch.__version__,
        "rss_mib": {k: round(v, 1) for k, v in samples.items()},
        "growth_after_20_mib": round(samples["end"] - samples.get("after_20", float("nan")), 1),
        "growth_total_mib": round(samples["end"] - samples["start"], 1),
        "seconds_per_scan": round(elapsed / args.scans, 3),
        "phantom_generation_s": round(generated_s, 1),
    }
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
