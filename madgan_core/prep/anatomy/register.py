"""Registration of the MNI152 template to a scan (SimpleITK), and resampling between grids.

The template (nilearn's skull-stripped MNI152 1 mm T1) is the moving image and the scan the
fixed one. The metric (Mattes mutual information) only samples the template's brain and a
margin around it (the moving metric mask), so the scan's scalp or neck does not pull the
fit, while the dark margin keeps the template from shrinking or growing inside the head.
Both images are smoothed and resampled to ``REGISTRATION_MM`` first (one small matrix per
axis, :mod:`.coarse`); the fit runs at twice that, then on that grid, where it looks only
near the template (:func:`~madgan_core.prep.anatomy.fit.crop_near`), so a 1 mm head
registers in a few seconds on one thread.

The fit is deterministic: it runs on one thread (ITK's Mattes metric adds the threads' joint
histograms in the order they finish, so a threaded fit differs from run to run), its
sampling is seeded, and it sees the scan's RAS+ array with its affine rounded to
``AFFINE_DECIMALS``, so files that store the same voxels in another axis order (whose
affines differ by float32 rounding) get the same fit.

A scan of thick slices (``THICK_SLICE_MM``) whose affine fit diverges is fitted again with
one scale for all axes (a similarity), which few thick slices can support."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from madgan_core.errors import ScanError
from madgan_core.prep.anatomy.coarse import coarse_array
from madgan_core.prep.anatomy.fit import (
    crop_near,
    itk_threads,
    refine_affine,
    refine_similarity,
    run_fit,
)
from madgan_core.scans.scan import Scan

REGISTRATION_MM = 3.0  # grid the metric is computed on (the pyramid adds a 6 mm level)
KINDS = ("rigid", "affine")
# Starts along the scan's inferior-superior axis (mm) around the first guess, tried at the
# coarse level.
START_SHIFTS_MM = (-10.0, 0.0, 10.0)
# The moving metric mask: the template's brain and this margin around it, where the template
# is dark as CSF and skull are: a template shrunk or grown inside the head then costs.
MASK_MARGIN_MM = 6.0
TOP_GAP_MM = 8.0  # scalp and skull above the brain (a skull-stripped scan: about 0 mm)
# A scan registered to the template spans at most this much along any axis, and at least
# this much along two (a brain is about 140 x 170 x 120 mm, a head with its neck under
# 300 mm); along the third, a slab of at least MIN_SLAB_MM.
HEAD_EXTENT_MM = (60.0, 400.0)
MIN_SLAB_MM = 20.0
# An affine whose linear part scales any axis outside this range is a diverged fit.
PLAUSIBLE_SCALE = (0.7, 1.45)
# A scan with voxels this thick (mm) along an axis whose affine fit diverged is fitted
# again with one scale for all axes (rigid plus a size).
THICK_SLICE_MM = 4.0
# The decimals (mm) the scan's affine is rounded to for the fit.
AFFINE_DECIMALS = 4
# nilearn's MNI152 1 mm T1 in its data folder, and the level of its brain mask.
MNI152_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
MNI_MASK_LEVEL = 0.2
# The template's distance map is exact up to this many mm (the margins below it matter).
MAX_DISTANCE_MM = 12.0


@dataclass(frozen=True)
class Alignment:
    """A fitted template-to-scan transform.

    Attributes:
        matrix: 4x4 affine taking MNI mm to scan world mm.
        kind: ``"rigid"`` or ``"affine"``.
        metric: final Mattes mutual information (more negative is a better fit).
    """

    matrix: np.ndarray
    kind: str
    metric: float

    def mni_to_scan(self, points_mm: np.ndarray) -> np.ndarray:
        """MNI mm ``(..., 3)`` -> scan world mm."""
        return _apply(self.matrix, points_mm)

    def scan_to_mni(self, points_mm: np.ndarray) -> np.ndarray:
        """Scan world mm ``(..., 3)`` -> MNI mm."""
        return _apply(np.linalg.inv(self.matrix), points_mm)

    def scales(self) -> np.ndarray:
        """Singular values of the linear part (1 for a rigid fit)."""
        return np.linalg.svd(self.matrix[:3, :3], compute_uv=False)

    def to_template(
        self,
        volume: np.ndarray,
        scan_affine: np.ndarray,
        order: int = 1,
        voxel_mm: float = 1.0,
        cval: float = 0.0,
    ) -> np.ndarray:
        """Resample a volume on the scan's grid onto the template grid at ``voxel_mm``."""
        shape, grid_affine = template_grid(voxel_mm)
        voxel_map = np.linalg.inv(scan_affine) @ self.matrix @ grid_affine
        return _resample(volume, voxel_map, shape, order, cval)

    def to_scan(
        self,
        volume: np.ndarray,
        scan_affine: np.ndarray,
        scan_shape: tuple[int, int, int],
        order: int = 1,
        cval: float = 0.0,
    ) -> np.ndarray:
        """Resample a volume on the template grid (any ``voxel_mm``) back onto the scan's grid."""
        voxel_mm = _grid_voxel_mm(volume.shape)
        _, grid_affine = template_grid(voxel_mm)
        voxel_map = np.linalg.inv(grid_affine) @ np.linalg.inv(self.matrix) @ scan_affine
        return _resample(volume, voxel_map, tuple(scan_shape), order, cval)


