"""The scan type: a 3-D volume reoriented to RAS+, with what is needed to write results
back on the file's own grid. Readers (:mod:`madgan_core.scans.readers`) make one; everything
downstream takes one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import io_orientation, ornt_transform

from madgan_core.errors import ScanError

# Refuse declared volumes beyond this many voxels before allocating them (2 GiB of float32).
MAX_VOXELS = 512 * 1024 * 1024
# Voxel edges outside this range (mm) are a damaged header or wrong units, not an MRI.
VOXEL_MM_RANGE = (0.01, 50.0)
# gzip (deflate) cannot compress better than about 1032:1, so a compressed file holding
# fewer than 1/GZIP_MAX_RATIO of the declared voxel bytes is certainly truncated.
GZIP_MAX_RATIO = 1100
COMPRESSED_SUFFIXES = (".gz", ".mgz", ".bz2", ".zst")


@dataclass
class Scan:
    """A 3-D scan reoriented to RAS+ (x: left->Right, y: posterior->Anterior, z: inferior->Superior).

    Attributes:
        data: float32 volume in RAS+ voxel order.
        affine: voxel-to-world affine of ``data``.
        native_affine: affine of the file as written.
        native_shape: shape of the file's voxel grid.
        header: the file's header, kept to write outputs aligned with it.
        path: where the scan came from (``None`` for in-memory scans).
        dicom: the DICOM series it was read from (``madgan_core.scans.dicom.DicomSource``), if any.
    """

    data: np.ndarray
    affine: np.ndarray
    native_affine: np.ndarray
    native_shape: tuple[int, int, int]
    header: object
    path: Path | None = None
    dicom: object | None = field(default=None, repr=False)

    @property
    def zooms(self) -> np.ndarray:
        """Voxel size in mm along the RAS+ axes."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def name(self) -> str:
        if self.dicom is not None:  # a series is named without patient identifiers
            return self.dicom.name
        return scan_stem(self.path) if self.path is not None else "scan"

    @classmethod
    def from_array(cls, data: np.ndarray, affine: np.ndarray | None = None) -> Scan:
        """Wrap an in-memory volume (any orientation) as a RAS+ scan."""
        affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
        img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
        return scan_from_image(img, None)

    def to_native(self, volume: np.ndarray) -> np.ndarray:
        """Reorient a volume on this scan's RAS+ grid back to the file's voxel order.

        The last leg of the way back from model space, when a result is written (the
        merger, :mod:`madgan_core.prep.native_maps`, brings it onto the RAS+ grid): axes
        permuted and flipped, no interpolation.
        """
        if volume.shape[:3] != self.data.shape:
            raise ValueError(f"volume shape {volume.shape} does not match scan {self.data.shape}")
        native_ornt = io_orientation(self.native_affine)
        ras_ornt = np.array([[0, 1], [1, 1], [2, 1]])
        transform = ornt_transform(ras_ornt, native_ornt)
        return nib.orientations.apply_orientation(volume, transform)


def scan_stem(path: str | Path) -> str:
    """The file name without its format's suffix: ``a.nii.gz`` -> ``a``, ``b.mgz`` -> ``b``.

    The suffix is the last one, with the one before it when the last is ``.gz``: the form
    of every suffix a reader declares (:mod:`madgan_core.scans.readers`).
    """
    name = Path(path)
    if name.suffix.lower() == ".gz":
        name = Path(name.stem)
    return name.stem


