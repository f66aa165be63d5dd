"""Acquisition variants of healthy and lesioned phantoms, through the whole pipeline.

For each variant (storage order, sagittal 3-D, 5 mm slices, cropped field of view, bias
field, a 15-degree tilt, skull on, skull on and tilted, clinical stacks of a few thick
axial slices with the skull on), the same subjects are acquired
that way: healthy controls (calibration), healthy test scans and metastasis-like scans
(T1c). A copy of the model is calibrated with the variant's own controls and scores its
test scans:

- healthy test scans: the share at or below the 95th percentile on the headline score;
- lesioned scans: the share whose top finding overlaps the true lesion, and the share
  whose z-map peaks on a lesion (within 4 mm);
- every healthy test scan of the variant is also scored against the controls of the
  scans *as acquired* (the model's own domain): flagged out of domain, called unusual
  (above the 95th percentile without a flag), or in range.

    python studies/acquisition_matrix.py MODEL --out matrix/ [--voxel-mm 2 --healthy 12 --mets 8]

Writes ``matrix/results.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.acquisition import parse_variant
from madgan_core.cohort.phantom.head import wrap_in_head
from madgan_core.model.checkpoint import load_model, update_checkpoint
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import ManifestRow
from madgan_core.scoring.calibrate import calibrate_model
from madgan_core.scoring.scorer import score_scan

# name: (acquisition variants in order, skull on, preprocessing for the variant's model)
VARIANTS = {
    "as acquired": ((), False, {}),
    "LPI storage": (("reorient-LPI",), False, {}),
    "sagittal 3-D": (("sagittal",), False, {}),
    "5 mm axial slices": (("thick5",), False, {}),
    "cropped (top 25 mm)": (("crop-top25",), False, {}),
    "bias field 0.4": (("bias0.4",), False, {}),
    "bias field 0.4, N4": (("bias0.4",), False, {"bias": "n4"}),
    "tilt 15 deg, resampled only": (("tilt15",), False, {}),
    "tilt 15 deg, rigid alignment": (("tilt15",), False, {"align": "rigid"}),
    "cropped (top 25 mm), rigid alignment": (("crop-top25",), False, {"align": "rigid"}),
    "skull on": ((), True, {}),
    "skull on, tilt 15 deg, rigid": (("tilt15",), True, {"align": "rigid"}),
    # Clinical stacks: a few thick axial slices covering the brain, skull on.
    "skull on, 6.5 mm axial slices over the brain": (
        ("crop-top1", "crop-bottom1", "thick6.5"),
        True,
        {},
    ),
    "skull on, tilt 10 deg, 7 mm axial slices over the brain": (
        ("tilt10", "crop-top1", "crop-bottom1", "thick7"),
        True,
        {},
    ),
}
UNUSUAL = 95.0
PEAK_TOLERANCE_MM = 4.0


def subjects(n_healthy: int, n_mets: int, voxel_mm: float):
    """(name, split, volume, affine, lesion mask, noise) of the base subjects, T1c."""
    out = []
    for i in range(n_healthy):
        volume, affine, info = make_subject("healthy", 0, "T1c", seed=9000 + i, voxel_mm=voxel_mm)
        split = "calib" if i < n_healthy // 2 else "test"
        out.append((f"healthy-{i:03d}", split, volume, affine, None, info))
    for i in range(n_mets):
        volume, affine, info = make_subject("mets", 1, "T1c", seed=9500 + i, voxel_mm=voxel_mm)
        out.append((f"mets-{i:03d}", "test", volume, affine, info["lesion_mask"], info))
    return out


def acquire(base, steps, skull: bool, voxel_mm: float, folder: Path) -> list[ManifestRow]:
    """Write each base subject acquired as ``steps`` (and wrapped in a head) into ``folder``."""
    rows = []
    (folder / "scans").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for k, (name, split, volume, affine, lesion, info) in enumerate(base):
        masks = {} if lesion is None else {"lesion": lesion}
        if skull:  # the brain mask is carried so that crops are measured on the brain
            volume, affine, brain, masks = wrap_in_head(
                volume, masks, voxel_mm, info["scanner"]["noise_sigma"], seed=k
            )
            masks = {**masks, "brain": brain}
        for step in steps:
            volume, affine, masks = parse_variant(step)(volume, affine, masks, k)
        path = folder / "scans" / f"{name}_T1c.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(volume, np.float32), affine), path)
        mask_path = None
        if "lesion" in masks:
            mask_path = folder / "masks" / f"{name}_lesion.nii.gz"
            nib.save(nib.Nifti1Image(masks["lesion"].astype(np.uint8), affine), mask_path)
        group = "healthy" if lesion is None else "mets"
        rows.append(
            ManifestRow(path, name, group, 0 if lesion is None else 1, "T1c", split, mask=mask_path)
        )
    return rows


def model_for(source: Path, path: Path, preprocess: dict, voxel_mm: float) -> Path:
    """A copy of the model with the variant's preprocessing (slices at the phantoms' spacing)."""
    shutil.copyfile(source, path)
    config = load_model(path).config.updated(
        {"preprocess": {"slice_mm": voxel_mm, **preprocess}}, source=str(path)
    )
    update_checkpoint(path, config=config.to_dict())
    return path


def lesion_outcome(result, row: ManifestRow) -> tuple[bool, bool]:
    """(top finding overlaps the lesion, z-map peak within PEAK_TOLERANCE_MM of it)."""
    scan = load_scan(row.path)
    lesion = np.asarray(load_scan(row.mask).data) > 0.5
    voxel = float(np.cbrt(abs(np.linalg.det(scan.affine[:3, :3]))))
    near = ndimage.binary_dilation(lesion, iterations=max(1, round(PEAK_TOLERANCE_MM / voxel)))
    if result.zmap is None:  # too few controls for z-statistics
        return False, False
    zmap = np.nan_to_num(result.zmap, nan=-np.inf)
    peak_on = bool(near[np.unravel_index(np.argmax(zmap), zmap.shape)])
    found = False
    if result.findings:
        top = result.findings[0].peak_voxel
        found = bool(near[top])
    return found, peak_on


def run_variant(name, spec, base, model_file, baseline_model, out, voxel_mm) -> dict:
    steps, skull, preprocess = spec
    folder = out / name.replace(" ", "_").replace(",", "")
    rows = acquire(base, steps, skull, voxel_mm, folder)
    path = model_for(model_file, folder / "model.pt", preprocess, voxel_mm)
    calibrate_model(path, rows)
    model = load_model(path)
    healthy = [r for r in rows if r.group == "healthy" and r.split == "test"]
    lesioned = [r for r in rows if r.group == "mets"]
    in_range, domain_flags, found, peaks = 0, 0, 0, 0
    for row in healthy:
        result = score_scan(model, load_scan(row.path), maps=False, sequence="T1c")
        pct = result.percentiles.get(result.headline)
        in_range += pct is not None and pct <= UNUSUAL
        domain_flags += result.domain is not None and not result.domain.in_domain
    for row in lesioned:
        result = score_scan(model, load_scan(row.path), maps=True, sequence="T1c")
        hit, peak = lesion_outcome(result, row)
        found += hit
        peaks += peak
    outcome = {"flagged": 0, "unusual": 0, "in range": 0}
    reasons = set()
    if baseline_model is not None:
        for row in healthy:
            result = score_scan(baseline_model, load_scan(row.path), maps=False, sequence="T1c")
            pct = result.percentiles.get(result.headline)
            if result.domain is not None and not result.domain.in_domain:
                outcome["flagged"] += 1
                reasons.update(result.domain.reasons)
            elif pct is not None and pct > UNUSUAL:
                outcome["unusual"] += 1
            else:
                outcome["in range"] += 1
    return {
        "variant": name,
        "steps": list(steps) + (["head"] if skull else []),
        "preprocess": preprocess,
        "healthy_test": len(healthy),
        "healthy_in_range": int(in_range),
        "healthy_flagged_by_own_controls": int(domain_flags),
        "lesioned": len(lesioned),
        "top_finding_on_lesion": int(found),
        "zmap_peak_on_lesion": int(peaks),
        "against_as_acquired_controls": outcome,
        "reasons": sorted(reasons),
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| variant | healthy ≤ 95th pct (own controls) | lesion: top finding on it | "
        "lesion: z-map peak on it | healthy vs as-acquired controls: flagged / unusual / in range |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        o = r["against_as_acquired_controls"]
        lines.append(
            f"| {r['variant']} | {r['healthy_in_range']}/{r['healthy_test']} | "
            f"{r['top_finding_on_lesion']}/{r['lesioned']} | {r['zmap_peak_on_lesion']}/{r['lesioned']} | "
            f"{o['flagged']} / {o['unusual']} / {o['in range']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a trained model (its reference is replaced)")
    parser.add_argument("--out", type=Path, default=Path("acquisition_matrix"))
    parser.add_argument("--voxel-mm", type=float, default=2.0)
    parser.add_argument("--healthy", type=int, default=24, help="half calib, half test")
    parser.add_argument("--mets", type=int, default=8)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    base = subjects(args.healthy, args.mets, args.voxel_mm)
    names = [n for n in VARIANTS if args.only is None or n in args.only]
    results, baseline = [], None
    earlier = args.out / "as_acquired" / "model.pt"
    if "as acquired" not in names and earlier.is_file():  # a partial run adds to a full one
        baseline = load_model(earlier)
        results = json.loads((args.out / "results.json").read_text())
        results = [r for r in results if r["variant"] not in names]
    for name in tqdm(names, desc="variants"):
        result = run_variant(
            name, VARIANTS[name], base, args.model, baseline, args.out, args.voxel_mm
        )
        results.append(result)
        results.sort(key=lambda r: list(VARIANTS).index(r["variant"]))
        if name == "as acquired":
            baseline = load_model(args.out / "as_acquired" / "model.pt")
        atomic_write_text(args.out / "results.json", json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
