"""Manifests for choosing settings on a validation cohort: train on one cohort, judge on another.

Usage::

    madgan phantom val --healthy 60 --ad 45 --mets 20 --various 20 --seed 1 --voxel-mm 2
    python studies/ablation_manifest.py --train madgan_demo/cohort/manifest.csv \\
        --validation val/manifest.csv --out ablation_manifest.csv --validation-out val_manifest.csv

``--out`` (for ``detection_ablation.py``) holds the training cohort's healthy ``train``
rows, then every row of the validation cohort, whose subjects are renamed ``val-<id>``
so no identifier clashes. ``--validation-out`` (for ``scoring_validation.py``) holds the
validation rows alone. In both, the validation cohort's healthy subjects are all used
for judging: in subject order, alternately ``calib`` and ``test``; its disease rows stay
``test``. Nothing of the training cohort's calib or test splits is included, so choices
made with these manifests never see the test split they are later reported on.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from madgan_core.scans.manifest import read_manifest, write_manifest


def resplit(rows):
    """Healthy subjects alternately calib and test, in subject order; others unchanged."""
    healthy = sorted({r.subject for r in rows if r.group == "healthy"})
    split = {s: ("calib", "test")[i % 2] for i, s in enumerate(healthy)}
    return [
        dataclasses.replace(r, split=split[r.subject]) if r.group == "healthy" else r for r in rows
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="cohort to train on")
    parser.add_argument("--validation", type=Path, required=True, help="cohort to judge on")
    parser.add_argument("--out", type=Path, default=Path("ablation_manifest.csv"))
    parser.add_argument("--validation-out", type=Path, default=Path("val_manifest.csv"))
    args = parser.parse_args()
    training = [r for r in read_manifest(args.train) if r.group == "healthy" and r.split == "train"]
    validation = resplit(read_manifest(args.validation))
    renamed = [dataclasses.replace(r, subject=f"val-{r.subject}") for r in validation]
    write_manifest(training + renamed, args.out)
    write_manifest(validation, args.validation_out)
    print(
        f"{args.out}: {len(training)} training rows and {len(renamed)} validation rows; "
        f"{args.validation_out}: the validation rows"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
