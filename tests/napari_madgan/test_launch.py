"""The demo's last step: napari opened on a scan file, the review widget scoring it."""

from __future__ import annotations

from madgan_core.scans.files import save_like
from napari_madgan.launch import open_review


def test_open_review_scores_the_scan_file(
    make_napari_viewer, qtbot, tmp_path, phantom_scan, tiny_model
):
    path = save_like(phantom_scan.data, phantom_scan, tmp_path / "mets.nii.gz")
    viewer = make_napari_viewer()
    _, widget = open_review(tiny_model, path, sequence="T1c", viewer=viewer)
    qtbot.waitUntil(lambda: not widget.controller.running, timeout=60_000)
    assert widget.result is not None, widget.status_text
    assert widget.form.sequence.value == "T1c"
    assert any(layer.name.endswith("ℓ2 heatmap") for layer in viewer.layers)
    assert "mets" in widget.results.score_label.text()
