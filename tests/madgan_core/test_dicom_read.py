"""The DICOM reader: phantom series in every orientation read to the NIfTI path's grid; refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLossless

from madgan_core.errors import ScanError
from madgan_core.scans.dicom import find_series, is_dicom_path, load_series, pick_series
from madgan_core.scans.files import is_scan_path, load_scan
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import Patient, quantized, write_series
from tests.madgan_core.dicom_cases import (
    AXIAL,
    OBLIQUE,
    ORIENTATIONS,
    corners,
    edit,
    shift_position,
)

SHAPE = (20, 24, 18)
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def nifti_twin(volume: np.ndarray, affine: np.ndarray, path: Path, slope=1.0, intercept=0.0):
    """The NIfTI file holding what the DICOM series written with these values holds."""
    nib.save(nib.Nifti1Image(quantized(volume, slope, intercept), affine), path)
    return load_scan(path)


def assert_same_scan(dicom_scan, nifti_scan):
    np.testing.assert_array_equal(dicom_scan.data, nifti_scan.data)
    world = corners(dicom_scan.affine, dicom_scan.data.shape)
    expected = corners(nifti_scan.affine, nifti_scan.data.shape)
    assert np.abs(world - expected).max() < 0.1  # mm


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_series_reads_to_the_nifti_grid(tmp_path, orientation):
    volume = synthetic_brain(SHAPE)
    affine = ORIENTATIONS[orientation]
    write_series(volume, affine, tmp_path / "series")
    scan = load_scan(tmp_path / "series")
    assert_same_scan(scan, nifti_twin(volume, affine, tmp_path / "twin.nii.gz"))
    assert scan.path == tmp_path / "series"
    assert scan.dicom.sequence == "T1" and scan.name.startswith("T1_MPRAGE-")


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_world_coordinates_agree_with_simpleitk(tmp_path, orientation):
    """An independent reader (ITK/GDCM) puts the series' voxels where ours does."""
    sitk = pytest.importorskip("SimpleITK")
    volume = synthetic_brain(SHAPE)
    write_series(volume, ORIENTATIONS[orientation], tmp_path)
    scan = load_scan(tmp_path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    image = reader.Execute()
    native = scan.native_affine
    for index in [(0, 0, 0), (19, 0, 0), (0, 23, 0), (0, 0, 17), (19, 23, 17), (5, 7, 11)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        ras = (native @ [*index, 1.0])[:3]
        np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-3)
    itk = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)).astype(np.float32)
    np.testing.assert_array_equal(scan.to_native(scan.data), itk)


def test_slices_are_ordered_by_position_not_by_file_name_or_instance_number(tmp_path):
    volume = synthetic_brain(SHAPE)
    names = [f"{n}.dcm" for n in np.random.default_rng(1).permutation(SHAPE[2]) * 7 + 100]
    files = write_series(volume, OBLIQUE, tmp_path / "series", file_names=names)
    for k, path in enumerate(files):  # InstanceNumber counts backwards and skips
        edit(path, lambda ds, k=k: setattr(ds, "InstanceNumber", 1000 - 3 * k))
    scan = load_scan(tmp_path / "series")
    assert_same_scan(scan, nifti_twin(volume, OBLIQUE, tmp_path / "twin.nii.gz"))


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    volume = synthetic_brain(SHAPE) * 3.7 - 50.0
    write_series(volume, AXIAL, tmp_path / "s", slope=0.037, intercept=-60.0)
    scan = load_scan(tmp_path / "s")
    twin = nifti_twin(volume, AXIAL, tmp_path / "twin.nii.gz", 0.037, -60.0)
    assert_same_scan(scan, twin)
    assert np.abs(scan.data.max() - volume.max()) < 0.037


def test_multiframe_enhanced_mr(tmp_path):
    volume = synthetic_brain(SHAPE)
    [path] = write_series(volume, OBLIQUE, tmp_path, multiframe=True, slope=0.5, intercept=2.0)
    assert pydicom.dcmread(path).NumberOfFrames == SHAPE[2]
    twin = nifti_twin(volume, OBLIQUE, tmp_path / "twin.nii.gz", 0.5, 2.0)
    assert_same_scan(load_scan(path), twin)  # the file itself
    assert_same_scan(load_scan(tmp_path), twin)  # or its folder
    assert load_scan(path).dicom.slices[3].frame is not None


def test_series_in_subfolders_and_a_list_of_files(tmp_path):
    volume = synthetic_brain(SHAPE)
    files = write_series(volume, AXIAL, tmp_path / "study" / "a" / "b")
    (tmp_path / "study" / "notes.txt").write_text("not DICOM")
    (tmp_path / "study" / ".hidden").write_bytes(b"\0" * 200)
    twin = nifti_twin(volume, AXIAL, tmp_path / "twin.nii.gz")
    assert_same_scan(load_scan(tmp_path / "study"), twin)
    assert_same_scan(load_series(list(reversed(files))), twin)


