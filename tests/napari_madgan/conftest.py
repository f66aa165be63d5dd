"""Fixtures for the plugin's GUI tests: a small phantom scan and a tiny real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REFERENCE


@pytest.fixture(scope="session")
def phantom_scan():
    """A metastasis phantom at 4 mm (small and quick to score)."""
    from madgan_core.cohort.phantom import make_subject
    from madgan_core.scans.scan import Scan

    volume, affine, _ = make_subject("mets", voxel_mm=4.0)
    return Scan.from_array(volume, affine)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_model_file) -> Path:
    """A tiny untrained model file with a 20-control healthy reference."""
    return tiny_model_file(
        tmp_path_factory.mktemp("model") / "model.pt", step=1, reference=REFERENCE
    )


@pytest.fixture(scope="session")
def tiny_model_no_reference(tmp_path_factory, tiny_model_file) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model_noref") / "model.pt", step=1)
