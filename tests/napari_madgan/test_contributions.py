"""Every contribution in napari.yaml, reached the way users reach it: through napari.

The Plugins menu (napari builds the widget and hands it a public-only proxy of the
viewer), File → Open Sample, and opening files with no plugin named. Nothing here
builds our widgets; the reader is reached through napari, except one refusal checked at
the reader's own entry point (a folder without DICOM files).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from npe2 import PluginManager
from qtpy.QtWidgets import QWidget

from napari_madgan._layers import SCAN_KEY
from napari_madgan._reader import napari_get_reader
from napari_madgan._reader_preference import (
    PLUGIN_NAME,
    SCAN_PATTERNS,
    is_preferred_reader,
    prefer_this_reader,
)
from napari_madgan.review import ReviewWidget
from napari_madgan.review._layers import HEATMAP_NAME, OUTLINES_NAME, ZMAP_NAME
from napari_madgan.training import TrainingWidget

# Widgets opened from the menu must not lean on napari's private API through the proxy,
# and must set napari attributes on the main thread only.
pytestmark = pytest.mark.filterwarnings("error:Private attribute access:FutureWarning")


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    return make_napari_viewer()


def _manifest():
    return PluginManager.instance().get_manifest(PLUGIN_NAME)


def _menu_widget(viewer, display_name: str) -> QWidget:
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, display_name)
    return widget


def test_every_widget_in_the_manifest_opens_from_the_plugins_menu(viewer):
    from napari.utils._proxies import PublicOnlyProxy

    names = [w.display_name for w in _manifest().contributions.widgets]
    assert names == ["MADGAN review", "MADGAN train"]
    for name in names:
        widget = _menu_widget(viewer, name)
        assert isinstance(widget, ReviewWidget | TrainingWidget)
        assert isinstance(widget.viewer, PublicOnlyProxy)
        assert widget in viewer.window.dock_widgets.values(), dict(viewer.window.dock_widgets)


def test_review_from_the_menu_scores_a_sample(viewer, qtbot, tiny_model_zstats):
    viewer.open_sample(PLUGIN_NAME, "mets")
    widget = _menu_widget(viewer, "MADGAN review")
    assert widget.form.scan_layer.value == "phantom metastasis"
    assert widget.form.sequence.value == "T1c"
    widget.set_model_path(tiny_model_zstats)
    widget.form.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    assert widget.result is not None, widget.status_text
    names = [layer.name for layer in viewer.layers]
    for overlay in (HEATMAP_NAME, ZMAP_NAME):
        assert f"phantom metastasis {overlay}" in names
    heat = viewer.layers[f"phantom metastasis {HEATMAP_NAME}"]
    assert heat.colormap.name == "jet"
    assert heat.data.shape == viewer.layers["phantom metastasis"].data.shape
    assert "20 healthy controls" in widget.results.score_label.text()


def test_training_from_the_menu_hands_its_model_to_a_menu_review(viewer, tiny_model):
    review = _menu_widget(viewer, "MADGAN review")
    train = _menu_widget(viewer, "MADGAN train")
    assert train.offer_model(tiny_model) == 1
    assert review.model_path == str(tiny_model.resolve())


@pytest.mark.parametrize("key", ["healthy", "ad", "mets", "various"])
def test_every_sample_opens_from_file_open_sample(viewer, key):
    keys = [s.key for s in _manifest().contributions.sample_data]
    assert key in keys and len(keys) == 4
    viewer.open_sample(PLUGIN_NAME, key)
    scan = viewer.layers[0]
    assert scan.ndim == 3 and isinstance(scan.metadata[SCAN_KEY].data, np.ndarray)
    assert scan.metadata["madgan_info"]["group"] == key


def _scan_files(tmp_path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    data = rng.random((24, 28, 20), dtype=np.float32) + 1.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    files = {}
    for suffix in (".nii", ".nii.gz"):
        files[suffix] = str(tmp_path / f"scan{suffix}")
        nib.save(nib.Nifti1Image(data, affine), files[suffix])
    files[".mgz"] = str(tmp_path / "scan.mgz")
    nib.save(nib.MGHImage(data, affine), files[".mgz"])
    return files


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mgz"])
def test_scans_open_with_no_plugin_named_once_preferred(viewer, tmp_path, suffix):
    path = _scan_files(tmp_path)[suffix]
    prefer_this_reader()
    [layer] = viewer.open(path, plugin=None)
    assert layer.metadata[SCAN_KEY].path.name == f"scan{suffix}"
    # File → Open, drag and drop and `napari scan.nii.gz` all go through this path
    viewer.window._qt_viewer._qt_open([path], stack=False)
    assert len(viewer.layers) == 2


def test_without_a_preference_napari_offers_this_reader(viewer, tmp_path, monkeypatch):
    """With no preference napari asks (its reader dialog) for .nii and .nii.gz; .mgz is
    ours alone and opens at once."""
    import napari._qt.qt_viewer as qt_viewer_module

    asked = []
    monkeypatch.setattr(
        qt_viewer_module,
        "handle_gui_reading",
        lambda paths, qt_viewer, stack, **kw: asked.append(paths),
    )
    files = _scan_files(tmp_path)
    assert not is_preferred_reader()
    for suffix in (".nii", ".nii.gz"):
        viewer.window._qt_viewer._qt_open([files[suffix]], stack=False)
    assert asked == [[files[".nii"]], [files[".nii.gz"]]]
    [layer] = viewer.open(files[".mgz"], plugin=None)
    assert SCAN_KEY in layer.metadata


def test_review_widget_offers_to_become_the_scan_reader(viewer, tmp_path):
    widget = _menu_widget(viewer, "MADGAN review")
    assert widget.reader_offer.isVisibleTo(widget)
    widget.reader_offer.accept_btn.click()
    assert is_preferred_reader()
    assert not widget.reader_offer.isVisibleTo(widget)
    from napari.settings import get_settings

    preferences = get_settings().plugins.extension2reader
    assert all(preferences[p] == PLUGIN_NAME for p in SCAN_PATTERNS)
    [layer] = viewer.open(_scan_files(tmp_path)[".nii.gz"], plugin=None)
    assert SCAN_KEY in layer.metadata


def test_declining_the_reader_offer_is_remembered(viewer):
    widget = _menu_widget(viewer, "MADGAN review")
    widget.reader_offer.decline_btn.click()
    assert not is_preferred_reader()
    viewer.window.remove_dock_widget("all")
    again = _menu_widget(viewer, "MADGAN review")
    assert not again.reader_offer.isVisibleTo(again)


def test_other_files_are_left_to_other_readers(viewer, tmp_path):
    from skimage.io import imsave

    prefer_this_reader()
    png = tmp_path / "photo.png"
    imsave(png, np.zeros((8, 8), np.uint8), check_contrast=False)
    readers = {r.plugin_name for r in PluginManager.instance().iter_compatible_readers([str(png)])}
    assert PLUGIN_NAME not in readers
    [layer] = viewer.open(str(png), plugin=None)
    assert SCAN_KEY not in layer.metadata and layer.data.shape == (8, 8)
    folder = tmp_path / "folder.nii"  # a folder without DICOM files is left to other readers
    folder.mkdir()
    (folder / "notes.txt").write_text("not a scan")
    assert napari_get_reader(str(folder)) is None


def test_a_failing_slot_does_not_take_napari_down(viewer, qtbot, monkeypatch):
    import napari.utils.notifications as notifications

    shown = []

    monkeypatch.setattr(notifications, "show_error", shown.append)
    widget = _menu_widget(viewer, "MADGAN review")

    def broken(_limits):
        raise RuntimeError("boom")

    widget._apply_range = broken  # the next range edit reaches it from a Qt signal
    widget.form.range_high.native.setValue(0.5)
    assert shown and "boom" in shown[-1]
    assert "boom" in widget.status_text
    # an unknown overlay is refused before Qt sees it, and a cleared choice is harmless
    with pytest.raises(ValueError, match="unknown overlay"):
        widget.set_overlay("nonsense")
    widget.form.overlay.native.setCurrentIndex(-1)
    qtbot.wait(10)
    # the viewer and the widget carry on
    viewer.open_sample(PLUGIN_NAME, "healthy")
    assert widget.form.scan_layer.value == "phantom healthy"


def test_result_layers_save_as_nifti_on_the_scans_grid(viewer, qtbot, tiny_model_zstats, tmp_path):
    from napari import save_layers

    viewer.open_sample(PLUGIN_NAME, "mets")
    widget = _menu_widget(viewer, "MADGAN review")
    widget.set_model_path(tiny_model_zstats)
    widget.form.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    result = widget.result
    assert result is not None and result.findings, widget.status_text
    scan = viewer.layers["phantom metastasis"].metadata[SCAN_KEY]
    expected = {
        "phantom metastasis": (scan.data, np.float32),
        f"phantom metastasis {ZMAP_NAME}": (result.zmap, np.float32),
        f"phantom metastasis {OUTLINES_NAME}": (result.finding_labels, np.uint8),
    }
    for i, (name, (volume, dtype)) in enumerate(expected.items()):
        path = tmp_path / f"layer{i}.nii.gz"
        assert save_layers(str(path), [viewer.layers[name]], plugin=PLUGIN_NAME) == [str(path)]
        saved = nib.load(path)
        np.testing.assert_allclose(saved.affine, scan.native_affine, atol=1e-5)
        assert saved.get_data_dtype() == dtype
        np.testing.assert_array_equal(np.asarray(saved.dataobj), scan.to_native(volume))
    # a layer the plugin did not make has no scan grid to save on
    viewer.add_image(np.zeros((4, 5, 6), np.float32), name="elsewhere")
    other = tmp_path / "other.nii.gz"
    with pytest.warns(UserWarning, match="'elsewhere' was not made by napari-madgan"):
        save_layers(str(other), [viewer.layers["elsewhere"]], plugin=PLUGIN_NAME)
    assert not other.exists()
    # nor does one changed after it was made (here: cut to one slice)
    cut = viewer.layers["phantom metastasis"]
    viewer.add_image(cut.data[0], name="one slice", metadata=dict(cut.metadata))
    with pytest.warns(UserWarning, match="'one slice' has shape .* not its scan's"):
        save_layers(str(other), [viewer.layers["one slice"]], plugin=PLUGIN_NAME)
    assert not other.exists()
