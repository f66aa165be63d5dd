"""``madgan calibrate``: store a healthy reference score distribution in a model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from madgan_core.commands._common import (
    add_device_options,
    add_loader_options,
    add_progress_option,
    add_set_option,
    add_window_batch_option,
    loader_from,
    score_overrides,
    tqdm_callback,
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="score held-out healthy scans and store their distribution with the model",
        description="Score the manifest's healthy scans of the 'calib' split and store their score "
        "distribution in MODEL, so every later score comes with its percentile against healthy "
        "controls. Score settings given with --set are stored with the model too. Under torchrun "
        "the processes share the controls; a stopped run continues when run again.",
    )
    p.add_argument(
        "model",
        type=Path,
        help="model file to update (model.pt); a bundled model is installed with the package, "
        "so calibrate a copy of it",
    )
    p.add_argument("--manifest", type=Path, required=True, help="cohort manifest CSV")
    add_device_options(p)
    add_window_batch_option(p)
    add_set_option(p, sections=("score",))
    add_loader_options(p)
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.model.norms_card import controls_covariates, covariates_lines
    from madgan_core.scans.manifest import read_manifest
    from madgan_core.scoring.calibrate import calibrate_model

    score = score_overrides(args).get("score")
    refuse_bundled(args.model)
    rows = read_manifest(args.manifest)
    with tqdm(desc="calibrating", unit="scan") as bar:
        reference = calibrate_model(
            args.model,
            rows,
            device=args.device,
            progress=tqdm_callback(bar),
            precision=args.precision,
            batch_size=args.window_batch,
            score=score,
            loader=loader_from(args),
        )
    if reference is None:  # another rank under torchrun: rank 0 stored the reference
        return 0
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
    for line in covariates_lines(controls_covariates(reference)):
        print(line)
    return 0


def refuse_bundled(model: Path) -> None:
    """Refuse a bundled model (by name or installed file): calibration writes into the
    model file, and the package's own file stays as shipped."""
    from madgan_core.errors import CheckpointError
    from madgan_core.model.bundled import bundled_entry_of, resolve_model

    path = resolve_model(model)
    entry = bundled_entry_of(path)
    if entry is not None:
        raise CheckpointError(
            f"{path} is the bundled model {entry.name!r}, installed with the package, and "
            f"calibration writes into the model file: copy it (e.g. `cp {path} model.pt`) "
            "and calibrate the copy"
        )
