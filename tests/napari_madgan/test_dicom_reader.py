"""DICOM in napari: a study folder opens its series (asking when there are several), reviews and exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from madgan_core.scans.dicom import find_series
from madgan_core.scans.scan import Scan
from madgan_testing.dicom_series import Patient, write_series
from napari_madgan import _series_dialog
from napari_madgan._dicom_reader import choose_series
from napari_madgan._geometry import display_affine
from napari_madgan._layers import INFO_KEY, SCAN_KEY
from napari_madgan._reader import napari_get_reader
from napari_madgan._series_dialog import SeriesDialog
from napari_madgan.review import ReviewWidget
from napari_madgan.review._exports import default_export


@pytest.fixture(scope="module")
def phantom_volume():
    from madgan_core.cohort.phantom import make_subject

    volume, affine, _ = make_subject("mets", voxel_mm=4.0)
    return volume, affine


SLOPE = 0.1  # the 4 mm phantom peaks near 900: three times that fits 16 bits


def study(folder: Path, phantom_volume, series: tuple[str, ...] = ("T1 MPRAGE",)) -> Path:
    """A study folder with one phantom series per description (a localizer when asked)."""
    volume, affine = phantom_volume
    patient = Patient()
    for number, description in enumerate(series, start=1):
        data = volume[:, :, :1] if description == "localizer" else volume * number
        write_series(
            data,
            affine,
            folder / f"s{number}",
            description=description,
            series_number=number,
            patient=patient,
            slope=SLOPE,
        )
    return folder


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    """A viewer whose folders open with this plugin, as napari's "Choose reader" dialog sets up
    when one ticks "remember" (napari's builtin reader claims folders too, so folders need it).

    ``viewer.open(path, plugin=None)`` lets napari choose the reader, as when a folder is
    dropped on the window (``viewer.open``'s default plugin is napari's builtin one).
    """
    from napari.settings import get_settings

    viewer = make_napari_viewer()  # napari resets its settings here, so set the preference after
    plugins = get_settings().plugins
    monkeypatch.setattr(plugins, "extension2reader", {"*/": "napari-madgan"})
    return viewer


def never_ask(series, default):
    raise AssertionError("the user should not have been asked")


def test_choose_series_asks_only_between_readable_series(tmp_path, phantom_volume):
    study(tmp_path / "one", phantom_volume, ("T1 MPRAGE", "localizer"))
    [t1, localizer] = find_series(tmp_path / "one")
    assert choose_series([t1, localizer], never_ask) is t1
    study(tmp_path / "two", phantom_volume, ("T2 TSE", "T1 MPRAGE", "localizer"))
    series = find_series(tmp_path / "two")
    asked = []

    def ask(offered, default):
        asked.append((offered, default))
        return 0

    assert choose_series(series, ask).description == "T2 TSE"
    [(offered, default)] = asked
    assert offered[default].description == "T1 MPRAGE"  # the T1 is offered first
    assert choose_series(series, lambda offered, default: None) is None


def test_napari_offers_this_plugin_for_a_study_folder(make_napari_viewer, tmp_path, phantom_volume):
    from napari.errors import MultipleReaderError

    folder = study(tmp_path / "study", phantom_volume)
    viewer = make_napari_viewer()
    with pytest.raises(MultipleReaderError) as caught:  # no preference yet: the user picks
        viewer.open(str(folder), plugin=None)
    assert "napari-madgan" in str(caught.value)


def test_reader_declines_folders_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None


def test_open_study_folder_with_one_series(viewer, tmp_path, phantom_volume, monkeypatch):
    monkeypatch.setattr(_series_dialog, "ask_series", never_ask)
    folder = study(tmp_path / "study", phantom_volume, ("T1 MPRAGE", "localizer"))
    [layer] = viewer.open(str(folder), plugin=None)  # napari chooses, as for a dropped folder
    scan = layer.metadata[SCAN_KEY]
    assert isinstance(scan, Scan) and scan.dicom.description == "T1 MPRAGE"
    assert layer.name == scan.name and layer.name.startswith("T1_MPRAGE-")
    assert layer.metadata[INFO_KEY] == {"sequence": "T1"}
    volume, affine = phantom_volume
    np.testing.assert_allclose(scan.data.max(), np.round(volume.max() / SLOPE) * SLOPE, atol=1e-3)
    # The layer sits at the series' world coordinates (napari world axes S, P, R).
    mat = display_affine(scan.affine, scan.data.shape)
    np.testing.assert_allclose(layer.data_to_world([0, 0, 0]), mat[:3, 3], atol=1e-3)


def test_open_study_folder_with_several_series_asks(viewer, tmp_path, phantom_volume, monkeypatch):
    folder = study(tmp_path / "study", phantom_volume, ("T1 MPRAGE", "T2 TSE"))
    asked = []

    def ask(series, default):
        asked.append([s.description for s in series])
        return 1

    monkeypatch.setattr(_series_dialog, "ask_series", ask)
    [layer] = viewer.open(str(folder), plugin=None)
    assert asked == [["T1 MPRAGE", "T2 TSE"]]
    assert layer.metadata[SCAN_KEY].dicom.description == "T2 TSE"
    monkeypatch.setattr(_series_dialog, "ask_series", lambda series, default: None)
    assert viewer.open(str(folder), plugin=None) == []  # cancelled: nothing opened, no error
    assert len(viewer.layers) == 1


def test_series_dialog_greys_out_unreadable_series(qtbot, tmp_path, phantom_volume):
    study(tmp_path, phantom_volume, ("localizer", "T1 MPRAGE", "T2 TSE"))
    series = find_series(tmp_path)
    dialog = SeriesDialog(series, default=1)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 3
    assert "cannot be read" in dialog.list.item(0).text()
    assert dialog.chosen() == 1
    dialog.list.setCurrentRow(2)
    assert dialog.chosen() == 2
    dialog.list.setCurrentRow(0)
    assert dialog.chosen() is None


def test_review_and_dicom_export_on_a_series(viewer, qtbot, tmp_path, phantom_volume, tiny_model):
    folder = study(tmp_path / "study", phantom_volume)
    [layer] = viewer.open(str(folder), plugin=None)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN review")
    widget.set_model_path(tiny_model)
    assert not widget.results.export_buttons["dicom"].isEnabled()
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=30_000)
    assert widget.result is not None, widget.status_text
    assert widget.results.export_buttons["dicom"].isEnabled()
    assert Path(default_export(widget.controller.shown, ".pdf")).parent == folder.parent
    written = widget.export_dicom(tmp_path / "results")
    assert written == tmp_path / "results" / layer.name
    report = pydicom.dcmread(written / "report.dcm")
    assert report.StudyInstanceUID == layer.metadata[SCAN_KEY].dicom.study_uid
    overlay = pydicom.dcmread(next((written / "overlay").iterdir()))
    assert overlay.FrameOfReferenceUID == layer.metadata[SCAN_KEY].dicom.frame_of_reference_uid
    assert widget.export_heatmap(tmp_path / "heat.nii.gz").exists()  # NIfTI export works too


def test_the_export_buttons_write_in_a_worker_and_report_errors(
    viewer, qtbot, tmp_path, phantom_volume, tiny_model, monkeypatch
):
    from qtpy.QtWidgets import QFileDialog

    folder = study(tmp_path / "study", phantom_volume)
    [layer] = viewer.open(str(folder), plugin=None)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN review")
    widget.set_model_path(tiny_model)
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=30_000)
    chosen = {"folder": str(tmp_path / "button")}
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: chosen["folder"])
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a: (str(tmp_path / "button.pdf"), "")
    )
    for kind in ("dicom", "report"):
        widget.results.export_buttons[kind].click()
        assert "Writing" in widget.status_text  # the button returned before the files exist
        qtbot.waitUntil(lambda: not widget.exports.workers, timeout=60_000)
        assert "saved to" in widget.status_text, widget.status_text
    assert (tmp_path / "button" / layer.name / "report.dcm").exists()
    assert (tmp_path / "button.pdf").read_bytes().startswith(b"%PDF")
    # a folder that cannot be written: one error on the widget, and the viewer goes on
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    chosen["folder"] = str(blocker)
    widget.results.export_buttons["dicom"].click()
    qtbot.waitUntil(lambda: not widget.exports.workers, timeout=60_000)
    assert widget.status_text.startswith("Error: "), widget.status_text
