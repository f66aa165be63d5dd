"""``madgan series``: list the DICOM series of folders, one line each, without reading pixels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from madgan_core.errors import MadganError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "series",
        help="list the DICOM series of folders",
        description="List each DICOM series found in each FOLDER (searched recursively): its "
        "number, description, sequence, slices, spacing and SeriesInstanceUID, without reading "
        "pixels. Give one to any command as FOLDER::UID or FOLDER::DESCRIPTION.",
    )
    p.add_argument("folders", type=Path, nargs="+", metavar="FOLDER", help="folder of DICOM files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print each folder's series; a folder that cannot be read is reported, and the rest listed.

    Returns 2 if any folder could not be read, else 0.
    """
    from madgan_core.scans.dicom import find_series

    status = 0
    for folder in args.folders:
        try:
            series = find_series(folder)
        except MadganError as exc:
            print(f"madgan series: error: {exc}", file=sys.stderr)
            status = 2
            continue
        print(f"{folder}: {len(series)} series")
        for info in series:
            print(f"  {info.summary()}")
    return status
