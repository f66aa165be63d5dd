"""``madgan demo``: phantom cohort -> train -> calibrate -> baselines -> evaluate -> (napari).

Every stage is skipped when its output already exists, so an interrupted demo
continues where it stopped when run again.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from madgan_core.commands._common import add_device_options, add_progress_option, tqdm_callback
from madgan_core.commands.phantom import anatomy_argument, anatomy_help

if TYPE_CHECKING:
    from madgan_core.config import MadganConfig

log = logging.getLogger(__name__)

AUTOENCODER_STEPS = 400
# Printed instead of opening the viewer when only the core is installed.
NO_VIEWER = (
    "napari is not installed, so no viewer opens: "
    'install napari-madgan[all] for it (pip install "napari-madgan[all]")'
)


def add_parser(subparsers) -> None:
    from madgan_core.cohort.phantom.anatomies import ALL

    p = subparsers.add_parser(
        "demo",
        help="the whole pipeline on a phantom cohort, with the CPU-sized demo preset",
        description="Generate a phantom cohort from every bundled brain installed (the MNI152 "
        "template, pydeface's average head, Colin27), train MADGAN with the demo preset, "
        "calibrate on held-out healthy scans, train the autoencoder baseline, evaluate, print the AUC table "
        "and, where a display exists, open napari reviewing a metastasis-like scan. Re-running continues "
        "an interrupted demo.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("madgan_demo"),
        help="output folder (default: ./madgan_demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="cohort and training seed (default: 0)")
    p.add_argument(
        "--healthy",
        type=int,
        default=160,
        help="healthy subjects (each has a T1 and a T1c scan) (default: %(default)s)",
    )
    p.add_argument(
        "--ad",
        type=int,
        default=60,
        help="AD-like subjects, spread over stages 1-3 (default: %(default)s)",
    )
    p.add_argument(
        "--mets", type=int, default=40, help="metastasis-like subjects (default: %(default)s)"
    )
    p.add_argument(
        "--various",
        type=int,
        default=40,
        help="subjects with various other lesions (default: %(default)s)",
    )
    p.add_argument("--voxel-mm", type=float, default=2.0, help="phantom voxel size (default: 2 mm)")
    p.add_argument(
        "--anatomy",
        nargs="+",
        type=anatomy_argument,
        default=[ALL],
        metavar="NAME_OR_FILE",
        help=anatomy_help(f"{ALL}: the model learns more than one brain"),
    )
    p.add_argument(
        "--ageing",
        action="store_true",
        help="give the subjects ages and sexes, with healthy ageing (madgan phantom --ageing): "
        "the controls' ages are stored with the model, and the report adds the age confound, "
        "AUCs with and without the age- and sex-adjusted reference",
    )
    p.add_argument(
        "--bids",
        action="store_true",
        help="write the cohort as a BIDS dataset (OUT/bids) and read it back with madgan "
        "manifest's code into OUT/manifest.csv (its own seeded splits; the lesion masks stay "
        "in the dataset's derivatives, so the findings' region evaluation is left out)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="training steps (default: the demo preset's)"
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="also score the milestone checkpoints for the AUC against training step "
        "(auc_vs_step.png; about 10 more minutes on 2 CPU cores)",
    )
    add_device_options(p)
    add_progress_option(p)
    p.add_argument("--no-view", action="store_true", help="do not open napari at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.cohort.evaluation.stats import format_table
    from madgan_core.cohort.phantom import preview_groups
    from madgan_core.commands.evaluate import evaluate_with_progress
    from madgan_core.commands.phantom import simulate
    from madgan_core.model.checkpoint import load_model
    from madgan_core.scans.manifest import read_manifest, write_manifest

    started = time.perf_counter()
    out: Path = args.out
    cohort = out / "cohort"
    manifest = cohort / "manifest.csv"
    run_dir = out / "run"
    model_path = run_dir / "model.pt"

    if args.bids:
        cohort, manifest = out / "bids", out / "manifest.csv"
    if not manifest.exists():
        print(f"[1/5] Phantom cohort -> {cohort}")
        if args.bids:
            if not (cohort / "participants.tsv").exists():
                simulate(cohort, args)
            print(f"      read back from BIDS -> {manifest}")
            write_manifest(bids_cohort_rows(cohort, args.seed), manifest)
        else:
            simulate(cohort, args)
        preview_groups(manifest, out / "cohort_preview.png")
    else:
        print(f"[1/5] Phantom cohort: using {manifest}")
    rows = read_manifest(manifest)

    if not model_path.exists():
        print(f"[2/5] Training (demo preset) -> {run_dir}")
        train_model(rows, run_dir, args)
    else:
        print(f"[2/5] Training: using {model_path}")

    if load_model(model_path, device="cpu").reference is None:
        from madgan_core.scoring.calibrate import calibrate_model

        print("[3/5] Calibrating on held-out healthy scans")
        with tqdm(desc="calibrating", unit="scan") as bar:
            calibrate_model(
                model_path, rows, args.device, tqdm_callback(bar), precision=args.precision
            )
    else:
        print("[3/5] Healthy reference: stored with the model")

    autoencoder = run_dir / "autoencoder.pt"
    if not autoencoder.exists():
        print("[4/5] Baseline: single-slice autoencoder")
        train_baseline(model_path, rows, autoencoder, args.device, args.precision)

    print("[5/5] Evaluating MADGAN and the baselines")
    report, table, columns = evaluate_with_progress(
        model_path,
        manifest,
        out / "report",
        run_dir / "checkpoints" if args.curve else None,
        autoencoder,
        args.device,
        args.precision,
    )
    print()
    print(format_table(table, columns, markdown=False))
    minutes = (time.perf_counter() - started) / 60
    print(f"\nReport: {report}\nDemo finished in {minutes:.1f} min.")

    if not args.no_view and _has_display():
        if not napari_installed():
            print(NO_VIEWER)
            return 0
        row = next((r for r in rows if r.group == "mets" and r.split == "test"), rows[0])
        print(f"Opening napari on {row.path.name} ...")
        command = [sys.executable, "-m", "napari_madgan.launch", str(model_path), str(row.path)]
        subprocess.run([*command, "--sequence", row.sequence], check=False)
    return 0


def bids_cohort_rows(root: Path, seed: int):
    """The manifest rows of a phantom cohort written as BIDS, as ``madgan manifest`` reads
    them: groups from ``diagnosis``, stages from ``stage``, ages and sexes as covariates."""
    from madgan_core.scans.bids_manifest import manifest_from_bids

    groups = {"ad": "ad", "mets": "mets", "various": "various"}
    found = manifest_from_bids(
        root, "diagnosis", ("healthy",), groups, seed=seed, stage_column="stage"
    )
    return found.rows


def demo_config(args: argparse.Namespace) -> MadganConfig:
    """The demo preset with the demo's device, precision, seed and (if given) steps."""
    from madgan_core.config import nest, preset

    named = {
        "train.device": args.device,
        "train.precision": args.precision,
        "train.seed": args.seed,
        "train.steps": args.steps,
    }
    return preset("demo").updated(nest({k: v for k, v in named.items() if v is not None}))


