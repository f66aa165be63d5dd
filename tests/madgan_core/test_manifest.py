"""Manifest reading, validation errors that name the file and row, writing and helpers."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from madgan_core.errors import ManifestError
from madgan_core.scans.manifest import (
    ManifestRow,
    manifest_from_folder,
    read_manifest,
    rows_for,
    write_manifest,
)

HEADER = "path,subject,group,stage,sequence,split\n"


def _scan(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(
        nib.Nifti1Image(np.arange(64, dtype=np.float32).reshape(4, 4, 4), np.eye(4)), str(path)
    )
    return path


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    for name in ("a_T1", "b_T1", "c_T1", "d_T1"):
        _scan(tmp_path / "scans" / f"{name}.nii.gz")
    return tmp_path


def _write(folder: Path, body: str, header: str = HEADER) -> Path:
    path = folder / "manifest.csv"
    path.write_text(header + body)
    return path


def test_read_valid_manifest_resolves_paths(cohort):
    path = _write(
        cohort,
        "scans/a_T1.nii.gz,a,healthy,0,T1,train\n"
        "scans/b_T1.nii.gz,b,healthy,0,T1,calib\n"
        "scans/c_T1.nii.gz,c,ad,2,T1,test\n",
    )
    rows = read_manifest(path)
    assert [r.subject for r in rows] == ["a", "b", "c"]
    assert rows[0].path == cohort / "scans" / "a_T1.nii.gz"
    assert rows[2].stage == 2 and isinstance(rows[2].stage, int)
    assert [r.subject for r in rows_for(rows, split="train")] == ["a"]
    assert [r.subject for r in rows_for(rows, split=("calib", "test"), group="ad")] == ["c"]
    assert rows_for(rows, sequence="T1c") == []


def test_missing_columns_name_the_file(cohort):
    path = _write(cohort, "scans/a_T1.nii.gz,a,healthy,0\n", header="path,subject,group,stage\n")
    with pytest.raises(ManifestError, match="sequence, split") as info:
        read_manifest(path)
    assert str(path) in str(info.value)


def test_missing_scan_names_file_and_row(cohort):
    path = _write(
        cohort, "scans/a_T1.nii.gz,a,healthy,0,T1,train\nscans/nope.nii.gz,x,healthy,0,T1,train\n"
    )
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    msg = str(info.value)
    assert str(path) in msg and "row 2" in msg and "nope.nii.gz" in msg
    assert read_manifest(path, check_paths=False)[1].subject == "x"


def test_subject_in_two_splits_is_refused(cohort):
    path = _write(
        cohort, "scans/a_T1.nii.gz,s1,healthy,0,T1,train\nscans/b_T1.nii.gz,s1,healthy,0,T1,test\n"
    )
    with pytest.raises(ManifestError, match=r"row 2.*'s1'.*two splits") as info:
        read_manifest(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "scans/a_T1.nii.gz,a,Brain Tumour,1,T1,test",
            "group 'Brain Tumour' is not a lower-case name",
        ),
        ("scans/a_T1.nii.gz,a,healthy,0,T1,validation", "split 'validation'"),
        ("scans/a_T1.nii.gz,a,ad,0.5,T1,test", "stage '0.5'"),
        ("scans/a_T1.nii.gz,a,healthy,,T1,train", "empty value"),
    ],
)
def test_bad_values_are_reported(cohort, row, problem):
    path = _write(cohort, row + "\n")
    with pytest.raises(ManifestError, match=problem) as info:
        read_manifest(path)
    assert str(path) in str(info.value) and "row 1 (line 2)" in str(info.value)


def test_every_problem_is_listed(cohort):
    path = _write(cohort, "x.nii,a,bad,0,T1,train\ny.nii,b,healthy,zero,T1,train\n")
    msg = str(pytest.raises(ManifestError, read_manifest, path).value)
    assert "row 1" in msg and "row 2" in msg and "problem(s)" in msg


def test_duplicate_scan_and_empty_manifest(cohort):
    dup = _write(
        cohort, "scans/a_T1.nii.gz,a,healthy,0,T1,train\nscans/a_T1.nii.gz,a,healthy,0,T1,train\n"
    )
    with pytest.raises(ManifestError, match="already listed in row 1"):
        read_manifest(dup)
    with pytest.raises(ManifestError, match="no rows"):
        read_manifest(_write(cohort, ""))
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(cohort / "absent.csv")


def test_write_then_read_round_trip(cohort):
    rows = [
        ManifestRow(cohort / "scans" / "a_T1.nii.gz", "a", "healthy", 0, "T1", "train"),
        ManifestRow(cohort / "scans" / "b_T1.nii.gz", "b", "various", 1, "T1c", "test", subtype="cyst",
                    mask=cohort / "scans" / "d_T1.nii.gz"),
    ]  # fmt: skip
    path = write_manifest(rows, cohort / "manifest.csv")
    text = path.read_text().splitlines()
    assert text[0] == "path,subject,group,stage,sequence,split,subtype,mask"
    assert text[1].startswith("scans/a_T1.nii.gz,a,healthy,0,T1,train")
    assert read_manifest(path) == rows


def test_manifest_from_folder(cohort):
    (cohort / "scans" / ".hidden.nii.gz").write_bytes(b"")
    (cohort / "notes.txt").write_text("x")
    rows = manifest_from_folder(cohort)
    assert [r.subject for r in rows] == ["a_T1", "b_T1", "c_T1", "d_T1"]
    assert all(r.group == "healthy" and r.split == "train" and r.stage == 0 for r in rows)
    with pytest.raises(ManifestError, match="no scans"):
        manifest_from_folder(_empty(cohort))


def _empty(base: Path) -> Path:
    folder = base / "empty"
    folder.mkdir()
    return folder


def test_other_disease_groups_are_accepted(cohort):
    path = _write(
        cohort, "scans/a_T1.nii.gz,a,healthy,0,T1,test\nscans/b_T1.nii.gz,b,mci,1,T1,test\n"
    )
    assert [r.group for r in read_manifest(path)] == ["healthy", "mci"]
