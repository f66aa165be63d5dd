"""What starting from the bundled model buys: fine-tuned against trained from scratch.

Usage::

    madgan phantom site --anatomy all --healthy 60 --ad 18 --mets 15 --various 9 \\
        --voxel-mm 2 --seed 51
    python studies/fine_tune_comparison.py --cohort site --out finetune --steps 300

On a new phantom cohort (another seed than the demo's, so other subjects), three
models are evaluated on its test split with ``madgan evaluate``:

- ``bundled``: the bundled model as it is, calibrated on the cohort's healthy ``calib``
  scans (a copy; the installed file is never written);
- ``fine-tuned``: ``madgan train --init phantom-demo`` for ``--steps`` steps on the
  cohort's healthy ``train`` scans, then calibrated the same way;
- ``scratch``: ``madgan train --preset demo`` for the same steps, from random weights.

``OUT/fine_tune.json`` holds every AUC of the headline (``madgan:anomaly``) and the
lesions detected at 1 false positive per healthy scan; ``OUT/fine_tune.md`` the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

from madgan_core.cohort.evaluation.cohort import read_scores
from madgan_core.cohort.evaluation.stats import comparison_aucs
from madgan_core.model.bundled import DEFAULT, bundled_path

COLUMN = "madgan:anomaly"


def madgan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "madgan_core.cli", *args, "--no-progress"], check=True)


def build(arm: str, manifest: Path, run: Path, steps: int, device: str) -> Path:
    model = run / "model.pt"
    if model.exists():
        return model
    common = ["--manifest", str(manifest), "--out", str(run), "--steps", str(steps)]
    if arm == "bundled":
        run.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled_path(DEFAULT), model)
        madgan("calibrate", str(model), "--manifest", str(manifest), "--device", device)
    elif arm == "fine-tuned":
        madgan("train", "--init", DEFAULT, *common, "--device", device)
    else:
        madgan("train", "--preset", "demo", *common, "--device", device)
    return model


def figures(report: Path) -> dict:
    records = read_scores(report / "scores.csv")
    detected = {}
    regions = report / "regions.csv"
    if regions.exists():
        for row in csv.DictReader(regions.open()):
            detected[f"{row['group']} ({row['sequence']})"] = float(row["detected_at_1_fp"])
    return {"auc": comparison_aucs(records, COLUMN), "detected_at_1fp": detected}


def markdown(results: dict[str, dict], steps: int) -> str:
    arms = list(results)
    labels = list(next(iter(results.values()))["auc"])
    lines = [
        f"| comparison (AUC of the headline) | {' | '.join(arms)} |",
        f"|---|{'---|' * len(arms)}",
    ]
    for label in labels:
        values = [results[a]["auc"].get(label) for a in arms]
        lines.append(f"| {label} | {' | '.join(f'{v:.3f}' for v in values)} |")
    for group in next(iter(results.values()))["detected_at_1fp"]:
        values = [results[a]["detected_at_1fp"].get(group) for a in arms]
        cells = " | ".join("-" if v is None else f"{100 * v:.0f} %" for v in values)
        lines.append(f"| detected at 1 FP: {group} | {cells} |")
    return f"Fine-tuning and training budget: {steps} steps.\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cohort", type=Path, required=True, help="a phantom cohort folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    manifest = args.cohort / "manifest.csv"
    results = {}
    for arm in ("bundled", "fine-tuned", "scratch"):
        model = build(arm, manifest, args.out / arm, args.steps, args.device)
        report = args.out / arm / "evaluation"
        if not (report / "scores.csv").exists():
            madgan("evaluate", str(model), "--manifest", str(manifest), "--out", str(report),
                   "--device", args.device)  # fmt: skip
        results[arm] = figures(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fine_tune.json").write_text(json.dumps(results, indent=1))
    table = markdown(results, args.steps)
    (args.out / "fine_tune.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
