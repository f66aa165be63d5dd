"""Pre- and post-processing with numpy/scipy and with torch on the device, side by side.

The stages a scan's scoring runs around the network, each timed both ways (best of
``reps`` after a warm-up) on one phantom scan with the paper preset's geometry:

- ``prepare``: :func:`preprocess` (the prepare stage, which stays in numpy/scipy, then
  the slab's normalisation and resampling into model space, which moves);
- ``l2``: :func:`slab_errors`' ℓ2 bookkeeping, with the copy baseline as the predictor
  so that no network time is in it;
- ``zmap``: :meth:`ZStats.zmap` (smoothed log ℓ2 against healthy statistics);
- ``post``: :func:`scan_result` with the z-map: the maps back on the scan's voxels
  (which move) and the findings (which stay).

The largest differences between the two paths are reported with the times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from bench._common import rounded, sync

STAGES = ("prepare", "l2", "zmap", "post")


def device_ops_case(model, path, device: torch.device, reps: int) -> dict:
    """Seconds per stage with numpy/scipy and with torch on ``device``, their ratios and
    the largest differences between the two paths' outputs."""
    from madgan_core.model.zstats import ZStatsBuilder
    from madgan_core.prep.slab import preprocess
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.reconstruct import copy_predictor, slab_errors
    from madgan_core.scoring.scorer import scan_result, scan_scores

    cfg = model.config
    scan = load_scan(path)
    predictor = copy_predictor(cfg.model.out_slices)

    def run(ops: torch.device | None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        out: dict[str, object] = {}
        times: dict[str, float] = {}

        def stage(name: str, fn: Callable[[], object]) -> None:
            best = np.inf
            for i in range(reps + 1):  # the first pass warms up (CUDA kernels, caches)
                sync(device)
                t0 = time.perf_counter()
                out[name] = fn()
                sync(device)
                if i:
                    best = min(best, time.perf_counter() - t0)
            times[name] = rounded(best)

        stage("prepare", lambda: preprocess(scan, cfg.preprocess, device=ops))
        slab = out["prepare"]
        args = (predictor, slab, cfg.model, device, "fp32", 32)
        stage("l2", lambda: slab_errors(*args, on_device=ops is not None))
        errors = out["l2"]
        err = errors.slice_maps()[0]
        zstats = ZStatsBuilder.of([err * 0.8, err, err * 1.25], cfg.score).finalize()
        stage("zmap", lambda: zstats.zmap(err, cfg.score, device=ops))
        z = out["zmap"]
        scores = scan_scores(errors.window_losses, errors.copy_losses, cfg.score)
        stage(
            "post",
            lambda: scan_result(scan, slab, errors, scores, z, cfg.score, maps=True, device=ops),
        )
        result = out["post"]
        arrays = {
            "slices": slab.slices,
            "zmap_model": z,
            "heatmap": result.heatmap,
            "reconstruction": result.reconstruction,
            "zmap": result.zmap,
            "window_losses": errors.window_losses,
        }
        return times, arrays

    numpy_times, expected = run(None)
    torch_times, got = run(device)
    differences = {}
    for name, a in expected.items():
        b = got[name]
        same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
        finite = np.isfinite(a) & np.isfinite(b)
        diff = float(np.abs(a[finite] - b[finite]).max()) if finite.any() else 0.0
        differences[name] = {"max_abs": diff, "same_nan": same_nan}
    total = {"numpy": sum(numpy_times.values()), "torch": sum(torch_times.values())}
    return {
        "device": str(device),
        "reps": reps,
        "slices": int(expected["slices"].shape[0]),
        "scan_shape": list(scan.data.shape),
        "numpy_seconds": {**numpy_times, "total": rounded(total["numpy"])},
        "torch_seconds": {**torch_times, "total": rounded(total["torch"])},
        "speedup": {s: rounded(numpy_times[s] / max(torch_times[s], 1e-9), 3) for s in STAGES}
        | {"total": rounded(total["numpy"] / max(total["torch"], 1e-9), 3)},
        "differences": differences,
    }
