"""Fixtures for the plugin's GUI tests: a small phantom scan and a tiny real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REFERENCE


@pytest.fixture(autouse=True)
def _no_bundled_model(tmp_path_factory, monkeypatch):
    """The widgets' defaults do not depend on whether this installation bundles a model:
    none is installed unless a test installs one (:func:`bundled_model`)."""
    from madgan_core.model import bundled

    empty = tmp_path_factory.mktemp("no_bundled_models")
    monkeypatch.setattr(bundled, "bundled_folder", lambda: empty)


@pytest.fixture
def bundled_model(tmp_path, tiny_model_zstats, monkeypatch) -> Path:
    """The default bundled model installed as a copy of a tiny calibrated model."""
    from madgan_core.model import bundled

    folder = tmp_path / "bundled_models"
    folder.mkdir()
    path = folder / bundled.REGISTRY[bundled.DEFAULT].filename
    shutil.copyfile(tiny_model_zstats, path)
    monkeypatch.setattr(bundled, "bundled_folder", lambda: folder)
    return path


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
