"""Fuzzing: random headers, affines, shapes, dtypes and bytes into load_scan and preprocess.

The only outcomes allowed are success (a finite float32 3-D scan, slices in [-1, 1]) or a
:class:`~madgan_core.errors.MadganError` with a one-line message naming the file. Anything else
(an IndexError from deep inside nibabel, a MemoryError, a hang) is a bug.
"""

from __future__ import annotations

import gzip
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from madgan_core.config import PreprocessConfig
from madgan_core.errors import MadganError
from madgan_core.prep.slab import preprocess
from madgan_core.scans.files import load_scan
from madgan_core.scans.scan import Scan
from madgan_testing.brains import synthetic_brain
from tests.madgan_core.test_bad_inputs import crafted_nifti

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SMALL_PREPROCESS = PreprocessConfig(height=16, width=16, pixel_mm=4.0, brain="none")

DTYPES = [
    np.uint8,
    np.int8,
    np.int16,
    np.uint16,
    np.int32,
    np.float32,
    np.float64,
    np.complex64,
    np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]),
]

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
any_float = st.one_of(
    finite,
    st.sampled_from([0.0, np.nan, np.inf, -np.inf, 1e-30, 1e30]),
)


@contextmanager
def scratch():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def check_outcome(path: Path, run_preprocess: bool = True) -> None:
    """Load (and preprocess) ``path``: success with sane output, or a clean MadganError."""
    try:
        scan = load_scan(path)
    except MadganError as exc:
        text = str(exc)
        assert text.startswith(str(path)), text
        assert "\n" not in text, text
        return
    assert scan.data.dtype == np.float32 and scan.data.ndim == 3
    assert np.all(np.isfinite(scan.data))
    assert np.all(np.isfinite(scan.affine))
    if run_preprocess:
        check_preprocess(scan, SMALL_PREPROCESS)


def check_preprocess(scan: Scan, cfg: PreprocessConfig) -> None:
    try:
        slab = preprocess(scan, cfg)
    except MadganError as exc:
        assert "\n" not in str(exc)
        return
    assert slab.slices.shape == (slab.n_slices, cfg.height, cfg.width)
    assert slab.n_slices >= 6
    assert np.all(np.isfinite(slab.slices))
    assert slab.slices.min() >= -1.0 and slab.slices.max() <= 1.0


# ------------------------------------------------------------------ random headers


affines = st.one_of(
    st.none(),
    st.lists(any_float, min_size=12, max_size=12).map(
        lambda v: np.vstack([np.reshape(v, (3, 4)), [0, 0, 0, 1]])
    ),
    st.sampled_from(
        [
            np.diag([1.0, 1.0, 0.0, 1.0]),  # singular
            np.diag([1.0, np.nan, 1.0, 1.0]),
            np.diag([1e-9, 1e-9, 1e-9, 1.0]),  # det below the singular threshold
            np.diag([-2.0, 3.0, 0.5, 1.0]),
        ]
    ),
)


@FUZZ
@given(
    dims=st.lists(st.integers(-3, 40), min_size=1, max_size=5),
    dtype=st.sampled_from(DTYPES),
    fill=st.floats(0.0, 1.2),
    nifti2=st.booleans(),
    gz=st.booleans(),
    pixdim=st.tuples(any_float, any_float, any_float),
    sform=affines,
    slope=st.one_of(st.none(), any_float),
    seed=st.integers(0, 2**16),
)
def test_random_headers(dims, dtype, fill, nifti2, gz, pixdim, sform, slope, seed):
    """Hand-made headers whose payload may be short, long, or random bytes."""
    dtype = np.dtype(dtype)
    declared = int(np.prod([max(d, 0) for d in dims], dtype=np.int64)) * dtype.itemsize
    n_bytes = min(int(declared * fill), 400_000)
    payload = np.random.default_rng(seed).bytes(n_bytes)
    with scratch() as d:
        try:
            path = crafted_nifti(
                d / ("f.nii.gz" if gz else "f.nii"),
                dims,
                dtype=dtype,
                payload=payload,
                nifti2=nifti2,
                pixdim=pixdim,
                qform=bool(np.all(np.isfinite(pixdim))),
                slope=slope,
                sform=sform,
            )
        except Exception:  # the header itself refuses the values: nothing to test
            assume(False)
        check_outcome(path)


