"""Adapting a model to a site: how many healthy scans and steps bring an unseen brain back?

Usage (after ``leave_one_anatomy_out.py``, whose fold held ``ANATOMY`` out)::

    python studies/site_adaptation.py --fold loao_runs/colin27 --out adapt \\
        --subjects 6 12 20 --steps 300

The fold's model never saw ``ANATOMY``. Its healthy subjects outside the test split
play a site's own healthy scans: for each ``n`` of ``--subjects``, the first ``n``
of them (each with a T1 and a T1c scan) are split 60/40 into fine-tuning and
calibration scans. Two arms are measured:

- ``calibrate``: the fold's model as it is, calibrated on the original controls
  plus all ``n`` site subjects (``madgan calibrate``);
- ``fine-tune``: ``madgan train --init`` on the site's fine-tuning scans for
  ``--steps`` steps, calibrated on the original controls plus the site's
  calibration scans.

Each is scored on the held-out anatomy's test split (healthy, AD-like and lesioned
scans, never used above) with the figures of ``leave_one_anatomy_out.py``:
healthy headline percentiles, AUCs and detection at 1 false positive per healthy scan.
``OUT/adaptation.json`` holds them; ``OUT/adaptation.md`` the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from leave_one_anatomy_out import lesion_regions, score_files, summarise_anatomy

from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest

log = logging.getLogger("site_adaptation")
FINE_TUNE_SHARE = 0.6


def site_subjects(rows: list[ManifestRow], anatomy: str) -> list[str]:
    """The healthy subjects of ``anatomy``, in a fixed order."""
    subjects = {r.subject for r in rows if r.anatomy == anatomy and r.group == "healthy"}
    return sorted(subjects)


def adaptation_rows(
    fold: list[ManifestRow], original: list[ManifestRow], anatomy: str, site: list[str], tune: bool
) -> list[ManifestRow]:
    """A manifest: the original controls, and the site's subjects as train/calib."""
    n_tune = round(FINE_TUNE_SHARE * len(site)) if tune else 0
    split = {s: ("train" if k < n_tune else "calib") for k, s in enumerate(site)}
    rows = [r for r in original if r.anatomy != anatomy and r.split == "calib"]
    rows += [dataclasses.replace(r, split=split[r.subject]) for r in fold if r.subject in split]
    return rows


def evaluate(model: Path, tests: list[ManifestRow], out: Path, device: str) -> dict:
    from madgan_core.model.checkpoint import load_model

    records = score_files(
        model, [r.path for r in tests], [r.sequence for r in tests], out / "scores", device
    )
    regions = lesion_regions(load_model(model, device=device), tests)
    return summarise_anatomy(records, tests, regions)


def run(args: argparse.Namespace) -> dict:
    fold = read_manifest(args.fold / "manifest.csv")
    anatomy = args.fold.name
    original = read_manifest(args.cohort / "manifest.csv")
    test_subjects = {r.subject for r in original if r.anatomy == anatomy and r.split == "test"}
    tests = [r for r in fold if r.subject in test_subjects]
    pool = [s for s in site_subjects(original, anatomy) if s not in test_subjects]
    if max(args.subjects) > len(pool):
        log.warning("only %d site subjects outside the test split", len(pool))
    base = args.fold / "run" / "model.pt"
    results = {"anatomy": anatomy, "steps": args.steps, "arms": []}
    results["arms"].append(
        {"arm": "none", "subjects": 0, **evaluate(base, tests, args.out / "none", args.device)}
    )
    for n in args.subjects:
        site = pool[:n]
        for arm in ("calibrate", "fine-tune"):
            folder = args.out / f"{arm}-{n}"
            manifest = write_manifest(
                adaptation_rows(fold, original, anatomy, site, arm == "fine-tune"),
                folder / "manifest.csv",
            )
            model = folder / "run" / "model.pt"
            if not model.exists():
                if arm == "calibrate":
                    model.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(base, model)
                    command = ["calibrate", str(model), "--manifest", str(manifest)]
                else:
                    command = [
                        "train", "--init", str(base), "--manifest", str(manifest),
                        "--out", str(folder / "run"), "--steps", str(args.steps),
                    ]  # fmt: skip
                subprocess.run(
                    [sys.executable, "-m", "madgan_core.cli", *command, "--device", args.device,
                     "--no-progress"],
                    check=True,
                )  # fmt: skip
            figures = evaluate(model, tests, folder, args.device)
            results["arms"].append({"arm": arm, "subjects": len(site), **figures})
    return results


def markdown(results: dict) -> str:
    lines = [
        f"Held-out anatomy: {results['anatomy']}; fine-tuning {results['steps']} steps.",
        "",
        "| site subjects | arm | healthy above 95th pct | guard flags | AUC AD-like (T1) | "
        "AUC metastases (T1c) | detected at 1 FP (mets) |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in results["arms"]:
        det = a["detected_at_1fp"].get("mets (T1c)")
        auc_ad, auc_mets = a["auc"]["AD-like (T1)"], a["auc"]["metastases (T1c)"]
        lines.append(
            f"| {a['subjects']} | {a['arm']} | {a['above_95th_pct']:.0f} % | "
            f"{a['guard_flagged_pct']:.0f} % | {auc_ad:.3f} | {auc_mets:.3f} | "
            f"{'-' if det is None else f'{100 * det:.0f} %'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fold", type=Path, required=True, help="a leave-one-anatomy-out fold folder")
    p.add_argument("--cohort", type=Path, required=True, help="the phantom cohort folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--subjects", type=int, nargs="+", default=[6, 12, 20])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adaptation.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "adaptation.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
