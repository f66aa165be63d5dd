"""Brain extraction by template registration, and a test for scans already skull-stripped.

The MNI152 template is registered (affine) to the scan and its brain mask carried onto the
scan's grid. docs/real-scans.md compares this with a BET port and gives the measured
Dice and times.
"""

from __future__ import annotations

import functools

import numpy as np

from madgan_core.errors import ScanError
from madgan_core.prep.anatomy.register import (
    Alignment,
    fit_affine,
    mni_template,
    register_to_template,
    template_distance_mm,
)
from madgan_core.prep.anatomy.warp import covering_box, sample_affine, sample_mapped
from madgan_core.scans.scan import Scan

METHODS = ("template",)
# Plausible brain (intracranial) volume of the extracted mask, in mL. nilearn's MNI152
# brain mask holds 1883 mL; adult brains with their CSF span roughly 1000-2000 mL, and an
# affine fit of a small or large head scales the template within this range.
BRAIN_ML = (800.0, 2500.0)
# looks_skull_stripped: bright voxels (over BRIGHT_FRACTION of the 99th percentile) are
# counted outside the registered brain mask grown by OUTSIDE_MARGIN_MM; a skull-stripped
# scan has almost none there, a head (scalp fat, marrow, eyes, neck) many.
BRIGHT_FRACTION = 0.25
OUTSIDE_MARGIN_MM = 10.0
STRIPPED_MAX_OUTSIDE = 0.05
# Brain extraction refuses a scan whose field of view holds less of the fitted brain.
MIN_COVERAGE = 0.5


def _scan_to_template_voxels(scan: Scan, alignment: Alignment) -> np.ndarray:
    """4x4 from the scan's voxels to the 1 mm template's (the scan's affine as the fit saw it)."""
    _, _, affine = mni_template()
    return np.linalg.inv(affine) @ np.linalg.inv(alignment.matrix) @ fit_affine(scan)


@functools.lru_cache(maxsize=1)
def _mask_box() -> np.ndarray:
    """First and last voxel (inclusive) of the template's brain mask, ``(2, 3)``."""
    where = np.argwhere(mni_template()[1])
    return np.stack([where.min(axis=0), where.max(axis=0)])


def _template_mask_on_scan(scan: Scan, alignment: Alignment) -> np.ndarray:
    """The template's brain mask on the scan's grid (linear, over 0.5), sampled only
    around where it lands."""
    _, mask, _ = mni_template()
    voxel_map = _scan_to_template_voxels(scan, alignment)
    box = covering_box(voxel_map, _mask_box(), scan.data.shape)
    warped = sample_affine(mask.astype(np.float32), voxel_map, scan.data.shape, box=box)
    return warped > 0.5


def brain_coverage(scan: Scan, alignment: Alignment) -> float:
    """The share of the fitted template brain that lies inside the scan's field of view."""
    _, mask, affine = mni_template()
    points = np.argwhere(mask[::2, ::2, ::2]) * 2.0
    world = alignment.mni_to_scan(points @ affine[:3, :3].T + affine[:3, 3])
    voxels = (world - scan.affine[:3, 3]) @ np.linalg.inv(scan.affine[:3, :3]).T
    inside = np.all((voxels >= -0.5) & (voxels <= np.asarray(scan.data.shape) - 0.5), axis=1)
    return float(inside.mean())


def extract_brain(
    scan: Scan, method: str = "template", *, alignment: Alignment | None = None
) -> np.ndarray:
    """The brain mask of ``scan`` on ``scan.data``'s grid (bool).

    Args:
        scan: a RAS+ scan of a head (skull on).
        method: ``"template"``: affine registration of the MNI152 template and its mask.
        alignment: an affine fit of the template to ``scan`` already made, to reuse.

    Raises:
        ScanError: the registration diverged, or the mask is empty or of an implausible
            volume (outside ``BRAIN_ML``), or it leaves the field of view.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if alignment is None:
        alignment = register_to_template(scan, "affine")
    mask = _template_mask_on_scan(scan, alignment)
    voxel_ml = float(np.prod(scan.zooms)) / 1000.0
    volume_ml = float(mask.sum()) * voxel_ml
    if volume_ml == 0:
        raise ScanError("brain extraction found no brain (the mask is empty)", scan.path)
    coverage = brain_coverage(scan, alignment)
    if coverage < MIN_COVERAGE:
        raise ScanError(
            f"the scan covers only {coverage:.0%} of the brain (brain extraction needs at "
            f"least {MIN_COVERAGE:.0%}); is the field of view cropped?",
            scan.path,
        )
    whole_ml = volume_ml / coverage  # a partly covered brain, judged whole
    if not BRAIN_ML[0] <= whole_ml <= BRAIN_ML[1]:
        raise ScanError(
            f"brain extraction gave {whole_ml:.0f} mL, outside the plausible "
            f"{BRAIN_ML[0]:.0f}-{BRAIN_ML[1]:.0f} mL of an adult brain; is this a brain scan?",
            scan.path,
        )
    return mask


def looks_skull_stripped(scan: Scan, *, alignment: Alignment | None = None) -> bool:
    """Whether ``scan`` shows a brain alone (no skull, scalp or neck).

    ``alignment``: a fit of the template to ``scan`` already made, to reuse (else rigid).
    """
    return outside_brain_fraction(scan, alignment) < STRIPPED_MAX_OUTSIDE


def outside_brain_fraction(scan: Scan, alignment: Alignment | None = None) -> float:
    """The fraction of bright voxels lying well outside the registered template brain."""
    data = scan.data
    positive = data[data > 0]
    if positive.size == 0:
        raise ScanError("has no positive voxels; is it a magnitude image?", scan.path)
    bright = data > BRIGHT_FRACTION * np.percentile(positive, 99)
    # Rigid by default: the template's distances then hold on the scan.
    if alignment is None:
        alignment = register_to_template(scan, "rigid")
    far = OUTSIDE_MARGIN_MM + 1.0  # beyond the template's field of view
    # The distance (linear) at each bright voxel, looked up on the template's grid.
    voxel_map = _scan_to_template_voxels(scan, alignment)
    index = np.argwhere(bright)
    distance = sample_mapped(template_distance_mm(), index, voxel_map, cval=far)
    return float(np.count_nonzero(distance > OUTSIDE_MARGIN_MM)) / max(1, len(index))