# ------------------------------------------------------------------ random images


@FUZZ
@given(
    shape=st.lists(st.integers(1, 24), min_size=2, max_size=4),
    dtype=st.sampled_from(DTYPES),
    kind=st.sampled_from(["brain", "noise", "constant", "nan", "inf", "huge", "sparse"]),
    zooms=st.tuples(*[st.floats(0.05, 50.0)] * 3),
    rotate=st.booleans(),
    ext=st.sampled_from([".nii", ".nii.gz", ".mgz", ".img"]),
    seed=st.integers(0, 2**16),
)
def test_random_images(shape, dtype, kind, zooms, rotate, ext, seed):
    """Well-formed files of every shape, voxel type and content, in every format we read."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    if kind == "brain" and len(shape) >= 3:
        data = synthetic_brain(shape[:3], seed=seed).reshape(shape[:3] + (1,) * (len(shape) - 3))
        data = np.broadcast_to(data, shape).copy()
    elif kind == "constant":
        data = np.full(shape, 5.0)
    elif kind == "sparse":
        data = np.zeros(shape)
        data.flat[rng.integers(0, data.size)] = 1.0
    else:
        data = rng.normal(50.0, 20.0, shape)
    if kind == "nan":
        data.flat[0] = np.nan
    elif kind == "inf":
        data.flat[-1] = np.inf
    elif kind == "huge":
        data *= 1e300
    dtype = np.dtype(dtype)
    if dtype.fields is not None:
        rgb = np.zeros(shape, dtype)
        rgb["R"] = np.nan_to_num(data, posinf=0, neginf=0).clip(0, 255).astype(np.uint8)
        data = rgb
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.nan_to_num(data, posinf=info.max, neginf=info.min)
        data = data.clip(info.min, info.max).astype(dtype)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            data = data.astype(dtype)
    affine = np.diag([*zooms, 1.0])
    if rotate:
        c, s = np.cos(0.4), np.sin(0.4)
        affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ affine[:3, :3]
    cls = {".mgz": nib.MGHImage, ".img": nib.AnalyzeImage}.get(ext, nib.Nifti1Image)
    with scratch() as d:
        path = d / f"scan{ext}"
        try:
            nib.save(cls(data, affine), path)
        except Exception:  # the format cannot hold this (e.g. complex MGH, 4-D ANALYZE RGB)
            assume(False)
        check_outcome(path)


# ------------------------------------------------------------------ random bytes


@FUZZ
@given(
    data=st.binary(min_size=0, max_size=2048),
    ext=st.sampled_from([".nii", ".nii.gz", ".mgz", ".hdr", ".img", ".mgh"]),
    compress=st.booleans(),
)
def test_random_bytes(data, ext, compress):
    with scratch() as d:
        path = d / f"junk{ext}"
        path.write_bytes(gzip.compress(data) if compress else data)
        if ext == ".hdr":
            (d / "junk.img").write_bytes(data[::-1])
        check_outcome(path)


_TEMPLATE: dict[bool, bytes] = {}


def _valid_file(gz: bool) -> bytes:
    """A valid small scan's bytes, stored left-right flipped so loading must reorient."""
    if gz not in _TEMPLATE:
        with scratch() as d:
            path = d / ("t.nii.gz" if gz else "t.nii")
            nib.save(
                nib.Nifti1Image(synthetic_brain((20, 24, 18)), np.diag([-4.0, 4.0, 4.0, 1.0])), path
            )
            _TEMPLATE[gz] = path.read_bytes()
    return _TEMPLATE[gz]


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 351), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 40000)),
)
@example(edits=[(315, 73)], cut=None)  # srow_z[0] = -524288: a 524 km voxel, once a MemoryError
def test_mutated_headers(edits, cut):
    """A valid NIfTI with random header bytes overwritten, and maybe cut short."""
    raw = bytearray(_valid_file(gz=False))
    for offset, value in edits:
        raw[offset] = value
    if cut is not None:
        raw = raw[:cut]
    with scratch() as d:
        path = d / "mutant.nii"
        path.write_bytes(bytes(raw))
        check_outcome(path)


