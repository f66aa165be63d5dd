"""``madgan calibrate``: store a healthy reference score distribution in a model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from madgan_core.commands._common import tqdm_callback


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="score held-out healthy scans and store their distribution with the model",
        description="Score the manifest's healthy scans of the 'calib' split and store their score "
        "distribution in MODEL, so every later score comes with its percentile against healthy controls.",
    )
    p.add_argument("model", type=Path, help="model file to update (model.pt)")
    p.add_argument("--manifest", type=Path, required=True, help="cohort manifest CSV")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.calibrate import calibrate_model
    from madgan_core.manifest import read_manifest

    rows = read_manifest(args.manifest)
    with tqdm(desc="calibrating", unit="scan") as bar:
        reference = calibrate_model(
            args.model, rows, device=args.device, progress=tqdm_callback(bar)
        )
    scores = reference.scores["mean"]
    print(
        f"Stored {reference.n} healthy controls in {args.model} "
        f"(mean score {scores.mean():.5f}, range {scores.min():.5f}-{scores.max():.5f})"
    )
    for sequence, stats in sorted(reference.zstats.items()):
        modes = ["ztail", *sorted(stats.noise_fits)]
        print(
            f"z-map scores for {sequence} ({reference.n_for(sequence)} controls): {', '.join(modes)}"
        )
    return 0