def _apply(matrix: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    pts = np.asarray(points_mm, dtype=float)
    return pts @ matrix[:3, :3].T + matrix[:3, 3]


def _resample(volume, voxel_map, shape, order, cval) -> np.ndarray:
    data = np.asarray(volume)
    dtype = np.float32 if data.dtype == bool else data.dtype
    return ndimage.affine_transform(
        data.astype(dtype, copy=False),
        voxel_map[:3, :3],
        voxel_map[:3, 3],
        output_shape=shape,
        order=order,
        mode="constant",
        cval=cval,
    )


@functools.lru_cache(maxsize=1)
def mni_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nilearn's MNI152 1 mm T1 (skull-stripped, in [0, 1]), its brain mask and affine.

    Read from nilearn's data folder as ``load_mni152_template`` and
    ``load_mni152_brain_mask`` make them (scaled by the maximum; the mask over
    ``MNI_MASK_LEVEL``), without importing ``nilearn.datasets`` (seconds of imports).
    """
    path = _nilearn_data() / MNI152_FILE
    if not path.is_file():  # another nilearn layout: its own loaders
        from nilearn import datasets

        t1 = datasets.load_mni152_template(resolution=1)
        mask = datasets.load_mni152_brain_mask(resolution=1)
        return (
            np.asarray(t1.get_fdata(dtype=np.float32)),
            np.asarray(mask.get_fdata(dtype=np.float32)) > 0.5,
            np.asarray(t1.affine, dtype=float),
        )
    import nibabel as nib

    image = nib.load(path)
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data /= data.max()
    return data, data > MNI_MASK_LEVEL, np.asarray(image.affine, dtype=float)


def _nilearn_data() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return Path("nilearn-not-installed")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


@functools.lru_cache(maxsize=1)
def template_distance_mm() -> np.ndarray:
    """Distance (mm) from the template's brain mask on its 1 mm grid, capped at
    ``MAX_DISTANCE_MM`` (exact below it).

    The transform runs on the mask's bounding box grown past the cap: every voxel of the
    mask lies inside, so distances there are exact, and beyond it they exceed the cap.
    """
    _, mask, _ = mni_template()
    margin = int(np.ceil(MAX_DISTANCE_MM)) + 1
    where = np.argwhere(mask)
    lo = np.maximum(where.min(axis=0) - margin, 0)
    hi = np.minimum(where.max(axis=0) + margin + 1, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    distance = np.full(mask.shape, MAX_DISTANCE_MM, dtype=np.float32)
    inside = ndimage.distance_transform_edt(~mask[box])
    distance[box] = np.minimum(inside, MAX_DISTANCE_MM)
    return distance


@functools.lru_cache(maxsize=4)
def template_grid(voxel_mm: float = 1.0) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the template's field of view sampled at ``voxel_mm``."""
    t1, _, affine = mni_template()
    shape = tuple(int(np.floor((s - 1) / voxel_mm)) + 1 for s in t1.shape)
    grid = affine.copy()
    grid[:3, :3] *= voxel_mm
    return shape, grid


def _grid_voxel_mm(shape: tuple[int, ...]) -> float:
    base = mni_template()[0].shape
    for voxel_mm in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        if template_grid(voxel_mm)[0] == tuple(shape[:3]):
            return voxel_mm
    raise ValueError(f"shape {tuple(shape)} is not a template grid (1 mm shape {base})")


def sitk_image(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image whose physical space is the affine's world (RAS mm, not ITK's LPS)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), np.float32))
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    image.SetSpacing([float(z) for z in zooms])
    image.SetOrigin([float(o) for o in affine[:3, 3]])
    image.SetDirection([float(d) for d in (affine[:3, :3] / zooms).ravel()])
    return image


