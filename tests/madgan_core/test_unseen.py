"""Held-out lesion types: each changes the scan only around its mask, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.unseen import SCORED_Z_MM, UNSEEN_TYPES, apply_unseen

VOX = 4.0


@pytest.fixture(scope="module")
def host() -> tuple[np.ndarray, np.ndarray]:
    volume, affine, _ = make_subject("healthy", sequence="T1", seed=2, voxel_mm=VOX)
    return volume, affine


@pytest.mark.parametrize("kind", list(UNSEEN_TYPES))
def test_lesion_changes_the_scan_near_its_mask(host, kind):
    volume, affine = host
    out, mask = apply_unseen(kind, volume, affine, np.random.default_rng(3))
    assert out.shape == volume.shape and out.dtype == np.float32
    assert mask.dtype == bool and mask.any()
    change = np.abs(out - volume)
    level = float(np.median(volume[volume > 0]))
    assert change[mask].mean() > 0.05 * level
    # Some lesion voxels lie in the axial band the model scores.
    z = affine[2, 2] * np.arange(volume.shape[2]) + affine[2, 3]
    in_band = (z >= SCORED_Z_MM[0]) & (z <= SCORED_Z_MM[1])
    assert mask[:, :, in_band].any()
    if kind == "midline_shift":  # moved tissue changes intensities around, not only in, the mask
        return
    near = ndimage.binary_dilation(mask, iterations=2)
    assert change[~near].max() < 0.05 * level
    assert change[~near].mean() < 1e-3 * level


@pytest.mark.parametrize("kind", list(UNSEEN_TYPES))
def test_same_seed_same_lesion(host, kind):
    volume, affine = host
    a, mask_a = apply_unseen(kind, volume, affine, np.random.default_rng(5))
    b, mask_b = apply_unseen(kind, volume, affine, np.random.default_rng(5))
    c, _ = apply_unseen(kind, volume, affine, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert not np.array_equal(a, c)


def test_input_is_left_alone_and_unknown_type_refused(host):
    volume, affine = host
    before = volume.copy()
    apply_unseen("glioma", volume, affine, np.random.default_rng(0))
    np.testing.assert_array_equal(volume, before)
    with pytest.raises(ValueError, match="unseen lesion type"):
        apply_unseen("metastasis", volume, affine, np.random.default_rng(0))


def test_midline_shift_moves_the_ventricles_across(host):
    volume, affine = host
    out, _ = apply_unseen("midline_shift", volume, affine, np.random.default_rng(1))
    k = int(round((15.0 - affine[2, 3]) / affine[2, 2]))  # through the lateral ventricles
    x = affine[0, 0] * np.arange(volume.shape[0]) + affine[0, 3]

    def dark_centre(v: np.ndarray) -> float:
        sl = v[:, :, k]
        dark = (sl > 0) & (sl < np.percentile(v[v > 0], 15)) & (np.abs(x)[:, None] < 20)
        return float(x[np.nonzero(dark)[0]].mean())

    assert abs(dark_centre(out) - dark_centre(volume)) > 2.0
