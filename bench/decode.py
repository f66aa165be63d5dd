"""Decoding a gzip-compressed NIfTI to a numpy array, per gzip library.

Times reading a 256³-class ``.nii.gz`` to its voxel array (as stored, no scaling) with
nibabel over the standard library's gzip, and with the faster gzip libraries where
installed: ``isal`` (python-isal's ``isal.igzip``), ``zlib-ng`` (``zlib_ng.gzip_ng``) and
``indexed_gzip`` (which nibabel itself uses when it is installed). Each library is timed
two ways: streamed (nibabel reads the voxels from the library's file object) and whole
(the file decompressed in one call, nibabel handed the bytes); the bare decompression
(``gzip.decompress`` and its equivalents, no nibabel) is timed too. Every array is checked
byte-identical to the standard library's. The scan reader's own path
(:class:`~madgan_core.scans._nibabel.NibabelReader`, to a float32 RAS+ scan) is timed with
its fast decoding on and off.

The files: Colin27 with its skull (``ch2.nii.gz``, where MRIcron's templates are
installed) and a 1 mm phantom scan (the healthy subject ``madgan phantom`` simulates,
written by :func:`bench._common.phantom_file`); or the files given.

    python bench/decode.py [--reps 7] [--file F.nii.gz ...] [--peak-reps 0] [--out f.json]
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, header, phantom_file, resolve, spread

COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")


def _optional(name: str):
    try:
        return __import__(name, fromlist=["_"])
    except ImportError:
        return None


@contextlib.contextmanager
def _indexed_gzip(enabled: bool) -> Iterator[None]:
    """nibabel's own choice of ``indexed_gzip`` (when installed), switched for a block."""
    from nibabel import _compression

    saved = _compression.HAVE_INDEXED_GZIP
    _compression.HAVE_INDEXED_GZIP = enabled and saved
    try:
        yield
    finally:
        _compression.HAVE_INDEXED_GZIP = saved


def nibabel_stream(path: Path) -> np.ndarray:
    """nibabel's own reading (the standard library's gzip, or indexed_gzip if switched on)."""
    import nibabel as nib

    return np.asanyarray(nib.load(str(path)).dataobj)


def fileobj_stream(opener: Callable[[str], io.IOBase]) -> Callable[[Path], np.ndarray]:
    """nibabel reading the voxels from ``opener(path)``, a gzip library's file object."""
    import nibabel as nib

    def read(path: Path) -> np.ndarray:
        with opener(str(path)) as fobj:
            img = nib.Nifti1Image.from_file_map(
                {"image": nib.FileHolder(filename=str(path), fileobj=fobj)}
            )
            return np.asanyarray(img.dataobj)

    return read


def whole(decompress: Callable[[bytes], bytes]) -> Callable[[Path], np.ndarray]:
    """The file decompressed in one call, nibabel handed the bytes."""
    import nibabel as nib

    def read(path: Path) -> np.ndarray:
        img = nib.Nifti1Image.from_bytes(decompress(path.read_bytes()))
        return np.asanyarray(img.dataobj)

    return read


def bare(decompress: Callable[[bytes], bytes]) -> Callable[[Path], bytes]:
    return lambda path: decompress(path.read_bytes())


def methods() -> dict[
    str, tuple[Callable[[Path], object], Callable[[], contextlib.AbstractContextManager]]
]:
    """Name -> (read function, context it runs in); only the installed libraries."""
    plain = lambda: _indexed_gzip(False)  # noqa: E731
    out = {
        "stdlib/nibabel": (nibabel_stream, plain),
        "stdlib/whole": (whole(gzip.decompress), plain),
        "stdlib/bare": (bare(gzip.decompress), plain),
    }
    isal = _optional("isal.igzip")
    if isal is not None:
        out["isal/stream"] = (fileobj_stream(lambda p: isal.open(p, "rb")), plain)
        out["isal/whole"] = (whole(isal.decompress), plain)
        out["isal/bare"] = (bare(isal.decompress), plain)
    zng = _optional("zlib_ng.gzip_ng")
    if zng is not None:
        out["zlib-ng/stream"] = (fileobj_stream(lambda p: zng.open(p, "rb")), plain)
        out["zlib-ng/whole"] = (whole(zng.decompress), plain)
        out["zlib-ng/bare"] = (bare(zng.decompress), plain)
    if _optional("indexed_gzip") is not None:
        out["indexed_gzip/nibabel"] = (nibabel_stream, lambda: _indexed_gzip(True))
    return out


