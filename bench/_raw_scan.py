"""A raw skull-on scan scored with the bundled model: the prepare stage timed step by step.

The steps are timed inside the very calls :func:`madgan_core.scoring.scorer.score_scan`
makes (``load_scan``, ``preprocess``, a ``slab_scorer`` pass, ``scan_result``): the
functions each step runs are wrapped with a clock for the pass, so the path is the
CLI's. File to score is also timed through the CLI itself (``madgan score``, in a new
process: imports included).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench._common import rounded, sync

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
# The steps, in the order they run; "prepare" is their sum up to "resampling".
STEPS = (
    "read",
    "skull_test",
    "fit",
    "extraction",
    "n4",
    "resampling",
    "slab",
    "network",
    "map_back",
    "findings",
)
PREPARE_STEPS = ("skull_test", "fit", "extraction", "n4", "resampling")


class StepClock:
    """Seconds spent per step name, by functions wrapped for the duration of a pass."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def wrap(self, fn: Callable, name: str) -> Callable:
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)

        return timed

    @contextlib.contextmanager
    def patched(self, targets: list[tuple[object, str, str]]) -> Iterator[None]:
        """Wrap ``owner.attr`` with the clock under ``name`` for each target, then restore."""
        saved = []
        try:
            for owner, attr, name in targets:
                original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
                saved.append((owner, attr, original))
                if isinstance(original, classmethod):  # the bound method, wrapped
                    setattr(owner, attr, staticmethod(self.wrap(getattr(owner, attr), name)))
                else:
                    setattr(owner, attr, self.wrap(getattr(owner, attr), name))
            yield
        finally:
            for owner, attr, original in reversed(saved):
                setattr(owner, attr, original)


def _targets() -> list[tuple[object, str, str]]:
    from madgan_core.prep import slab, stages
    from madgan_core.prep.anatomy import steps
    from madgan_core.prep.native_maps import NativeGrid
    from madgan_core.scoring import scorer

    return [
        (steps, "plainly_skull_stripped", "skull_test"),
        (steps, "looks_skull_stripped", "skull_test"),
        (steps, "register_to_template", "fit"),
        (steps, "extract_brain", "extraction"),
        (stages, "correct_bias", "n4"),
        (stages, "working_grid", "resampling"),
        (stages.GridMap, "from_native", "resampling"),
        (slab, "prepare_scan", "prepare_total"),
        (NativeGrid, "of", "map_back"),
        (scorer, "to_mask", "map_back"),
        (scorer, "to_volumes", "map_back"),
        (scorer, "label_regions", "findings"),
        (scorer, "signed_residual", "findings"),
    ]


def staged_raw(model, path: Path, precision: str = "auto") -> dict:
    """One pass of ``score_scan``'s calls on ``path``, each step of it timed."""
    from madgan_core.prep.slab import preprocess
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import scan_result, slab_scorer

    clock = StepClock()
    cfg = model.config
    with clock.patched(_targets()):
        t0 = time.perf_counter()
        scan = load_scan(path)
        clock.add("read", time.perf_counter() - t0)
        t0 = time.perf_counter()
        slab = preprocess(scan, cfg.preprocess)
        clock.add("preprocess_total", time.perf_counter() - t0)
        score = slab_scorer(model, precision)
        t0 = time.perf_counter()
        zstats = None if model.reference is None else model.reference.zstats_for("T1")
        errors, scores, z = score(slab, zstats, True)
        sync(model.device)
        clock.add("network", time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = scan_result(
            scan, slab, errors, scores, z, cfg.score, model.reference, "T1", maps=True
        )
        clock.add("post_total", time.perf_counter() - t0)
    s = clock.seconds
    times = {name: s.get(name, 0.0) for name in STEPS}
    times["slab"] = s["preprocess_total"] - s["prepare_total"]
    times["prepare"] = sum(times[k] for k in PREPARE_STEPS)
    times["post_other"] = s["post_total"] - times["map_back"] - times["findings"]
    times["total"] = times["read"] + s["preprocess_total"] + times["network"] + s["post_total"]
    return {
        "seconds": {k: rounded(v) for k, v in times.items()},
        "steps": list(slab.steps),
        "skull": slab.prepared.skull,
        "score_mean": float(result.scores["mean"]),
        "brain_voxels": None
        if slab.prepared.brain_mask is None
        else int(np.count_nonzero(slab.prepared.brain_mask)),
    }


def n4_alone(path: Path) -> float:
    """Seconds of N4 on the scan's extracted brain, as ``preprocess.bias = n4`` runs it."""
    import dataclasses

    from madgan_core.prep.anatomy import correct_bias
    from madgan_core.prep.anatomy.steps import brain_step
    from madgan_core.scans.files import load_scan

    scan = load_scan(path)
    mask = brain_step(scan, "auto").mask
    if mask is not None:
        scan = dataclasses.replace(scan, data=np.where(mask, scan.data, scan.data.min()))
    t0 = time.perf_counter()
    correct_bias(scan, mask=mask)
    return time.perf_counter() - t0


def cli_file_to_score(path: Path, device: str) -> dict:
    """``madgan score FILE`` in a new process: wall seconds and CPU seconds (user + sys)."""
    madgan = shutil.which("madgan")
    command = [madgan] if madgan else [sys.executable, "-m", "madgan_core.cli"]
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [*command, "score", str(path), "--out", out, "--sequence", "T1", "--device", device],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def raw_scan_file(directory: Path) -> Path:
    """Colin27 with its skull where MRIcron's templates are installed, else a ``--head``
    phantom written into ``directory``."""
    if COLIN27.is_file():
        return COLIN27
    out = directory / "phantom"
    subprocess.run(
        [sys.executable, "-m", "madgan_core.cli", "phantom", str(out), "--head", "--healthy",
         "1", "--ad", "0", "--mets", "0", "--various", "0", "--voxel-mm", "1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return sorted((out / "scans").glob("*.nii*"))[0]


def raw_case(path: Path | None, device, reps: int) -> dict:
    """The raw scan's steps (best pass by total, median of each step) and the CLI's time."""
    from madgan_core.model.bundled import require_default_model
    from madgan_core.model.checkpoint import load_model

    model = load_model(require_default_model(), device=device)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(path) if path is not None else raw_scan_file(Path(tmp))
        staged_raw(model, path)  # warm-up: the template, oneDNN primitives, page cache
        passes = [staged_raw(model, path) for _ in range(reps)]
        best = min(passes, key=lambda p: p["seconds"]["total"])
        best["median_seconds"] = {
            k: rounded(statistics.median(p["seconds"][k] for p in passes)) for k in best["seconds"]
        }
        best["n4_alone_s"] = rounded(min(n4_alone(path) for _ in range(max(1, reps // 2))))
        cli = [cli_file_to_score(path, str(device.type)) for _ in range(reps)]
        name, size = str(path) if path == COLIN27 else path.name, os.path.getsize(path)
    return {
        "file": name,
        "bytes": size,
        "model": "bundled default",
        "bias_in_model": model.config.preprocess.bias,
        "reps": reps,
        **best,
        "cli_file_to_score": {
            "best_wall_s": rounded(min(c["wall_s"] for c in cli)),
            "median_wall_s": rounded(statistics.median(c["wall_s"] for c in cli)),
            "best_cpu_s": rounded(min(c["cpu_s"] for c in cli)),
        },
        "load_average": list(os.getloadavg()),
    }
