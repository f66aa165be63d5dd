"""The command line end to end: phantom cohort -> train -> calibrate -> score -> evaluate."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

# a metrics line every 2 steps, checkpoints at 3 and 6 (for AUC against step)
TRAIN = {"log_every": 2, "checkpoint_every": 3, "milestones": [3]}


def madgan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "madgan_core.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"madgan {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_config_file) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    madgan(
        "phantom",
        "cohort",
        "--healthy",
        "18",  # 4 calib subjects: z-statistics, but too few for the noise fits
        "--ad",
        "3",
        "--mets",
        "2",
        "--various",
        "1",
        "--seed",
        "3",
        "--voxel-mm",
        "4",
        cwd=root,
    )
    tiny_config_file(root / "tiny.json", train=TRAIN)
    madgan(
        "train",
        "--manifest",
        "cohort/manifest.csv",
        "--out",
        "run",
        "--config",
        "tiny.json",
        "--no-progress",
        cwd=root,
    )
    return {
        "root": root,
        "manifest": root / "cohort" / "manifest.csv",
        "model": root / "run" / "model.pt",
    }


def test_train_writes_model_metrics_previews_and_checkpoints(trained):
    run = trained["root"] / "run"
    assert trained["model"].exists()
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 6 and all(np.isfinite(m["loss_l1"]) for m in metrics)
    assert any((run / "previews").glob("*.png"))
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt"))


def test_calibrate_then_score_with_maps(trained):
    root = trained["root"]
    out = madgan("calibrate", "run/model.pt", "--manifest", "cohort/manifest.csv", cwd=root)
    assert "healthy controls" in out.stdout
    # Too few calib controls for the noise fits: only the plain z-map tail.
    assert re.search(r"z-map scores for T1c \(\d controls\): ztail$", out.stdout, re.M)
    with open(trained["manifest"]) as handle:
        rows = list(csv.DictReader(handle))
    mets = next(r for r in rows if r["group"] == "mets")
    scan = trained["manifest"].parent / mets["path"]
    out = madgan(
        "score",
        "run/model.pt",
        str(scan),
        "--out",
        "scores",
        "--maps",
        "--sequence",
        "T1c",
        cwd=root,
    )
    assert "healthy control" in out.stdout
    row = json.loads((root / "scores" / "scores.jsonl").read_text().splitlines()[0])
    assert row["score_mean"] > 0 and 0 <= row["percentile_mean"] <= 100 and row["n_controls"] >= 1
    assert "score_ztail" in row
    # the z-map's findings go to the console line and to scores.jsonl
    assert "findings: " in out.stdout
    assert isinstance(row["regions"], list) and row["findings"]
    assert all(r["volume_ml"] >= 0.2 for r in row["regions"])
    assert all(r["signal"] in ("brighter", "darker") for r in row["regions"])
    stem = scan.name.replace(".nii.gz", "")
    heat = nib.load(root / "scores" / f"{stem}_heatmap.nii.gz")
    native = nib.load(scan)
    assert heat.shape == native.shape
    np.testing.assert_allclose(heat.affine, native.affine, atol=1e-5)
    values = np.asarray(heat.dataobj)
    assert np.isfinite(values).any() and np.isnan(values).any()  # unpredicted slices are marked
    assert (root / "scores" / f"{stem}_zmap.nii.gz").exists()
    # the findings' outlines, each valued by its rank, in the scan's own voxel space
    outlines = nib.load(root / "scores" / f"{stem}_findings.nii.gz")
    assert outlines.shape == native.shape and outlines.get_data_dtype() == np.uint8
    ranks = np.asarray(outlines.dataobj)
    assert set(np.unique(ranks)) == {0, *range(1, len(row["regions"]) + 1)}
    voxel_ml = abs(np.linalg.det(native.affine[:3, :3])) / 1000.0
    for region in row["regions"]:
        assert np.count_nonzero(ranks == region["rank"]) * voxel_ml == pytest.approx(
            region["volume_ml"], abs=1e-3
        )


def test_evaluate_writes_the_report(trained):
    root = trained["root"]
    out = madgan(
        "evaluate",
        "run/model.pt",
        "--manifest",
        "cohort/manifest.csv",
        "--out",
        "report",
        "--checkpoints",
        "run/checkpoints",
        cwd=root,
    )
    assert "AD-like" in out.stdout and "copy:mean" in out.stdout
    report = (root / "report" / "report.md").read_text()
    assert "| Comparison |" in report and "madgan:mean" in report
    for png in ("roc.png", "distributions_mean.png", "auc_vs_step.png"):
        assert (root / "report" / png).stat().st_size > 1000
