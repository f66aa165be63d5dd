"""Leave one anatomy out: does a model trained on some brains hold on a brain it never saw?

Usage::

    madgan phantom loao --anatomy mni head colin27 --healthy 60 --ad 18 --mets 15 \\
        --various 6 --voxel-mm 2 --seed 41
    python studies/leave_one_anatomy_out.py --cohort loao --out loao_runs --steps 600 \\
        --real colin27=/usr/share/mricron/templates/ch2bet.nii.gz \\
        --real colin27=/usr/share/mricron/templates/ch2.nii.gz

For each anatomy ``H`` of the cohort's ``anatomy`` column, a fold manifest
(``OUT/H/manifest.csv``) keeps the other anatomies' rows as they are and moves
every row of ``H`` to the test split: the model (``madgan train --preset demo``)
trains and calibrates on the other anatomies only. Every test scan is then scored
(``OUT/H/scores.jsonl``: the headline, its percentile among the model's controls,
the z-map scores, the findings and the domain check), and the study reports, for
the held-out anatomy and for the trained ones side by side:

- the healthy scans' headline percentiles: the share above the 95th (goal: at
  most 5 %), and the share the domain guard flags;
- the AUC of the headline, healthy against AD-like (T1) and against lesions (T1c);
- the share of lesions detected at 1 false-positive finding per healthy scan.

``--real LABEL=FILE`` scores a real scan of an anatomy as it is (not a phantom of
it) with the fold that held that anatomy out, and with the other folds, which saw it.

Everything is resumable: a fold's model and its scores are reused when present.
``OUT/loao.json`` holds every number; ``OUT/loao.md`` the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from madgan_core.cohort.evaluation.regions import scan_regions, summarise
from madgan_core.cohort.evaluation.stats import auc
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest

log = logging.getLogger("leave_one_anatomy_out")

HIGH_PERCENTILE = 95.0
COMPARISONS = {"AD-like (T1)": ("ad", "T1"), "metastases (T1c)": ("mets", "T1c")}
LESION_GROUPS = ("mets", "various")


def fold_rows(rows: list[ManifestRow], held_out: str) -> list[ManifestRow]:
    """The cohort with every row of ``held_out`` moved to the test split."""
    return [dataclasses.replace(r, split="test") if r.anatomy == held_out else r for r in rows]


def train_fold(manifest: Path, run: Path, steps: int, seed: int, device: str) -> Path:
    """``madgan train --preset demo`` on a fold's manifest (reused when its model exists)."""
    model = run / "model.pt"
    if model.exists():
        return model
    command = [
        sys.executable, "-m", "madgan_core.cli", "train", "--preset", "demo",
        "--manifest", str(manifest), "--out", str(run), "--steps", str(steps),
        "--seed", str(seed), "--device", device, "--no-progress",
    ]  # fmt: skip
    if (run / "checkpoints").is_dir():
        command.append("--resume")
    subprocess.run(command, check=True)
    return model


def score_files(
    model: Path, paths: list[Path], sequences: list[str], out: Path, device: str
) -> list[dict]:
    """``madgan score --sequence S`` on files, as a user runs it (one run per sequence);
    the ``scores.jsonl`` records in the order of ``paths``."""
    by_path = {}
    for sequence in sorted(set(sequences)):
        table = out / sequence / "scores.jsonl"
        mine = [str(p) for p, s in zip(paths, sequences, strict=True) if s == sequence]
        if not table.exists():
            command = [
                sys.executable, "-m", "madgan_core.cli", "score", str(model), *mine,
                "--sequence", sequence, "--out", str(out / sequence), "--device", device,
                "--no-progress",
            ]  # fmt: skip
            subprocess.run(command, check=True)
        for line in table.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                by_path[str(Path(record["path"]).resolve())] = record
    return [by_path[str(Path(p).resolve())] for p in paths]