def _coarse(data: np.ndarray, affine: np.ndarray, voxel_mm: float):
    """Smooth (for the larger of the voxel sizes) and resample onto a ``voxel_mm`` grid
    with the same origin and axes, as a SimpleITK image (:mod:`.coarse`)."""
    zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    coarse = coarse_array(data, zooms, voxel_mm)
    grid = np.array(affine, dtype=float)
    grid[:3, :3] = grid[:3, :3] / zooms * voxel_mm
    return sitk_image(coarse, grid)


@functools.lru_cache(maxsize=1)
def _coarse_template():
    import SimpleITK as sitk

    t1, mask, affine = mni_template()
    moving = _coarse(t1, affine, REGISTRATION_MM)
    dilated = template_distance_mm() <= MASK_MARGIN_MM
    moving_mask = _coarse(dilated.astype(np.float32), affine, REGISTRATION_MM)
    return moving, sitk.Cast(moving_mask > 0.5, sitk.sitkUInt8)


def _fixed_image(scan: Scan):
    """The scan on the coarse grid, intensities clipped to a robust range."""
    data = scan.data
    lo, hi = np.percentile(data[::2, ::2, ::2], [0.5, 99.5])
    clipped = np.clip(data, lo, hi) - lo
    return _coarse(clipped, fit_affine(scan), REGISTRATION_MM)


def fit_affine(scan: Scan) -> np.ndarray:
    """The scan's affine as the fit sees it: rounded to ``AFFINE_DECIMALS`` (mm)."""
    return np.round(np.asarray(scan.affine, dtype=float), AFFINE_DECIMALS) + 0.0


def _initial_rigid(fixed, moving):
    """Moments, then the brain's top moved to ``TOP_GAP_MM`` below the head's top.

    A head's centre of mass sits below its brain's when the neck is in the field of view,
    but the top of the head is the top of the brain plus scalp and skull.
    """
    import SimpleITK as sitk

    transform = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    fixed_top = _top_mm(fixed)
    moving_top = _top_mm(moving)
    t = np.array(transform.GetTranslation())
    # scan z -> MNI z is z + t_z: the head's top minus the gap lands on the template's top.
    t[2] = moving_top - (fixed_top - TOP_GAP_MM)
    transform.SetTranslation(t.tolist())
    return transform


def _top_mm(image) -> float:
    """World z (mm) of the highest slice holding a sizeable part of the foreground."""
    import SimpleITK as sitk

    data = sitk.GetArrayFromImage(image)  # (z, y, x)
    fg = data > 0.15 * np.percentile(data[data > 0], 99) if np.any(data > 0) else data > 0
    counts = fg.sum(axis=(1, 2))
    rows = np.flatnonzero(counts >= 0.02 * counts.max())
    index = [0, 0, int(rows.max())]
    return float(image.TransformIndexToPhysicalPoint(index)[2])


def _matrix(transform) -> np.ndarray:
    """The 4x4 of an ITK matrix-offset transform (scan world -> MNI), inverted: MNI -> scan."""
    a = np.array(transform.GetMatrix(), dtype=float).reshape(3, 3)
    c = np.array(transform.GetCenter(), dtype=float)
    t = np.array(transform.GetTranslation(), dtype=float)
    forward = np.eye(4)
    forward[:3, :3] = a
    forward[:3, 3] = t + c - a @ c
    return np.linalg.inv(forward)