def two_series_study(folder: Path, second: str = "T2 TSE") -> Patient:
    patient = Patient()
    volume = synthetic_brain(SHAPE)
    write_series(
        volume,
        AXIAL,
        folder,
        description="T1 MPRAGE",
        patient=patient,
        file_names=[f"A{k:03d}.dcm" for k in range(SHAPE[2])],
    )
    write_series(
        volume[::-1] * 2,
        AXIAL,
        folder,
        description=second,
        series_number=2,
        patient=patient,
        file_names=[f"B{k:03d}.dcm" for k in range(SHAPE[2])],
    )
    return patient


def test_two_series_in_one_folder_pick_the_t1_or_by_description_or_uid(tmp_path):
    two_series_study(tmp_path)
    series = find_series(tmp_path)
    assert [s.description for s in series] == ["T1 MPRAGE", "T2 TSE"]
    assert [s.sequence for s in series] == ["T1", "T2"]
    assert all(s.n_slices == SHAPE[2] and s.spacing == (2.0, 2.0, 2.5) for s in series)
    t1 = load_scan(tmp_path)  # one T1-like series: chosen by itself
    assert t1.dicom.description == "T1 MPRAGE"
    t2 = load_scan(f"{tmp_path}::t2 tse")
    assert t2.dicom.description == "T2 TSE"
    np.testing.assert_allclose(t2.data, t1.data[::-1] * 2, atol=1.0)  # rounding of stored values
    by_uid = load_scan(f"{tmp_path}::{series[1].uid}")
    assert by_uid.dicom.series_uid == series[1].uid
    assert is_scan_path(f"{tmp_path}::T2 TSE") and is_dicom_path(tmp_path)


def test_two_t1_like_series_must_be_chosen(tmp_path):
    two_series_study(tmp_path, second="T1 post Gd")
    with pytest.raises(ScanError) as caught:
        load_scan(tmp_path)
    message = str(caught.value)
    assert "2 readable series and not one single T1-like one" in message
    assert "#1 T1 MPRAGE (MR, T1): 18 slices of 20 x 24, 2 x 2 x 2.5 mm" in message
    assert "#2 T1 post Gd (MR, T1c)" in message
    assert f"e.g. give '{tmp_path}::T1 MPRAGE'" in message
    with pytest.raises(ScanError, match="no series matches 'FLAIR'"):
        load_scan(f"{tmp_path}::FLAIR")


def test_madgan_series_lists_each_folder(tmp_path, capsys):
    from madgan_core.cli import main

    two_series_study(tmp_path / "study")
    (tmp_path / "empty").mkdir()
    uids = [s.uid for s in find_series(tmp_path / "study")]
    assert main(["series", str(tmp_path / "study")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 'study'}: 2 series"
    assert lines[1].startswith("  #1 T1 MPRAGE (MR, T1): 18 slices of 20 x 24, 2 x 2 x 2.5 mm")
    assert lines[2].startswith("  #2 T2 TSE (MR, T2)")
    assert all(uid in line for uid, line in zip(uids, lines[1:], strict=True))
    # a folder without DICOM is reported, and the others are still listed
    assert main(["series", str(tmp_path / "empty"), str(tmp_path / "study")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"madgan series: error: {tmp_path / 'empty'}: is a directory")
    assert captured.out.splitlines() == lines
    with pytest.raises(SystemExit):
        main(["series"])  # a folder is required


def refusal(folder: Path) -> str:
    with pytest.raises(ScanError) as caught:
        load_scan(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder}: series #1 T1 MPRAGE")  # names folder and series
    assert "\n" not in message
    return message


@pytest.fixture
def series_files(tmp_path) -> list[Path]:
    return write_series(synthetic_brain(SHAPE), AXIAL, tmp_path)


def test_refuses_missing_slices(tmp_path, series_files):
    series_files[7].unlink()
    assert (
        "is missing 1 slice(s): the slices are 2.50 mm apart but there is a gap of 5.00 mm"
        in refusal(tmp_path)
    )


def test_refuses_uneven_spacing(tmp_path, series_files):
    edit(series_files[7], shift_position((0.0, 0.0, 0.8)))
    assert "uneven slice spacing" in refusal(tmp_path)


def test_refuses_mixed_orientations(tmp_path, series_files):
    edit(series_files[3], lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0, -1]))
    assert "mixed orientations: 1 of 18 images" in refusal(tmp_path)


def test_refuses_gantry_tilt(tmp_path):
    tilted = AXIAL.copy()
    tilted[1, 2] = 2.5 * np.tan(np.radians(12.0))  # each slice shifts along y: a tilted gantry
    write_series(synthetic_brain(SHAPE), tilted, tmp_path)
    assert "gantry tilt (or sheared stack) of 12.00°" in refusal(tmp_path)


def test_refuses_repeated_positions(tmp_path, series_files):
    edit(series_files[6], shift_position((0.0, 0.0, -2.5)))
    assert "18 images at only 17 slice positions" in refusal(tmp_path)


