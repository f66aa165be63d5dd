"""The bundled model in the plugin, reached through napari's menus: preselected in the
review widget, scored with when no model is chosen, and the training dialog's default
starting point (``--init phantom-demo``)."""

from __future__ import annotations

import pytest

from madgan_core.config import MadganConfig
from madgan_core.model import bundled
from madgan_core.model.train import init_config
from napari_madgan import _settings
from napari_madgan._reader_preference import PLUGIN_NAME
from napari_madgan.review._findings import FINDINGS_NAME
from napari_madgan.review._form import USE_BUNDLED
from napari_madgan.review._layers import ZMAP_NAME
from napari_madgan.training._form import MODEL_FILE, SCRATCH

DISPLAY = "Bundled: phantom demo, T1/T1c, 2 mm"
SCAN = "phantom metastasis"

pytestmark = pytest.mark.filterwarnings("error:Private attribute access:FutureWarning")


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    return make_napari_viewer()


def _menu_widget(viewer, display_name: str):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, display_name)
    return widget


def _train_config(argv: list[str]) -> MadganConfig:
    """The configuration ``madgan train`` builds from the dialog's command line."""
    from madgan_core.cli import build_parser
    from madgan_core.commands.train import build_config

    assert argv[:3] == ["-m", "madgan_core.cli", "train"]
    return build_config(build_parser().parse_args(argv[2:]))


# ---------------------------------------------------------------- review


def test_run_without_choosing_a_model_scores_with_the_bundled_one(viewer, qtbot, bundled_model):
    viewer.open_sample(PLUGIN_NAME, "mets")
    widget = _menu_widget(viewer, "MADGAN review")
    form = widget.form
    assert form.scan_layer.value == SCAN
    # preselected and shown by its display name, its file and intended use in the tooltip
    assert form.model_text == DISPLAY
    assert widget.model_path == str(bundled_model)
    tip = form.model.line_edit.tooltip
    assert DISPLAY in tip and str(bundled_model) in tip
    assert "trained on synthetic phantoms" in tip and "not for patients" in tip
    form.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    result = widget.result
    assert result is not None, widget.status_text
    assert widget.controller.shown.request.model_path == str(bundled_model)
    assert widget.controller.shown.model_name == DISPLAY  # as the report names it
    names = [layer.name for layer in viewer.layers]
    assert f"{SCAN} {ZMAP_NAME}" in names
    assert viewer.layers[f"{SCAN} {ZMAP_NAME}"].visible  # a calibrated model leads with it
    assert result.findings and f"{SCAN} {FINDINGS_NAME}" in names
    assert widget.results.findings_table.rowCount() == len(result.findings)
    headline = widget.results.score_label.text()
    assert headline.split("<li>")[1].startswith("<b>Anomaly score")
    assert "20 healthy controls" in headline
    # the run remembers the bundled model, listed by its display name
    assert _settings.recent_models()[0] == str(bundled_model.resolve())
    viewer.window.remove_dock_widget("all")
    again = _menu_widget(viewer, "MADGAN review")
    assert again is not widget and again.form.model_text == DISPLAY
    recent = again.form.recent_model.native
    assert DISPLAY in [recent.itemText(i) for i in range(recent.count())]


def test_a_picked_model_wins_and_the_bundled_one_is_a_click_away(viewer, bundled_model, tiny_model):
    widget = _menu_widget(viewer, "MADGAN review")
    button = widget.form.use_bundled_button
    assert button.text == USE_BUNDLED and "not for patients" in button.tooltip
    widget.set_model_path(tiny_model)
    assert widget.form.model_text == str(tiny_model.resolve())
    assert widget.model_path == str(tiny_model.resolve())
    assert not widget.form.model.line_edit.tooltip
    # remembered: the next widget opens on it, not on the bundled model
    viewer.window.remove_dock_widget("all")
    widget = _menu_widget(viewer, "MADGAN review")
    assert widget.model_path == str(tiny_model.resolve())
    widget.form.use_bundled_button.native.click()
    assert widget.form.model_text == DISPLAY
    assert widget.model_path == str(bundled_model)
    # an emptied field falls back on the bundled model, shown as the placeholder
    widget.form.model.line_edit.value = ""
    assert widget.model_path == str(bundled_model)
    assert widget.form.model.line_edit.native.placeholderText() == DISPLAY
    # a bundled model's name typed in means its file
    viewer.open_sample(PLUGIN_NAME, "mets")
    widget.form.model.line_edit.value = "phantom-demo"
    assert widget.current_request().model_path == str(bundled_model)


def test_without_a_bundled_model_the_widget_asks_for_one(viewer, qtbot):
    assert bundled.default_model() is None
    viewer.open_sample(PLUGIN_NAME, "mets")
    widget = _menu_widget(viewer, "MADGAN review")
    assert widget.form.model_text == "" and widget.model_path == ""
    assert not widget.form.use_bundled_button.native.isVisibleTo(widget)
    assert widget.form.model.line_edit.native.placeholderText() == "model.pt"
    widget.form.use_bundled_button.native.click()  # harmless, were it reached
    widget.form.run_button.native.click()
    qtbot.wait(10)
    assert "choose a model file first" in widget.status_text
    assert not widget.controller.running and widget.result is None
    assert widget.form.run_button.enabled


# ---------------------------------------------------------------- training


def test_training_starts_from_the_bundled_model_by_default(viewer, bundled_model, tmp_path):
    widget = _menu_widget(viewer, "MADGAN train")
    form = widget.form
    labels = [form.start_from.native.itemText(i) for i in range(form.start_from.native.count())]
    assert labels == ["From scratch", DISPLAY, "A model file"]
    assert form.start_from.value == "phantom-demo" and not form.init.enabled
    assert "not for patients" in form.start_from.tooltip
    form.manifest.value = tmp_path
    form.out.value = tmp_path / "run"
    request = widget.current_request()
    assert request.init == "phantom-demo"
    for resume in (False, True):
        argv = request.arguments(resume)
        assert argv[argv.index("--init") + 1] == "phantom-demo"
    cfg = _train_config(request.arguments())
    stored = init_config(bundled_model)
    assert cfg.preprocess == stored.preprocess and cfg.model == stored.model
    # from scratch, or a file (which must then be chosen)
    form.start_from.value = SCRATCH
    assert "--init" not in widget.current_request().arguments()
    form.start_from.value = MODEL_FILE
    assert form.init.enabled
    assert not widget.start()
    assert "choose the model file to start from" in widget.status_text
    copy = tmp_path / "copy.pt"
    copy.write_bytes(bundled_model.read_bytes())
    form.start_from.value = SCRATCH
    form.init.value = copy  # picking a file chooses it
    assert form.start_from.value == MODEL_FILE
    assert widget.current_request().init == str(copy.resolve())
    # a bundled model gone since the dialog opened is one clear message
    form.start_from.value = "phantom-demo"
    bundled_model.unlink()
    assert not widget.start()
    assert "is not in this installation" in widget.status_text


def test_training_without_a_bundled_model_starts_from_scratch(viewer, tmp_path):
    widget = _menu_widget(viewer, "MADGAN train")
    form = widget.form
    assert form.start_from.value == SCRATCH
    assert list(form.start_from.choices) == [SCRATCH, MODEL_FILE]
    form.manifest.value = tmp_path
    form.out.value = tmp_path / "run"
    assert widget.current_request().init == ""
