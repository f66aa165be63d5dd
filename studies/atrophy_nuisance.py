"""What spreads healthy scans' brain-wide z, and how far early atrophy could be read past it.

Usage::

    madgan phantom val --healthy 60 --ad 45 --mets 20 --various 20 --seed 1 --voxel-mm 2
    python studies/atrophy_nuisance.py --model RUN/model.pt --cohort val \
        [--manifest val_manifest.csv] [--out nuisance.json]

Uses a phantom cohort's ``subjects.jsonl`` (each scan's true generation parameters) and
its ``manifest.csv``, or another manifest of its scans (``--manifest``, e.g. one from
``ablation_manifest.py`` that uses every healthy subject for calib and test).
Every healthy ``calib`` and ``test`` scan and every AD-like scan of the sequence is
reconstructed once. The healthy ``calib`` scans give the z-statistics (each control
scored leaving itself out); on them the script reports how the unadjusted brain-wide
mean z correlates with each scanner and anatomy parameter, and how much of its variance
sets of them explain. Then it fits the healthy line of the mean z on the calib controls
with the measured noise (the product's ``zmean``) and with true generation parameters
added (oracles no real scan offers), and gives each fit's AUC, healthy ``test`` against
each AD stage: how far the score could go if those nuisances were known.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from madgan_core.cohort.evaluation.cohort import reconstruct_cohort
from madgan_core.cohort.evaluation.stats import auc
from madgan_core.cohort.phantom.cohort import SUBJECTS_FILE
from madgan_core.config import ScoreConfig
from madgan_core.model.checkpoint import load_model
from madgan_core.model.zstats import FOREGROUND_LEVEL, ZStatsBuilder, log_noise, zmap_features
from madgan_core.scans.manifest import read_manifest
from madgan_core.scoring.calibrate import leave_one_out_features

COVARIATES = {
    "measured log noise": lambda s: s["log_noise"],
    "gamma": lambda s: s["scanner"]["gamma"],
    "log noise sigma": lambda s: float(np.log(s["scanner"]["noise_sigma"])),
    "bias strength": lambda s: s["scanner"]["bias_strength"],
    "rotation (sum of |deg|)": lambda s: float(np.abs(s["anatomy"]["rotation_deg"]).sum()),
    "scale (product)": lambda s: float(np.prod(s["anatomy"]["scale"])),
    "ventricle mm": lambda s: s["anatomy"]["ventricle_mm"],
    "hippocampus mm": lambda s: s["anatomy"]["hippocampus_mm"],
    "cortical atrophy": lambda s: s["anatomy"]["cortical_atrophy"],
}
LINES = {
    "noise (the product's zmean)": ["measured log noise"],
    "noise + rotation": ["measured log noise", "rotation (sum of |deg|)"],
    "noise + gamma": ["measured log noise", "gamma"],
    "noise + gamma + bias": ["measured log noise", "gamma", "bias strength"],
    "every scanner and pose nuisance": [
        "measured log noise",
        "gamma",
        "bias strength",
        "rotation (sum of |deg|)",
        "scale (product)",
    ],
}


def reconstruct(model, cohort: Path, manifest: Path, sequence: str) -> list[dict]:
    truth = {}
    for line in (cohort / SUBJECTS_FILE).read_text().splitlines():
        record = json.loads(line)
        truth[(record["subject"], record["sequence"])] = record
    rows = [
        r
        for r in read_manifest(manifest)
        if r.sequence == sequence
        and (r.group == "ad" or (r.group == "healthy" and r.split in ("calib", "test")))
    ]
    scans = []
    for item in tqdm(reconstruct_cohort(model, rows), total=len(rows), desc="reconstructing"):
        row, slab = item.row, item.slab
        scans.append(
            {
                "group": row.group,
                "stage": row.stage,
                "split": row.split,
                "errors": item.errors.slice_maps()[0].astype(np.float32),
                "slices": slab.slices,
                "log_noise": log_noise(slab.slices),
                **truth[(row.subject, row.sequence)],
            }
        )
    return scans


def analyse(scans: list[dict], settings: ScoreConfig) -> dict:
    controls = [s for s in scans if s["group"] == "healthy" and s["split"] == "calib"]
    tested = [s for s in scans if not (s["group"] == "healthy" and s["split"] == "calib")]
    builder = ZStatsBuilder.of([s["errors"] for s in controls], settings)
    stats = builder.finalize()
    own = leave_one_out_features(
        builder, ((s["errors"], s["slices"] > FOREGROUND_LEVEL) for s in controls)
    )
    for s, features in zip(controls, own, strict=True):
        s["zmean"] = features["zmean"]
    for s in tested:
        s["zmean"] = zmap_features(stats.zmap(s["errors"], settings), s["slices"], settings)[
            "zmean"
        ]

    y = np.array([s["zmean"] for s in controls])
    correlations = {
        name: float(np.corrcoef([get(s) for s in controls], y)[0, 1])
        for name, get in COVARIATES.items()
    }

    def design(items, names):
        return np.array([[1.0] + [COVARIATES[n](s) for n in names] for s in items])

    healthy = [s for s in tested if s["group"] == "healthy"]
    groups = {
        f"healthy {s['split']}" if s["group"] == "healthy" else f"AD stage {s['stage']}"
        for s in scans
    }
    summary = {
        g: [
            float(np.mean([s["zmean"] for s in scans if _label(s) == g])),
            float(np.std([s["zmean"] for s in scans if _label(s) == g])),
        ]
        for g in sorted(groups)
    }
    lines = {}
    for line, names in LINES.items():
        beta, *_ = np.linalg.lstsq(design(controls, names), y, rcond=None)
        residual = y - design(controls, names) @ beta
        r2 = 1.0 - float(np.sum(residual**2) / np.sum((y - y.mean()) ** 2))
        score = {id(s): s["zmean"] - design([s], names)[0] @ beta for s in tested}
        aucs = {}
        for stage in sorted({s["stage"] for s in tested if s["group"] == "ad"}):
            sick = [s for s in tested if s["group"] == "ad" and s["stage"] == stage]
            aucs[f"AD stage {stage}"] = auc(
                [score[id(s)] for s in healthy], [score[id(s)] for s in sick]
            )
        lines[line] = {"r2_on_controls": r2, "auc": aucs}
    return {
        "controls": len(controls),
        "healthy_test": len(healthy),
        "brain_wide_mean_z": summary,
        "correlation_with_control_mean_z": correlations,
        "healthy_lines": lines,
    }


def _label(s: dict) -> str:
    return f"healthy {s['split']}" if s["group"] == "healthy" else f"AD stage {s['stage']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--cohort", type=Path, required=True, help="a phantom cohort folder")
    parser.add_argument("--manifest", type=Path, help="default: COHORT/manifest.csv")
    parser.add_argument("--sequence", default="T1")
    parser.add_argument("--out", type=Path, default=Path("atrophy_nuisance.json"))
    args = parser.parse_args()
    manifest = args.manifest or args.cohort / "manifest.csv"
    model = load_model(args.model, device="auto")
    scans = reconstruct(model, args.cohort, manifest, args.sequence)
    result = analyse(scans, model.config.score)
    print(f"\n{result['controls']} calib controls, {result['healthy_test']} healthy test scans\n")
    print("| group | brain-wide mean z (mean ± SD) |\n|---|---|")
    for group, (m, sd) in result["brain_wide_mean_z"].items():
        print(f"| {group} | {m:.2f} ± {sd:.2f} |")
    print("\n| parameter | r with the controls' mean z |\n|---|---|")
    for name, r in result["correlation_with_control_mean_z"].items():
        print(f"| {name} | {r:+.2f} |")
    stages = sorted({k for v in result["healthy_lines"].values() for k in v["auc"]})
    print(f"\n| healthy line | R² on controls | {' | '.join(stages)} |")
    print("|---" * (len(stages) + 2) + "|")
    for line, v in result["healthy_lines"].items():
        cells = " | ".join(f"{v['auc'][s]:.3f}" for s in stages)
        print(f"| {line} | {v['r2_on_controls']:.2f} | {cells} |")
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
