"""Acquisition variants keep world geometry consistent and carry masks along."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from madgan_core.cohort.phantom import acquisition as acq

SHAPE = (30, 34, 40)
AFFINE = np.array([[2.0, 0, 0, -30.0], [0, 2.0, 0, -40.0], [0, 0, 1.5, -25.0], [0, 0, 0, 1]])
LANDMARK_VOX = np.array([12.0, 20.0, 22.0])


def _world(affine, vox):
    return affine[:3, :3] @ vox + affine[:3, 3]


def _blob(shape, affine, centre_mm, radius_mm=5.0):
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    mm = idx @ affine[:3, :3].T + affine[:3, 3]
    d2 = ((mm - centre_mm) ** 2).sum(axis=1).reshape(shape)
    return np.exp(-d2 / (2 * (radius_mm / 2) ** 2)).astype(np.float32)


def _centroid_mm(volume, affine):
    w = np.clip(volume - 0.2 * volume.max(), 0, None)
    idx = np.indices(volume.shape).reshape(3, -1).astype(float)
    vox = (idx * w.reshape(-1)).sum(axis=1) / w.sum()
    return _world(affine, vox)


@pytest.fixture
def scan():
    landmark = _world(AFFINE, LANDMARK_VOX)
    volume = _blob(SHAPE, AFFINE, landmark)
    brain = np.zeros(SHAPE, dtype=bool)
    brain[5:25, 5:30, 4:36] = True
    lesion = _blob(SHAPE, AFFINE, landmark) > 0.5
    return volume, {"brain": brain, "lesion": lesion}, landmark


VARIANTS = [
    ("thick6", lambda v, a, m: acq.thick_slices(v, a, m, mm=6.0)),
    ("aniso", lambda v, a, m: acq.anisotropic(v, a, m, in_plane=1.0, through=6.0)),
    ("crop", lambda v, a, m: acq.crop_field_of_view(v, a, m, top_mm=6.0, bottom_mm=4.5)),
    ("bias", lambda v, a, m: acq.bias_field(v, a, m, strength=0.3, seed=1)),
    ("reorient", lambda v, a, m: acq.reorient(v, a, m, "LPI")),
    ("sagittal", lambda v, a, m: acq.sagittal_acquisition(v, a, m, mm=4.0)),
]


@pytest.mark.parametrize("name,variant", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_keeps_the_landmark_in_place_and_carries_masks(scan, name, variant):
    volume, masks, landmark = scan
    out = variant(volume, AFFINE, masks)
    assert set(out.masks) == {"brain", "lesion"}
    for m in out.masks.values():
        assert m.shape == out.volume.shape and m.dtype == bool
    assert np.linalg.norm(_centroid_mm(out.volume, out.affine) - landmark) < 1.2
    # The lesion mask still sits on the landmark.
    lesion_vox = np.argwhere(out.masks["lesion"]).mean(axis=0)
    assert np.linalg.norm(_world(out.affine, lesion_vox) - landmark) < 2.0
    # The brain mask covers the same world volume, give or take the resampling.
    vox_ml = abs(np.linalg.det(out.affine[:3, :3]))
    before = masks["brain"].sum() * abs(np.linalg.det(AFFINE[:3, :3]))
    if name != "crop":
        assert abs(out.masks["brain"].sum() * vox_ml - before) / before < 0.15


def test_thick_slices_have_the_thickness_asked(scan):
    volume, masks, _ = scan
    out = acq.thick_slices(volume, AFFINE, masks, mm=4.5)
    assert np.allclose(np.linalg.norm(out.affine[:3, :3], axis=0), [2.0, 2.0, 4.5])
    assert out.volume.shape == (30, 34, 13)
    with pytest.raises(ValueError, match="finer"):
        acq.thick_slices(volume, AFFINE, masks, mm=1.0)


def test_sagittal_storage_order(scan):
    volume, masks, _ = scan
    out = acq.sagittal_acquisition(volume, AFFINE, masks, mm=4.0)
    assert nib.aff2axcodes(out.affine) == ("P", "I", "R")
    assert np.isclose(np.linalg.norm(out.affine[:3, 2]), 4.0)


def test_crop_removes_the_top_and_bottom_of_the_brain(scan):
    volume, masks, _ = scan
    out = acq.crop_field_of_view(volume, AFFINE, masks, top_mm=6.0, bottom_mm=3.0)
    assert out.volume.shape == (30, 34, 26)  # brain slices 4..35 less 2 below, 4 above
    assert out.masks["brain"].sum() == masks["brain"][:, :, 6:32].sum()


def test_tilt_turns_the_content_and_keeps_an_axis_aligned_grid(scan):
    volume, masks, landmark = scan
    centre = np.array([0.0, -20.0, -10.0])
    out = acq.tilt(volume, AFFINE, masks, degrees=15.0, world_axis="x", centre_mm=centre)
    assert np.array_equal(out.affine, AFFINE)
    expected = acq.rotation_matrix(15.0, "x") @ (landmark - centre) + centre
    assert np.linalg.norm(expected - landmark) > 3.0  # the test can tell a tilt from none
    assert np.linalg.norm(_centroid_mm(out.volume, out.affine) - expected) < 1.0
    lesion_vox = np.argwhere(out.masks["lesion"]).mean(axis=0)
    assert np.linalg.norm(_world(out.affine, lesion_vox) - expected) < 1.5


def test_bias_field_is_smooth_and_bounded(scan):
    volume, masks, _ = scan
    flat = np.ones(SHAPE, dtype=np.float32)
    out = acq.bias_field(flat, AFFINE, masks, strength=0.25, seed=3)
    assert np.isclose(np.log(out.volume).__abs__().max(), 0.25, atol=1e-3)
    assert np.abs(np.diff(np.log(out.volume), axis=0)).max() < 0.05


@pytest.mark.parametrize(
    "name",
    [
        "thick5",
        "aniso",
        "crop-top20",
        "crop-bottom10",
        "bias0.3",
        "tilt-15y",
        "reorient-ASL",
        "sagittal",
        "sagittal5",
    ],
)
def test_parse_variant_names(name):
    assert callable(acq.parse_variant(name))


@pytest.mark.parametrize("name", ["thick", "tilt15q", "reorient-LLS", "blur3"])
def test_parse_variant_refuses_unknown_names(name):
    with pytest.raises(ValueError, match="variant|orientation"):
        acq.parse_variant(name)(np.zeros((4, 4, 4)), np.eye(4), {}, 0)
