"""Choose how the calibrated headline combines the z-map scores, on a validation cohort.

The headline must serve focal lesions (``zvolume``, ``ztail``) and diffuse change
(``zmean``) at once. Each candidate below turns a scan's three z-map scores into one
number using only the healthy controls' scores stored with the model (their
leave-one-out values, as calibration keeps them). For every comparison of the cohort
(healthy test scans against each group and stage) the script gives each candidate's
AUC and its shortfall from the best single z-map score of that row: the headline
should be within 0.02 of it everywhere.

Never run this on the demo's test split::

    madgan phantom hval --healthy 100 --ad 60 --mets 30 --various 30 --seed 21 --voxel-mm 2
    python studies/ablation_manifest.py --train madgan_demo/cohort/manifest.csv \\
        --validation hval/manifest.csv --validation-out hval_manifest.csv
    cp madgan_demo/run/model.pt hval_model.pt
    madgan calibrate hval_model.pt --manifest hval_manifest.csv
    madgan evaluate hval_model.pt --manifest hval_manifest.csv --out hval_eval
    python studies/headline_validation.py hval_model.pt hval_eval/scores.csv --out headline.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats as scistats
from sklearn.preprocessing import PowerTransformer

from madgan_core.cohort.evaluation.cohort import read_scores
from madgan_core.cohort.evaluation.stats import auc, comparisons_for, split_scores
from madgan_core.model.checkpoint import load_model
from madgan_core.modes import normal_score
from madgan_core.scans.atomic import atomic_write_text

PARTS = ("ztail", "zvolume", "zmean")
SINGLE = tuple(f"madgan:{p}" for p in PARTS)

# A candidate maps (controls: parts x n, scan: parts) to one score; higher is more anomalous.
Candidate = Callable[[np.ndarray, np.ndarray], float]


def _sd(controls: np.ndarray, scan: np.ndarray) -> np.ndarray:
    mean = controls.mean(axis=1)
    sd = controls.std(axis=1, ddof=1)
    return (scan - mean) / np.where(sd > 0, sd, 1.0)


def _upper_sd(controls: np.ndarray, scan: np.ndarray) -> np.ndarray:
    """Standardised by the spread of the controls above their median (the tail a
    healthy scan reaches), not the whole spread."""
    median = np.median(controls, axis=1)
    above = np.where(controls > median[:, None], controls - median[:, None], np.nan)
    scale = np.sqrt(np.nanmean(above**2, axis=1))
    return (scan - median) / np.where(scale > 0, scale, 1.0)


def _yeo_johnson(controls: np.ndarray, scan: np.ndarray) -> np.ndarray:
    out = []
    for k in range(len(scan)):
        fit = PowerTransformer(method="yeo-johnson").fit(controls[k][:, None])
        out.append(float(fit.transform(np.array([[scan[k]]]))[0, 0]))
    return np.asarray(out)


def _rank_normal(controls: np.ndarray, scan: np.ndarray) -> np.ndarray:
    """Normal scores of the scan's rank among the controls; past the controls' range,
    the plain standardisation beyond the largest control's."""
    n = controls.shape[1]
    out = []
    for k in range(len(scan)):
        values = np.sort(controls[k])
        rank = np.searchsorted(values, scan[k], side="right")
        inside = scistats.norm.ppf((rank + 0.5) / (n + 1))
        sd = values.std(ddof=1) or 1.0
        beyond = scistats.norm.ppf((n + 0.5) / (n + 1)) + (scan[k] - values[-1]) / sd
        out.append(beyond if scan[k] > values[-1] else inside)
    return np.asarray(out)


def _normal_scores(controls: np.ndarray, scan: np.ndarray) -> np.ndarray:
    """The product's :func:`~madgan_core.modes.normal_score`, part by part."""
    return np.array([normal_score(controls[k], scan[k]) for k in range(len(scan))])


