"""The reader registry: which paths are scans, which reader reads them, and a new format added."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from madgan_core.errors import ManifestError, ScanError
from madgan_core.scans import readers
from madgan_core.scans._dicom import DicomReader
from madgan_core.scans.files import is_scan_path, load_scan, scan_exists
from madgan_core.scans.manifest import manifest_from_folder
from madgan_core.scans.scan import scan_stem
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import write_series
from tests.madgan_core.toy_format import TOY, write_toy


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setattr(readers, "READERS", [*readers.READERS, TOY])


def _nifti(path, shape=(8, 9, 10)):
    nib.save(nib.Nifti1Image(synthetic_brain(shape), np.eye(4)), path)
    return path


def test_the_registry_declares_nifti_mgh_and_dicom():
    assert [r.name for r in readers.READERS] == ["NIfTI", "MGZ/MGH", "DICOM"]
    assert readers.scan_suffixes() == (
        ".nii", ".nii.gz", ".mgz", ".mgh", ".dcm", ".dicom", ".ima"
    )  # fmt: skip
    assert readers.file_suffixes() == (".nii", ".nii.gz", ".mgz", ".mgh")
    assert readers.filename_patterns()[:2] == ["*.nii", "*.nii.gz"]
    assert readers.format_names() == "NIfTI, MGZ/MGH and DICOM"


def test_every_declared_suffix_is_lower_case_and_dropped_by_scan_stem():
    for suffix in readers.scan_suffixes():
        assert suffix == suffix.lower() and suffix.startswith(".")
        assert scan_stem(f"/data/sub-01_T1{suffix}") == "sub-01_T1"
        assert scan_stem(f"sub-01_T1{suffix.upper()}") == "sub-01_T1"


@pytest.mark.parametrize(
    ("name", "stem"),
    [("a.nii.gz", "a"), ("a.NII.GZ", "a"), ("b.mgz", "b"), ("sub.T1.nii", "sub.T1"), ("c", "c")],
)
def test_scan_stem(name, stem):
    assert scan_stem(name) == stem


def test_a_file_goes_to_the_reader_of_its_suffix(tmp_path):
    assert readers.reader_for(tmp_path / "a.nii.gz").name == "NIfTI"
    assert readers.reader_for(tmp_path / "a.MGH").name == "MGZ/MGH"
    assert readers.reader_for(tmp_path / "pair.hdr") is readers.FALLBACK


def test_folders_and_dicom_marked_files_go_to_the_dicom_reader(tmp_path):
    (tmp_path / "named.nii").mkdir()
    assert isinstance(readers.reader_for(tmp_path / "named.nii"), DicomReader)
    marked = tmp_path / "slice.nii"
    marked.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    assert isinstance(readers.reader_for(marked), DicomReader)
    assert isinstance(readers.reader_for(f"{tmp_path}::T1"), DicomReader)


def test_is_scan_path_and_scan_exists(tmp_path):
    assert is_scan_path(tmp_path / "absent.nii.gz")  # a scan name, even before it exists
    assert not is_scan_path(tmp_path / "absent.dcm")  # a DICOM file is recognised on disk
    assert not is_scan_path(tmp_path / "notes.txt")
    assert not is_scan_path(tmp_path)  # a folder without DICOM files
    assert not scan_exists(tmp_path / "absent.nii")
    assert scan_exists(_nifti(tmp_path / "a.nii")) and scan_exists(tmp_path)
    assert scan_exists(f"{tmp_path}::T1") and not scan_exists(f"{tmp_path / 'absent'}::T1")


def test_a_dicom_series_is_a_scan_and_its_slices_are_not_listed(tmp_path):
    write_series(synthetic_brain((8, 9, 6)), np.diag([2.0, 2.0, 2.5, 1.0]), tmp_path / "series")
    _nifti(tmp_path / "a.nii.gz")
    assert is_scan_path(tmp_path / "series")
    assert load_scan(tmp_path / "series").dicom is not None
    assert [r.subject for r in manifest_from_folder(tmp_path)] == ["a"]


def test_files_no_reader_claims_are_still_tried_with_nibabel(tmp_path):
    nib.save(nib.AnalyzeImage(synthetic_brain((8, 9, 10)), np.eye(4)), tmp_path / "pair.hdr")
    assert load_scan(tmp_path / "pair.hdr").data.shape == (8, 9, 10)
    (tmp_path / "notes.txt").write_text("not a scan" * 40)
    with pytest.raises(ScanError, match=r"notes\.txt: not a readable image"):
        load_scan(tmp_path / "notes.txt")


def test_an_mgh_file_is_listed_in_a_folder(tmp_path):
    img = nib.MGHImage(synthetic_brain((8, 9, 10)), np.eye(4))
    nib.save(img, tmp_path / "b.mgh")
    _nifti(tmp_path / "a.nii")
    assert [r.subject for r in manifest_from_folder(tmp_path)] == ["a", "b"]


def test_an_empty_folder_names_the_suffixes_it_looked_for(tmp_path):
    with pytest.raises(
        ManifestError, match=r"contains no scans \(\*\.nii, \*\.nii\.gz, .*\*\.mgh\)"
    ):
        manifest_from_folder(tmp_path)


def test_a_registered_reader_reads_its_format(tmp_path, toy_registered):
    volume = synthetic_brain((8, 9, 10))
    path = write_toy(tmp_path / "sub-07.toy", volume)
    assert is_scan_path(path) and scan_exists(path)
    scan = load_scan(path)
    np.testing.assert_array_equal(scan.data, volume)
    assert scan.path == path and scan.name == "sub-07"
    assert readers.filename_patterns()[-1] == "*.toy"
    assert [r.subject for r in manifest_from_folder(tmp_path)] == ["sub-07"]


def test_a_registered_reader_gets_the_shared_file_checks(tmp_path, toy_registered):
    with pytest.raises(ScanError, match=r"absent\.toy: file not found"):
        load_scan(tmp_path / "absent.toy")
    (tmp_path / "empty.toy").write_bytes(b"")
    with pytest.raises(ScanError, match=r"empty\.toy: file is empty"):
        load_scan(tmp_path / "empty.toy")
    (tmp_path / "bad.toy").write_text("not a volume" * 10)
    with pytest.raises(ScanError, match=r"bad\.toy: not a toy volume"):
        load_scan(tmp_path / "bad.toy")


def test_without_its_reader_a_toy_file_is_no_scan(tmp_path):
    path = write_toy(tmp_path / "sub-07.toy", synthetic_brain((8, 9, 10)))
    assert not is_scan_path(path)
    with pytest.raises(ScanError, match=r"sub-07\.toy: not a readable image"):
        load_scan(path)
