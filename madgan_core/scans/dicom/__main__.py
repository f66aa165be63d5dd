"""``python -m madgan_core.scans.dicom FOLDER...``: list the DICOM series found, one line each."""

from __future__ import annotations

import sys

from madgan_core.errors import MadganError
from madgan_core.scans.dicom.series import find_series


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m madgan_core.scans.dicom FOLDER [FOLDER ...]")
        print("Lists each DICOM series (number, description, sequence, slices, spacing, UID).")
        return 0 if args else 2
    status = 0
    for folder in args:
        try:
            series = find_series(folder)
        except MadganError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{folder}: {len(series)} series")
        for info in series:
            print(f"  {info.summary()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
