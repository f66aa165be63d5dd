"""``madgan train`` then calibrate: under torchrun every rank calibrates, and the reference is
that of one process; the demo trains with the configuration ``madgan train`` would build.
"""

from __future__ import annotations

import argparse

from madgan_core.cli import build_parser
from madgan_core.commands.demo import demo_config
from madgan_core.commands.train import build_config
from madgan_core.model.checkpoint import read_checkpoint, save_checkpoint
from madgan_core.scans.manifest import ManifestRow, write_manifest
from madgan_core.scoring.calibrate import calibrate_model
from tests.madgan_core.test_bad_inputs import brain_scan
from tests.madgan_core.test_cohort_distributed import assert_identical, torchrun

SPLITS = ("train", "train", "calib", "calib", "calib")


def test_train_under_torchrun_calibrates_on_every_rank(tmp_path, tiny_config_file):
    rows = [
        ManifestRow(brain_scan(tmp_path / f"h{i}.nii.gz", seed=i), f"sub{i}", "healthy", 0, "T1", s)
        for i, s in enumerate(SPLITS)
    ]
    manifest = write_manifest(rows, tmp_path / "manifest.csv")
    config = tiny_config_file(
        tmp_path / "tiny.json", train={"steps": 2, "batch_size": 2, "preview_every": 1000}
    )
    out = tmp_path / "run"
    args = ["train", "--manifest", str(manifest), "--out", str(out), "--config", str(config)]
    proc = torchrun(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model = out / "model.pt"
    assert not model.with_name("model.pt.calibration").exists()
    trained = read_checkpoint(model)
    reference = trained["healthy_reference"]
    assert reference is not None and len(reference["names"]) == 3 and "zstats" in reference

    # The same weights, calibrated by one process.
    alone = tmp_path / "alone.pt"
    save_checkpoint({**trained, "healthy_reference": None}, alone)
    calibrate_model(alone, rows, device="cpu")
    assert_identical(reference, read_checkpoint(alone)["healthy_reference"])


def test_demo_trains_with_the_config_of_madgan_train(tmp_path):
    for steps in (None, 7):
        demo = argparse.Namespace(device="cpu", precision="fp32", seed=3, steps=steps)
        argv = ["train", "--manifest", "m.csv", "--out", str(tmp_path), "--preset", "demo"]
        argv += ["--device", "cpu", "--precision", "fp32", "--seed", "3"]
        argv += [] if steps is None else ["--steps", str(steps)]
        assert demo_config(demo) == build_config(build_parser().parse_args(argv))
