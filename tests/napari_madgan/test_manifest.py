"""The npe2 manifest is valid, and importing the plugin does not import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import napari_madgan


def test_manifest_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(Path(napari_madgan.__file__).parent / "napari.yaml")
    manifest.validate_imports()
    assert manifest.name == "napari-madgan"
    assert {w.display_name for w in manifest.contributions.widgets} == {
        "MADGAN review",
        "MADGAN train",
    }
    assert len(manifest.contributions.sample_data) == 4


def test_plugin_import_is_light():
    code = (
        "import sys, napari_madgan, napari_madgan._reader, napari_madgan._sample_data, "
        "napari_madgan.review, napari_madgan.training; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_sample_data_layers():
    from napari_madgan._layers import SCAN_KEY
    from napari_madgan._sample_data import ad_phantom

    layers = ad_phantom()
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.ndim == 3
    assert kwargs["metadata"][SCAN_KEY].data.shape == data.shape[::-1]
    assert kwargs["scale"] == (2.0, 2.0, 2.0)