@FUZZ
@given(cut=st.integers(0, 5000), flip=st.one_of(st.none(), st.integers(0, 5000)))
def test_damaged_gzip(cut, flip):
    raw = bytearray(_valid_file(gz=True))
    if flip is not None and flip < len(raw):
        raw[flip] ^= 0xFF
    with scratch() as d:
        path = d / "damaged.nii.gz"
        path.write_bytes(bytes(raw[: len(raw) - cut]))
        check_outcome(path)


# ------------------------------------------------------------------ preprocess


@FUZZ
@given(
    shape=st.tuples(st.integers(2, 40), st.integers(2, 40), st.integers(2, 40)),
    zooms=st.tuples(*[st.floats(0.01, 100.0)] * 3),
    kind=st.sampled_from(["brain", "noise", "sparse", "negative", "slab"]),
    height=st.sampled_from([16, 32]),
    width=st.sampled_from([16, 48]),
    pixel_mm=st.floats(0.1, 20.0),
    band=st.tuples(st.floats(0.0, 0.9), st.floats(0.05, 1.0)).filter(lambda b: b[0] < b[1]),
    step=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_preprocess_random_volumes(shape, zooms, kind, height, width, pixel_mm, band, step, seed):
    rng = np.random.default_rng(seed)
    if kind == "brain":
        data = synthetic_brain(shape, seed=seed)
    elif kind == "noise":
        data = rng.normal(0.0, 1.0, shape).astype(np.float32)
    elif kind == "sparse":
        data = np.zeros(shape, np.float32)
        data.flat[rng.integers(0, data.size, 3)] = rng.uniform(1, 10, 3)
    elif kind == "negative":
        data = synthetic_brain(shape, seed=seed) - 500.0
    else:
        data = np.zeros(shape, np.float32)
        data[..., shape[2] // 2] = 100.0
    try:
        scan = Scan.from_array(data, np.diag([*zooms, 1.0]))
    except MadganError:
        return
    # The slab's geometry on any volume; the brain step has its own fuzz below.
    cfg = PreprocessConfig(
        height=height, width=width, pixel_mm=pixel_mm, band=band, slice_step=step, brain="none"
    )
    check_preprocess(scan, cfg)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    shape=st.tuples(st.integers(4, 40), st.integers(4, 40), st.integers(2, 40)),
    zooms=st.tuples(*[st.floats(0.5, 12.0)] * 3),
    kind=st.sampled_from(["noise", "sparse", "negative", "slab"]),
    seed=st.integers(0, 2**16),
)
def test_brain_step_on_random_volumes(shape, zooms, kind, seed):
    """Volumes that are not plainly skull-stripped go through the template fit: a slab or a
    clean refusal naming the problem, never a crash or a hang."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        data = rng.normal(100.0, 10.0, shape).astype(np.float32)
    elif kind == "sparse":
        data = rng.uniform(1, 10, shape).astype(np.float32)
        data.flat[rng.integers(0, data.size, 3)] = 1000.0
    elif kind == "negative":
        data = synthetic_brain(shape, seed=seed) - 500.0
    else:
        data = np.ones(shape, np.float32)
        data[..., shape[2] // 2] = 100.0
    try:
        scan = Scan.from_array(data, np.diag([*zooms, 1.0]))
    except MadganError:
        return
    check_preprocess(scan, PreprocessConfig(height=32, width=32, pixel_mm=4.0, brain="auto"))
