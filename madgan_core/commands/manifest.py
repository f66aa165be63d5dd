"""``madgan manifest``: a cohort manifest from a BIDS dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from madgan_core.commands._common import add_progress_option, tqdm_callback


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "manifest",
        help="build a cohort manifest from a BIDS dataset",
        description="List the T1w scans of a BIDS dataset (sub-*/[ses-*/]anat/*_T1w.nii[.gz]; "
        "the ce- entity marks T1c) in a manifest, with groups from a participants.tsv column, "
        "age, sex and site as covariates, and seeded subject-level splits: healthy subjects by "
        "the --split fractions, stratified by 10-year age band when there is an age column; "
        "disease subjects in test. The dataset is checked first; a problem stops with one "
        "message naming the file, and nothing is written.",
    )
    p.add_argument("bids_dir", type=Path, metavar="BIDS_DIR", help="the BIDS dataset's folder")
    p.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    p.add_argument(
        "--group-column",
        help="participants.tsv column holding the diagnosis (default: every subject is healthy)",
    )
    p.add_argument(
        "--healthy",
        default="",
        help="comma-separated values of the group column meaning healthy, e.g. CN",
    )
    p.add_argument(
        "--map",
        default="",
        metavar="VALUE=GROUP,...",
        help="other values to disease groups, e.g. AD=ad,MCI=mci",
    )
    p.add_argument(
        "--stage-column",
        metavar="COLUMN",
        help="participants.tsv column holding each disease subject's integer stage (e.g. "
        "1/2/3 derived from CDR 0.5/1/2); healthy subjects get 0 (default: every disease "
        "subject gets stage 1)",
    )
    p.add_argument(
        "--drop-unmapped",
        action="store_true",
        help="leave out subjects whose value is neither healthy nor mapped (default: an error)",
    )
    p.add_argument(
        "--split",
        default="train=0.4,calib=0.25,test=0.35",
        help="healthy subjects' split fractions (default: train=0.4,calib=0.25,test=0.35)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split shuffle (default 0)")
    p.add_argument(
        "--exclude",
        type=Path,
        metavar="FILE",
        help="quality-control exclusions: one subject (sub-01) or scan file per line",
    )
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.scans.bids_manifest import (
        manifest_from_bids,
        parse_value_map,
        read_exclusions,
    )
    from madgan_core.scans.manifest import write_manifest
    from madgan_core.scans.splits import parse_fractions

    fractions = parse_fractions(args.split)
    value_map = parse_value_map(args.map)
    healthy = tuple(v.strip() for v in args.healthy.split(",") if v.strip())
    exclude = read_exclusions(args.exclude) if args.exclude else []
    with tqdm(desc="manifest", unit="scan") as bar:
        built = manifest_from_bids(
            args.bids_dir,
            group_column=args.group_column,
            healthy=healthy,
            value_map=value_map,
            drop_unmapped=args.drop_unmapped,
            fractions=fractions,
            seed=args.seed,
            exclude=exclude,
            exclude_source=args.exclude,
            progress=tqdm_callback(bar),
            stage_column=args.stage_column,
        )
    write_manifest(built.rows, args.out)
    rows = built.rows
    subjects = {r.subject for r in rows}
    print(f"wrote {args.out}: {len(rows)} scan(s) of {len(subjects)} subject(s)")
    for group in sorted({r.group for r in rows}):
        counts = {
            s: len({r.subject for r in rows if r.group == group and r.split == s})
            for s in ("train", "calib", "test")
        }
        text = ", ".join(f"{s} {n}" for s, n in counts.items() if n)
        print(f"  {group}: {text} subject(s)")
    if built.excluded:
        print(
            f"  excluded: {len(built.excluded)} ({', '.join(built.excluded[:5])}"
            f"{', ...' if len(built.excluded) > 5 else ''})"
        )
    if built.dropped:
        print(f"  dropped as unmapped: {len(built.dropped)} subject(s)")
    if built.without_t1:
        print(
            f"  without a T1w scan: {len(built.without_t1)} subject(s) "
            f"({', '.join(built.without_t1[:5])}{', ...' if len(built.without_t1) > 5 else ''})"
        )
    return 0
