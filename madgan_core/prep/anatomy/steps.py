"""The anatomy steps of the prepare stage: the brain step and template alignment, as
:func:`madgan_core.prep.stages.prepare_scan` runs them.

``brain = auto`` first asks whether the scan is plainly a brain alone: most of its voxels
exactly at its minimum (a masked background, as skull-stripping tools write) around a
foreground no larger than an adult brain. Such a scan passes through without a
registration, so skull-stripped cohorts cost nothing extra. Any other scan is fitted to
the template once (affine); :func:`~madgan_core.prep.anatomy.looks_skull_stripped` decides on
that fit and, if a skull is there, :func:`~madgan_core.prep.anatomy.extract_brain` reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madgan_core.prep.anatomy.brain import BRAIN_ML, extract_brain, looks_skull_stripped
from madgan_core.prep.anatomy.register import Alignment, register_to_template, template_grid
from madgan_core.scans.scan import Scan

# A masked background covers at least this share of a skull-stripped scan's voxels.
MASKED_BACKGROUND_SHARE = 0.3


@dataclass(frozen=True)
class BrainStep:
    """What the brain step found: the mask (None: the scan is a brain alone), whether a
    skull was there, the template fit it made (if any) and a line for the steps list."""

    mask: np.ndarray | None
    skull: bool
    alignment: Alignment | None
    step: str | None


def plainly_skull_stripped(scan: Scan) -> bool:
    """A masked background around a foreground no larger than an adult brain."""
    data = scan.data
    background = data <= data.min()
    if background.mean() < MASKED_BACKGROUND_SHARE:
        return False
    voxel_ml = float(np.prod(scan.zooms)) / 1000.0
    return float(np.count_nonzero(~background)) * voxel_ml <= BRAIN_ML[1]


def brain_step(scan: Scan, mode: str) -> BrainStep:
    """``mode``: ``auto`` (extract only when a skull is detected) or ``extract``."""
    if mode == "auto" and plainly_skull_stripped(scan):
        return BrainStep(None, False, None, None)
    alignment = register_to_template(scan, "affine")
    if mode == "auto" and looks_skull_stripped(scan, alignment=alignment):
        return BrainStep(None, False, alignment, None)
    mask = extract_brain(scan, alignment=alignment)
    return BrainStep(mask, True, alignment, "brain extracted (template registration)")


def template_working_grid(
    scan: Scan, kind: str, voxel_mm: float, alignment: Alignment | None, mask: np.ndarray | None
) -> tuple[Alignment, np.ndarray, tuple[int, int, int]]:
    """The template's field of view at ``voxel_mm``, placed on the scan by a ``kind`` fit
    (``rigid`` or ``affine``): its affine in scan world mm and its shape. Reuses
    ``alignment`` when it is of that kind."""
    if alignment is None or alignment.kind != kind:
        alignment = register_to_template(scan, kind, brain_mask=mask)
    shape, grid_affine = template_grid(float(voxel_mm))
    return alignment, alignment.matrix @ grid_affine, shape
