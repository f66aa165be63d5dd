"""The cohort and GPU benchmarks run end to end at tiny sizes on the CPU and print their JSON.

``bench/gpu_check.py --smoke`` runs every section of the GPU check (training engines,
forward, scan, training step, loader, DDP, schedule) with the same code as on a GPU node, so the check is known to work
before a GPU is spent on it; ``bench/cohort_throughput.py`` then projects from its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str, timeout: int = 180) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, str(REPO / "bench" / script), "--device", "cpu", "--peak-reps", "0"]
    proc = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def gpu_check(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    return bench("gpu_check.py", "--smoke", "--variants", "none", "sa7", "--out", str(out)), out


def test_the_gpu_check_runs_every_section_at_smoke_size(gpu_check):
    result, out = gpu_check
    assert json.loads(out.read_text()) == result
    assert result["errors"] == [] and result["skipped"] == []
    assert result["settings"]["smoke"] and "not a CUDA device" in result["note"]
    cases = {(c["variant"], c["precision"]) for c in result["forward"]}
    assert cases == {(v, p) for v in ("none", "sa7") for p in ("fp32", "bf16")}
    assert all(c["seconds_per_batch"] > 0 and c["gflop_per_window"] > 0 for c in result["forward"])
    stages = result["scan"]["sa7"]["bf16"]["seconds"]
    assert set(stages) == {"load", "preprocess", "inference", "post", "total"}
    for case in result["train"]:
        assert case["median_s"] >= case["best_s"] > 0 and case["grad_scaler"] is False
    assert result["schedule"]["steps"] == 1_800_000 and result["schedule"]["none_bf16"]["hours"] > 0
    ddp = result["ddp"]
    assert ddp["backend"] == "gloo" and ddp["wrapped"] == "DistributedDataParallel"
    engines = {(c["variant"], c["engine"]) for c in result["engines"]}
    assert engines == {(v, e) for v in ("none", "sa7") for e in ("eager", "graph")}
    for case in result["engines"]:
        assert case["gflop_per_step"] > 0 and case["step_s"] > 0 and not case["captured"]
    assert result["graph_schedule"]["sa7_fp32"]["hours"] > 0
    assert result["loader"]["resident_batches_per_s"] > 0 and result["loader"]["windows"] > 0
    cohort = result["cohort"]["runs"]  # bench/cohort_throughput.py's worker sweep
    assert cohort[0]["workers"] == 0 and len(cohort) >= 2
    assert all(r["scans"] == 2 and r["scans_per_s"] > 0 for r in cohort)
    ops = result["scan_device_ops"]
    assert set(ops["torch_seconds"]) == set(ops["numpy_seconds"]) >= {"prepare", "post", "total"}


def test_cohort_throughput_measures_prefetch_and_projects_from_measurements(gpu_check):
    _result, gpu_json = gpu_check
    args = ["--scans", "2", "--configs", "1x1", "--voxel-mm", "4", "--height", "32"]
    args += ["--width", "32", "--base-channels", "4", "--gpu-json", str(gpu_json)]
    # the worker sweep runs in the GPU check's cohort section above
    result = bench("cohort_throughput.py", *args, "--sweep-workers")
    assert result["worker_sweep"] is None
    runs = result["runs"]
    assert [(r["prefetch"], r["warm_cache"]) for r in runs] == [(0, False), (1, False), (1, True)]
    for run in runs:
        assert run["scans"] == 2 and run["scans_per_s"] > 0 and 0 < run["model_share"] <= 1
    mine = result["projection_this_machine"]
    assert mine["costs"]["network_s"] == runs[0]["per_scan_s"]["network"]
    hours = mine["hours"]["40000_scans_64_workers"]
    assert hours["hours_prefetch_on"] <= hours["hours_prefetch_off"]
    gpu = result["projection_gpu"]
    assert str(gpu_json) in gpu["costs"]["source"] and set(gpu["hours"]) == set(mine["hours"])


def test_the_findings_bench_labels_its_blobs_and_checks_the_peaks_both_ways():
    result = bench("findings.py", "--reps", "1")
    assert result["bench"] == "findings" and result["regions"] == 4
    assert result["region_ml"][0] > 10 and result["grid"] == [197, 233, 189]
    for key in ("label_regions", "peaks_in_boxes", "peaks_scipy_whole_volume"):
        assert result[key]["reps"] == 1 and result[key]["best_s"] > 0


def test_peaks_keep_to_their_time_and_leave_out_precisions_the_cpu_emulates():
    import time

    import torch

    from bench._common import peaks, precisions_for, skipped_precisions
    from madgan_core.runtime.device import cpu_has_fast_bf16

    cpu = torch.device("cpu")
    started = time.perf_counter()
    found = peaks(cpu, ("fp32",), sizes=(128, 256, 8192), reps=3, seconds=0.5)["fp32"]
    assert time.perf_counter() - started < 5  # an 8192 product alone takes several seconds
    assert found["capped"] and set(found["by_size"]) == {"128", "256"}
    assert found["best_gflops"] > 0
    assert ("bf16" in precisions_for(cpu)) == cpu_has_fast_bf16()
    assert ("bf16" in skipped_precisions(cpu)) != cpu_has_fast_bf16()
