"""Interrupted work resumes: training killed with SIGKILL, cohort scoring stopped half-way.

Training: ``madgan train`` on tiny synthetic scans is killed (no handler can run) as soon as a
checkpoint is being written; every checkpoint left must load, and ``--resume`` continues from
the newest one. Scoring: :func:`madgan_core.cohort.evaluation.cohort.score_cohort` stopped after k scans, or
left with a half-written last line (as older versions wrote it), resumes without rescoring
and yields the same table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import madgan_core.prep.loader as slabs_module
from madgan_core.cli import main
from madgan_core.cohort.evaluation.cohort import score_cohort
from madgan_core.model import checkpoint as ckpt
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest
from madgan_core.scoring.reconstruct import copy_predictor, generator_predictor
from tests.madgan_core.test_bad_inputs import brain_scan

REPO = Path(__file__).resolve().parents[2]


def tiny_cohort(folder: Path, n: int = 5) -> Path:
    """``n`` small synthetic brains (healthy, train/test) and their manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        path = brain_scan(folder / f"scan{i}.nii.gz", seed=i)
        split = "train" if i < n // 2 + 1 else "test"
        rows.append(ManifestRow(path, f"sub{i}", "healthy", 0, "T1", split))
    return write_manifest(rows, folder / "manifest.csv")


# ------------------------------------------------------------------ training


def _hidden_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_sigkill_during_training_then_resume(tmp_path, tiny_config_file):
    manifest = tiny_cohort(tmp_path / "data", n=3)
    train = {"steps": 500, "batch_size": 2, "preview_every": 100_000}
    config = tiny_config_file(tmp_path / "tiny.json", train=train)
    run = tmp_path / "run"
    ckpt_dir = run / "checkpoints"
    argv = ["train", "--manifest", str(manifest), "--out", str(run), "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "madgan_core.cli", *argv, "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Kill the moment a checkpoint is being written after the first two exist (so pruning has
    # run), or at the latest 5 s later: SIGKILL cannot be caught, nothing gets to tidy up.
    deadline = time.monotonic() + 120
    armed_at = None
    mid_write = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if armed_at is None and len(ckpt.list_checkpoints(ckpt_dir)) >= 2:
                armed_at = time.monotonic()
            if armed_at is not None:
                mid_write = bool(_hidden_temporaries(ckpt_dir))
                if mid_write or time.monotonic() - armed_at > 5:
                    break
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert armed_at is not None, f"training never checkpointed:\n{err.decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.pt").exists()

    # Every checkpoint file left behind loads cleanly; a killed write leaves only a hidden
    # temporary file that list_checkpoints never picks up.
    found = ckpt.list_checkpoints(ckpt_dir)
    assert found
    for step, path in found:
        assert ckpt.read_checkpoint(path)["step"] == step
    for leftover in _hidden_temporaries(ckpt_dir):
        assert ".tmp" in leftover.name and not ckpt.CKPT_PATTERN.match(leftover.name)
    last = found[-1][0]

    # Resume (in-process, same config) for three more steps.
    assert main([*argv, "--resume", "--steps", str(last + 3), "--no-progress"]) == 0
    model = ckpt.load_model(run / "model.pt", "cpu")
    assert model.step == last + 3
    for step, path in ckpt.list_checkpoints(ckpt_dir):
        assert ckpt.read_checkpoint(path)["step"] == step
    # It continued from the checkpoint: one metrics line per step, none repeated or missing.
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if isinstance(s, int)]
    assert steps == sorted(set(steps)) and steps[-1] == last + 3
    assert set(range(last + 1, last + 4)) <= set(steps)


# ------------------------------------------------------------------ cohort scoring


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, tiny_model_file):
    """A tiny model, five scans and the uninterrupted reference table."""
    folder = tmp_path_factory.mktemp("cohort")
    manifest = tiny_cohort(folder)
    model = ckpt.load_model(tiny_model_file(folder / "model.pt"), "cpu")
    rows = read_manifest(manifest)
    reference = folder / "reference.csv"
    records = score_cohort(_predictors(model), model, rows, reference, precision="fp32")
    return model, rows, reference, records


