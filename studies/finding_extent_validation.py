"""Choose ``score.finding_extent`` and ``score.finding_sign`` on a validation cohort:
the z that draws each finding's outline (above the detection threshold: its core;
below: hysteresis growth; None: the thresholded region), with and without the trim to
the residual's dominant sign, judged by the Dice of the top region with the true
lesion, with the FROC operating points alongside (they move only when regions merge).

Each test scan of the validation manifest is scored once with maps; every candidate
outline is then drawn on the same z-map and residual. Never run this on the demo's test split.

    madgan phantom val --healthy 40 --mets 20 --ad 0 --various 0 --seed 11 --voxel-mm 2
    python studies/ablation_manifest.py --train madgan_demo/cohort/manifest.csv \\
        --validation val/manifest.csv --validation-out val_manifest.csv
    cp madgan_demo/run/model.pt val_model.pt
    madgan calibrate val_model.pt --manifest val_manifest.csv
    python studies/finding_extent_validation.py val_model.pt val_manifest.csv --out extent.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from madgan_core.cohort.evaluation.regions import match_regions, summarise
from madgan_core.model.checkpoint import load_model
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import read_manifest
from madgan_core.scoring.scorer import score_scan

EXTENTS = (None, 6.0, 5.5, 5.0, 4.5, 3.5, 3.0, 2.0)
CANDIDATES = [(extent, sign) for sign in (False, True) for extent in EXTENTS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="model calibrated on the validation controls")
    parser.add_argument("manifest", type=Path, help="validation manifest (test rows are judged)")
    parser.add_argument("--out", type=Path, default=Path("finding_extent.json"))
    args = parser.parse_args()

    model = load_model(args.model)
    # the residual is kept when the sign trim is on; each candidate decides whether to use it
    model.config.score = dataclasses.replace(model.config.score, finding_sign=True)
    rows = [r for r in read_manifest(args.manifest) if r.split == "test"]
    lesioned_sequences = {r.sequence for r in rows if r.mask is not None}
    rows = [r for r in rows if r.mask is not None or r.sequence in lesioned_sequences]
    records = {candidate: [] for candidate in CANDIDATES}
    for row in tqdm(rows, desc="scans"):
        scan = load_scan(row.path)
        result = score_scan(model, scan, maps=True, sequence=row.sequence)
        mask = None if row.mask is None else np.asarray(load_scan(row.mask).data) > 0.5
        for extent, sign in CANDIDATES:
            settings = dataclasses.replace(
                model.config.score, finding_extent=extent, finding_sign=sign
            )
            records[(extent, sign)].append(
                match_regions(row, result.zmap, scan.affine, mask, settings, result.residual)
            )

    result = {"model": str(args.model), "manifest": str(args.manifest), "candidates": []}
    for (extent, sign), recs in records.items():
        for s in summarise(recs):
            dice = [r.top_dice or 0.0 for r in recs if r.group == s.group and r.n_lesions > 0]
            result["candidates"].append(
                {
                    "finding_extent": extent,
                    "finding_sign": sign,
                    "group": s.group,
                    "sequence": s.sequence,
                    "n_scans": s.n_scans,
                    "median_top_dice": s.median_top_dice,
                    "mean_top_dice": float(np.mean(dice)) if dice else None,
                    "detected": s.detected,
                }
            )
    text = json.dumps(result, indent=2)
    atomic_write_text(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
