"""The review widget on a tiny real model: layers, alignment, score text, slice sync, exports."""

from __future__ import annotations

import re

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt

from madgan_core.config import HEATMAP_RANGE
from madgan_core.outputs.wording import NO_REFERENCE
from napari_madgan._geometry import slice_world
from napari_madgan._layers import scan_layer_tuple
from napari_madgan.review import ReviewWidget
from napari_madgan.review._layers import (
    HEATMAP,
    HEATMAP_NAME,
    OUTLINES_NAME,
    RECONSTRUCTION_NAME,
    ZMAP_NAME,
)
from napari_madgan.review._widget import viewer_camera

SCAN = "mets"


@pytest.fixture
def review(make_napari_viewer, phantom_scan, tiny_model):
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(phantom_scan, name=SCAN)
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN review")
    widget.set_model_path(tiny_model)
    return viewer, widget


def _run(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=30_000)
    assert widget.result is not None, widget.status_text


def test_review_adds_aligned_heatmap_and_hidden_reconstruction(review, qtbot):
    viewer, widget = review
    assert widget.form.scan_layer.value == SCAN
    _run(qtbot, widget)
    scan_layer = viewer.layers[SCAN]
    heat = viewer.layers[f"{SCAN} {HEATMAP_NAME}"]
    recon = viewer.layers[f"{SCAN} {RECONSTRUCTION_NAME}"]
    for layer in (heat, recon):
        assert layer.data.shape == scan_layer.data.shape
        np.testing.assert_allclose(layer.scale, scan_layer.scale)
        np.testing.assert_allclose(layer.translate, scan_layer.translate)
        np.testing.assert_allclose(layer.affine.affine_matrix, scan_layer.affine.affine_matrix)
    assert heat.colormap.name == "jet"
    assert heat.contrast_limits == pytest.approx(HEATMAP_RANGE["T1"])
    assert heat.blending == "translucent" and 0.5 <= heat.opacity <= 0.6
    assert heat.visible and not recon.visible
    # unscored slices stay NaN (drawn transparent), scored ones carry finite errors
    result = widget.result
    z = int(result.slice_indices[len(result.slice_indices) // 2])
    assert np.isfinite(heat.data[z]).any()
    assert np.isnan(heat.data[0]).all()
    # the overlay is drawn on the foreground only; the core's heatmap (exported) is whole
    assert result.foreground.shape == result.heatmap.shape
    shown, whole = np.isfinite(heat.data[z]).sum(), np.isfinite(result.heatmap[:, :, z]).sum()
    assert 0 < shown < 0.8 * whole
    # result layers are not offered as scans
    assert list(widget.form.scan_layer.choices) == [SCAN]


def test_sequence_sets_heatmap_range(review, qtbot):
    viewer, widget = review
    _run(qtbot, widget)
    heat = viewer.layers[f"{SCAN} {HEATMAP_NAME}"]
    widget.form.sequence.value = "T1c"
    assert heat.contrast_limits == pytest.approx(HEATMAP_RANGE["T1c"])
    widget.form.range_high.value = 0.1
    assert heat.contrast_limits == pytest.approx((0.0, 0.1))


def test_score_panel_shows_percentiles(review, qtbot):
    _, widget = review
    _run(qtbot, widget)
    text = widget.results.score_label.text()
    assert "Mean ℓ2" in text and "Top-10 windows ℓ2" in text
    assert re.search(
        r"(\d+(st|nd|rd|th) percentile of|above all|below all) 20 healthy controls", text
    )
    assert any(band in text for band in ("within the healthy range", "unusual", "highly unusual"))
    assert widget.results.top_list.count() > 0


def test_score_panel_without_reference(
    make_napari_viewer, phantom_scan, tiny_model_no_reference, qtbot
):
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(phantom_scan, name=SCAN)
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    widget.set_model_path(tiny_model_no_reference)
    _run(qtbot, widget)
    assert NO_REFERENCE in widget.results.score_label.text()


def test_zmap_overlay_follows_the_headline_score(review, qtbot, tiny_model_zstats):
    viewer, widget = review
    widget.set_model_path(tiny_model_zstats)
    _run(qtbot, widget)
    heat = viewer.layers[f"{SCAN} {HEATMAP_NAME}"]
    zmap = viewer.layers[f"{SCAN} {ZMAP_NAME}"]
    # a calibrated model leads with the anomaly score, read on the z-map
    assert widget.form.headline.value == "auto" and widget.headline() == "anomaly"
    assert zmap.visible and not heat.visible
    assert widget.results.score_label.text().split("<li>")[1].startswith("<b>Anomaly score")
    assert "Findings:" in widget.results.score_label.text()
    assert zmap.colormap.name == "jet" and np.isfinite(zmap.data).any()
    result = widget.result
    assert np.isnan(result.zmap[~result.foreground]).all()
    assert np.isfinite(result.zmap[result.foreground]).any()
    widget.set_score_mode("mean")
    assert heat.visible and not zmap.visible
    assert widget.results.top_list.item(0).text().split()[-1] != "%"  # ranked by ℓ2
    assert widget.form.range_low.enabled and widget.form.range_high.enabled
    widget.set_score_mode("zvolume")
    assert zmap.visible and not heat.visible
    # the range boxes set the ℓ2 heatmap's limits, so they rest while the z-map shows
    assert not widget.form.range_low.enabled and "z-map" in widget.form.range_high.tooltip
    assert "(z-map)" in widget.results.top_label.text()
    assert re.fullmatch(r"z = \d+ +z>4: [\d.]+ %", widget.results.top_list.item(0).text())
    text = widget.results.score_label.text()
    assert "<b>z-map volume above 4" in text and "z-map mean" in text and "z-map tail" in text
    widget.set_overlay(HEATMAP)  # the reader can still switch back
    assert heat.visible and not zmap.visible and widget.form.range_low.enabled
    widget.set_score_mode("mean")
    assert heat.visible and not zmap.visible


def test_findings_are_listed_marked_and_jump_to_their_peak(
    review, qtbot, tiny_model, tiny_model_zstats
):
    viewer, widget = review
    widget.set_model_path(tiny_model_zstats)
    _run(qtbot, widget)
    findings = widget.result.findings
    assert findings, "the untrained tiny model's z-map has regions above 4"
    assert widget.results.findings_table.rowCount() == len(findings)
    assert widget.results.findings_table.item(0, 0).text() == "1"
    # each finding says whether the scan is brighter or darker than predicted there
    table = widget.results.findings_table
    signal_column = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    signal_column = signal_column.index("signal")
    assert not table.isColumnHidden(signal_column)
    assert {table.item(r, signal_column).text() for r in range(table.rowCount())} <= {
        "brighter",
        "darker",
    }
    assert f"{findings[0].signal} than predicted" in widget.results.score_label.text()
    # the exported report leads with the panel's headline and lists the findings
    from madgan_core.modes import score_mode
    from madgan_core.outputs.wording import REPORT_FINDINGS, report_lines

    lines = report_lines(widget.result, "tiny.pt", widget.headline())
    assert lines[0] == "Model: tiny.pt"
    assert lines[1].startswith(score_mode(widget.headline()).label)
    found = lines.index(next(line for line in lines if line.startswith("Findings: ")))
    assert lines[found].startswith(f"Findings: {len(findings)} region")
    listed = lines[found + 1 : found + 1 + min(len(findings), REPORT_FINDINGS)]
    assert listed[0].startswith(f"  1. {findings[0].volume_ml:.1f} mL at")
    assert all(
        f"{f.signal} than predicted" in line for f, line in zip(findings, listed, strict=False)
    )
    points = viewer.layers[f"{SCAN} findings"]
    assert len(points.data) == len(findings)
    # a point sits on its region's peak: the scan layer maps it back to the peak voxel
    scan_layer = viewer.layers[SCAN]
    peak_world = points.data_to_world(points.data[0])
    k, j, i = np.round(scan_layer.world_to_data(peak_world)).astype(int)
    x, y, z = findings[0].peak_voxel
    assert (i, scan_layer.data.shape[1] - 1 - j, k) == (x, y, z)
    # the marks keep the slider on the scan's slices: one step per slice, index = slice
    assert viewer.dims.nsteps[0] == scan_layer.data.shape[0]
    last = findings[-1]
    camera = viewer_camera(viewer)
    camera.center = (0.0, 500.0, 500.0)  # panned off the brain
    widget.results.findings_table.cellClicked.emit(len(findings) - 1, 0)
    assert widget.current_slice() == last.peak_voxel[2]
    # from the whole-slice view, the whole slice stays in view: the camera is reset
    picked = (camera.zoom, camera.center)
    viewer.reset_view()
    assert picked == (camera.zoom, camera.center)
    # zoomed in, the zoom is kept and the peak centred
    camera.zoom *= 4
    widget.results.findings_table.cellClicked.emit(0, 0)
    assert widget.current_slice() == findings[0].peak_voxel[2]
    x, y, z = findings[0].peak_voxel
    peak = scan_layer.data_to_world((z, scan_layer.data.shape[1] - 1 - y, x))
    np.testing.assert_allclose(camera.center[1:], np.asarray(peak)[1:], atol=1e-3)
    assert camera.zoom == pytest.approx(picked[0] * 4)
    # each finding is outlined, under its rank, on every slice it spans
    outlines = viewer.layers[f"{SCAN} {OUTLINES_NAME}"]
    assert outlines.contour >= 1 and outlines.data.shape == scan_layer.data.shape
    for finding in findings:
        x, y, z = finding.peak_voxel
        assert outlines.data[z, scan_layer.data.shape[1] - 1 - y, x] == finding.rank
        spanned = np.flatnonzero((outlines.data == finding.rank).any(axis=(1, 2)))
        assert (spanned[0], spanned[-1]) == finding.slices
    # running again updates the same layers instead of stacking new ones
    _run(qtbot, widget)
    assert sum(layer.name.endswith("findings") for layer in viewer.layers) == 1
    assert sum(layer.name.endswith(OUTLINES_NAME) for layer in viewer.layers) == 1
    # a run with an uncalibrated model leaves no z-map or outlines of the last run behind
    widget.set_model_path(tiny_model)
    _run(qtbot, widget)
    names = {layer.name for layer in viewer.layers}
    assert f"{SCAN} {HEATMAP_NAME}" in names
    assert f"{SCAN} {ZMAP_NAME}" not in names and f"{SCAN} {OUTLINES_NAME}" not in names


def test_zmap_overlay_without_zstats_keeps_the_heatmap(review, qtbot):
    viewer, widget = review
    _run(qtbot, widget)
    widget.set_score_mode("zmean")
    assert viewer.layers[f"{SCAN} {HEATMAP_NAME}"].visible
    assert f"{SCAN} {ZMAP_NAME}" not in viewer.layers
    assert "No z-map: calibrate the model" in widget.status_text
    assert "needs a model calibrated" in widget.results.score_label.text()


def test_slider_and_plot_stay_in_sync(review, qtbot):
    viewer, widget = review
    _run(qtbot, widget)
    scan = widget.scan
    z_values = [int(z) for z in widget.result.slice_indices]
    # slider -> plot marker
    z = z_values[2]
    viewer.dims.set_point(0, slice_world(z, scan.affine, scan.data.shape))
    assert widget.results.plot.current == z
    assert widget.current_slice() == z
    assert f"z = {z}" in widget.results.slice_label.text()
    # click on the plot -> slider
    target = z_values[-3]
    canvas = widget.results.plot
    canvas.draw()
    x_px, y_px = canvas.axes.transData.transform((target, np.nanmean(widget.result.slice_losses)))
    ratio = canvas.device_pixel_ratio or 1.0
    pos = QPoint(int(round(x_px / ratio)), int(round((canvas.figure.bbox.height - y_px) / ratio)))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=pos)
    assert widget.current_slice() == target
    assert viewer.layers[SCAN].world_to_data(viewer.dims.point)[0] == pytest.approx(target)
    assert widget.results.plot.current == target
    # the most anomalous slices list jumps too
    item = widget.results.top_list.item(0)
    widget.results.top_list.itemClicked.emit(item)
    assert widget.current_slice() == item.data(Qt.ItemDataRole.UserRole)


def test_model_is_cached_between_runs(review, qtbot):
    _, widget = review
    _run(qtbot, widget)
    _run(qtbot, widget)
    assert widget.controller.cache.loads == 1


def test_errors_are_shown(review, qtbot, tmp_path, monkeypatch):
    _, widget = review
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    widget.set_model_path(bad)
    widget.run()
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=30_000)
    assert shown and "bad.pt" in shown[0]
    assert widget.result is None


