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

For each, the AUC per comparison of the headline (``madgan:anomaly``), of ``ratio`` (the
mode that reads atrophy best) and of the paper's mean ℓ2, plain and as the normative
reference reads it (the residual from the controls' line of the score on age and sex,
or the plain score where that line predicts nothing out of sample), with the hard case
of healthy subjects aged 75 or more against AD-like ones under 70
(``madgan_core.cohort.evaluation.ages``); and how each score of the healthy test scans
follows age, before and after.
``OUT/age_confound.json`` holds the figures and ``OUT/age_confound.md`` the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from fine_tune_comparison import build, madgan  # the same arms, built the same way

from madgan_core.cohort.evaluation.ages import (
    ADJUSTED,
    age_confound_markdown,
    age_confound_rows,
    with_adjusted_scores,
)
from madgan_core.cohort.evaluation.cohort import read_scores
from madgan_core.model.checkpoint import load_model
from madgan_core.model.normative import fit_norms
from madgan_core.scans.covariates import Covariates
from madgan_core.scans.manifest import read_manifest

COLUMNS = ("madgan:anomaly", "madgan:ratio", "madgan:mean")
ARMS = ("bundled", "fine-tuned")


def healthy_age_trend(adjusted: list[dict], reference) -> dict:
    """Per column and sequence: how the healthy test scans' score follows age, plain and
    adjusted; and the controls' fit (n, leave-one-out R², slope per decade)."""
    out: dict = {}
    for column in COLUMNS:
        mode = column.split(":")[1]
        for sequence in sorted({str(r["sequence"]) for r in adjusted}):
            healthy = [r for r in adjusted if r["group"] == "healthy" and r["sequence"] == sequence]
            ages = np.array([float(r["age"]) for r in healthy])
            plain = np.array([float(r[column]) for r in healthy])
            fair = np.array([float(r[column + ADJUSTED]) for r in healthy])
            probe = Covariates(float(np.median(ages)), "F")
            chosen = [i for i, seq in enumerate(reference.sequences) if seq == sequence]
            values = (
                reference.control_anomaly_scores(sequence)
                if mode == "anomaly"
                else reference.scores[mode][chosen]
            )
            people = [reference.covariates[i] for i in chosen]
            fit = fit_norms(values, people, True, True) if np.isfinite(values).all() else None
            out[f"{column} {sequence}"] = {
                "n_healthy_test": len(healthy),
                "correlation_with_age_plain": round(float(np.corrcoef(ages, plain)[0, 1]), 3),
                "correlation_with_age_adjusted": round(float(np.corrcoef(ages, fair)[0, 1]), 3),
                "adjusted": reference.normative_fit(mode, sequence, probe)[0] is not None,
                "controls_fit": None if fit is None else {
                    "n": fit.n,
                    "loo_r2": round(fit.loo_r2, 3),
                    "per_decade": float(f"{fit.coef[0] * 10:.4g}"),
                },
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
        adjusted = with_adjusted_scores(records, rows, reference, COLUMNS)
        results[arm] = {
            "comparisons": {},
            "healthy_age_trend": healthy_age_trend(adjusted, reference),
        }
        for column in COLUMNS:
            confound = age_confound_rows(adjusted, column)
            results[arm]["comparisons"][column] = [
                {
                    "comparison": r.label,
                    "n_healthy": r.plain.n_healthy,
                    "n_disease": r.plain.n_disease,
                    "median_age_healthy": r.median_age_healthy,
                    "median_age_disease": r.median_age_disease,
                    "auc_plain": [
                        round(r.plain.auc, 3),
                        round(r.plain.low, 3),
                        round(r.plain.high, 3),
                    ],
                    "auc_adjusted": [
                        round(r.adjusted.auc, 3),
                        round(r.adjusted.low, 3),
                        round(r.adjusted.high, 3),
                    ],
                }
                for r in confound
            ]
        tables += [f"### {arm}", "", *age_confound_markdown(adjusted, COLUMNS)[4:]]
    results["setup"] = {"cohort": str(args.cohort), "steps": args.steps, "columns": COLUMNS}
    (args.out / "age_confound.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "age_confound.md").write_text("\n".join(tables) + "\n")
    print("\n".join(tables))


if __name__ == "__main__":
    main()
