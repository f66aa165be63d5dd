"""Small synthetic brains and the path of nibabel's test files: fixtures of tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nibabel.testing import data_path

NIBABEL_DATA = Path(data_path)


def synthetic_brain(shape=(40, 48, 36), seed: int = 0) -> np.ndarray:
    """An ellipsoidal 'brain' with a darker core and mild texture, in RAS+ order."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radius = np.sqrt((grid[0] / 0.8) ** 2 + (grid[1] / 0.85) ** 2 + (grid[2] / 0.8) ** 2)
    brain = np.where(radius < 1.0, 100.0, 0.0)
    brain[radius < 0.4] = 40.0
    brain += np.where(radius < 1.0, rng.normal(0, 3.0, shape), 0.0)
    return brain.astype(np.float32)
