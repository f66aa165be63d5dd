"""Cohort scoring pipelined: scans prepared in worker processes, post-processing in threads.

The rows and map files must be those of scoring one scan after the other; a broken scan
stops the run with its own error, after the scans before it are stored; a stopped run
continues from its part files.
"""

from __future__ import annotations

import json
import pickle

import nibabel as nib
import numpy as np
import pytest
import torch

from madgan_core.cohort.score_files import default_post_threads, score_files
from madgan_core.errors import ScanError
from madgan_core.model import checkpoint as ckpt
from madgan_core.prep.loader import MIN_SCANS_FOR_WORKERS, SlabLoader, default_workers
from tests.madgan_core.test_bad_inputs import brain_scan
from tests.madgan_core.test_cli_errors import BAD_SCANS


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans")
    return [brain_scan(folder / f"s{i}.nii.gz", seed=i) for i in range(4)]


@pytest.fixture(scope="module")
def model(tiny_model_zstats):
    return ckpt.load_model(tiny_model_zstats, "cpu")


def outputs(folder) -> dict[str, object]:
    """Every file of a scoring run: rows as text, NIfTI maps as header bytes and voxels."""
    found: dict[str, object] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".nii.gz"):
            image = nib.load(path)
            found[path.name] = (image.header.binaryblock, np.asarray(image.dataobj).tobytes())
        else:
            found[path.name] = path.read_bytes()
    return found


def run(model, scans, out, workers, post_threads=None, **kwargs):
    loader = SlabLoader(prefetch=1, workers=workers)
    return score_files(
        model, scans, out, maps=True, sequence="T1", precision="fp32", loader=loader,
        post_threads=post_threads, **kwargs,
    )  # fmt: skip


def test_workers_give_the_rows_and_maps_of_one_scan_after_the_other(model, scans, tmp_path):
    serial = run(model, scans, tmp_path / "serial", workers=0, post_threads=0)
    expected = outputs(tmp_path / "serial")
    assert "s0_zmap.nii.gz" in expected and "scores.jsonl" in expected
    for workers, threads in ((0, 2), (2, 2)):
        out = tmp_path / f"w{workers}t{threads}"
        results = []
        rows = run(model, scans, out, workers, threads, on_result=results.append)
        assert rows == serial
        assert [r.name for r in results] == [s.name.removesuffix(".nii.gz") for s in scans]
        assert outputs(out) == expected, (workers, threads)


def test_slabs_from_worker_processes_are_the_same_arrays(model, scans):
    cfg = model.config.preprocess
    threads = list(SlabLoader(prefetch=1).load(scans, cfg, keep_scan=True))
    processes = list(SlabLoader(prefetch=2, workers=2).load(scans, cfg, keep_scan=True))
    assert [p.path for p in processes] == scans
    for a, b in zip(threads, processes, strict=True):
        assert pickle.dumps(a.slab) == pickle.dumps(b.slab)
        assert pickle.dumps(a.scan) == pickle.dumps(b.scan) and a.name == b.name


def test_a_broken_scan_raises_its_error_after_the_scans_before_it(model, scans, tmp_path):
    bad = BAD_SCANS["truncated-gz"](tmp_path)
    cohort = [scans[0], scans[1], bad, scans[2]]
    out = tmp_path / "out"
    with pytest.raises(ScanError) as error:
        run(model, cohort, out, workers=2, post_threads=2)
    assert str(bad) in str(error.value) and error.value.path == bad
    parts = {json.loads(p.read_text())["key"] for p in (out / "scores.parts").iterdir()}
    assert parts == {str(scans[0]), str(scans[1])}
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def test_a_stopped_run_continues_where_it_stopped(model, scans, tmp_path):
    expected = run(model, scans, tmp_path / "whole", workers=0, post_threads=0)

    def stop(done, _total):
        if done == 1:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(model, scans, out, workers=2, post_threads=2, progress=stop)
    stored = {json.loads(p.read_text())["key"] for p in (out / "scores.parts").iterdir()}
    # the scans already through the network are stored; the last one was never reached
    assert stored == {str(s) for s in scans[:3]}
    again = []
    rows = run(model, scans, out, workers=0, post_threads=2, on_result=again.append)
    assert rows == expected
    assert len(again) == len(scans) - len(stored)
    assert not (out / "scores.parts").exists()


def test_the_default_workers_and_post_threads_follow_the_cores(monkeypatch):
    assert default_workers(MIN_SCANS_FOR_WORKERS - 1) == 0
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    assert default_workers(MIN_SCANS_FOR_WORKERS) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_workers(100) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_workers(100) == 0  # one core each: threads
    # post-processing threads: a quarter of the cores beside a GPU, one beside a CPU network
    assert default_post_threads(torch.device("cuda")) == 4
    assert default_post_threads(torch.device("cpu")) == 1


def test_madgan_score_workers_option(tiny_model_zstats, scans, tmp_path, capsys):
    from madgan_core.cli import main

    def score(out, *flags):
        argv = ["score", str(tiny_model_zstats), *map(str, scans[:2]), "--out", str(out)]
        return main([*argv, "--device", "cpu", "--no-progress", *flags])

    assert score(tmp_path / "bad", "--workers", "-1") == 2
    assert "--workers -1" in capsys.readouterr().err
    assert score(tmp_path / "threads", "--workers", "0") == 0
    threads = capsys.readouterr().out
    assert score(tmp_path / "processes", "--workers", "1") == 0
    assert capsys.readouterr().out == threads.replace("threads", "processes")
    for name in ("scores.csv", "scores.jsonl"):
        expected = (tmp_path / "threads" / name).read_bytes()
        assert (tmp_path / "processes" / name).read_bytes() == expected