def test_exports(review, qtbot, tmp_path, phantom_scan):
    import nibabel as nib

    _, widget = review
    _run(qtbot, widget)
    nii = widget.export_heatmap(tmp_path / "heat.nii.gz")
    img = nib.load(str(nii))
    assert img.shape == phantom_scan.native_shape
    np.testing.assert_allclose(img.affine, phantom_scan.native_affine)
    report = widget.export_report(tmp_path / "report.png")
    assert report.stat().st_size > 10_000
    pdf = widget.export_report(tmp_path / "report.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_a_head_is_reviewed_with_its_extracted_brain_outlined(
    make_napari_viewer, qtbot, tiny_model
):
    from madgan_core.cohort.phantom import make_subject
    from madgan_core.cohort.phantom.head import wrap_in_head
    from madgan_core.scans.scan import Scan
    from napari_madgan.review._layers import BRAIN_NAME

    volume, _, info = make_subject("mets", 1, "T1c", seed=2, voxel_mm=4.0)
    head, affine, brain, _ = wrap_in_head(volume, {}, 4.0, info["scanner"]["noise_sigma"], seed=2)
    viewer = make_napari_viewer()
    data, kwargs, _ = scan_layer_tuple(Scan.from_array(head, affine), name="head")
    viewer.add_image(data, **kwargs)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="MADGAN review")
    widget.set_model_path(tiny_model)
    _run(qtbot, widget)
    outline = viewer.layers[f"head {BRAIN_NAME}"]
    scan_layer = viewer.layers["head"]
    assert outline.__class__.__name__ == "Labels" and outline.contour == 1
    assert outline.data.shape == scan_layer.data.shape
    np.testing.assert_allclose(outline.affine.affine_matrix, scan_layer.affine.affine_matrix)
    mask = widget.result.brain_mask
    assert 2 * (mask & brain).sum() / (mask.sum() + brain.sum()) > 0.85
    # the heatmap is drawn inside the brain only: skull and scalp were never scored
    heat = np.isfinite(widget.result.heatmap) & widget.result.foreground
    assert (heat & ~mask).sum() < 0.05 * heat.sum()
