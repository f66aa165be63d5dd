"""Shared test set-up. napari's ``make_napari_viewer`` fixture comes from napari's pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_plugin_settings(tmp_path_factory, monkeypatch):
    """Keep the plugin's recent-models file out of the user's config dir."""
    monkeypatch.setenv(
        "NAPARI_MADGAN_CONFIG_DIR", str(tmp_path_factory.mktemp("napari_madgan_config"))
    )
