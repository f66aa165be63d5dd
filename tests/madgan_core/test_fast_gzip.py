"""The NIfTI/MGZ reader's fast gzip decoding: the same scans and errors as nibabel alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from madgan_core.errors import ScanError
from madgan_core.scans import _nibabel
from madgan_core.scans._nibabel import NibabelReader, fast_gzip_name, fast_gzip_open
from madgan_testing.brains import synthetic_brain

FAST = NibabelReader("NIfTI", (".nii", ".nii.gz"))
PLAIN = NibabelReader("NIfTI", (".nii", ".nii.gz"), fast_gzip=False)
LAS = np.diag([-1.0, 1.0, 1.0, 1.0])


def _write(path: Path, image_type=nib.Nifti1Image, dtype=np.float32) -> Path:
    data = (synthetic_brain((20, 24, 18), seed=1) * 100).astype(dtype)
    nib.save(image_type(data, LAS), path)
    return path


def _same(a, b) -> None:
    assert a.data.dtype == b.data.dtype
    assert a.data.tobytes() == b.data.tobytes()
    assert np.array_equal(a.affine, b.affine)
    assert np.array_equal(a.native_affine, b.native_affine)
    assert a.native_shape == b.native_shape
    assert a.header.binaryblock == b.header.binaryblock


def test_fast_library_is_isal_where_installed():
    installed = importlib.util.find_spec("isal") is not None
    assert fast_gzip_name() == ("isal" if installed else None)
    assert (fast_gzip_open() is not None) == installed


@pytest.mark.parametrize(
    "name, image_type, dtype",
    [
        ("a.nii.gz", nib.Nifti1Image, np.float32),
        ("b.NII.GZ", nib.Nifti1Image, np.int16),
        ("c.nii.gz", nib.Nifti2Image, np.uint8),
        ("d.mgz", nib.MGHImage, np.float32),
        ("e.nii", nib.Nifti1Image, np.float32),
    ],
)
def test_fast_and_plain_reads_are_identical(tmp_path, name, image_type, dtype):
    path = _write(tmp_path / name, image_type, dtype)
    _same(FAST.read(path), PLAIN.read(path))


def test_without_the_library_nibabel_reads(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.nii.gz")
    expected = PLAIN.read(path)
    monkeypatch.setattr(_nibabel, "fast_gzip_open", lambda: None)
    _same(FAST.read(path), expected)


def test_a_failing_fast_path_falls_back(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.nii.gz")
    expected = PLAIN.read(path)

    def broken(_name):
        raise OSError("no decoder")

    monkeypatch.setattr(_nibabel, "fast_gzip_open", lambda: broken)
    _same(FAST.read(path), expected)


def test_only_gzip_files_take_the_fast_path(tmp_path, monkeypatch):
    opened = []
    real = fast_gzip_open() or (lambda name: open(name, "rb"))  # noqa: SIM115

    def recording(name):
        opened.append(Path(name).name)
        return real(name)

    monkeypatch.setattr(_nibabel, "fast_gzip_open", lambda: recording)
    for name in ("a.nii", "b.nii.gz"):
        FAST.read(_write(tmp_path / name))
    PLAIN.read(tmp_path / "b.nii.gz")
    assert opened == ["b.nii.gz"]


def test_damaged_gzip_gives_nibabel_s_error(tmp_path):
    raw = _write(tmp_path / "a.nii.gz").read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    messages = []
    for reader in (FAST, PLAIN):
        with pytest.raises(ScanError, match=r"cut\.nii\.gz: voxel data cannot be read") as error:
            reader.read(cut)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("name", ["a.nii.gz", "b.mgz"])
def test_fast_path_reads_from_the_decoder_without_falling_back(tmp_path, monkeypatch, name):
    path = _write(tmp_path / name, nib.MGHImage if name.endswith(".mgz") else nib.Nifti1Image)
    sources = []
    original = _nibabel.scan_from_image

    def spy(img, source):
        sources.append(type(img.dataobj.file_like).__name__)
        return original(img, source)

    monkeypatch.setattr(_nibabel, "scan_from_image", spy)
    FAST.read(path)
    expected = "str" if fast_gzip_open() is None else "IGzipFile"
    assert sources == [expected]