def interleaved(
    fns: dict[str, Callable[[], object]], reps: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Seconds of ``reps`` runs of each function, taken in turn (one run of each per round,
    so that other work on a shared machine weighs on all alike), after one warm-up run of
    each; and each function's output."""
    outputs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times, outputs


def _within(context: Callable[[], contextlib.AbstractContextManager], fn: Callable[[], object]):
    def run() -> object:
        with context():
            return fn()

    return run


def bench_file(path: Path, reps: int) -> dict:
    """Every method on ``path``, interleaved; best and median seconds, identity, speed-ups."""
    from madgan_core.scans import _nibabel

    raw = path.read_bytes()
    with _indexed_gzip(False):
        reference = nibabel_stream(path)
    reference_bytes = gzip.decompress(raw)
    fns = {
        name: _within(context, functools.partial(read, path))
        for name, (read, context) in methods().items()
    }
    # The scan reader, file to float32 RAS+ scan, with its fast gzip decoding off and on.
    for label, fast in (("reader/stdlib", False), ("reader/fast", True)):
        reader = _nibabel.NibabelReader("NIfTI", (".nii", ".nii.gz"), fast_gzip=fast)
        fns[label] = _within(lambda: _indexed_gzip(False), functools.partial(reader.read, path))
    times, outputs = interleaved(fns, reps)
    result: dict = {
        "file": str(path),
        "compressed_bytes": len(raw),
        "decompressed_bytes": len(reference_bytes),
        "shape": list(reference.shape),
        "dtype": str(reference.dtype),
        "fast_gzip": _nibabel.fast_gzip_name(),
        "methods": {},
    }
    slow, fast = outputs.pop("reader/stdlib"), outputs.pop("reader/fast")
    for name, out in outputs.items():
        if isinstance(out, bytes):
            same = out == reference_bytes
        else:
            same = out.dtype == reference.dtype and out.tobytes() == reference.tobytes()
        result["methods"][name] = {**spread(times[name]), "identical": bool(same)}
    same = slow.data.tobytes() == fast.data.tobytes() and np.array_equal(slow.affine, fast.affine)
    for label in ("reader/stdlib", "reader/fast"):
        result["methods"][label] = {**spread(times[label]), "identical": bool(same)}
    for name, entry in result["methods"].items():
        base = result["methods"][
            "reader/stdlib" if name.startswith("reader/") else "stdlib/nibabel"
        ]
        entry["speedup_vs_stdlib"] = round(base["best_s"] / entry["best_s"], 2)
    return result


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per method")
    parser.add_argument(
        "--file", type=Path, nargs="+", help="the .nii.gz files (default: Colin27 and a phantom)"
    )
    parser.add_argument(
        "--phantom-mm", type=float, default=1.0, help="the phantom's voxel size (default 1 mm)"
    )
    args = parser.parse_args()
    device = resolve("cpu")  # decoding runs on the CPU whatever --device says
    result = header("decode", device, args.peak_reps)
    result["libraries"] = {
        name: getattr(_optional(name), "__version__", None)
        for name in ("nibabel", "isal", "zlib_ng", "indexed_gzip")
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = list(args.file or [])
        if not files:
            if COLIN27.is_file():
                files.append(COLIN27)
            files.append(phantom_file(Path(tmp), args.phantom_mm))
        result["files"] = [bench_file(Path(f), args.reps) for f in files]
    emit(result, args.out)


if __name__ == "__main__":
    main()
