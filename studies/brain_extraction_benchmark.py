"""Brain extraction on skull-on heads with a known brain mask: Dice and time per method.

Test heads: pydeface's average head (skull, scalp, eyes, neck) with a randomly deformed
MNI152 brain composited into its brain region (the true mask is the deformed template
mask), and the skull-stripped MNI152 itself. Methods: ``template`` (madgan_core's affine
template registration) and, when the ``brainextractor`` package (a Python BET port) imports,
``bet``. Prints one JSON object.

    pip install --no-deps pydeface==2.1.0   # only its data/mean_reg2mean.nii.gz is used
    python studies/brain_extraction_benchmark.py --heads 3 [--pydeface-head PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom import make_subject
from madgan_core.prep.anatomy import extract_brain, looks_skull_stripped, register_to_template
from madgan_core.prep.anatomy.brain import outside_brain_fraction
from madgan_core.prep.anatomy.register import mni_template
from madgan_core.scans.scan import Scan


def find_pydeface_head() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pydeface")
    if spec is None or spec.origin is None:
        raise SystemExit("pydeface is not installed: pip install --no-deps pydeface==2.1.0")
    return Path(spec.origin).parent / "data" / "mean_reg2mean.nii.gz"


def composite_head(head: Scan, seed: int, warp_mm: float) -> tuple[Scan, np.ndarray]:
    """``head`` with a deformed MNI152 brain in its brain region, and that brain's mask."""
    rng = np.random.default_rng(seed)
    t1, mask, mni_affine = mni_template()
    placed = register_to_template(head, "rigid").matrix
    # A random small affine about the brain's centre, then a smooth displacement (mm).
    angles = np.deg2rad(rng.uniform(-6, 6, 3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = (
        np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    )
    extra = np.eye(4)
    extra[:3, :3] = rot * rng.uniform(0.9, 1.05, 3)
    extra[:3, 3] = rng.uniform(-4, 4, 3)
    world_to_mni = np.linalg.inv(placed @ extra)
    ijk = np.indices(head.data.shape, dtype=np.float32).reshape(3, -1)
    world = head.affine[:3, :3] @ ijk + head.affine[:3, 3:4]
    mni = world_to_mni[:3, :3] @ world + world_to_mni[:3, 3:4]
    coarse = rng.standard_normal((3, 12, 14, 12))
    disp = np.stack([ndimage.zoom(ndimage.gaussian_filter(c, 1.5), 16, order=1) for c in coarse])
    disp *= warp_mm / max(float(np.abs(disp).max()), 1e-6)
    mni_vox = np.linalg.inv(mni_affine)[:3, :3] @ mni + np.linalg.inv(mni_affine)[:3, 3:4]
    dvox = np.stack(
        [ndimage.map_coordinates(d, mni_vox / 16.0, order=1, mode="nearest") for d in disp]
    )
    coords = mni_vox + dvox
    brain_t1 = ndimage.map_coordinates(t1, coords, order=1).reshape(head.data.shape)
    brain = (
        ndimage.map_coordinates(mask.astype(np.float32), coords, order=1).reshape(head.data.shape)
        > 0.5
    )
    data = head.data.copy()
    scale = float(np.percentile(data[brain], 95))
    rim = (ndimage.distance_transform_edt(~brain, sampling=head.zooms) <= 3.0) & ~brain
    data[rim] = 0.08 * scale
    data[brain] = brain_t1[brain] * scale
    data += rng.normal(0, 0.02 * scale, data.shape).astype(np.float32)
    data = np.clip(data, 0, None)
    return Scan.from_array(data, head.affine), brain


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def bet_mask(scan: Scan) -> np.ndarray:
    from brainextractor import BrainExtractor

    img = nib.Nifti1Image(scan.data, scan.affine)
    bet = BrainExtractor(img=img)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every iteration
        bet.run()
    return np.asarray(bet.compute_mask(), dtype=bool)


def measure(name: str, scan: Scan, truth: np.ndarray, methods: list[str]) -> dict:
    row = {"scan": name}
    for method in methods:
        start = time.perf_counter()
        try:
            mask = extract_brain(scan) if method == "template" else bet_mask(scan)
            row[f"{method}_dice"] = round(dice(mask, truth), 4)
        except Exception as exc:  # a benchmark reports a method's failure and goes on
            row[f"{method}_error"] = f"{type(exc).__name__}: {exc}"
        row[f"{method}_seconds"] = round(time.perf_counter() - start, 1)
    row.update(stripped_check(scan))
    return row


def stripped_check(scan: Scan) -> dict:
    """``looks_skull_stripped``'s verdict, timed, and the fraction it thresholds."""
    start = time.perf_counter()
    verdict = looks_skull_stripped(scan)
    seconds = round(time.perf_counter() - start, 1)
    return {
        "looks_skull_stripped": verdict,
        "stripped_check_seconds": seconds,
        "outside_fraction": round(outside_brain_fraction(scan), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=3, help="composite heads to measure")
    parser.add_argument("--pydeface-head", type=Path, default=None)
    parser.add_argument("--methods", default="template,bet")
    parser.add_argument(
        "--warp-mm", type=float, default=8.0, help="largest displacement of the brain's warp"
    )
    args = parser.parse_args()
    methods = args.methods.split(",")
    if "bet" in methods:
        try:
            import brainextractor  # noqa: F401
        except ImportError:
            methods.remove("bet")
    path = args.pydeface_head or find_pydeface_head()
    img = nib.load(path)
    head = Scan.from_array(img.get_fdata(dtype=np.float32), img.affine)
    rows = []
    for seed in range(args.heads):
        scan, truth = composite_head(head, seed, args.warp_mm)
        rows.append(measure(f"composite head {seed}", scan, truth, methods))
    t1, mask, affine = mni_template()
    rows.append(measure("MNI152 (skull-stripped)", Scan.from_array(t1, affine), mask, methods))
    for group, sequence in (("healthy", "T1"), ("mets", "T1c")):
        volume, affine, _ = make_subject(group, sequence=sequence, seed=1, voxel_mm=1.0)
        phantom = Scan.from_array(volume, affine)
        rows.append({"scan": f"phantom {group} {sequence} (skull-stripped)"})
        rows[-1].update(stripped_check(phantom))
    rows.append({"scan": "pydeface average head (own brain, no true mask)"})
    rows[-1].update(stripped_check(head))
    print(json.dumps({"methods": methods, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
