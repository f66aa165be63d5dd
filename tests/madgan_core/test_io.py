from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, inv_ornt_aff

from madgan_core.errors import ScanError
from madgan_core.scans.files import load_scan, save_like
from madgan_core.scans.scan import Scan
from madgan_testing.brains import NIBABEL_DATA, synthetic_brain

ORIENTATIONS = [
    np.array([[0, 1], [1, 1], [2, 1]]),  # RAS
    np.array([[0, -1], [1, 1], [2, 1]]),  # LAS (radiological)
    np.array([[1, 1], [0, -1], [2, -1]]),  # permuted and flipped
    np.array([[2, 1], [0, 1], [1, -1]]),  # axial stored first
]


def write_in_orientation(
    data: np.ndarray, affine: np.ndarray, ornt: np.ndarray, path: Path
) -> Path:
    """Store the same image with its voxels in another order, with the matching affine."""
    native = apply_orientation(data, ornt)
    native_affine = affine @ inv_ornt_aff(ornt, data.shape)
    nib.save(nib.Nifti1Image(native, native_affine), path)
    return path


@pytest.mark.parametrize("ornt", ORIENTATIONS, ids=["RAS", "LAS", "perm-flip", "axial-first"])
def test_any_orientation_loads_as_the_same_ras_array(tmp_path, ornt):
    data = synthetic_brain((20, 24, 18))
    affine = np.array([[2.0, 0, 0, -20], [0, 2.0, 0, -24], [0, 0, 2.5, -10], [0, 0, 0, 1]])
    path = write_in_orientation(data, affine, ornt, tmp_path / "scan.nii.gz")
    scan = load_scan(path)
    np.testing.assert_array_equal(scan.data, data)
    np.testing.assert_allclose(scan.affine, affine)
    np.testing.assert_allclose(scan.zooms, [2.0, 2.0, 2.5])


@pytest.mark.parametrize("ornt", ORIENTATIONS[1:], ids=["LAS", "perm-flip", "axial-first"])
def test_save_like_writes_native_space(tmp_path, ornt):
    data = synthetic_brain((20, 24, 18))
    path = write_in_orientation(data, np.eye(4), ornt, tmp_path / "scan.nii")
    scan = load_scan(path)
    marker = np.zeros_like(scan.data)
    marker[3, 5, 7] = 1.0
    out = save_like(marker, scan, tmp_path / "out.nii.gz")
    written = nib.load(out)
    native = nib.load(path)
    assert written.shape == native.shape
    np.testing.assert_allclose(written.affine, native.affine)
    # The marked voxel sits at the same world position as in the RAS volume.
    idx = np.argwhere(np.asarray(written.dataobj) == 1.0)[0]
    world = written.affine @ np.r_[idx, 1]
    np.testing.assert_allclose(world, scan.affine @ np.r_[3, 5, 7, 1])


def test_real_anatomical_nifti():
    scan = load_scan(NIBABEL_DATA / "anatomical.nii")
    assert scan.data.dtype == np.float32 and scan.data.ndim == 3
    assert scan.data.shape == (33, 41, 25)


def test_real_multi_volume_mgz_is_refused():
    with pytest.raises(ScanError, match=r"test\.mgz: is a 4-D image with 2 volumes"):
        load_scan(NIBABEL_DATA / "test.mgz")


def test_mgz_round_trip_of_a_real_scan(tmp_path):
    nifti = nib.load(NIBABEL_DATA / "anatomical.nii")
    mgz = tmp_path / "anatomical.mgz"
    nib.save(nib.MGHImage(np.asarray(nifti.dataobj, dtype=np.float32), nifti.affine), mgz)
    np.testing.assert_allclose(load_scan(mgz).data, load_scan(NIBABEL_DATA / "anatomical.nii").data)


def test_real_4d_is_refused_with_clear_error():
    with pytest.raises(ScanError, match=r"example4d\.nii\.gz: is a 4-D image with \d+ volumes"):
        load_scan(NIBABEL_DATA / "example4d.nii.gz")


def test_4d_with_single_volume_is_accepted(tmp_path):
    data = synthetic_brain((10, 12, 9))[..., None]
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "single.nii")
    assert load_scan(tmp_path / "single.nii").data.shape == (10, 12, 9)


def test_missing_file(tmp_path):
    with pytest.raises(ScanError, match=r"nope\.nii: file not found"):
        load_scan(tmp_path / "nope.nii")


def test_directory(tmp_path):
    with pytest.raises(ScanError, match="is a directory"):
        load_scan(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.nii").write_bytes(b"")
    with pytest.raises(ScanError, match=r"empty\.nii: file is empty"):
        load_scan(tmp_path / "empty.nii")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.nii").write_text("this is a text file, not a NIfTI header" * 20)
    with pytest.raises(ScanError, match=r"notes\.nii: not a readable image"):
        load_scan(tmp_path / "notes.nii")


def test_truncated_gzip(tmp_path, brain_file):
    raw = brain_file.read_bytes()
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ScanError, match=r"broken\.nii\.gz"):
        load_scan(broken)


def test_2d_image(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((10, 10), np.float32), np.eye(4)), tmp_path / "flat.nii")
    with pytest.raises(ScanError, match=r"flat\.nii: expected a 3-D volume"):
        load_scan(tmp_path / "flat.nii")


def test_all_zero_volume(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4)), tmp_path / "zero.nii")
    with pytest.raises(ScanError, match=r"zero\.nii: volume is constant"):
        load_scan(tmp_path / "zero.nii")


def test_nan_voxels(tmp_path):
    data = synthetic_brain((10, 12, 9))
    data[2, 3, 4] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(ScanError, match=r"nan\.nii: contains 1 NaN or infinite voxels"):
        load_scan(tmp_path / "nan.nii")


def test_complex_data(tmp_path):
    data = np.ones((6, 6, 6), np.complex64)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "complex.nii")
    with pytest.raises(ScanError, match=r"complex\.nii: unsupported voxel type"):
        load_scan(tmp_path / "complex.nii")


def test_gzip_of_garbage(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(gzip.compress(b"\x00" * 1000))
    with pytest.raises(ScanError, match=r"garbage\.nii\.gz"):
        load_scan(path)


def test_from_array_round_trip():
    data = synthetic_brain((8, 9, 10))
    scan = Scan.from_array(data, np.diag([-1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(scan.data, data[::-1])
    np.testing.assert_array_equal(scan.to_native(scan.data), data)


def test_a_single_volume_4d_file_with_a_non_finite_affine_is_refused(tmp_path):
    """Found by the header fuzz: slicing the volume out rebuilt the header from the bad affine."""
    affine = np.eye(4)
    affine[2, :] = np.nan
    image = nib.Nifti1Image(np.ones((4, 4, 4, 1), np.uint8), None)
    image.header.set_sform(affine, code=1)
    path = tmp_path / "bad.nii"
    image.to_filename(path)
    with pytest.raises(ScanError, match="invalid .* affine"):
        load_scan(path)