def _headline(record: dict) -> tuple[float, float]:
    anomaly, percentile = record.get("score_anomaly"), record.get("percentile_anomaly")
    return (
        np.nan if anomaly is None else float(anomaly),
        np.nan if percentile is None else float(percentile),
    )


def summarise_anatomy(records: list[dict], rows: list[ManifestRow], regions: list) -> dict:
    """The figures of one anatomy's test scans (``records`` in the order of ``rows``)."""
    healthy = [rec for rec, row in zip(records, rows, strict=True) if row.group == "healthy"]
    percentiles = np.array([_headline(r)[1] for r in healthy])
    flagged = [not r.get("in_domain", True) for r in healthy]
    out: dict[str, object] = {
        "healthy_scans": len(healthy),
        "above_95th_pct": float(100 * np.mean(percentiles > HIGH_PERCENTILE)),
        "median_percentile": float(np.median(percentiles)),
        "guard_flagged_pct": float(100 * np.mean(flagged)),
        "auc": {},
        "detected_at_1fp": {},
        "z": {},
    }
    for name, (group, sequence) in COMPARISONS.items():
        h = [_headline(rec)[0] for rec, row in zip(records, rows, strict=True)
             if row.group == "healthy" and row.sequence == sequence]  # fmt: skip
        d = [_headline(rec)[0] for rec, row in zip(records, rows, strict=True)
             if row.group == group and row.sequence == sequence]  # fmt: skip
        out["auc"][name] = auc(h, d) if h and d else None
    for summary in summarise(regions):
        out["detected_at_1fp"][f"{summary.group} ({summary.sequence})"] = summary.detected["1"]
    for rec, row in zip(records, rows, strict=True):
        key = f"{row.group}{row.stage if row.group == 'ad' else ''} ({row.sequence})"
        found = rec.get("regions") or []
        features = {
            "zmean": rec.get("score_zmean"),
            "zvolume": rec.get("score_zvolume"),
            "anomaly": rec.get("score_anomaly"),
            "percentile": rec.get("percentile_anomaly"),
            "spread": rec.get("departure_spread"),
            "findings": len(found),
            "largest_ml": max([f["volume_ml"] for f in found] + [0.0]),
            "in_domain": rec.get("in_domain"),
        }
        z = out["z"].setdefault(key, {name: [] for name in features})
        for name, value in features.items():
            z[name].append(value)
    return out


def lesion_regions(model, rows: list[ManifestRow]) -> list:
    """The findings of the lesioned rows and of the healthy rows of their sequences."""
    masked = {r.sequence for r in rows if r.mask is not None}
    chosen = [r for r in rows if r.mask is not None or
              (r.group == "healthy" and r.sequence in masked)]  # fmt: skip
    return [scan_regions(model, r) for r in chosen]


def run_fold(rows: list[ManifestRow], held_out: str, args: argparse.Namespace) -> dict:
    from madgan_core.model.checkpoint import load_model

    folder = args.out / held_out
    manifest = write_manifest(fold_rows(rows, held_out), folder / "manifest.csv")
    fold = read_manifest(manifest)
    model_path = train_fold(manifest, folder / "run", args.steps, args.seed, args.device)
    tests = [r for r in fold if r.split == "test"]
    records = score_files(
        model_path,
        [r.path for r in tests],
        [r.sequence for r in tests],
        folder / "scores",
        args.device,
    )
    by_path = {r.path.resolve(): rec for r, rec in zip(tests, records, strict=True)}
    model = load_model(model_path, device=args.device)
    regions_file = folder / "regions.jsonl"
    if regions_file.exists():
        from madgan_core.cohort.evaluation.regions import ScanRegions

        regions = [ScanRegions(**json.loads(x)) for x in regions_file.read_text().splitlines()]
    else:
        regions = lesion_regions(model, tests)
        regions_file.write_text("".join(json.dumps(dataclasses.asdict(x)) + "\n" for x in regions))
    region_of = {Path(x.path).resolve(): x for x in regions}
    result = {"held_out": held_out, "anatomies": {}}
    for anatomy in sorted({r.anatomy for r in rows}):
        mine = [r for r in tests if r.anatomy == anatomy]
        result["anatomies"][anatomy] = {
            "trained": anatomy != held_out,
            **summarise_anatomy(
                [by_path[r.path.resolve()] for r in mine],
                mine,
                [region_of[r.path.resolve()] for r in mine if r.path.resolve() in region_of],
            ),
        }
    return result


