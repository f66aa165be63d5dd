"""The fast paths of the prepare stage give what the slower ones they replace gave."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from madgan_core.prep.anatomy.coarse import coarse_array, coarse_size
from madgan_core.prep.anatomy.register import (
    MAX_DISTANCE_MM,
    mni_template,
    sitk_image,
    template_distance_mm,
)
from madgan_core.prep.anatomy.warp import covering_box, sample_affine, sample_mapped


def _smooth_volume(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape).astype(np.float32), 3) * 100


def test_coarse_array_matches_itk_gaussian_and_resample():
    sitk = pytest.importorskip("SimpleITK")
    data = _smooth_volume((60, 70, 50))
    spacing = (1.0, 1.0, 1.2)
    affine = np.diag([*spacing, 1.0])
    image = sitk_image(data, affine)
    sigma = [0.5 * np.sqrt(9.0 - s * s) for s in spacing]
    smoothed = sitk.DiscreteGaussian(image, [s * s for s in sigma])
    size = [coarse_size(n, s, 3.0) for n, s in zip(data.shape, spacing, strict=True)]
    expected = sitk.Resample(
        smoothed, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), [3.0] * 3,
        image.GetDirection(), 0.0, sitk.sitkFloat32,
    )  # fmt: skip
    expected = sitk.GetArrayFromImage(expected).transpose(2, 1, 0)
    got = coarse_array(data, spacing, 3.0)
    assert got.shape == expected.shape
    inner = (slice(1, -1),) * 3  # the edges differ in how the kernel meets the border
    assert np.abs(got[inner] - expected[inner]).max() < 0.01 * np.abs(expected).max()


@pytest.mark.parametrize("cval", [0.0, 11.0])
def test_sampling_matches_scipy(cval):
    volume = _smooth_volume((30, 34, 28), seed=1)
    voxel_map = np.array(
        [[0.9, 0.05, 0.0, 1.3], [-0.04, 1.1, 0.02, -2.0], [0.01, 0.0, 0.95, 0.7], [0, 0, 0, 1]]
    )
    shape = (32, 30, 30)
    expected = ndimage.affine_transform(
        volume, voxel_map[:3, :3], voxel_map[:3, 3], output_shape=shape, order=1,
        mode="grid-constant", cval=cval,
    )  # fmt: skip
    got = sample_affine(volume, voxel_map, shape, cval=cval)
    np.testing.assert_allclose(got, expected, atol=1e-3 * np.abs(volume).max())
    index = np.argwhere(np.ones(shape, bool))
    np.testing.assert_allclose(
        sample_mapped(volume, index, voxel_map, cval).reshape(shape), got, atol=1e-4 * 100
    )


def test_sampling_box_leaves_the_rest_at_cval():
    volume = np.zeros((20, 20, 20), np.float32)
    volume[8:12, 8:12, 8:12] = 1.0
    voxel_map = np.eye(4)
    voxel_map[:3, 3] = 2.0
    box = covering_box(voxel_map, np.array([[8, 8, 8], [11, 11, 11]]), (20, 20, 20))
    full = sample_affine(volume, voxel_map, (20, 20, 20))
    boxed = sample_affine(volume, voxel_map, (20, 20, 20), box=box)
    np.testing.assert_array_equal(full, boxed)


def test_template_distance_is_the_capped_distance_transform():
    _, mask, _ = mni_template()
    full = ndimage.distance_transform_edt(~mask)
    expected = np.minimum(full, MAX_DISTANCE_MM).astype(np.float32)
    np.testing.assert_array_equal(template_distance_mm(), expected)


def test_mni_template_is_nilearns():
    datasets = pytest.importorskip("nilearn.datasets")
    t1, mask, affine = mni_template()
    theirs = datasets.load_mni152_template(resolution=1)
    their_mask = datasets.load_mni152_brain_mask(resolution=1)
    np.testing.assert_array_equal(t1, theirs.get_fdata(dtype=np.float32))
    np.testing.assert_array_equal(mask, their_mask.get_fdata(dtype=np.float32) > 0.5)
    np.testing.assert_array_equal(affine, theirs.affine)
