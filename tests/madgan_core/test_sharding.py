"""Part files and the deal of a cohort's scans among ranks (without a process group)."""

from __future__ import annotations

import logging

import pytest
import torch

import madgan_core.runtime.sharding as sharding
from madgan_core.runtime.distributed import DistInfo
from madgan_core.runtime.sharding import PartFolder, SharedRun, run_share

KEYS = [f"/data/scan{i}.nii.gz" for i in range(7)]


def test_a_part_is_read_back_only_by_the_run_that_wrote_it(tmp_path, caplog):
    parts = PartFolder(tmp_path, {"model": "a.pt", "step": 3})
    record = {"score": 0.1 + 0.2, "nan": float("nan"), "none": None, "list": [1, 2.5]}
    path = parts.write(KEYS[0], record)
    assert path.parent == tmp_path and path.suffix == ".json"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    back = parts.read(KEYS[0])
    assert back["score"] == 0.1 + 0.2 and back["nan"] != back["nan"] and back["list"] == [1, 2.5]
    assert parts.has(KEYS[0]) and not parts.has(KEYS[1])
    assert PartFolder(tmp_path, {"model": "a.pt", "step": 4}).read(KEYS[0]) is None
    path.write_text('{"key": "cut sh')
    with caplog.at_level(logging.WARNING):
        assert parts.read(KEYS[0]) is None
    assert "unreadable part" in caplog.text


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_the_scans_left_are_dealt_round_robin(tmp_path, monkeypatch, world_size):
    parts = PartFolder(tmp_path, {"run": 1})
    for i in (1, 4):
        parts.write(KEYS[i], {"i": i})
    device = torch.device("cpu")
    main = SharedRun(KEYS, parts, DistInfo(0, world_size), device)
    flags: list[bool] = []
    monkeypatch.setattr(sharding, "broadcast_flags", lambda f, *_: flags.extend(f) or list(f))
    shares = [main.todo(done={KEYS[6]})]
    # Only rank 0 looks at the files; the others deal from its answer.
    monkeypatch.setattr(sharding, "broadcast_flags", lambda *_: list(flags))
    for rank in range(1, world_size):
        shares.append(SharedRun(KEYS, parts, DistInfo(rank, world_size), device).todo())
    left = [0, 2, 3, 5]
    assert shares == [left[r::world_size] for r in range(world_size)]


def test_the_merge_takes_each_part_or_an_earlier_record_in_cohort_order(tmp_path):
    run = SharedRun(KEYS[:3], PartFolder(tmp_path, {}), DistInfo(), torch.device("cpu"))
    run_share(run, [0, 2], ["a", "c"], lambda i, item: {"i": i, "item": item})
    assert run.finish()
    assert run.merged({KEYS[1]: {"earlier": True}}) == [
        {"i": 0, "item": "a"},
        {"earlier": True},
        {"i": 2, "item": "c"},
    ]
    with pytest.raises(RuntimeError, match="no result"):
        run.merged()
