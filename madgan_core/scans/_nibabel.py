"""The nibabel readers of the registry: NIfTI, MGZ/MGH, and any other file nibabel reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib

from madgan_core.errors import ScanError
from madgan_core.scans.reader import FileReader, PathLike
from madgan_core.scans.scan import Scan, describe_error, scan_from_image


@dataclass(frozen=True)
class NibabelReader(FileReader):
    """A one-file format nibabel reads; the volume takes :func:`scan_from_image`'s checks."""

    def read(self, path: PathLike) -> Scan:
        path = Path(path)
        try:
            img = nib.load(str(path))
        except Exception as exc:  # nibabel raises many types for foreign files
            raise ScanError(f"not a readable image ({describe_error(exc)})", path) from None
        if not isinstance(img, nib.spatialimages.SpatialImage):
            raise ScanError("not a spatial image", path)
        return scan_from_image(img, path)
