"""``madgan phantom``: simulate a phantom cohort from the MNI152 template or real brains."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from madgan_core.commands._common import add_progress_option

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from madgan_core.cohort.phantom.acquisition import VARIANT_HELP

    p = subparsers.add_parser(
        "phantom",
        help="simulate a phantom cohort (healthy, AD-like, metastases, other lesions) and its manifest",
        description=(
            "Simulate scans from the MNI152 template: healthy subjects (T1 and T1c), AD-like atrophy "
            "at stages 1-3 (T1), metastases and other lesions (T1c). Writes OUTDIR/scans/, "
            "OUTDIR/masks/ and OUTDIR/manifest.csv (splits by subject). Same seed, same files."
        ),
    )
    p.add_argument("outdir", type=Path, help="output folder (created)")
    p.add_argument("--healthy", type=_count, default=20, help="healthy subjects (default: 20)")
    p.add_argument(
        "--ad", type=_count, default=9, help="AD-like subjects, cycling stages 1-3 (default: 9)"
    )
    p.add_argument("--mets", type=_count, default=5, help="subjects with metastases (default: 5)")
    p.add_argument(
        "--various", type=_count, default=4, help="subjects with other lesions (default: 4)"
    )
    p.add_argument("--seed", type=int, default=0, help="cohort seed (default: 0)")
    p.add_argument(
        "--voxel-mm", type=_voxel, default=1.0, help="isotropic voxel size in mm (default: 1.0)"
    )
    p.add_argument(
        "--head",
        action="store_true",
        help="wrap each brain in an average head (skull, scalp, face, neck; needs pydeface's "
        "data) and write its true brain mask to OUTDIR/masks/*_brainmask.nii.gz",
    )
    p.add_argument(
        "--anatomy",
        nargs="+",
        type=anatomy_argument,
        default=None,
        metavar="NAME_OR_FILE",
        help=anatomy_help("mni"),
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        type=_variant,
        metavar="NAME",
        help=f"an acquisition variant applied to every scan, in the order given; repeatable: "
        f"{VARIANT_HELP} (see docs/data.md)",
    )
    p.add_argument(
        "--ageing",
        action="store_true",
        help="give every subject an age and a sex (the manifest's age and sex columns; "
        "OASIS-3-like: healthy about 68 +- 9 years, AD-like 75 +- 7, lesion groups 62 +- 12) "
        "and healthy ageing before any disease: ventricles, hippocampi and sulci that age "
        "(an 85-year-old about like AD stage 2, a 50-year-old younger than the default), "
        "small white-matter lesions that grow likelier with age (not in the lesion masks) "
        "and a slightly larger head for men; without it the cohort is unchanged",
    )
    p.add_argument(
        "--bids",
        action="store_true",
        help="write a BIDS dataset in OUTDIR instead of scans/ and manifest.csv: "
        "sub-<label>/anat/*_T1w.nii.gz (T1c: _ce-gadolinium_), participants.tsv with "
        "diagnosis, stage, age and sex, and the masks and subjects.jsonl under "
        "derivatives/phantom/; OUTDIR must be new or empty and appears only when complete. "
        "Read it back with madgan manifest OUTDIR --group-column diagnosis --healthy healthy "
        "--map ad=ad,mets=mets,various=various --stage-column stage",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="processes simulating scans in parallel (default: the CPU cores, at most 8; "
        "1: one process); the files are the same for any N",
    )
    p.add_argument(
        "--preview",
        action="store_true",
        help="also write OUTDIR/preview.png (with --bids: OUTDIR/derivatives/phantom/)",
    )
    add_progress_option(p)
    p.set_defaults(func=run)
    return p


def anatomy_help(default: str) -> str:
    """The ``--anatomy`` option's help, with its ``default``."""
    from madgan_core.cohort.phantom import anatomies

    return (
        f"the brain(s) subjects are built from: a bundled brain ({', '.join(anatomies.NAMES)}; "
        f"'{anatomies.ALL}': every distinct one installed, {', '.join(anatomies.DISTINCT)}) "
        "or a T1 scan file (registered to the MNI152 template, brain-extracted if it has a "
        "skull); several are taken in turn by each group's subjects, and the manifest's "
        f"anatomy column names each scan's (default: {default}; see docs/data.md)"
    )


def anatomy_argument(text: str) -> str:
    """An ``--anatomy`` value, checked: a bundled name, ``all`` or an existing file."""
    from madgan_core.cohort.phantom import anatomies

    if text == anatomies.ALL:
        return text
    return _anatomy(text)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _voxel(text: str) -> float:
    value = float(text)
    if not 0.5 <= value <= 8.0:
        raise argparse.ArgumentTypeError(f"must be in [0.5, 8], got {value}")
    return value


def _anatomy(text: str) -> str:
    from madgan_core.cohort.phantom.anatomies import resolve

    try:
        resolve(text)
    except (ValueError, FileNotFoundError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _variant(text: str) -> str:
    from madgan_core.cohort.phantom.acquisition import parse_variant

    try:
        parse_variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def simulate(outdir: Path, args: argparse.Namespace) -> Path:
    """Generate the cohort that ``args`` (healthy, ad, mets, various, seed, voxel_mm) asks for,
    with a progress bar; return its manifest (with ``args.bids``: the BIDS dataset's folder)."""
    from tqdm import tqdm

    from madgan_core.cohort.phantom import generate_cohort
    from madgan_core.cohort.phantom.bids_cohort import generate_bids_cohort
    from madgan_core.commands._common import tqdm_callback

    options = dict(
        healthy=args.healthy,
        ad=args.ad,
        mets=args.mets,
        various=args.various,
        seed=args.seed,
        voxel_mm=args.voxel_mm,
        head=getattr(args, "head", False),
        anatomy=getattr(args, "anatomy", None) or "mni",
        variants=getattr(args, "variant", []),
        ageing=getattr(args, "ageing", False),
        workers=getattr(args, "workers", None),
    )
    with tqdm(total=0, unit="scan", desc="phantom") as bar:
        if getattr(args, "bids", False):
            return generate_bids_cohort(
                outdir,
                preview=getattr(args, "preview", False),
                progress=tqdm_callback(bar),
                **options,
            )
        return generate_cohort(outdir, progress=tqdm_callback(bar), **options)


def run(args: argparse.Namespace) -> int:
    from madgan_core.cohort.phantom import preview_groups

    if args.healthy + args.ad + args.mets + args.various == 0:
        logger.error("nothing to simulate: give at least one subject")
        return 2
    if args.bids:
        from madgan_core.cohort.phantom.bids_cohort import PREVIEW

        if args.outdir.exists() and (not args.outdir.is_dir() or any(args.outdir.iterdir())):
            logger.error("%s exists and is not an empty folder: give a new one", args.outdir)
            return 2
        dataset = simulate(args.outdir, args)
        print(f"BIDS dataset: {dataset}")
        if args.preview:
            print(f"preview: {dataset / PREVIEW}")
        return 0
    manifest = simulate(args.outdir, args)
    print(f"manifest: {manifest}")
    if args.preview:
        png = preview_groups(manifest, args.outdir / "preview.png")
        print(f"preview: {png}")
    return 0