def _copy_table(reference: Path, out: Path, text: str) -> None:
    """Put a (possibly cut) copy of the reference table at ``out``, with its model record."""
    out.write_text(text)
    meta = reference.with_name(reference.name + ".model.json")
    out.with_name(out.name + ".model.json").write_text(meta.read_text())


def _predictors(model):
    return {"madgan": generator_predictor(model.generator), "copy": copy_predictor(3)}


class _Interrupt(KeyboardInterrupt):
    """Ctrl-C, as the CLI would see it."""


def _spy_loads(monkeypatch, fail_after: int | None = None) -> list[Path]:
    """Record every scan loaded by score_cohort; raise Ctrl-C when asked to."""
    loaded: list[Path] = []
    real = load_scan

    def load(path):
        if fail_after is not None and len(loaded) == fail_after:
            raise _Interrupt()
        loaded.append(Path(path))
        return real(path)

    monkeypatch.setattr(slabs_module, "load_scan", load)
    return loaded


def test_scoring_interrupted_after_k_scans_resumes(tmp_path, monkeypatch, cohort):
    model, rows, reference, expected = cohort
    out = tmp_path / "scores.csv"
    _spy_loads(monkeypatch, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        score_cohort(_predictors(model), model, rows, out, precision="fp32")
    assert not out.exists()  # the table is written whole, at the end
    assert len(list(out.with_name("scores.csv.parts").iterdir())) == 2  # two scans' parts

    loaded = _spy_loads(monkeypatch)
    records = score_cohort(_predictors(model), model, rows, out, precision="fp32")
    assert loaded == [r.path for r in rows[2:]]
    assert records == expected
    assert out.read_text() == reference.read_text()


def test_scoring_resumes_with_nothing_left_to_do(tmp_path, monkeypatch, cohort):
    model, rows, reference, expected = cohort
    out = tmp_path / "scores.csv"
    _copy_table(reference, out, reference.read_text())
    loaded = _spy_loads(monkeypatch)
    assert score_cohort(_predictors(model), model, rows, out, precision="fp32") == expected
    assert loaded == []
    assert out.read_text() == reference.read_text()


@pytest.mark.parametrize("cut", ["mid-row", "mid-number"])
def test_scoring_resumes_after_a_half_written_last_line(tmp_path, monkeypatch, cohort, cut):
    """A crash while the last row was being written: that scan is scored again, the rest kept."""
    model, rows, reference, expected = cohort
    text = reference.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    keep = len(last) // 2 if cut == "mid-row" else len(last) - 3
    out = tmp_path / "scores.csv"
    _copy_table(reference, out, text[: len(text) - len(last) - 1 + keep])
    loaded = _spy_loads(monkeypatch)
    records = score_cohort(_predictors(model), model, rows, out, precision="fp32")
    assert loaded == [rows[-1].path]
    assert records == expected
    assert out.read_text() == reference.read_text()


def test_scoring_with_other_columns_starts_over(tmp_path, monkeypatch, cohort):
    """A journal written for other predictors is not mixed into this table."""
    model, rows, reference, expected = cohort
    out = tmp_path / "scores.csv"
    out.write_text("path,subject,group,stage,sequence,other:mean\nx,y,healthy,0,T1,0.5\n")
    loaded = _spy_loads(monkeypatch)
    assert score_cohort(_predictors(model), model, rows, out, precision="fp32") == expected
    assert loaded == [r.path for r in rows]
    assert out.read_text() == reference.read_text()


def test_scores_of_another_model_are_not_reused(tmp_path, monkeypatch, cohort):
    """A table written by another model (or an older state of this one) is scored again."""
    model, rows, reference, expected = cohort
    out = tmp_path / "scores.csv"
    _copy_table(reference, out, reference.read_text())
    meta = out.with_name(out.name + ".model.json")
    meta.write_text(meta.read_text().replace('"step": ', '"step": 1'))
    loaded = _spy_loads(monkeypatch)
    assert score_cohort(_predictors(model), model, rows, out, precision="fp32") == expected
    assert loaded == [r.path for r in rows]
