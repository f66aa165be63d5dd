"""The template fit's optimiser runs (SimpleITK), made deterministic.

ITK's Mattes metric and N4's B-spline fit add their threads' partial sums in the order the
threads finish, so a threaded run differs from the last in its rounding and, after a
hundred optimiser steps, in its result. ITK builds its metric and samplers with the
global default thread count, not the one set on the outer object, so :func:`itk_threads`
sets that default for the block; the metric's random sampling is seeded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

# ITK threads for the fit and N4 (one: threaded sums come in a varying order), and the
# seed of the metric's random sampling.
FIT_THREADS = 1
SAMPLING_SEED = 7
# The fine levels see the scan only this far (mm) around where the template's metric mask
# lands after the coarse rigid fit (the box cut out of the scan, and the scan's own metric
# mask, which spares the metric the points that cannot meet the template's mask).
CROP_MARGIN_MM = 15.0
FIXED_MASK_MARGIN_MM = 12.0


_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextlib.contextmanager
def itk_threads() -> Iterator[None]:
    """Run SimpleITK with ``FIT_THREADS`` threads inside the block, then restore the default.

    Filters and metrics that ITK builds internally take the global default, not the
    number set on the outer object, so the default itself is set for the block. Blocks may
    overlap (the cohort loader prepares scans in parallel threads): the first to enter
    sets the default and the last to leave restores it.
    """
    import SimpleITK as sitk

    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(FIT_THREADS)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_threads_before)


def _method(iterations: int, levels: tuple[int, ...], learning_rate: float, fraction: float):
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(FIT_THREADS)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    if fraction < 1.0:
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(fraction, seed=SAMPLING_SEED)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate,
        minStep=1e-3,
        numberOfIterations=iterations,
        relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-6,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(levels))
    reg.SetSmoothingSigmasPerLevel([0.0] * len(levels))
    return reg


def run_fit(
    fixed, moving, moving_mask, transform, iterations, levels, fraction=0.25, fixed_mask=None
):
    """Optimise ``transform`` in place; the last level of the pyramid samples every voxel
    (of ``fixed_mask``, when given)."""
    reg = _method(iterations, levels, 2.0, fraction)
    reg.SetMetricMovingMask(moving_mask)
    if fixed_mask is not None:
        reg.SetMetricFixedMask(fixed_mask)
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving)
    return float(reg.GetMetricValue())


def crop_near(fixed, moving_mask, transform):
    """Where the fine levels look: ``fixed`` cut to the box ``CROP_MARGIN_MM`` around
    where ``moving_mask`` lands under ``transform`` (fixed -> moving points), and a metric
    mask of the landed mask grown by ``FIXED_MASK_MARGIN_MM`` on it (None if it lands
    nowhere)."""
    import SimpleITK as sitk

    landed = sitk.Resample(
        moving_mask, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )
    where = np.argwhere(sitk.GetArrayViewFromImage(landed))[:, ::-1]  # (x, y, z)
    if where.size == 0:
        return fixed, None
    spacing = np.asarray(fixed.GetSpacing())
    size = np.asarray(fixed.GetSize())
    pad = np.ceil(CROP_MARGIN_MM / spacing).astype(int)
    lo = np.maximum(where.min(axis=0) - pad, 0)
    hi = np.minimum(where.max(axis=0) + pad + 1, size)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    radius = [int(r) for r in np.ceil(FIXED_MASK_MARGIN_MM / spacing)]
    return fixed[box], sitk.BinaryDilate(landed[box], radius)


def refine_affine(fixed, moving, moving_mask, rigid):
    """12 parameters from the (coarse) rigid fit: the coarse level, then the registration grid."""
    import SimpleITK as sitk

    return _refine(fixed, moving, moving_mask, rigid, sitk.AffineTransform(3))


def refine_similarity(fixed, moving, moving_mask, rigid):
    """Rigid plus one isotropic scale (7 parameters) from the rigid fit."""
    import SimpleITK as sitk

    return _refine(fixed, moving, moving_mask, rigid, sitk.Similarity3DTransform())


def _refine(fixed, moving, moving_mask, rigid, transform):
    """``transform`` started at the rigid fit, then optimised coarse to fine (the fine
    level near the template, :func:`crop_near`)."""
    transform.SetCenter(rigid.GetCenter())
    transform.SetMatrix(rigid.GetMatrix())
    transform.SetTranslation(rigid.GetTranslation())
    near, near_mask = crop_near(fixed, moving_mask, rigid)
    # Every voxel of the coarse level: a quarter of them pins twelve parameters poorly.
    run_fit(near, moving, moving_mask, transform, 100, (2,), fraction=1.0)
    return transform, run_fit(
        near, moving, moving_mask, transform, 150, (1,), fraction=1.0, fixed_mask=near_mask
    )
