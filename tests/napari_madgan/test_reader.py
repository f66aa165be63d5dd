"""The reader on real files (nibabel's test data) and its napari layers' geometry."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from madgan_core.errors import ScanError
from madgan_core.scans.scan import Scan
from napari_madgan._geometry import display_affine
from napari_madgan._layers import PATH_KEY, SCAN_KEY
from napari_madgan._reader import napari_get_reader

DATA = Path(data_path)


@pytest.fixture
def mgz_file(tmp_path):
    """A 3-D MGZ (nibabel's test.mgz holds 2 volumes, which the reader refuses)."""
    src = nib.load(str(DATA / "anatomical.nii"))
    path = tmp_path / "anatomical.mgz"
    nib.save(nib.MGHImage(np.asarray(src.dataobj, dtype=np.float32), src.affine), path)
    return path


@pytest.mark.parametrize("name", ["anatomical.nii", "mgz"])
def test_reader_reads_real_files(name, mgz_file):
    path = str(mgz_file if name == "mgz" else DATA / name)
    reader = napari_get_reader(path)
    assert callable(reader)
    [(data, kwargs, kind)] = reader(path)
    assert kind == "image"
    scan = kwargs["metadata"][SCAN_KEY]
    assert isinstance(scan, Scan)
    assert kwargs["metadata"][PATH_KEY] == path
    assert data.shape == scan.data.shape[::-1]
    lo, hi = kwargs["contrast_limits"]
    assert np.nanmin(scan.data) <= lo < hi <= np.nanmax(scan.data)
    assert "scale" in kwargs or "affine" in kwargs


def test_reader_declines_foreign_files(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not a scan")
    assert napari_get_reader(str(txt)) is None
    named_like_a_scan = tmp_path / "brain.nii.gz.txt"  # a scan suffix inside, not at the end
    named_like_a_scan.write_text("not a scan either")
    assert napari_get_reader(str(named_like_a_scan)) is None
    assert napari_get_reader([str(txt), str(DATA / "anatomical.nii")]) is None
    assert napari_get_reader(123) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["example4d.nii.gz", "test.mgz"])
def test_reader_refuses_4d_scans_with_the_file_name(name):
    path = str(DATA / name)
    reader = napari_get_reader(path)
    assert callable(reader)
    with pytest.raises(ScanError, match=f"{name}.*4-D"):
        reader(path)


def test_reader_refuses_corrupt_scans_with_the_file_name(tmp_path):
    broken = tmp_path / "broken.nii"
    broken.write_bytes(b"garbage" * 10)
    with pytest.raises(ScanError, match="broken.nii"):
        napari_get_reader(str(broken))(str(broken))


def test_reader_layers_sit_at_nibabel_world_coordinates(make_napari_viewer):
    viewer = make_napari_viewer()
    path = DATA / "anatomical.nii"
    [layer] = viewer.open(str(path), plugin="napari-madgan")
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ijk = [int(rng.integers(0, n)) for n in data.shape]
        x, y, z = (img.affine @ [*ijk, 1])[:3]
        world = np.array([z, -y, x])  # napari world axes (S, P, R)
        d = np.rint(layer.world_to_data(world)).astype(int)
        assert layer.data[tuple(d)] == pytest.approx(data[tuple(ijk)])
    assert viewer.dims.ndim == 3
    scan = layer.metadata[SCAN_KEY]
    np.testing.assert_allclose(
        layer.scale, np.diag(display_affine(scan.affine, scan.data.shape))[:3]
    )
