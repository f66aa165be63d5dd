"""Bad inputs through the ``madgan`` command: exit code 2, one line naming the file, no traceback,
and nothing written half-way.

The matrix of bad scans runs in-process through :func:`madgan_core.cli.main` (fast); a few
cases run as real ``python -m madgan_core.cli`` processes to check what a user sees.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from madgan_core.cli import main
from madgan_core.model.checkpoint import read_checkpoint
from madgan_core.scans.manifest import ManifestRow, write_manifest
from madgan_testing.brains import synthetic_brain
from tests.madgan_core.test_bad_inputs import brain_scan, crafted_nifti, malicious_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _save(path: Path, data: np.ndarray, affine=None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def _truncated_gz(d: Path) -> Path:
    raw = brain_scan(d / "whole.nii.gz").read_bytes()
    (d / "bad.nii.gz").write_bytes(raw[: len(raw) // 3])
    return d / "bad.nii.gz"


def _thin(d: Path) -> Path:
    data = np.zeros((30, 30, 30), np.float32)
    data[5:25, 5:25, 14:18] = 100.0  # only 4 slices of brain
    return _save(d / "bad.nii.gz", data, np.diag([4.0, 4.0, 4.0, 1.0]))


def _with(value: float) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        data = synthetic_brain((12, 12, 12))
        data[3, 3, 3] = value
        return _save(d / "bad.nii", data)

    return make


BAD_SCANS: dict[str, Callable[[Path], Path]] = {
    "missing": lambda d: d / "bad.nii.gz",
    "directory": lambda d: (d / "bad.nii").mkdir() or d / "bad.nii",
    "empty": lambda d: (d / "bad.nii").write_bytes(b"") or d / "bad.nii",
    "truncated-gz": _truncated_gz,
    "text-named-nii": lambda d: (d / "bad.nii").write_text("not an image\n" * 40) or d / "bad.nii",
    "gzip-of-garbage": lambda d: (
        (d / "bad.nii.gz").write_bytes(gzip.compress(b"\1" * 999)) or d / "bad.nii.gz"
    ),
    "zero-dims": lambda d: crafted_nifti(d / "bad.nii", [10, 0, 10]),
    "negative-dims": lambda d: crafted_nifti(d / "bad.nii", [10, -3, 10]),
    "2d": lambda d: _save(d / "bad.nii", np.ones((10, 10), np.float32)),
    "4d": lambda d: _save(d / "bad.nii", np.random.default_rng(0).random((8, 8, 8, 3))),
    "complex": lambda d: _save(d / "bad.nii", np.ones((8, 8, 8), np.complex64)),
    "rgb24": lambda d: _save(
        d / "bad.nii", np.zeros((8, 8, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    ),
    "nan": _with(np.nan),
    "inf": _with(np.inf),
    "constant": lambda d: _save(d / "bad.nii", np.full((8, 8, 8), 3.0, np.float32)),
    "few-slices": _thin,
    "enormous-header": lambda d: crafted_nifti(d / "bad.nii.gz", [30000, 30000, 30000]),
    "short-data": lambda d: crafted_nifti(d / "bad.nii", [700, 700, 700]),
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_model_file) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "model.pt")


def all_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (hidden temporary files included); [] if it does not exist."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_one_error_line(err: str, command: str, path: Path) -> str:
    """The last stderr line is the error; it names the file; no traceback anywhere."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    prefix = f"madgan {command}: error: "
    errors = [line for line in lines if line.startswith(prefix)]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], f"the error message spans lines:\n{err}"
    assert str(path) in errors[0]
    return errors[0]


@pytest.mark.parametrize("kind", list(BAD_SCANS))
def test_score_refuses_bad_scan(tmp_path, model_file, capsys, kind):
    bad = BAD_SCANS[kind](tmp_path)
    out = tmp_path / "out"
    code = main(["score", str(model_file), str(bad), "--out", str(out), "--device", "cpu"])
    assert code == 2
    assert_one_error_line(capsys.readouterr().err, "score", bad)
    assert all_files(out) == []


