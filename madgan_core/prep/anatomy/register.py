"""Registration of the MNI152 template to a scan (SimpleITK), and resampling between grids.

The template (nilearn's skull-stripped MNI152 1 mm T1) is the moving image and the scan the
fixed one. The metric (Mattes mutual information) only samples the template's brain and a
margin around it (the moving metric mask), so the scan's scalp or neck does not pull the
fit, while the dark margin keeps the template from shrinking or growing inside the head.
Both images are smoothed and resampled to ``REGISTRATION_MM`` first; the fit runs at twice
that, then on that grid, so a 1 mm head registers in seconds.

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

import numpy as np
from scipy import ndimage

from madgan_core.errors import ScanError
from madgan_core.prep.anatomy.fit import itk_threads, refine_affine, refine_similarity, run_fit
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
    """nilearn's MNI152 1 mm T1 (skull-stripped, in [0, 1]), its brain mask and affine."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    return (
        np.asarray(t1.get_fdata(dtype=np.float32)),
        np.asarray(mask.get_fdata(dtype=np.float32)) > 0.5,
        np.asarray(t1.affine, dtype=float),
    )


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


def _coarse(image, voxel_mm: float):
    """Smooth (for the larger of the voxel sizes) and resample onto a ``voxel_mm`` grid."""
    import SimpleITK as sitk

    spacing = np.array(image.GetSpacing())
    size = np.array(image.GetSize())
    sigma = [float(max(0.0, 0.5 * np.sqrt(max(voxel_mm**2 - s**2, 0.0)))) for s in spacing]
    if max(sigma) > 0:  # a discrete Gaussian takes a zero variance on an axis already coarse
        image = sitk.DiscreteGaussian(image, [s * s for s in sigma])
    new_size = [max(2, int(np.ceil(n * s / voxel_mm))) for n, s in zip(size, spacing, strict=True)]
    return sitk.Resample(
        image,
        new_size,
        sitk.Transform(),
        sitk.sitkLinear,
        image.GetOrigin(),
        [voxel_mm] * 3,
        image.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )


@functools.lru_cache(maxsize=1)
def _coarse_template():
    import SimpleITK as sitk

    t1, mask, affine = mni_template()
    moving = _coarse(sitk_image(t1, affine), REGISTRATION_MM)
    dilated = ndimage.distance_transform_edt(~mask) <= MASK_MARGIN_MM
    moving_mask = _coarse(sitk_image(dilated.astype(np.float32), affine), REGISTRATION_MM)
    return moving, sitk.Cast(moving_mask > 0.5, sitk.sitkUInt8)


def _fixed_image(scan: Scan):
    """The scan on the coarse grid, intensities clipped to a robust range."""
    data = scan.data
    lo, hi = np.percentile(data[::2, ::2, ::2], [0.5, 99.5])
    clipped = np.clip(data, lo, hi) - lo
    return _coarse(sitk_image(clipped, fit_affine(scan)), REGISTRATION_MM)


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
                mask_image = sitk_image(np.asarray(brain_mask, np.float32), fit_affine(scan))
                fixed_mask = _coarse(mask_image, REGISTRATION_MM)
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
    metric = run_fit(fixed, moving, moving_mask, best, 100, (1,), fraction=1.0)
    alignment = Alignment(_matrix(best), "rigid", metric)
    retried = ""
    if kind == "affine":
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
