"""Soak: many tiny training steps in one process, watching resident memory.

A leak in the data stream, the training step, logging or checkpointing shows as RSS
that keeps growing after warm-up. Runs ``--steps`` steps of a tiny configuration
(32 x 32 slices at 6 mm, 4-channel networks, batch 2, checkpoints every 250 steps) on
synthetic brains, in a temporary folder.

    python bench/soak_train.py [--steps 2000] [--out f.json]

Prints one JSON object: RSS (MiB) at the first step, after 200 steps and at the end,
and the growth.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import emit  # noqa: E402
from bench.soak_score import rss_mib  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import nibabel as nib
    import numpy as np
    import torch

    from madgan_core.config import MadganConfig
    from madgan_core.model.train import prepare_training
    from madgan_core.scans.manifest import ManifestRow
    from madgan_testing.brains import synthetic_brain

    cfg = MadganConfig().updated(
        {
            "preprocess": {"height": 32, "width": 32, "pixel_mm": 6.0},
            "model": {"base_channels": 4, "critic_channels": 4},
            "train": {
                "steps": args.steps,
                "batch_size": 2,
                "num_workers": 0,
                "device": "cpu",
                "precision": "fp32",
                "log_every": 50,
                "preview_every": 10**9,
                "checkpoint_every": 250,
                "keep_last": 2,
                "milestones": [],
            },
        }
    )
    samples: dict[str, float] = {}
    marks = {1: "first_step", 200: "after_200"}

    def progress(info: dict) -> None:
        step = info.get("step")
        if info.get("kind") in ("step", "metrics") and step in marks and marks[step] not in samples:
            gc.collect()
            samples[marks[step]] = rss_mib()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for i in range(4):
            path = tmp / f"s{i}.nii.gz"
            nib.save(
                nib.Nifti1Image(
                    synthetic_brain((40, 48, 36), seed=i), np.diag([4.0, 4.0, 4.0, 1.0])
                ),
                path,
            )
            rows.append(ManifestRow(path, f"s{i}", "healthy", 0, "T1", "train"))
        trainer = prepare_training(cfg, rows, tmp / "run", progress=progress)
        t0 = time.perf_counter()
        result = trainer.fit()
        elapsed = time.perf_counter() - t0
        gc.collect()
        samples["end"] = rss_mib()

    report = {
        "bench": "soak_train",
        "steps": result.step,
        "config": "32x32 at 6 mm, base_channels 4, batch 2, checkpoint every 250",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rss_mib": {k: round(v, 1) for k, v in samples.items()},
        "growth_after_200_mib": round(samples["end"] - samples.get("after_200", float("nan")), 1),
        "growth_total_mib": round(samples["end"] - samples.get("first_step", float("nan")), 1),
        "seconds_per_step": round(elapsed / max(result.step, 1), 4),
    }
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
