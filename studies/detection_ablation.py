"""Train and evaluate model variants on one phantom cohort, at the demo budget, and compare AUCs.

    python studies/detection_ablation.py --cohort madgan_demo/cohort/manifest.csv --out ablation \\
        --variant no-top-skip model.skip_top=false --variant gap2 model.gap=2

Each variant is the demo preset plus ``section.key=value`` overrides, read as
``madgan train --set`` reads them (all are checked before any training starts). Every run
trains with the same seed and step budget, calibrates on the cohort's healthy
``calib`` scans and evaluates on its ``test`` scans. The script prints one JSON
object: per variant and comparison, the AUC and its 95% CI for each score mode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from madgan_core.cohort.evaluation.cohort import read_scores, score_columns
from madgan_core.cohort.evaluation.stats import auc_table
from madgan_core.config import parse_overrides, preset
from madgan_core.modes import calibrated_mode_names


def madgan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "madgan_core.cli", *args], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, required=True, help="manifest of a phantom cohort")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=None, help="override the demo preset's steps")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an existing run folder (model.pt) to evaluate as 'baseline'",
    )
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "OVERRIDE"),
        help="a name and section.key=value overrides (as madgan train --set), e.g. model.gap=2",
    )
    args = parser.parse_args(argv)
    configs = {name: parse_overrides(overrides) for name, *overrides in args.variant}
    for config in configs.values():
        preset("demo").updated(config)  # every value is checked before any training starts
    results = {}
    variants = list(args.variant)
    if args.baseline is not None:
        (args.out / "baseline").mkdir(parents=True, exist_ok=True)
        link = args.out / "baseline" / "model.pt"
        if not link.exists():
            link.symlink_to((args.baseline / "model.pt").resolve())
        variants.insert(0, ["baseline"])
    for name, *_ in variants:
        run = args.out / name
        run.mkdir(parents=True, exist_ok=True)
        config = configs.get(name, {})
        (run / "overrides.json").write_text(json.dumps(config, indent=2))
        started = time.perf_counter()
        if not (run / "model.pt").exists():
            train = ["train", "--manifest", str(args.cohort), "--out", str(run), "--preset", "demo"]
            train += ["--config", str(run / "overrides.json"), "--no-progress"]
            if args.steps:
                train += ["--steps", str(args.steps)]
            madgan(*train)
        madgan(
            "evaluate",
            str(run / "model.pt"),
            "--manifest",
            str(args.cohort),
            "--out",
            str(run / "report"),
        )
        records = read_scores(run / "report" / "scores.csv")
        columns = [
            c for c in score_columns(["madgan", "copy"], calibrated_mode_names()) if c in records[0]
        ]
        table = auc_table(records, columns)
        results[name] = {
            "overrides": config,
            "minutes": round((time.perf_counter() - started) / 60, 1),
            "auc": {
                label: {
                    c: [round(r.auc, 3), round(r.low, 3), round(r.high, 3)] for c, r in row.items()
                }
                for label, row in table.items()
            },
        }
        (args.out / "ablation.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
