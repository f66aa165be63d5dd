"""The age confound on a phantom cohort with healthy ageing, with and without the normative reference.

Usage::

    madgan phantom aged --ageing --anatomy all --healthy 90 --ad 30 --voxel-mm 2 --seed 61
    python studies/age_confound.py --cohort aged --out age_confound --steps 300

In the cohort, every subject has an age and healthy ageing grows with it (larger
ventricles, thinner cortex, smaller hippocampi, occasional white-matter spots), and the
AD-like subjects are older on average than the healthy ones. Two models are evaluated on
its test split with ``madgan evaluate``, each calibrated on the cohort's healthy
``calib`` scans with their ages and sexes:

- ``bundled``: the bundled model as it is (trained on phantoms without ages);
- ``fine-tuned``: ``madgan train --init phantom-demo`` for ``--steps`` steps on the
  cohort's healthy ``train`` scans, so it has seen healthy brains of every age.

For each, the AUC of the headline (``madgan:anomaly``) per comparison, plain and as its
residual from the controls' model of it on age and sex, with the hard case of healthy
subjects aged 75 or more against AD-like ones under 70 (``madgan_core.cohort.evaluation.ages``).
``OUT/age_confound.json`` holds the figures and ``OUT/age_confound.md`` the tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from madgan_core.cohort.evaluation.ages import age_confound_rows, with_adjusted_scores
from madgan_core.cohort.evaluation.cohort import read_scores
from madgan_core.model.bundled import DEFAULT, bundled_path
from madgan_core.model.checkpoint import load_model
from madgan_core.scans.covariates import Covariates
from madgan_core.scans.manifest import read_manifest

COLUMN = "madgan:anomaly"
ARMS = ("bundled", "fine-tuned")


def madgan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "madgan_core.cli", *args, "--no-progress"], check=True)


def build(arm: str, manifest: Path, run: Path, steps: int, device: str) -> Path:
    model = run / "model.pt"
    if model.exists():
        return model
    if arm == "bundled":
        run.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled_path(DEFAULT), model)
        madgan("calibrate", str(model), "--manifest", str(manifest), "--device", device)
    else:
        madgan(
            "train", "--init", DEFAULT, "--manifest", str(manifest), "--out", str(run),
            "--steps", str(steps), "--device", device,
        )  # fmt: skip
    return model


def healthy_age_trend(records, rows, model_path: Path) -> dict:
    """How the healthy test scans' headline grows with age, before and after adjustment."""
    reference = load_model(model_path, device="cpu").reference
    adjusted = with_adjusted_scores(records, rows, reference, [COLUMN])
    out = {}
    for sequence in sorted({str(r["sequence"]) for r in adjusted}):
        healthy = [r for r in adjusted if r["group"] == "healthy" and r["sequence"] == sequence]
        ages = np.array([float(r["age"]) for r in healthy])
        plain = np.array([float(r[COLUMN]) for r in healthy])
        residual = np.array([float(r[COLUMN + " (age/sex adjusted)"]) for r in healthy])
        keep = np.isfinite(residual)
        out[sequence] = {
            "n": int(keep.sum()),
            "correlation_with_age_plain": round(float(np.corrcoef(ages, plain)[0, 1]), 3),
            "correlation_with_age_adjusted": round(
                float(np.corrcoef(ages[keep], residual[keep])[0, 1]), 3
            ),
        }
    fit = reference.normative_fit("anomaly", "T1", Covariates(70.0, "F"))[0]
    out["T1 model"] = None if fit is None else {
        "n": fit.n,
        "loo_r2": round(fit.loo_r2, 3),
        "per_decade": round(float(fit.coef[0]) * 10, 3),
        "female": round(float(fit.coef[1]), 3) if fit.uses_sex else None,
    }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, required=True, help="an --ageing phantom cohort")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    manifest = args.cohort / "manifest.csv"
    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    if not any(r.age is not None for r in rows):
        sys.exit(f"{manifest}: no ages; make the cohort with `madgan phantom --ageing`")
    results, tables = {}, []
    for arm in ARMS:
        model = build(arm, manifest, args.out / arm, args.steps, args.device)
        report = args.out / arm / "evaluation"
        if not (report / "report.md").exists():
            madgan("evaluate", str(model), "--manifest", str(manifest), "--out", str(report))
        records = read_scores(report / "scores.csv")
        reference = load_model(model, device="cpu").reference
        confound = age_confound_rows(
            with_adjusted_scores(records, rows, reference, [COLUMN]), COLUMN
        )
        results[arm] = {
            "comparisons": [
                {
                    "comparison": r.label,
                    "n_healthy": r.plain.n_healthy,
                    "n_disease": r.plain.n_disease,
                    "median_age_healthy": r.median_age_healthy,
                    "median_age_disease": r.median_age_disease,
                    "auc_plain": [round(r.plain.auc, 3), round(r.plain.low, 3), round(r.plain.high, 3)],
                    "auc_adjusted": [
                        round(r.adjusted.auc, 3), round(r.adjusted.low, 3), round(r.adjusted.high, 3)
                    ],
                }
                for r in confound
            ],
            "healthy_age_trend": healthy_age_trend(records, rows, model),
        }  # fmt: skip
        tables += [
            f"### {arm}",
            "",
            "| comparison | n | median age | plain | adjusted |",
            "|---|---|---|---|---|",
        ]
        tables += [
            f"| {r.label} | {r.plain.n_healthy}/{r.plain.n_disease} "
            f"| {r.median_age_healthy:.0f}/{r.median_age_disease:.0f} "
            f"| {r.plain.auc:.3f} [{r.plain.low:.2f}, {r.plain.high:.2f}] "
            f"| {r.adjusted.auc:.3f} [{r.adjusted.low:.2f}, {r.adjusted.high:.2f}] |"
            for r in confound
        ] + [""]  # fmt: skip
    results["setup"] = {"cohort": str(args.cohort), "steps": args.steps, "column": COLUMN}
    (args.out / "age_confound.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "age_confound.md").write_text("\n".join(tables) + "\n")
    print("\n".join(tables))


if __name__ == "__main__":
    main()
