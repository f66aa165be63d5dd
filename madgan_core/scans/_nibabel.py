"""The nibabel readers of the registry: NIfTI, MGZ/MGH, and any other file nibabel reads.

A gzip-compressed NIfTI or MGZ file is decompressed with ISA-L (python-isal, the
``fast-io`` extra) where it is installed: nibabel reads the header as usual, then the
voxels through an ``isal.igzip`` file object. The bytes are the standard library's, so the
scan is identical; without python-isal, or if that path fails in any way, the file is read
by nibabel alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nibabel as nib

from madgan_core.errors import ScanError
from madgan_core.scans.reader import FileReader, PathLike
from madgan_core.scans.scan import Scan, describe_error, scan_from_image

# One-file image types whose ``.gz``/``.mgz`` files the fast decoder reads.
FAST_GZIP_TYPES = (nib.Nifti1Image, nib.Nifti2Image, nib.MGHImage)
GZIP_SUFFIXES = (".gz", ".mgz")


@dataclass(frozen=True)
class NibabelReader(FileReader):
    """A one-file format nibabel reads; the volume takes :func:`scan_from_image`'s checks.

    Attributes:
        fast_gzip: decompress gzip files with :func:`fast_gzip_open` when it is installed.
    """

    fast_gzip: bool = True

    def read(self, path: PathLike) -> Scan:
        path = Path(path)
        try:
            img = nib.load(str(path))
        except Exception as exc:  # nibabel raises many types for foreign files
            raise ScanError(f"not a readable image ({describe_error(exc)})", path) from None
        if not isinstance(img, nib.spatialimages.SpatialImage):
            raise ScanError("not a spatial image", path)
        opener = fast_gzip_open() if self.fast_gzip else None
        if opener is not None and _fast_gzip_readable(img, path):
            try:
                with opener(str(path)) as fobj:
                    return scan_from_image(_reopened(img, path, fobj), path)
            except Exception:  # noqa: BLE001 - any failure: nibabel's own reading decides
                pass
        return scan_from_image(img, path)


@functools.cache
def fast_gzip_open() -> Callable[[str], BinaryIO] | None:
    """python-isal's gzip opener (``isal.igzip.open``), or None where it is not installed."""
    try:
        from isal import igzip
    except ImportError:
        return None
    return functools.partial(igzip.open, mode="rb")


def fast_gzip_name() -> str | None:
    """The fast gzip library in use (``"isal"``), or None: the standard library's gzip."""
    return "isal" if fast_gzip_open() is not None else None


def _fast_gzip_readable(img: nib.spatialimages.SpatialImage, path: Path) -> bool:
    """Whether ``img`` is a one-file image type stored gzip-compressed in ``path``."""
    return (
        type(img) in FAST_GZIP_TYPES
        and set(img.file_map) == {"image"}
        and path.name.lower().endswith(GZIP_SUFFIXES)
    )


def _reopened(
    img: nib.spatialimages.SpatialImage, path: Path, fobj: BinaryIO
) -> nib.spatialimages.SpatialImage:
    """``img`` read again from ``fobj``, a decompressed view of ``path``; its file is still ``path``."""
    holder = nib.FileHolder(filename=str(path), fileobj=fobj)
    return type(img).from_file_map({"image": holder})
