"""The napari reader reads the formats of madgan_core's reader registry, and napari.yaml says so."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from npe2 import PluginManifest

import napari_madgan
from madgan_core.errors import ScanError
from madgan_core.scans import readers
from madgan_core.scans.scan import Scan
from madgan_testing.brains import synthetic_brain
from napari_madgan._layers import SCAN_KEY
from napari_madgan._reader import napari_get_reader
from napari_madgan._reader_preference import SCAN_PATTERNS
from tests.madgan_core.toy_format import TOY, write_toy


def test_napari_yaml_lists_the_patterns_the_registry_declares():
    manifest = PluginManifest.from_file(Path(napari_madgan.__file__).parent / "napari.yaml")
    [reader] = manifest.contributions.readers
    assert reader.filename_patterns == readers.filename_patterns()
    assert reader.accepts_directories == any(r.takes_folders for r in readers.READERS)


def test_the_reader_preference_covers_every_pattern():
    assert list(SCAN_PATTERNS) == readers.filename_patterns()


def test_an_mgh_file_opens(tmp_path):
    path = tmp_path / "b.mgh"
    nib.save(nib.MGHImage(synthetic_brain((8, 9, 10)), np.eye(4)), path)
    [(_, kwargs, kind)] = napari_get_reader(str(path))(str(path))
    assert kind == "image" and isinstance(kwargs["metadata"][SCAN_KEY], Scan)


def test_a_registered_format_opens_in_napari(tmp_path, monkeypatch):
    path = str(write_toy(tmp_path / "sub-07.toy", synthetic_brain((8, 9, 10))))
    assert napari_get_reader(path) is None  # not a format yet
    monkeypatch.setattr(readers, "READERS", [*readers.READERS, TOY])
    reader = napari_get_reader(path)
    assert callable(reader)
    [(data, kwargs, kind)] = reader(path)
    scan = kwargs["metadata"][SCAN_KEY]
    assert kind == "image" and scan.name == "sub-07"
    assert data.shape == scan.data.shape[::-1]
    (tmp_path / "bad.toy").write_text("not a volume" * 10)
    with pytest.raises(ScanError, match=r"bad\.toy: not a toy volume"):
        napari_get_reader(str(tmp_path / "bad.toy"))(str(tmp_path / "bad.toy"))
