"""Shared fixtures for core tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from madgan_testing.brains import synthetic_brain


@pytest.fixture
def brain_volume() -> np.ndarray:
    return synthetic_brain()


@pytest.fixture
def brain_file(tmp_path: Path, brain_volume: np.ndarray) -> Path:
    path = tmp_path / "brain.nii.gz"
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(brain_volume, affine), path)
    return path
