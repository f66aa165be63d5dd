"""Compare DICOM series readers on speed and on where they put the voxels.

Readers: this package's reader (pydicom and hand geometry), SimpleITK's GDCM
series reader, and highdicom's ``get_volume_from_series`` (when installed).

Correctness: each case writes a phantom series with one bright marker voxel,
reads it back and maps the marker through the reader's affine; the error is
the distance (mm) from where the marker really is. A reader either reads
(with that error), or refuses (the message is shown).

Speed: a 256 x 256 x 176 series (1 mm, 16 bit, one file per slice), best of
three reads after a warm-up read (files in the page cache).

    python studies/dicom_reader_benchmark.py            # prints Markdown tables
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

# The DICOM fixtures (madgan_testing) live at the repository root and are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from madgan_core.scans.dicom import load_series  # noqa: E402
from madgan_testing.dicom_series import write_series  # noqa: E402

MARKER = 3000.0
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def axial(zooms=(1.0, 1.0, 1.0)) -> np.ndarray:
    affine = np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])
    affine[:3, 3] = (120.0, 130.0, -60.0)
    return affine


def rotated(affine: np.ndarray, degrees_x: float, degrees_z: float) -> np.ndarray:
    ax, az = np.radians(degrees_x), np.radians(degrees_z)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rz @ rx
    return out @ affine


def sagittal() -> np.ndarray:
    affine = np.zeros((4, 4))
    affine[:, 3] = (-60.0, 120.0, 100.0, 1.0)
    affine[1, 0], affine[2, 1], affine[0, 2] = -1.0, -1.0, 1.0
    return affine


def tilted() -> np.ndarray:
    affine = axial()
    affine[1, 2] = np.tan(np.radians(15.0))  # 15° gantry tilt
    return affine


# --------------------------------------------------------------------- readers
# Each returns (array, voxel-to-RAS affine) with array indices matching the affine.


def read_madgan(folder: Path):
    scan = load_series(folder)
    return scan.data, scan.affine


def read_sitk(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    files = list(folder.iterdir())
    if len(files) == 1:  # a multi-frame file
        image = sitk.ReadImage(str(files[0]))
    else:
        ids = reader.GetGDCMSeriesIDs(str(folder))
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), ids[0]))
        image = reader.Execute()
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return array, LPS @ lps


def read_highdicom(folder: Path):
    import highdicom as hd

    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    if len(datasets) == 1:
        volume = hd.Image.from_dataset(datasets[0]).get_volume()
    else:
        volume = hd.get_volume_from_series(datasets)
    return volume.array, LPS @ volume.affine


READERS: dict[str, Callable] = {
    "madgan (pydicom)": read_madgan,
    "SimpleITK (GDCM)": read_sitk,
    "highdicom": read_highdicom,
}


# ----------------------------------------------------------------------- cases


def phantom(shape) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(axis=0))
    return np.where(radius < 0.9, 100.0, 0.0).astype(np.float32)


def case_series(kind: str, folder: Path, shape=(40, 48, 36)) -> np.ndarray:
    """Write the case; return the marker's true world position (RAS, mm)."""
    volume = phantom(shape)
    marker = (7, 9, shape[2] // 2 + 2)  # just past the slice a damaged case loses or moves
    volume[marker] = MARKER
    affine = {"sagittal": sagittal(), "oblique": rotated(axial(), 20, 10), "tilt": tilted()}.get(
        kind, axial((1.0, 1.0, 2.0))
    )
    names = [f"{n:05d}.dcm" for n in np.random.default_rng(0).permutation(shape[2])]
    files = write_series(
        volume,
        affine,
        folder,
        file_names=names,
        slope=0.25 if kind == "rescale" else 1.0,
        intercept=-1024.0 if kind == "rescale" else 0.0,
        multiframe=kind == "multi-frame",
    )
    if kind == "missing slice":
        files[shape[2] // 2].unlink()
    if kind == "uneven spacing":
        ds = pydicom.dcmread(files[shape[2] // 2])
        ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.7
        ds.save_as(files[shape[2] // 2])
    return (affine @ [*marker, 1.0])[:3]


CASES = (
    "axial",
    "sagittal",
    "oblique",
    "rescale",
    "multi-frame",
    "missing slice",
    "uneven spacing",
    "tilt",
)


def marker_error(reader: Callable, folder: Path, truth: np.ndarray) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array, affine = reader(folder)
    except Exception as exc:  # a refusal, or a reader's failure
        text = " ".join(str(exc).split())
        return f"refused ({text.split(': ', 1)[-1][:70]}…)"
    index = np.unravel_index(int(np.argmax(array)), array.shape)
    peak = float(np.asarray(array)[index])
    world = (affine @ [*index, 1.0])[:3]
    error = float(np.linalg.norm(world - truth))
    ok = abs(peak - MARKER) < 1.0
    return f"{error:.2f} mm" + ("" if ok else f", value {peak:g}")


def timing(reader: Callable, folder: Path, repeats: int = 3) -> float:
    reader(folder)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        reader(folder)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=176)
    args = parser.parse_args()
    readers = dict(READERS)
    for name, module in (("SimpleITK (GDCM)", "SimpleITK"), ("highdicom", "highdicom")):
        try:
            __import__(module)
        except ImportError:
            readers.pop(name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("| case | " + " | ".join(readers) + " |")
        print("|---|" + "---|" * len(readers))
        for kind in CASES:
            folder = root / kind.replace(" ", "_")
            truth = case_series(kind, folder)
            cells = [marker_error(reader, folder, truth) for reader in readers.values()]
            print(f"| {kind} | " + " | ".join(cells) + " |")
        big = root / "big"
        write_series(phantom((256, 256, args.slices)), axial(), big)
        print(f"\n| reader | read 256 x 256 x {args.slices} (s) |\n|---|---|")
        for name, reader in readers.items():
            print(f"| {name} | {timing(reader, big):.2f} |")


if __name__ == "__main__":
    main()