def test_score_stops_at_the_bad_scan_without_temporary_files(tmp_path, model_file, capsys):
    """A good scan, then a bad one: the run fails; no temporary or half-written files remain.

    The good scan's maps are complete files (each written atomically), and so is its part
    file, kept for a re-run to continue from; scores.csv is not written.
    """
    good = brain_scan(tmp_path / "good.nii.gz")
    bad = BAD_SCANS["truncated-gz"](tmp_path)
    out = tmp_path / "out"
    argv = ["score", str(model_file), str(good), str(bad), "--maps", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 2
    assert_one_error_line(capsys.readouterr().err, "score", bad)
    names = [p.name for p in all_files(out)]
    assert not [n for n in names if n.startswith(".") or ".tmp" in n], names
    parts = [p for p in all_files(out) if p.parent.name == "scores.parts"]
    assert len(parts) <= 1 and all(json.loads(p.read_text())["key"] == str(good) for p in parts)
    maps = [p for p in all_files(out) if p not in parts]
    assert {p.name for p in maps} <= {"good_heatmap.nii.gz", "good_recon.nii.gz"}
    for p in maps:
        assert nib.load(p).shape == nib.load(good).shape


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
def test_score_refuses_bad_model(tmp_path, model_file, capsys, kind):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    model = tmp_path / "model.pt"
    if kind == "text":
        model.write_text("weights\n")
    elif kind == "truncated":
        model.write_bytes(model_file.read_bytes()[:-500])
    out = tmp_path / "out"
    assert main(["score", str(model), str(scan), "--out", str(out), "--device", "cpu"]) == 2
    assert_one_error_line(capsys.readouterr().err, "score", model)
    assert all_files(out) == []


# ------------------------------------------------------------------ manifests


def _cohort(tmp_path: Path) -> list[ManifestRow]:
    """Two healthy calib scans, a healthy and an 'ad' test scan (all tiny and valid)."""
    rows = []
    for i, (group, split) in enumerate(
        [("healthy", "calib"), ("healthy", "calib"), ("healthy", "test"), ("ad", "test")]
    ):
        path = brain_scan(tmp_path / f"s{i}.nii.gz", seed=i)
        rows.append(ManifestRow(path, f"sub{i}", group, int(group == "ad"), "T1", split))
    return rows


BAD_MANIFESTS: dict[str, Callable[[Path, list[ManifestRow]], str]] = {
    "missing-column": lambda d, rows: (
        "path,subject,group,stage,sequence\ns0.nii.gz,a,healthy,0,T1\n"
    ),
    "missing-scan": lambda d, rows: (d / "m.csv").read_text().replace("s1.nii.gz", "gone.nii.gz"),
    "subject-in-two-splits": lambda d, rows: (d / "m.csv").read_text().replace("sub3", "sub0"),
    "empty": lambda d, rows: "",
}


@pytest.mark.parametrize("command", ["calibrate", "evaluate"])
@pytest.mark.parametrize("kind", list(BAD_MANIFESTS))
def test_bad_manifest(tmp_path, model_file, capsys, command, kind):
    rows = _cohort(tmp_path)
    write_manifest(rows, tmp_path / "m.csv")
    manifest = tmp_path / "bad.csv"
    manifest.write_text(BAD_MANIFESTS[kind](tmp_path, rows))
    model = tmp_path / "model.pt"
    model.write_bytes(model_file.read_bytes())
    before = all_files(tmp_path)
    argv = [command, str(model), "--manifest", str(manifest), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = next(line for line in err.splitlines() if line.startswith(f"madgan {command}: error:"))
    assert str(manifest) in first
    # Nothing written: the model is untouched and no report or temporary file appears.
    assert all_files(tmp_path) == before
    assert model.read_bytes() == model_file.read_bytes()


def test_calibrate_with_a_bad_calib_scan_leaves_the_model_untouched(tmp_path, model_file, capsys):
    rows = _cohort(tmp_path)
    BAD_SCANS["truncated-gz"](tmp_path)
    (tmp_path / "bad.nii.gz").replace(rows[1].path)
    write_manifest(rows, tmp_path / "m.csv")
    model = tmp_path / "model.pt"
    model.write_bytes(model_file.read_bytes())
    before = all_files(tmp_path)
    assert main(["calibrate", str(model), "--manifest", str(tmp_path / "m.csv")]) == 2
    assert_one_error_line(capsys.readouterr().err, "calibrate", rows[1].path)
    # Only the controls scored before the bad one are kept, whole, for a re-run.
    parts = tmp_path / "model.pt.calibration"
    assert [p for p in all_files(tmp_path) if p.parent != parts] == before
    assert [p.suffix for p in all_files(parts)] == [".npz"]
    assert model.read_bytes() == model_file.read_bytes()


def test_evaluate_with_a_bad_test_scan_keeps_only_whole_rows(tmp_path, model_file, capsys):
    """The part files keep the rows already done (to resume), each with the model it came
    from; no report, no table, no temporary files."""
    rows = _cohort(tmp_path)
    BAD_SCANS["truncated-gz"](tmp_path)
    (tmp_path / "bad.nii.gz").replace(rows[3].path)
    write_manifest(rows, tmp_path / "m.csv")
    out = tmp_path / "eval"
    argv = ["evaluate", str(model_file), "--manifest", str(tmp_path / "m.csv"), "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 2
    assert_one_error_line(capsys.readouterr().err, "evaluate", rows[3].path)
    parts = all_files(out)
    assert [p.parent.name for p in parts] == ["scores.csv.parts"]
    assert json.loads(parts[0].read_text())["record"]["path"] == str(rows[2].path)


# ------------------------------------------------------------------ real processes


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "madgan_core.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_score_bad_and_malicious_files(tmp_path, model_file):
    """One process per case: a bad scan, then a model file that would run code if unpickled."""
    bad = BAD_SCANS["enormous-header"](tmp_path)
    out = tmp_path / "out"
    result = run_cli("score", str(model_file), str(bad), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = assert_one_error_line(result.stderr, "score", bad)
    assert "too large" in line
    assert all_files(out) == []

    marker = tmp_path / "pwned"
    evil = malicious_checkpoint(read_checkpoint(model_file), tmp_path / "evil.pt", marker)
    scan = brain_scan(tmp_path / "scan.nii.gz")
    result = run_cli("score", str(evil), str(scan), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = assert_one_error_line(result.stderr, "score", evil)
    assert "refused" in line and "could run code" in line
    assert "weights_only" not in result.stderr and "trust" not in result.stderr
    assert not marker.exists()
    assert all_files(out) == []


def test_process_evaluate_bad_manifest(tmp_path, model_file):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,subject\nx.nii.gz,a\n")
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate", str(model_file), "--manifest", str(manifest), "--out", str(out), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"madgan evaluate: error: {manifest}: missing required column(s)" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("mode", ["ztail", "zvolume", "zmean"])
def test_score_refuses_z_modes_without_calibration(tmp_path, model_file, capsys, mode):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    argv = ["score", str(model_file), str(scan), "--out", str(tmp_path / "out"), "--mode", mode]
    assert main([*argv, "--sequence", "T1", "--device", "cpu"]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "score", model_file)
    assert f"score mode '{mode}' needs z-statistics" in line and "madgan calibrate" in line
    assert all_files(tmp_path / "out") == []


def test_score_refuses_noise_adjusted_modes_of_an_older_calibration(tmp_path, model_file, capsys):
    from madgan_core.model.checkpoint import load_model, update_checkpoint
    from madgan_core.model.zstats import ZStats

    model = tmp_path / "model.pt"
    shutil.copy(model_file, model)
    cfg = load_model(model, device="cpu").config
    shape = (cfg.score.position_bins, cfg.preprocess.height, cfg.preprocess.width)
    stats = ZStats(np.zeros(shape, np.float32), np.ones(shape, np.float32), 3)  # no noise fits
    reference = {"scores": {"mean": [0.1, 0.2, 0.3]}, "names": ["a", "b", "c"]}
    update_checkpoint(model, healthy_reference={**reference, "zstats": {"T1": stats.to_dict()}})
    scan = brain_scan(tmp_path / "scan.nii.gz")
    argv = ["score", str(model), str(scan), "--out", str(tmp_path / "out"), "--sequence", "T1"]
    assert main([*argv, "--mode", "zmean", "--device", "cpu"]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "score", model)
    assert "needs a noise fit" in line and "re-run `madgan calibrate`" in line
    assert main([*argv, "--mode", "ztail", "--device", "cpu"]) == 0  # the plain tail still works
    # the files record the headline the line printed, not the model's own
    assert "scan: ztail score" in capsys.readouterr().out
    row = json.loads((tmp_path / "out" / "scores.jsonl").read_text().splitlines()[0])
    assert (
        row["headline"] == "ztail" and load_model(model, device="cpu").config.score.mode != "ztail"
    )
    # With statistics for two sequences, a missing --sequence is named as the problem.
    zstats = {"T1": stats.to_dict(), "T1c": stats.to_dict()}
    update_checkpoint(model, healthy_reference={**reference, "zstats": zstats})
    capsys.readouterr()
    assert main([*argv[:-2], "--mode", "ztail", "--device", "cpu"]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "score", model)
    assert "give --sequence (the model has z-statistics for T1, T1c)" in line


def test_score_takes_a_brain_mask_and_refuses_a_bad_one(tmp_path, model_file, capsys):
    scan = brain_scan(tmp_path / "scan.nii.gz")
    image = nib.load(scan)
    data = np.asarray(image.dataobj)
    mask = _save(tmp_path / "mask.nii.gz", (data > 0).astype(np.uint8), image.affine)
    out = tmp_path / "out"
    argv = ["score", str(model_file), str(scan), "--maps", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--brain-mask", str(mask)]) == 0
    written = nib.load(out / "scan_brainmask.nii.gz")
    assert written.get_data_dtype() == np.uint8
    assert written.shape == image.shape and np.array_equal(
        np.asarray(written.dataobj) > 0, data > 0
    )
    capsys.readouterr()
    empty = _save(tmp_path / "empty.nii.gz", np.zeros(data.shape, np.uint8), image.affine)
    assert main([*argv[:-4], "--out", str(tmp_path / "o2"), "--brain-mask", str(empty)]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "score", empty)
    assert "every voxel is 0" in line
    small_mask = np.zeros((8, 8, 8), np.uint8)
    small_mask[2:6, 2:6, 2:6] = 1
    small = _save(tmp_path / "small.nii.gz", small_mask, image.affine)
    assert main([*argv[:-4], "--out", str(tmp_path / "o3"), "--brain-mask", str(small)]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "score", small)
    assert "not on the grid of scan.nii.gz" in line
    two = [*argv, "--brain-mask", str(mask), "--brain-mask", str(mask)]
    assert main(two) == 2
