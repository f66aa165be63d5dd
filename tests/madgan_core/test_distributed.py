"""Two gloo processes under torchrun on the CPU end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import torch

from madgan_core.runtime.distributed import DistInfo, env_info, unwrap

from .conftest import synthetic_brain


def test_env_info_without_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert env_info() == DistInfo() and not env_info().enabled
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = env_info()
    assert info.enabled and not info.is_main and info.local_rank == 1


def test_unwrap(tmp_path):
    """The plain module comes out of DDP, torch.compile, and both nested."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    m = torch.nn.Linear(2, 2)
    assert unwrap(m) is m
    compiled = torch.compile(m)  # compiles lazily, on the first call
    assert compiled is not m and unwrap(compiled) is m
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(m)
        assert unwrap(ddp) is m
        assert unwrap(torch.compile(ddp)) is m
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_training(tmp_path, tiny_config_file):
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(2):
        nib.save(
            nib.Nifti1Image(synthetic_brain(seed=i), np.diag([2.0, 2.0, 2.0, 1.0])),
            scans / f"h{i}.nii.gz",
        )
    config = tiny_config_file(
        tmp_path / "tiny.json",
        preprocess={"pixel_mm": 2.0},
        model={"variant": "sa3"},
        train={"steps": 3, "batch_size": 2, "preview_every": 1000},
    )
    dump = tmp_path / "ranks"
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "madgan_core.cli", "train", "--manifest", str(scans), "--out", str(out),
        "--config", str(config), "--no-progress", "--dump-rank-state", str(dump),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = torch.load(dump / "rank0.pt", weights_only=True)
    b = torch.load(dump / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    # weights moved, only rank 0 wrote files, and the global batch is 2 x 2
    assert (out / "model.pt").exists()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
