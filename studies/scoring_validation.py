"""Choose z-map scoring settings on a validation cohort, never on the test cohort.

Usage::

    madgan phantom val --healthy 60 --ad 45 --mets 20 --various 20 --seed 1 --voxel-mm 2
    python studies/scoring_validation.py --model RUN/model.pt --manifest val/manifest.csv

The validation cohort comes from another seed than the evaluation cohort, so no
subject is shared. Every scan is reconstructed once; then, for each smoothing of
the log ℓ2 and each candidate score, the healthy subjects are split in halves
(``--repeats`` random splits): one half builds the z-statistics and noise fits,
the other is scored with the diseased scans. The script prints the mean AUC per
group and stage as a markdown table and writes the same numbers as JSON
(``--out``). Noise-adjusted candidates (``~noise``) subtract the healthy line of
the candidate against the scan's log noise, fitted on the calibration half with
each control left out of its own z-statistics.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from madgan_core.cohort.evaluation.cohort import reconstruct_cohort
from madgan_core.cohort.evaluation.stats import auc
from madgan_core.config import ScoreConfig
from madgan_core.model.checkpoint import load_model
from madgan_core.model.zstats import FOREGROUND_LEVEL, NoiseFit, ZStatsBuilder, log_noise
from madgan_core.scans.manifest import read_manifest
from madgan_core.scoring.calibrate import leave_one_out_features

TAIL_PERCENTS = (0.1, 1.0, 10.0)
THRESHOLDS = (3.0, 4.0, 5.0)


def candidates(z: np.ndarray, brain: np.ndarray) -> dict[str, float]:
    values = z[brain & np.isfinite(z)]
    out = {}
    for pct in TAIL_PERCENTS:
        k = max(1, int(round(pct / 100 * values.size)))
        out[f"top {pct:g}%"] = float(np.mean(np.partition(values, values.size - k)[-k:]))
    for t in THRESHOLDS:
        out[f"% brain z>{t:g}"] = float(100.0 * np.count_nonzero(values > t) / values.size)
    out["mean z"] = float(values.mean())
    out["median z"] = float(np.median(values))
    out["mean max(z, 0)"] = float(np.maximum(values, 0.0).mean())
    return out


def reconstruct(model, manifest: Path) -> list[dict]:
    rows = read_manifest(manifest)
    scans = []
    for item in tqdm(reconstruct_cohort(model, rows), total=len(rows), desc="reconstructing"):
        row, slab = item.row, item.slab
        scans.append(
            {
                "group": "healthy" if row.group == "healthy" else f"{row.group} {row.stage}",
                "subject": row.subject,
                "sequence": row.sequence,
                "errors": item.errors.slice_maps()[0].astype(np.float16),
                "brain": slab.slices > FOREGROUND_LEVEL,
                "noise": log_noise(slab.slices),
                "mean ℓ2": item.scores["mean"],
            }
        )
    return scans


def evaluate_split(
    scans: list[dict], calib: set[str], sequence: str, settings: ScoreConfig
) -> dict[tuple, float]:
    """AUC per (group, candidate) for one calibration half of the healthy subjects."""
    of_sequence = [s for s in scans if s["sequence"] == sequence]
    controls = [s for s in of_sequence if s["group"] == "healthy" and s["subject"] in calib]
    tested = [s for s in of_sequence if not (s["group"] == "healthy" and s["subject"] in calib)]
    maps = [s["errors"].astype(np.float32) for s in controls]
    builder = ZStatsBuilder.of(maps, settings)
    stats = builder.finalize()
    brains = [s["brain"] for s in controls]
    own = leave_one_out_features(builder, zip(maps, brains, strict=True), candidates)
    noises = np.array([s["noise"] for s in controls])
    feats = [
        candidates(stats.zmap(s["errors"].astype(np.float32), settings), s["brain"]) for s in tested
    ]
    for name in list(feats[0]):
        fit = NoiseFit.fit(noises, np.array([f[name] for f in own]))
        for f, s in zip(feats, tested, strict=True):
            f[f"{name} ~noise"] = fit.adjust(f[name], s["noise"])
    for f, s in zip(feats, tested, strict=True):
        f["mean ℓ2 (paper)"] = s["mean ℓ2"]
    healthy = [f for f, s in zip(feats, tested, strict=True) if s["group"] == "healthy"]
    out = {}
    for group in sorted({s["group"] for s in tested} - {"healthy"}):
        sick = [f for f, s in zip(feats, tested, strict=True) if s["group"] == group]
        for name in feats[0]:
            out[(group, name)] = auc([f[name] for f in healthy], [f[name] for f in sick])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True, help="validation cohort")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--repeats", type=int, default=4, help="random calibration halves")
    parser.add_argument("--out", type=Path, default=Path("scoring_validation.json"))
    args = parser.parse_args()

    model = load_model(args.model, device="auto")
    scans = reconstruct(model, args.manifest)
    subjects = sorted({s["subject"] for s in scans if s["group"] == "healthy"})
    results: dict[str, dict[str, dict[str, float]]] = {}
    for sigma in args.sigmas:
        settings = dataclasses.replace(model.config.score, smooth_sigma_px=sigma)
        runs: dict[tuple, list[float]] = {}
        for repeat in range(args.repeats):
            order = np.random.default_rng(repeat).permutation(subjects)
            calib = set(order[: len(order) // 2])
            for sequence in sorted({s["sequence"] for s in scans}):
                for key, value in evaluate_split(scans, calib, sequence, settings).items():
                    runs.setdefault(key, []).append(value)
        table = results.setdefault(f"smoothing {sigma:g} px", {})
        for (group, name), aucs in runs.items():
            table.setdefault(name, {})[group] = float(np.mean(aucs))
    groups = sorted({g for t in results.values() for row in t.values() for g in row})
    for title, table in results.items():
        print(f"\n### {title}\n\n| candidate | {' | '.join(groups)} |")
        print("|---" * (len(groups) + 1) + "|")
        for name, row in table.items():
            print(
                f"| {name} | "
                + " | ".join(f"{row.get(g, float('nan')):.3f}" for g in groups)
                + " |"
            )
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
