"""Shared test set-up. napari's ``make_napari_viewer`` fixture comes from napari's pytest plugin."""

from __future__ import annotations

import os
import tempfile

import pytest

# napari reads its settings path when napari.settings is first imported: keep the tests'
# reader preferences and window state out of the user's napari settings.
os.environ.setdefault(
    "NAPARI_CONFIG", os.path.join(tempfile.mkdtemp(prefix="napari_madgan_tests_"), "settings.yaml")
)


@pytest.fixture(autouse=True)
def _isolated_plugin_settings(tmp_path_factory, monkeypatch):
    """Keep the plugin's recent-models file out of the user's config dir."""
    monkeypatch.setenv(
        "NAPARI_MADGAN_CONFIG_DIR", str(tmp_path_factory.mktemp("napari_madgan_config"))
    )
