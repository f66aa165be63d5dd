"""The review widget's age and sex: filled from DICOM headers, scored into adjusted percentiles."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from madgan_core.scans.covariates import Covariates
from madgan_testing.controls import aged_reference
from napari_madgan._layers import scan_layer_tuple
from napari_madgan.review import ReviewWidget
from napari_madgan.review._widget import NOT_ADJUSTED

SCAN = "mets"


@pytest.fixture(scope="module")
def aged_model(tmp_path_factory, tiny_model_file):
    """A tiny model whose 30 T1 controls, aged 50 to 90, have ages and sexes."""
    return tiny_model_file(
        tmp_path_factory.mktemp("aged") / "model.pt", step=1, reference=aged_reference(30).to_dict()
    )


@pytest.fixture
def review(make_napari_viewer, phantom_scan, aged_model):
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(phantom_scan, name=SCAN)
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN review")
    widget.set_model_path(aged_model)
    return viewer, widget


def _panel(qtbot, widget) -> str:
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=30_000)
    assert widget.result is not None, widget.status_text
    return widget.results.score_label.text()


def test_age_and_sex_give_the_adjusted_reading_and_clearing_them_the_plain_one(review, qtbot):
    _, widget = review
    assert widget.form.covariate_texts == ("", "")
    plain = _panel(qtbot, widget)
    assert "adjusted" not in plain and "30 healthy controls" in plain
    assert widget.controller.shown.request.covariates is None

    widget.set_covariates(74, "F")
    assert widget.form.covariate_texts == ("74", "F")
    adjusted = _panel(qtbot, widget)
    assert "adjusted for age 74 and sex F (n = " in adjusted
    assert widget.result.covariates == Covariates(74.0, "F")

    widget.set_covariates()
    assert _panel(qtbot, widget) == plain


def test_an_age_outside_the_controls_shows_the_fallback_note(review, qtbot):
    _, widget = review
    widget.set_covariates(30)
    text = _panel(qtbot, widget)
    assert "(not adjusted for age: 30 is outside the controls' ages (50-90))" in text
    assert "adjusted for age 30" not in text


def test_a_bad_age_is_one_clear_error(review):
    _, widget = review
    widget.form.age.value = "seventy"
    widget.run()
    assert not widget.controller.running
    assert widget.status_text == "Error: age 'seventy' is not a number of years"


def test_a_model_without_ages_says_the_percentiles_are_not_adjusted(review, qtbot, tiny_model):
    _, widget = review
    widget.set_model_path(tiny_model)
    widget.set_covariates(74, "F")
    text = _panel(qtbot, widget)
    assert "adjusted" not in text and "20 healthy controls" in text
    assert NOT_ADJUSTED in widget.status_text


def test_a_dicom_series_fills_in_age_and_sex_and_each_layer_keeps_its_own(review, phantom_scan):
    viewer, widget = review
    series = SimpleNamespace(name="T1 MPRAGE", headers=[{"PatientAge": "074Y", "PatientSex": "F"}])
    scan = dataclasses.replace(phantom_scan, dicom=series)
    data, kwargs, _ = scan_layer_tuple(scan, name="dicom")
    viewer.add_image(data, **kwargs)
    widget.set_scan_layer("dicom")
    assert widget.form.covariate_texts == ("74", "F")
    assert widget.form.covariates == Covariates(74.0, "F")

    widget.set_scan_layer(SCAN)  # a NIfTI scan knows no age
    assert widget.form.covariate_texts == ("", "")
    widget.set_covariates(61.5, "M")
    widget.set_scan_layer("dicom")
    assert widget.form.covariate_texts == ("74", "F")
    widget.form.age.value = "75"
    widget.set_scan_layer(SCAN)
    assert widget.form.covariate_texts == ("61.5", "M")
    widget.set_scan_layer("dicom")
    assert widget.form.covariate_texts == ("75", "F")
