"""``madgan score``, ``calibrate`` and ``evaluate`` under torchrun: two gloo processes on the CPU
give one process's results bit for bit, and a run whose rank was killed continues when run again.

Each torchrun launch costs a few seconds (two Python processes importing torch), so the
cohort is small: seven 4 mm synthetic brains and the tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from madgan_core.cli import main
from madgan_core.runtime.sharding import part_stem
from madgan_core.scans.manifest import ManifestRow, write_manifest
from tests.madgan_core.test_bad_inputs import brain_scan

REPO = Path(__file__).resolve().parents[2]
SPLITS = ("calib", "test", "calib", "test", "calib", "test", "test")
GROUPS = ("healthy", "healthy", "healthy", "ad", "healthy", "ad", "healthy")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, tiny_model_file):
    folder = tmp_path_factory.mktemp("cohort")
    rows = [
        ManifestRow(brain_scan(folder / f"s{i}.nii.gz", seed=i), f"sub{i}", group, 0, "T1", split)
        for i, (split, group) in enumerate(zip(SPLITS, GROUPS, strict=True))
    ]
    manifest = write_manifest(rows, folder / "manifest.csv")
    return folder, tiny_model_file(folder / "model.pt"), manifest, rows


def torchrun(*args: str, entry: list[str] | None = None, env: dict | None = None):
    """``madgan ARGS`` as two gloo processes on this machine."""
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environ.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += entry or ["-m", "madgan_core.cli"]
    cmd += [*args, "--device", "cpu", "--no-progress"]
    # Its own session, so a timeout takes the ranks down with the launcher.
    with subprocess.Popen(
        cmd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_score_under_torchrun_gives_the_rows_of_one_process(cohort, tmp_path):
    folder, model, _manifest, rows = cohort
    scans = [str(r.path) for r in rows]
    args = ["score", str(model), *scans, "--window-batch", "4"]
    assert main([*args, "--out", str(tmp_path / "one"), "--device", "cpu", "--no-progress"]) == 0
    proc = torchrun(*args, "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("scores.csv", "scores.jsonl"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["scores.csv", "scores.jsonl"]
    # Each rank printed the lines of the scans it scored: every scan was scored once.
    scored = [line.split(":")[0] for line in proc.stdout.splitlines() if "mean score" in line]
    assert sorted(scored) == [f"s{i}" for i in range(len(rows))]


def test_evaluate_after_a_killed_rank_continues_to_the_rows_of_one_process(cohort, tmp_path):
    _folder, model, manifest, rows = cohort
    args = ["evaluate", str(model), "--manifest", str(manifest)]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one), "--device", "cpu", "--no-progress"]) == 0

    dies = [str(REPO / "tests" / "madgan_core" / "rank_dies.py")]
    proc = torchrun(*args, "--out", str(two), entry=dies, env={"MADGAN_TEST_DIE_RANK": "1"})
    assert proc.returncode != 0
    parts = two / "scores.csv.parts"
    test_rows = [r for r in rows if r.split == "test"]
    # Rank 1 took the 2nd and 4th test scans; the 2nd's part was written whole before the
    # kill, the 4th was never scored. Rank 0 was stopped wherever it was.
    assert (parts / f"{part_stem(str(test_rows[1].path))}.json").exists()
    assert not (parts / f"{part_stem(str(test_rows[3].path))}.json").exists()
    assert not (two / "scores.csv").exists()
    kept = len(list(parts.glob("[!.]*.json")))  # not counting a temporary file cut short

    proc = torchrun(*args, "--out", str(two))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming, {kept} of {len(test_rows)} scans already scored" in proc.stderr
    assert (two / "scores.csv").read_bytes() == (one / "scores.csv").read_bytes()
    assert not parts.exists()
    table = json.loads((two / "scores.csv.model.json").read_text())
    assert table == json.loads((one / "scores.csv.model.json").read_text())


def test_calibrate_under_torchrun_stores_the_reference_of_one_process(cohort, tmp_path):
    _folder, model, manifest, _rows = cohort
    references = []
    for name, launch in (("one.pt", main), ("two.pt", torchrun)):
        path = tmp_path / name
        path.write_bytes(model.read_bytes())
        args = ["calibrate", str(path), "--manifest", str(manifest)]
        if launch is main:
            assert main([*args, "--device", "cpu", "--no-progress"]) == 0
        else:
            proc = torchrun(*args)
            assert proc.returncode == 0, proc.stderr[-3000:]
        assert not path.with_name(name + ".calibration").exists()
        references.append(torch.load(path, weights_only=True)["healthy_reference"])
    assert_identical(*references)
    assert "zstats" in references[0] and len(references[0]["names"]) == 3


def assert_identical(a, b, where: str = "reference") -> None:
    """Equal to the last bit: tensors by value and dtype, floats exactly (NaN equal to NaN)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where