def _pick(indices: tuple[int, ...], combine: Callable, scale: Callable) -> Candidate:
    def candidate(controls: np.ndarray, scan: np.ndarray) -> float:
        return float(combine(scale(controls[list(indices)], scan[list(indices)])))

    return candidate


def _stouffer(values: np.ndarray) -> float:
    return float(values.sum() / np.sqrt(len(values)))


def _positive_sum(values: np.ndarray) -> float:
    return float(np.maximum(values, 0.0).sum())


ALL, FOCAL_DIFFUSE = (0, 1, 2), (1, 2)
CANDIDATES: dict[str, Candidate] = {
    "max of 3, SD (current)": _pick(ALL, np.max, _sd),
    "max of zvolume, zmean, SD": _pick(FOCAL_DIFFUSE, np.max, _sd),
    "max of 3, upper SD": _pick(ALL, np.max, _upper_sd),
    "max of zvolume, zmean, upper SD": _pick(FOCAL_DIFFUSE, np.max, _upper_sd),
    "max of 3, Yeo-Johnson": _pick(ALL, np.max, _yeo_johnson),
    "max of zvolume, zmean, Yeo-Johnson": _pick(FOCAL_DIFFUSE, np.max, _yeo_johnson),
    "max of 3, rank normal": _pick(ALL, np.max, _rank_normal),
    "max of zvolume, zmean, rank normal": _pick(FOCAL_DIFFUSE, np.max, _rank_normal),
    "max of 3, normal scores": _pick(ALL, np.max, _normal_scores),
    "max of zvolume, zmean, normal scores": _pick(FOCAL_DIFFUSE, np.max, _normal_scores),
    "Stouffer of 3, SD": _pick(ALL, _stouffer, _sd),
    "sum of positive parts, SD": _pick(ALL, _positive_sum, _sd),
    "sum of positive zvolume, zmean, SD": _pick(FOCAL_DIFFUSE, _positive_sum, _sd),
}


def control_table(reference, sequence: str) -> np.ndarray:
    """The controls' (leave-one-out) z-map scores of ``sequence``: parts x controls."""
    chosen = [i for i, s in enumerate(reference.sequences) if s == sequence]
    table = np.stack([reference.scores[p][chosen] for p in PARTS])
    return table[:, np.isfinite(table).all(axis=0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="model calibrated on the validation controls")
    parser.add_argument(
        "scores", type=Path, help="scores.csv of `madgan evaluate` on its test rows"
    )
    parser.add_argument("--out", type=Path, default=Path("headline_validation.json"))
    args = parser.parse_args()

    reference = load_model(args.model).reference
    records = read_scores(args.scores)
    tables = {seq: control_table(reference, seq) for seq in {str(r["sequence"]) for r in records}}
    for record in records:
        scan = np.array([float(record[f"madgan:{p}"]) for p in PARTS])
        controls = tables[str(record["sequence"])]
        for name, candidate in CANDIDATES.items():
            record[name] = candidate(controls, scan)

    rows = {}
    for comparison in comparisons_for(records):
        row = {}
        for column in (*SINGLE, *CANDIDATES):
            healthy, disease = split_scores(records, comparison, column)
            row[column] = auc(healthy, disease)
        rows[comparison.label] = row
    names = list(CANDIDATES)
    print("| comparison | best single | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 2) + "|")
    shortfall = {name: 0.0 for name in names}
    for label, row in rows.items():
        best = max(row[c] for c in SINGLE)
        for name in names:
            shortfall[name] = max(shortfall[name], best - row[name])
        cells = " | ".join(f"{row[n]:.3f}" for n in names)
        print(f"| {label} | {best:.3f} | {cells} |")
    print("| largest shortfall | | " + " | ".join(f"{shortfall[n]:.3f}" for n in names) + " |")
    result = {
        "model": str(args.model),
        "scores": str(args.scores),
        "aucs": rows,
        "largest_shortfall": shortfall,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
