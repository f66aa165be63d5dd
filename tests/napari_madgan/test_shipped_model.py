"""The model shipped in the package, as a new user meets it: File ▸ Open Sample ▸
metastasis phantom, Plugins ▸ MADGAN review, Run with no model chosen."""

from __future__ import annotations

import numpy as np
import pytest

from madgan_core.model.bundled import bundled_folder as installed_folder
from napari_madgan._reader_preference import PLUGIN_NAME
from napari_madgan.review._layers import ZMAP_NAME

SCAN = "phantom metastasis"
DISPLAY = "Bundled: phantom demo, T1/T1c, 2 mm"

pytestmark = pytest.mark.filterwarnings("error:Private attribute access:FutureWarning")


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    return make_napari_viewer()


@pytest.fixture
def shipped_model(monkeypatch):
    """The installation's own bundled model (the plugin tests hide it otherwise)."""
    from madgan_core.model import bundled

    monkeypatch.setattr(bundled, "bundled_folder", installed_folder)
    return bundled.bundled_path(bundled.DEFAULT)


def test_run_with_no_choice_finds_the_metastases_of_the_sample(viewer, qtbot, shipped_model):
    viewer.open_sample(PLUGIN_NAME, "mets")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, "MADGAN review")
    assert widget.form.model_text == DISPLAY
    widget.form.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=120_000)
    result = widget.result
    assert result is not None, widget.status_text
    assert f"{SCAN} {ZMAP_NAME}" in [layer.name for layer in viewer.layers]
    assert "Anomaly score" in widget.results.score_label.text()
    assert widget.results.findings_table.rowCount() == len(result.findings) > 0
    from madgan_core.cohort.phantom import make_subject

    # the sample's own lesions, on the scan's grid (napari_madgan/_sample_data.py)
    truth = make_subject("mets", 1, "T1c", seed=0, voxel_mm=2.0)[2]["lesion_mask"] > 0
    outlines = np.asarray(result.finding_labels)
    assert outlines.shape == truth.shape
    assert outlines[truth].any(), "no finding outlines the sample's metastases"
