"""Peak resident memory while scoring a 256-slice scan, measured in a fresh subprocess.

A 1 mm phantom is stretched to 200 x 240 x 256 voxels so that brain fills every
axial slice and written as NIfTI by the parent. A fresh child process loads it and
scores it with ``slice_range=(0, 256)`` (251 windows) and maps on. The child reports
``ru_maxrss`` after importing torch and building the model (the baseline) and after
loading and scoring (the peak), so phantom generation and the parent do not count.

    python bench/memory.py --device auto [--precision auto] [--out f.json]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, machine, resolve, rounded

SHAPE = (200, 240, 256)


def _maxrss_mib() -> float:
    """Peak RSS of this process in MiB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` survives
    ``exec`` and so would report the parent's peak (phantom generation) after a
    vfork-based ``subprocess`` start. Elsewhere ``ru_maxrss`` (macOS: bytes).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def volume_256() -> tuple:
    """The default phantom resampled to 200 x 240 x 256 (1 mm in-plane, brain in every slice)."""
    import numpy as np
    from scipy import ndimage

    from madgan_core.cohort.phantom import make_subject

    volume, affine, _ = make_subject("healthy", voxel_mm=1.0)
    occupied = np.flatnonzero(volume.max(axis=(0, 1)) > 0.1 * volume.max())
    brain = volume[:, :, occupied[0] : occupied[-1] + 1]
    stretched = ndimage.zoom(brain, (1.0, 1.0, SHAPE[2] / brain.shape[2]), order=1)
    out = np.zeros(SHAPE, dtype=np.float32)
    nx, ny = min(SHAPE[0], stretched.shape[0]), min(SHAPE[1], stretched.shape[1])
    ox, oy = (SHAPE[0] - nx) // 2, (SHAPE[1] - ny) // 2
    out[ox : ox + nx, oy : oy + ny] = stretched[:nx, :ny, : SHAPE[2]]
    return out, np.diag([1.0, 1.0, 1.0, 1.0])


def child(device_name: str, precision: str, path: Path) -> dict:
    """Runs in the subprocess: build, score, report RSS."""
    import torch

    from bench._common import random_model
    from madgan_core.config import PreprocessConfig
    from madgan_core.runtime.device import resolve_precision
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import score_scan

    device = resolve(device_name)
    model = random_model("none", device)
    # A stripped brain stretched to 256 slices: no template fits it, and the brain step is
    # not what this measures.
    model.config.preprocess = PreprocessConfig(
        slice_range=(0, SHAPE[2]), min_brain_fraction=0.0, brain="none"
    )
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    scan = load_scan(path)
    result = score_scan(model, scan, precision=precision)
    seconds = time.perf_counter() - t0
    out = {
        "shape": list(scan.data.shape),
        "slices": len(result.slice_indices),
        "windows": len(result.window_losses),
        "precision": resolve_precision(precision, device),
        "seconds": rounded(seconds),
        "rss_before_load_mib": rounded(baseline),
        "peak_rss_mib": rounded(_maxrss_mib()),
    }
    if device.type == "cuda":
        out["cuda_peak_allocated_mib"] = rounded(torch.cuda.max_memory_allocated(device) / 2**20)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--child", type=Path, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.device, args.precision, args.child)))
        return {}
    import nibabel as nib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "volume_256.nii"
        volume, affine = volume_256()
        nib.save(nib.Nifti1Image(volume, affine), str(path))
        del volume
        cmd = [sys.executable, __file__, "--child", str(path), "--device", args.device]
        cmd += ["--precision", args.precision]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {"bench": "memory", "machine": machine(resolve(args.device)), **measured}
    result["peak_rss_gib"] = rounded(measured["peak_rss_mib"] / 1024, 3)
    result["target_gib"] = 2.0
    emit(result, args.out)
    return result


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
