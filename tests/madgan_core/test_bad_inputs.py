"""Bad inputs, one test each: every one is refused with one clear message naming the file.

Cases already covered elsewhere are not repeated here (see docs/reliability.md):
missing path, directory, empty file, truncated .nii.gz, text named .nii, gzip of
garbage, 2-D image, multi-volume 4-D image, complex data, NaN voxels and an
all-zero volume are in ``test_io.py``; fewer than 6 usable slices is in
``test_preprocess.py``; a missing, text or half-truncated checkpoint, a foreign
dict, a newer format version, another variant's weights, resuming with another
architecture and a malicious pickle (zip and plain) are in ``test_checkpoint.py``;
missing manifest columns, missing scans, a subject in two splits and an empty manifest are
in ``test_manifest.py``.

The helpers at the top (crafted headers, a tiny model file) are shared with the
other reliability tests.
"""

from __future__ import annotations

import math
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from madgan_core.errors import CheckpointError, ManifestError, ScanError
from madgan_core.model.checkpoint import (
    load_model,
    make_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from madgan_core.model.networks import build_generator
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest
from madgan_core.scans.scan import MAX_VOXELS
from madgan_testing.brains import synthetic_brain
from tests.madgan_core.test_checkpoint import assert_refusal_explains

# ------------------------------------------------------------------ helpers


@pytest.fixture
def tiny_record(tiny_config) -> dict:
    """A checkpoint record of a randomly initialised tiny generator."""
    cfg = tiny_config()
    return make_checkpoint(cfg, 0, build_generator(cfg.model))


def brain_scan(path: Path, shape=(40, 48, 36), seed: int = 0, voxel_mm: float = 4.0) -> Path:
    """A small synthetic brain that the tiny model can score (about 14 slices in the band)."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    nib.save(nib.Nifti1Image(synthetic_brain(shape, seed=seed), affine), path)
    return path


def crafted_nifti(
    path: Path,
    dims: list[int],
    dtype: type = np.int16,
    payload: bytes = b"\0" * 64,
    nifti2: bool = False,
    pixdim: tuple[float, float, float] = (1.0, 1.0, 1.0),
    qform: bool = True,
    slope: float | None = None,
    sform: np.ndarray | None = None,
) -> Path:
    """Write header bytes by hand, so dimensions need not agree with the data that follows."""
    header = nib.Nifti2Header() if nifti2 else nib.Nifti1Header()
    header.set_data_dtype(dtype)
    dim = header["dim"].copy()
    dim[:] = 1
    dim[0] = len(dims)
    dim[1 : 1 + len(dims)] = dims
    header["dim"] = dim
    header["pixdim"][1:4] = pixdim
    if qform:
        header.set_qform(np.diag([*pixdim, 1.0]), code=1)
    if sform is not None:
        header.set_sform(sform, code=2)
    if slope is not None:
        header["scl_slope"] = slope
        header["scl_inter"] = 0.0
    offset = 544 if nifti2 else 352
    header["vox_offset"] = offset
    block = header.binaryblock
    raw = block + b"\0" * (offset - len(block)) + payload
    if str(path).endswith(".gz"):
        import gzip

        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


# ------------------------------------------------------------------ scans


@pytest.mark.parametrize("dims", [[10, 0, 10], [10, -5, 10]], ids=["zero", "negative"])
def test_header_with_non_positive_dimensions(tmp_path, dims):
    path = crafted_nifti(tmp_path / "dims.nii", dims)
    with pytest.raises(ScanError, match=r"dims\.nii: header declares non-positive dimensions"):
        load_scan(path)


def test_rgb24_nifti(tmp_path):
    rgb = np.zeros((8, 8, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["G"][2:6, 2:6, 2:6] = 200
    img = nib.Nifti1Image(rgb, np.eye(4))
    assert int(img.header["datatype"]) == 128  # NIFTI_TYPE_RGB24
    nib.save(img, tmp_path / "rgb.nii")
    with pytest.raises(ScanError, match=r"rgb\.nii: unsupported voxel type .*RGB"):
        load_scan(tmp_path / "rgb.nii")


def test_infinite_voxels(tmp_path):
    data = synthetic_brain((10, 12, 9))
    data[1, 1, 1] = np.inf
    data[2, 2, 2] = -np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "inf.nii")
    with pytest.raises(ScanError, match=r"inf\.nii: contains 2 NaN or infinite voxels"):
        load_scan(tmp_path / "inf.nii")


def test_scaling_that_overflows_to_infinity(tmp_path):
    """int16 voxels times a huge scl_slope do not fit float32: refused, not scored as inf."""
    payload = np.arange(8 * 8 * 8, dtype=np.int16).tobytes()
    path = crafted_nifti(tmp_path / "slope.nii", [8, 8, 8], payload=payload, slope=1e38)
    with pytest.raises(ScanError, match=r"slope\.nii: contains \d+ NaN or infinite voxels"):
        load_scan(path)


@pytest.mark.parametrize(
    "sform",
    [np.diag([1.0, 0.0, 1.0, 1.0]), np.diag([1.0, np.nan, 1.0, 1.0])],
    ids=["singular", "nan"],
)
def test_invalid_affine(tmp_path, sform):
    payload = np.arange(8 * 8 * 8, dtype=np.int16).tobytes()
    path = crafted_nifti(tmp_path / "flat.nii", [8, 8, 8], payload=payload, sform=sform)
    with pytest.raises(ScanError, match=r"flat\.nii: header has an invalid .*affine"):
        load_scan(path)


def test_constant_non_zero_volume_names_its_value(tmp_path):
    nib.save(nib.Nifti1Image(np.full((8, 8, 8), 7.5, np.float32), np.eye(4)), tmp_path / "c.nii")
    with pytest.raises(ScanError, match=r"c\.nii: volume is constant \(every voxel is 7\.5\)"):
        load_scan(tmp_path / "c.nii")


def test_analyze_header_without_its_image_file(tmp_path):
    nib.save(nib.AnalyzeImage(synthetic_brain((8, 9, 10)), np.eye(4)), tmp_path / "pair.hdr")
    (tmp_path / "pair.img").unlink()
    with pytest.raises(ScanError, match=r"pair\.hdr: voxel data cannot be read"):
        load_scan(tmp_path / "pair.hdr")


def test_truncated_gzip_stored_in_radiological_order(tmp_path):
    """Not RAS+ on disk, so reorientation reads the (damaged) voxels: still one clean error."""
    las = np.diag([-4.0, 4.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(synthetic_brain((20, 24, 18)), las), tmp_path / "las.nii.gz")
    raw = (tmp_path / "las.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ScanError, match=r"cut\.nii\.gz: voxel data cannot be read"):
        load_scan(tmp_path / "cut.nii.gz")


def _refused_fast(path: Path) -> ScanError:
    """Load ``path``; it must fail in well under a second, allocating almost nothing."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ScanError) as info:
            load_scan(path)
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert peak < 20 * 2**20, f"allocated {peak / 2**20:.0f} MiB before refusing"
    assert "MemoryError" not in str(info.value)
    return info.value


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_enormous_declared_dimensions_are_refused_before_allocating(tmp_path, name):
    path = crafted_nifti(tmp_path / name, [30000, 30000, 30000])
    assert path.stat().st_size < 1000
    error = _refused_fast(path)
    assert str(error).startswith(str(path))
    assert "declared shape (30000, 30000, 30000) is too large" in str(error)


def test_nifti2_dimensions_whose_product_overflows_int64(tmp_path):
    """2**40 cubed wraps to 0 in int64 arithmetic; the voxel count must still be refused."""
    dims = [2**40, 2**40, 2**40]
    assert int(np.prod(np.array(dims, dtype=np.int64))) <= MAX_VOXELS  # the trap
    error = _refused_fast(crafted_nifti(tmp_path / "wide.nii", dims, nifti2=True))
    assert "is too large" in str(error)


@pytest.mark.parametrize("name", ["short.nii", "short.nii.gz"])
def test_declared_data_larger_than_the_file_is_refused_before_reading(tmp_path, name):
    """Under the voxel limit (700**3 int16 = 686 MB) but the file holds 64 bytes."""
    assert math.prod([700, 700, 700]) < MAX_VOXELS
    error = _refused_fast(crafted_nifti(tmp_path / name, [700, 700, 700]))
    assert str(error).startswith(str(tmp_path / name))
    assert "truncated or damaged" in str(error)


def test_slightly_short_uncompressed_file(tmp_path):
    payload = np.arange(8 * 8 * 8, dtype=np.int16).tobytes()[:-2]
    path = crafted_nifti(tmp_path / "cut.nii", [8, 8, 8], payload=payload)
    with pytest.raises(ScanError, match=r"cut\.nii: file is truncated or damaged"):
        load_scan(path)


def test_nibabel_messages_become_one_line(tmp_path):
    """nibabel's 'could the file be damaged?' spans two lines; ours must not."""
    raw = gzip_of_short_data(tmp_path)
    with pytest.raises(ScanError) as info:
        load_scan(raw)
    assert "\n" not in str(info.value)


def gzip_of_short_data(tmp_path: Path) -> Path:
    """A .nii.gz with a few hundred voxels missing: small enough to pass the size guard."""
    payload = np.arange(20 * 20 * 20, dtype=np.int16).tobytes()[:-600]
    return crafted_nifti(tmp_path / "few.nii.gz", [20, 20, 20], payload=payload)


@pytest.mark.parametrize("voxel_mm", [2e-4, 524288.0], ids=["metres", "524-km"])
def test_an_implausible_voxel_size_is_refused_on_loading(tmp_path, voxel_mm):
    path = tmp_path / "odd.nii"
    nib.save(nib.Nifti1Image(synthetic_brain((12, 12, 10)), np.diag([voxel_mm] * 3 + [1.0])), path)
    with pytest.raises(ScanError, match=r"odd\.nii: header gives .* mm voxels, outside .*pixdim"):
        load_scan(path)


def test_voxel_size_in_the_wrong_units_is_refused_quickly(tmp_path):
    """Voxels of 0.02 mm (a header in the wrong units): the brain is a speck in model space.

    Before the guard this took a minute of Gaussian blurring and gave an all-background slab.
    """
    from madgan_core.config import demo_preset
    from madgan_core.prep.slab import preprocess

    path = tmp_path / "metres.nii.gz"
    nib.save(nib.Nifti1Image(synthetic_brain((96, 96, 30)), np.diag([0.02] * 3 + [1.0])), path)
    start = time.perf_counter()
    with pytest.raises(ScanError, match=r"metres\.nii\.gz: the brain spans only .* voxel size"):
        preprocess(load_scan(path), demo_preset().preprocess)
    assert time.perf_counter() - start < 5.0


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_with_an_invalid_stored_config(tmp_path, tiny_record):
    record = tiny_record
    record["config"]["model"]["colour"] = "blue"
    path = save_checkpoint(record, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd\.pt: stored configuration is invalid"):
        load_model(path, device="cpu")


def _corruptions(good: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "truncated-tail": good[:-100],
        "random-bytes": np.random.default_rng(0).bytes(4096),
        "flipped-bytes": good[:200] + bytes(b ^ 0xFF for b in good[200:1200]) + good[1200:],
    }


@pytest.mark.parametrize(
    "kind",
    ["empty", "truncated-tail", "random-bytes", "flipped-bytes"],
)
def test_corrupt_checkpoint(tmp_path, kind, tiny_model_file):
    good = tiny_model_file(tmp_path / "good.pt").read_bytes()
    path = tmp_path / f"{kind}.pt"
    path.write_bytes(_corruptions(good)[kind])
    with pytest.raises(CheckpointError) as info:
        load_model(path, device="cpu")
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_zip_with_a_damaged_member(tmp_path, tiny_model_file):
    """A well-formed zip whose tensor storage is cut short."""
    good = tiny_model_file(tmp_path / "good.pt")
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if "/data/" in item.filename:
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(CheckpointError, match=r"bad\.pt: "):
        load_model(bad, device="cpu")


@pytest.mark.parametrize(
    "record, problem",
    [
        (torch.zeros(3), "not a napari-madgan checkpoint"),
        ({"format": "napari-madgan-checkpoint"}, "checkpoint lacks"),
    ],
    ids=["bare-tensor", "missing-keys"],
)
def test_foreign_torch_files(tmp_path, record, problem):
    path = tmp_path / "foreign.pt"
    torch.save(record, path)
    with pytest.raises(CheckpointError, match=rf"foreign\.pt: {problem}"):
        load_model(path, device="cpu")


def test_malformed_step(tmp_path, tiny_record):
    record = tiny_record
    record["step"] = "ten"
    path = save_checkpoint(record, tmp_path / "step.pt")
    with pytest.raises(CheckpointError, match=r"step\.pt: checkpoint has a malformed step"):
        read_checkpoint(path)


# ------------------------------------------------------------------ untrusted pickles


class _CreatesAFile:
    """Unpickling this would create ``marker``: the classic malicious-pickle payload."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def malicious_checkpoint(record: dict, path: Path, marker: Path, legacy: bool = False) -> Path:
    """A checkpoint ``record`` whose unpickling would run code (and create ``marker``)."""
    record = {**record, "healthy_reference": _CreatesAFile(marker)}
    if legacy:
        with open(path, "wb") as handle:
            torch.save(record, handle, _use_new_zipfile_serialization=False)
    else:
        torch.save(record, path)
    return path


def test_legacy_format_pickle_that_would_run_code_is_refused(tmp_path, tiny_record):
    """The pre-zip torch.save format goes through another unpickler; it must be refused too.

    (The zip format and a plain pickle are tested in test_checkpoint.py.)
    """
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tiny_record, tmp_path / "model.pt", marker, legacy=True)
    assert not zipfile.is_zipfile(path)
    with pytest.raises(CheckpointError, match=r"model\.pt: refused") as refused:
        load_model(path, device="cpu")
    assert_refusal_explains(refused.value, "refers to the Python callable `io.open`")
    assert not marker.exists()


# ------------------------------------------------------------------ manifests


def test_manifest_round_trip_refuses_what_it_wrote_if_a_scan_vanishes(tmp_path):
    scan = brain_scan(tmp_path / "a.nii.gz", shape=(8, 8, 8))
    path = write_manifest(
        [ManifestRow(scan, "s1", "healthy", 0, "T1", "train")], tmp_path / "m.csv"
    )
    assert read_manifest(path)[0].path.name == "a.nii.gz"
    scan.unlink()
    with pytest.raises(ManifestError, match=r"(?s)m\.csv: 1 problem.*scan not found: a\.nii\.gz"):
        read_manifest(path)


def test_manifest_that_is_binary(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_bytes(struct.pack("<8d", *range(8)) + b"\xff\xfe\x00")
    with pytest.raises(ManifestError, match=r"manifest\.csv: "):
        read_manifest(path)