def train_model(rows, run_dir: Path, args: argparse.Namespace) -> None:
    """Train (and calibrate) with :func:`demo_config`; resumes an interrupted training."""
    from madgan_core.commands.train import train_with_bars

    checkpoints = run_dir / "checkpoints"
    resume = checkpoints.is_dir() and any(checkpoints.iterdir())
    train_with_bars(demo_config(args), rows, run_dir, not args.no_progress, resume=resume)


def train_baseline(
    model_path: Path, rows, out_path: Path, device: str, precision: str = "auto"
) -> Path:
    """Train the single-slice autoencoder on the same healthy training scans."""
    from madgan_core.cohort.baselines import (
        load_training_slices,
        save_autoencoder,
        train_autoencoder,
    )
    from madgan_core.model.checkpoint import load_model
    from madgan_core.runtime.device import resolve_device, resolve_precision

    cfg = load_model(model_path, device="cpu").config
    train_paths = [r.path for r in rows if r.group == "healthy" and r.split == "train"]
    slices = load_training_slices(train_paths, cfg)
    torch_device = resolve_device(device)
    base = cfg.model.base_channels
    with tqdm(total=AUTOENCODER_STEPS, desc="autoencoder", unit="step") as bar:

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        model = train_autoencoder(
            slices,
            cfg,
            AUTOENCODER_STEPS,
            torch_device,
            resolve_precision(precision, torch_device),
            base,
            32,
            progress,
        )
    return save_autoencoder(model, base, out_path)


def napari_installed() -> bool:
    """Whether napari can be imported (``napari-madgan[all]``), without importing it."""
    return importlib.util.find_spec("napari") is not None


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in (
        "darwin",
        "win32",
    )
