"""A toy input format for registry tests: a ``.toy`` file holds one volume as a NumPy ``.npy``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from madgan_core.errors import ScanError
from madgan_core.scans.reader import FileReader, PathLike
from madgan_core.scans.scan import Scan


@dataclasses.dataclass(frozen=True)
class ToyReader(FileReader):
    """Reads ``.toy`` files: a volume saved with :func:`numpy.save`, 1 mm voxels."""

    def read(self, path: PathLike) -> Scan:
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ScanError(f"not a toy volume ({exc})", path) from None
        return dataclasses.replace(Scan.from_array(data), path=Path(path))


TOY = ToyReader("Toy", (".toy",))


def write_toy(path: Path, volume: np.ndarray) -> Path:
    with open(path, "wb") as handle:
        np.save(handle, volume)
    return path