def test_refuses_undecodable_compression(tmp_path, series_files):
    for path in series_files:

        def compress(ds):
            ds.file_meta.TransferSyntaxUID = JPEGLossless
            ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3not really a jpeg\xff\xd9"])
            ds["PixelData"].VR = "OB"

        edit(path, compress)
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLossless).is_available:
        pytest.skip("a JPEG Lossless decoder is installed here")
    message = refusal(tmp_path)
    assert (
        "is compressed as JPEG Lossless" in message and "export the series uncompressed" in message
    )


def test_refuses_damaged_pixel_data(tmp_path, series_files):
    edit(series_files[2], lambda ds: setattr(ds, "PixelData", ds.PixelData[:100]))
    assert "the pixel data of IM0003.dcm cannot be read" in refusal(tmp_path)


def test_refuses_non_image_objects_and_foreign_folders(tmp_path):
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", tmp_path / "plan.dcm")
    with pytest.raises(ScanError, match="is not an image .*RT Plan Storage"):
        load_scan(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("hello")
    with pytest.raises(ScanError, match="is a directory without DICOM files"):
        load_scan(empty)
    assert not is_scan_path(empty) and not is_dicom_path(empty / "a.txt")


def test_pick_series_refuses_when_nothing_is_readable(tmp_path, series_files):
    series_files[4].unlink()
    other = tmp_path / "other"
    write_series(synthetic_brain(SHAPE)[:, :, :1], AXIAL, other, description="T2", series_number=2)
    with pytest.raises(ScanError, match="holds 2 series and none can be read as a 3-D volume"):
        pick_series(find_series(tmp_path), where=tmp_path)


def sample_files() -> list[Path]:
    return sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())


@pytest.mark.skipif(not PYDICOM_FILES.is_dir(), reason="pydicom ships no test files here")
def test_pydicom_sample_files_read_or_are_refused_clearly():
    """Each file pydicom ships (no download) reads, or is refused with a ScanError naming it."""
    read, refused = [], []
    for path in sample_files():
        if not is_scan_path(path) and path.suffix not in (".dcm", ""):
            continue
        try:
            load_scan(path)
            read.append(path.name)
        except ScanError as exc:
            assert str(exc).startswith(str(path)), exc
            refused.append(path.name)
    assert len(refused) > 50
    with pytest.raises(ScanError, match="holds a single 2-D image"):
        load_scan(PYDICOM_FILES / "MR_small.dcm")


@pytest.mark.skipif(not PYDICOM_FILES.is_dir(), reason="pydicom ships no test files here")
def test_pydicom_sample_ct_series_reads_like_simpleitk():
    """A real scanner's series (a CT, shrunk to 16 x 16) from pydicom's DICOMDIR test set."""
    sitk = pytest.importorskip("SimpleITK")
    folder = PYDICOM_FILES / "dicomdirtests" / "98892001" / "CT5N"
    scan = load_scan(folder)
    assert scan.data.shape[2] == 5 or 5 in scan.data.shape
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    for index in [(0, 0, 0), (15, 15, 4), (3, 9, 2)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose(
            (scan.native_affine @ [*index, 1.0])[:3], lps * [-1, -1, 1], atol=1e-3
        )
    itk = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)).astype(np.float32)
    np.testing.assert_array_equal(scan.to_native(scan.data), itk)
    # The whole test-file folder holds one readable series among dozens: it is the one chosen.
    assert load_scan(PYDICOM_FILES).dicom.series_uid == scan.dicom.series_uid


@pytest.mark.parametrize("orientation", ["axial", "oblique"])
def test_scores_equal_the_nifti_path(tmp_path, orientation):
    """A tiny real generator scores the series as it scores the NIfTI twin."""
    import torch

    from madgan_core.config import MadganConfig
    from madgan_core.model.networks import build_generator
    from madgan_core.scoring.scorer import score_scan
    from tests.madgan_core.test_score import fake_model

    torch.manual_seed(0)
    cfg = MadganConfig().updated(
        {
            "preprocess": {"height": 32, "width": 32, "pixel_mm": 4.0},
            "model": {"base_channels": 4, "critic_channels": 4},
        }
    )
    model = fake_model(cfg)
    model.generator = build_generator(cfg.model).eval()
    volume = synthetic_brain((40, 48, 36))
    affine = ORIENTATIONS[orientation]
    write_series(volume, affine, tmp_path / "series", slope=0.01)
    twin = nifti_twin(volume, affine, tmp_path / "twin.nii.gz", slope=0.01)
    scored = [
        score_scan(model, scan, precision="fp32", maps=True)
        for scan in (load_scan(tmp_path / "series"), twin)
    ]
    for mode, value in scored[1].scores.items():
        assert abs(scored[0].scores[mode] - value) < 1e-4, mode
    np.testing.assert_allclose(scored[0].heatmap, scored[1].heatmap, atol=1e-4, equal_nan=True)