def scan_from_image(img: nib.spatialimages.SpatialImage, path: Path | None) -> Scan:
    """A nibabel image as a RAS+ :class:`Scan`, or a :class:`ScanError` naming ``path``.

    Refuses what is no usable 3-D volume: a singular affine, implausible voxel sizes,
    several volumes, a single slice, too many voxels, a file too short for its header,
    complex or RGB voxels, NaN/Inf voxels and constant volumes.
    """
    shape = tuple(int(s) for s in img.shape)
    if any(s <= 0 for s in shape):
        raise ScanError(f"header declares non-positive dimensions {shape}", path)
    affine = img.affine
    # Checked first: slicing a 4-D image rebuilds its header from this affine.
    if (
        affine is None
        or not np.all(np.isfinite(affine))
        or abs(np.linalg.det(affine[:3, :3])) < 1e-12
    ):
        raise ScanError("header has an invalid (singular or non-finite) affine", path)
    voxel_mm = nib.affines.voxel_sizes(affine)
    low, high = VOXEL_MM_RANGE
    if voxel_mm.min() < low or voxel_mm.max() > high:
        size = " x ".join(f"{v:.3g}" for v in voxel_mm)
        raise ScanError(
            f"header gives {size} mm voxels, outside {low:g}-{high:g} mm; check the voxel "
            "size (pixdim, units) and the sform/qform",
            path,
        )
    if len(shape) == 4 and shape[3] == 1:
        _check_stored_size(img, path)
        img = img.slicer[..., 0]
        shape = shape[:3]
    if len(shape) == 4:
        raise ScanError(f"is a 4-D image with {shape[3]} volumes; give one 3-D volume", path)
    if len(shape) != 3:
        raise ScanError(f"expected a 3-D volume, got {len(shape)}-D shape {shape}", path)
    # Python integers: NIfTI-2 dimensions are int64, and their product overflows numpy's int64.
    if math.prod(shape) > MAX_VOXELS:
        raise ScanError(f"declared shape {shape} is too large (over {MAX_VOXELS} voxels)", path)
    _check_stored_size(img, path)
    if min(shape) < 2:
        raise ScanError(f"expected a 3-D volume, got a single slice of shape {shape}", path)
    dtype = img.get_data_dtype()
    if dtype.fields is not None or np.issubdtype(dtype, np.complexfloating):
        raise ScanError(
            f"unsupported voxel type {dtype} (complex or RGB); give a scalar image", path
        )
    native_affine = np.asarray(affine, dtype=float)
    try:  # reorienting a non-RAS image reads the voxels, so it can fail on damaged data too
        canonical = nib.as_closest_canonical(img)
        data = np.asarray(canonical.dataobj, dtype=np.float32)
    except Exception as exc:
        raise ScanError(f"voxel data cannot be read ({describe_error(exc)})", path) from None
    if data.ndim != 3:
        raise ScanError(f"expected 3-D voxel data, got shape {data.shape}", path)
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise ScanError(f"contains {bad} NaN or infinite voxels", path)
    if float(data.max()) == float(data.min()):
        raise ScanError(f"volume is constant (every voxel is {float(data.min()):g})", path)
    return Scan(
        data=np.ascontiguousarray(data),
        affine=np.asarray(canonical.affine, dtype=float),
        native_affine=native_affine,
        native_shape=shape,
        header=img.header,
        path=path,
    )


def describe_error(exc: BaseException) -> str:
    """An exception as one short line (nibabel's messages may span lines)."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_stored_size(img: nib.spatialimages.SpatialImage, path: Path | None) -> None:
    """Refuse a file too small to hold the voxel data its header declares, before reading it.

    Without this, nibabel allocates the declared size first and only then finds the file short.
    """
    proxy = getattr(img, "dataobj", None)
    file_map = getattr(img, "file_map", None) or {}
    holder = file_map.get("image")
    filename = getattr(holder, "filename", None)
    if path is None or filename is None or not nib.is_proxy(proxy):
        return
    try:
        itemsize = np.dtype(img.get_data_dtype()).itemsize
        offset = int(getattr(proxy, "offset", 0))
        stored = Path(filename).stat().st_size
    except (OSError, TypeError, ValueError):
        return
    declared = math.prod(int(s) for s in img.shape) * itemsize
    if str(filename).lower().endswith(COMPRESSED_SUFFIXES):
        if declared > GZIP_MAX_RATIO * stored:
            raise ScanError(
                f"file is truncated or damaged: the header declares {declared} bytes of voxel data "
                f"(shape {tuple(img.shape)}), more than a {stored}-byte compressed file can hold",
                path,
            )
    elif offset + declared > stored:
        raise ScanError(
            f"file is truncated or damaged: the header declares {declared} bytes of voxel data "
            f"(shape {tuple(img.shape)}) from byte {offset}, but the file has {stored} bytes",
            path,
        )