def score_real(real: list[tuple[str, Path]], folds: list[str], args: argparse.Namespace) -> list:
    """Each real scan scored by every fold's model, marked held out or trained."""
    found = []
    for held_out in folds:
        model = args.out / held_out / "run" / "model.pt"
        paths = [path for _, path in real]
        records = score_files(
            model, paths, ["T1"] * len(paths), args.out / held_out / "real", args.device
        )
        for (label, path), rec in zip(real, records, strict=True):
            anomaly, percentile = _headline(rec)
            found.append({
                "file": str(path), "anatomy": label, "model_held_out": held_out,
                "held_out": label == held_out, "anomaly": anomaly, "percentile": percentile,
                "in_domain": rec.get("in_domain"), "domain_reasons": rec.get("domain_reasons"),
                "findings": len(rec.get("regions") or []),
                "zmean": rec.get("score_zmean"), "zvolume": rec.get("score_zvolume"),
                "spread": rec.get("departure_spread"),
                "largest_ml": max([f["volume_ml"] for f in rec.get("regions") or []] + [0.0]),
            })  # fmt: skip
    return found


def markdown(folds: list[dict], real: list[dict]) -> str:
    lines = [
        "| held out | anatomy scored | healthy scans | above 95th pct | guard flags | "
        "AUC AD-like (T1) | AUC metastases (T1c) | detected at 1 FP (mets, T1c) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fold in folds:
        for anatomy, s in fold["anatomies"].items():
            role = "**held out**" if not s["trained"] else "trained"
            det = s["detected_at_1fp"].get("mets (T1c)")
            lines.append(
                f"| {fold['held_out']} | {anatomy} ({role}) | {s['healthy_scans']} | "
                f"{s['above_95th_pct']:.0f} % | {s['guard_flagged_pct']:.0f} % | "
                f"{_num(s['auc']['AD-like (T1)'])} | {_num(s['auc']['metastases (T1c)'])} | "
                f"{_num(det, pct=True)} |"
            )
    if real:
        lines += ["", "| real scan | model | anomaly | percentile | findings | domain |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in real:
            role = "held out" if r["held_out"] else "trained on it"
            domain = "in domain" if r["in_domain"] else f"flagged: {r['domain_reasons']}"
            lines.append(
                f"| {Path(r['file']).name} | without {r['model_held_out']} ({role}) | "
                f"{r['anomaly']:.2f} | {r['percentile']:.0f} | {r['findings']} | {domain} |"
            )
    return "\n".join(lines) + "\n"


def _num(value, pct: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{100 * value:.0f} %" if pct else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cohort", type=Path, required=True, help="phantom cohort folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", nargs="*", help="run these held-out anatomies only")
    p.add_argument("--real", action="append", default=[], metavar="LABEL=FILE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = read_manifest(args.cohort / "manifest.csv")
    anatomies = sorted({r.anatomy for r in rows})
    if len(anatomies) < 2 or "" in anatomies:
        p.error("the cohort needs an anatomy column with at least two anatomies")
    folds = [run_fold(rows, h, args) for h in (args.only or anatomies)]
    real = [(text.split("=", 1)[0], Path(text.split("=", 1)[1])) for text in args.real]
    scored = score_real(real, [f["held_out"] for f in folds], args) if real else []
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "loao.json").write_text(json.dumps({"folds": folds, "real": scored}, indent=1))
    table = markdown(folds, scored)
    (args.out / "loao.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
