"""The display convention: RAS+ volumes -> napari (S, P, R) world, axis-aligned and oblique."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from madgan_core.scans.scan import Scan
from napari_madgan._geometry import (
    display_affine,
    from_display,
    layer_geometry,
    robust_contrast,
    slice_world,
    to_display,
    world_to_slice,
)


def _ras_world_to_napari(w):
    x, y, z = w
    return np.array([z, -y, x])


def _random_affine(rng, oblique: bool) -> np.ndarray:
    zooms = rng.uniform(0.7, 3.0, 3)
    rot = np.eye(3)
    if oblique:
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        rot = q * np.sign(np.linalg.det(q))
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(zooms)
    aff[:3, 3] = rng.uniform(-100, 100, 3)
    return aff


def test_display_roundtrip_and_orientation():
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    disp = to_display(vol)
    assert disp.shape == (6, 5, 4)
    np.testing.assert_array_equal(from_display(disp), vol)
    # row 0 is the most anterior RAS row (y = ny - 1)
    assert disp[2, 0, 1] == vol[1, 4, 2]


@pytest.mark.parametrize("oblique", [False, True])
def test_layer_geometry_maps_voxels_to_world(oblique):
    rng = np.random.default_rng(3 + oblique)
    shape = (7, 9, 5)
    aff = _random_affine(rng, oblique)
    mat = display_affine(aff, shape)
    geom = layer_geometry(aff, shape)
    assert ("affine" in geom) == oblique
    for _ in range(10):
        i, j, k = (int(rng.integers(0, n)) for n in shape)
        expected = _ras_world_to_napari((aff @ [i, j, k, 1])[:3])
        disp_index = np.array([k, shape[1] - 1 - j, i, 1.0])
        np.testing.assert_allclose((mat @ disp_index)[:3], expected, atol=1e-9)
        if not oblique:
            got = np.array(geom["scale"]) * disp_index[:3] + np.array(geom["translate"])
            np.testing.assert_allclose(got, expected, atol=1e-9)


def test_anterior_is_up_and_superior_on_slider():
    scan = Scan.from_array(
        np.random.default_rng(0).random((10, 12, 8)).astype(np.float32), np.diag([2, 2, 3, 1])
    )
    mat = display_affine(scan.affine, scan.data.shape)
    # moving down a row (j+1) goes posterior: napari axis 1 (P) increases
    assert mat[1, 1] > 0
    # slider axis 0 is superior and steps by the z voxel size
    assert mat[0, 0] == pytest.approx(3.0)


def test_slice_world_roundtrip():
    aff = np.diag([1.5, 1.5, 2.5, 1.0])
    aff[:3, 3] = (-90, -120, -60)
    shape = (20, 24, 30)
    for z in (0, 7, 29):
        assert world_to_slice(slice_world(z, aff, shape), aff, shape) == z


def test_reoriented_file_matches_nibabel_world(tmp_path):
    # A LPS-ordered file: load_scan makes it RAS+; the display must keep world coordinates.
    rng = np.random.default_rng(1)
    data = rng.random((6, 7, 8)).astype(np.float32)
    aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    aff[:3, 3] = (50, 60, -20)
    path = tmp_path / "lps.nii.gz"
    nib.save(nib.Nifti1Image(data, aff), path)
    from madgan_core.scans.files import load_scan

    scan = load_scan(path)
    mat = display_affine(scan.affine, scan.data.shape)
    disp = to_display(scan.data)
    for i, j, k in [(0, 0, 0), (5, 6, 7), (2, 3, 4)]:
        world = _ras_world_to_napari((aff @ [i, j, k, 1])[:3])
        d = np.rint(np.linalg.solve(mat, [*world, 1.0])[:3]).astype(int)
        assert disp[tuple(d)] == pytest.approx(data[i, j, k])


def test_robust_contrast_ignores_background_and_nan():
    vol = np.zeros((20, 20, 20), np.float32)
    vol[5:15, 5:15, 5:15] = np.linspace(100, 200, 1000).reshape(10, 10, 10)
    vol[0, 0, 0] = np.nan
    lo, hi = robust_contrast(vol)
    assert 100 <= lo < 110 and 190 < hi <= 200