def register_to_template(scan: Scan, kind: str = "rigid", *, brain_mask=None) -> Alignment:
    """Fit a rigid or affine transform from the MNI152 template to ``scan``.

    Args:
        scan: a RAS+ scan, with or without skull.
        kind: ``"rigid"`` (6 parameters) or ``"affine"`` (12; a rigid fit first).
        brain_mask: the scan's brain mask on its grid, if known; then only the scan's brain
            is compared with the template's.

    Raises:
        ScanError: the scan's extent is not a head's (``HEAD_EXTENT_MM``), or the fit
            diverged (non-finite, or an implausible scale).
    """
    import SimpleITK as sitk

    extent = np.asarray(scan.data.shape) * np.asarray(scan.zooms)
    small, middle, large = np.sort(extent)
    if large > HEAD_EXTENT_MM[1] or middle < HEAD_EXTENT_MM[0] or small < MIN_SLAB_MM:
        size = " x ".join(f"{v:.0f}" for v in extent)
        raise ScanError(
            f"the scan spans {size} mm, not a head's {HEAD_EXTENT_MM[0]:.0f}-"
            f"{HEAD_EXTENT_MM[1]:.0f} mm; check the voxel size (pixdim, units) in the header",
            scan.path,
        )

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    try:
        with itk_threads():
            fixed = _fixed_image(scan)
            moving, moving_mask = _coarse_template()
            if brain_mask is not None:
                mask = np.asarray(brain_mask, np.float32)
                fixed_mask = _coarse(mask, fit_affine(scan), REGISTRATION_MM)
                fixed = sitk.Mask(fixed, sitk.Cast(fixed_mask > 0.5, sitk.sitkUInt8))
            return _register(scan, kind, fixed, moving, moving_mask)
    except RuntimeError as exc:  # ITK: e.g. every sample fell outside the template
        first = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "no detail"
        raise ScanError(
            f"registration to the MNI152 template failed ({first}); is this a brain scan?",
            scan.path,
        ) from None


def _register(scan, kind, fixed, moving, moving_mask) -> Alignment:
    import SimpleITK as sitk

    base = _initial_rigid(fixed, moving)
    best, best_metric = None, np.inf
    for shift in START_SHIFTS_MM:
        # The transform maps scan -> MNI: a brain higher in the scan needs a negative z shift.
        candidate = sitk.Euler3DTransform(base)
        t = np.array(candidate.GetTranslation()) - np.array([0.0, 0.0, shift])
        candidate.SetTranslation(t.tolist())
        metric = run_fit(fixed, moving, moving_mask, candidate, 40, (2,))
        if metric < best_metric:
            best, best_metric = candidate, metric
    run_fit(fixed, moving, moving_mask, best, 100, (2,))
    retried = ""
    if kind == "rigid":
        near, near_mask = crop_near(fixed, moving_mask, best)
        metric = run_fit(
            near, moving, moving_mask, best, 100, (1,), fraction=1.0, fixed_mask=near_mask
        )
        alignment = Alignment(_matrix(best), "rigid", metric)
    else:  # the affine fit refines the coarse rigid fit on both levels itself
        transform, metric = refine_affine(fixed, moving, moving_mask, best)
        alignment = Alignment(_matrix(transform), kind, metric)
        if _diverged(alignment) and thick_slices(scan):
            # Few thick slices pin the scale along the slice axis poorly: one scale for
            # all three axes (rigid plus a size) is what they can support.
            transform, metric = refine_similarity(fixed, moving, moving_mask, best)
            alignment = Alignment(_matrix(transform), kind, metric)
            retried = ", also with one scale for its thick slices"
    if _diverged(alignment):
        raise ScanError(
            "registration to the MNI152 template diverged (scales "
            f"{', '.join(f'{s:.2f}' for s in alignment.scales())}{retried}); is this a brain "
            "scan that covers the head?",
            scan.path,
        )
    return alignment


def thick_slices(scan: Scan) -> bool:
    """Whether the scan's coarsest voxel axis is at least ``THICK_SLICE_MM``."""
    return float(np.max(scan.zooms)) >= THICK_SLICE_MM


def _diverged(alignment: Alignment) -> bool:
    scales = alignment.scales() if np.all(np.isfinite(alignment.matrix)) else None
    return bool(
        scales is None or scales.min() < PLAUSIBLE_SCALE[0] or scales.max() > PLAUSIBLE_SCALE[1]
    )
