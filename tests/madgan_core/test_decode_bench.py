"""``bench/decode.py`` runs on a small file and reports every method byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from madgan_testing.brains import synthetic_brain

REPO = Path(__file__).resolve().parents[2]


def test_decode_bench_reports_identical_arrays(tmp_path):
    path = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_brain((16, 18, 14)).astype(np.float32), np.eye(4)), path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(REPO / "bench" / "decode.py"), "--peak-reps", "0"]
    proc = subprocess.run(
        [*cmd, "--reps", "1", "--file", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = json.loads(proc.stdout)["files"]
    methods = result["methods"]
    assert {"stdlib/nibabel", "stdlib/bare", "reader/stdlib", "reader/fast"} <= set(methods)
    assert all(m["identical"] and m["best_s"] > 0 for m in methods.values())
    assert methods["stdlib/nibabel"]["speedup_vs_stdlib"] == 1.0
