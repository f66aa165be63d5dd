"""The review widget's result view: score panel, findings table, per-slice plot, exports.

Display only: it shows a result and reports the reader's clicks through callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from madgan_core.modes import score_mode
from madgan_core.outputs.slices import top_slices
from napari_madgan._guard import guarded
from napari_madgan.review._findings import FindingsTable
from napari_madgan.review._layers import ZMAP
from napari_madgan.review._panel import score_html
from napari_madgan.review._plot import SlicePlot

if TYPE_CHECKING:
    from madgan_core.scoring.findings import Finding
    from madgan_core.scoring.result import ScanScore


class ResultView(QWidget):
    """Args:
    on_slice: called with an axial index the reader picked (plot or slice list).
    on_finding: called with the finding whose row the reader clicked.
    """

    def __init__(self, on_slice: Callable[[int], None], on_finding: Callable[[Finding], None]):
        super().__init__()
        self._on_slice = on_slice
        self.score_label = QLabel("No result yet.")
        self.score_label.setWordWrap(True)
        self.score_label.setTextFormat(Qt.TextFormat.RichText)
        self.score_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        score_box = QGroupBox("Scan score")
        QVBoxLayout(score_box).addWidget(self.score_label)

        self.findings_table = FindingsTable(on_pick=on_finding)
        findings_box = QGroupBox("Findings: z-map regions (click to go to the peak)")
        QVBoxLayout(findings_box).addWidget(self.findings_table)

        self.plot = SlicePlot(on_pick=on_slice)
        self.slice_label = QLabel("")
        self.top_label = QLabel("Most anomalous slices")
        self.top_list = QListWidget()
        self.top_list.setMaximumHeight(140)
        self.top_list.itemClicked.connect(self._top_clicked)
        plot_box = QGroupBox("ℓ2 per axial slice (click to jump)")
        plot_layout = QVBoxLayout(plot_box)
        for widget in (self.plot, self.slice_label, self.top_label, self.top_list):
            plot_layout.addWidget(widget)

        self.export_buttons = {
            "heatmap": QPushButton("Export heatmap…"),
            "report": QPushButton("Export report…"),
            "dicom": QPushButton("Export DICOM…"),
        }
        self.export_buttons["dicom"].setToolTip(
            "Write the maps, the overlay and the report as new series of the scan's DICOM study"
        )
        exports = QHBoxLayout()
        for button in self.export_buttons.values():
            exports.addWidget(button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(score_box)
        layout.addWidget(findings_box)
        layout.addWidget(plot_box, 1)
        layout.addLayout(exports)
        self.set_exports_enabled(False)

    def set_exports_enabled(self, enabled: bool, dicom: bool = False) -> None:
        """Exports need a result with maps; the DICOM export also a DICOM input."""
        self.export_buttons["heatmap"].setEnabled(enabled)
        self.export_buttons["report"].setEnabled(enabled)
        self.export_buttons["dicom"].setEnabled(enabled and dicom)

    def show_scores(self, result: ScanScore, title: str | None, mode: str) -> None:
        """The score panel (headline first), the findings and the most anomalous slices."""
        html = score_html(result, title, mode)
        if result.findings is not None:
            html += f"<p><b>Findings:</b> {result.findings_text()}</p>"
        self.score_label.setText(html)
        self.findings_table.set_findings(result.findings or [])
        self._fill_top_slices(result, mode)

    def show_curve(self, result: ScanScore, current: int) -> None:
        self.plot.set_data(result.slice_indices, result.slice_losses, current)

    def show_slice(self, result: ScanScore, z: int) -> None:
        """Mark slice ``z`` on the plot and say its ℓ2."""
        self.plot.set_current(z)
        hits = np.flatnonzero(np.asarray(result.slice_indices) == z)
        if hits.size and np.isfinite(result.slice_losses[hits[0]]):
            self.slice_label.setText(f"Slice z = {z}: ℓ2 = {result.slice_losses[hits[0]]:.4g}")
        else:
            self.slice_label.setText(f"Slice z = {z}: not scored")

    def _fill_top_slices(self, result: ScanScore, mode: str) -> None:
        """List the most anomalous slices: by the z-map for a z-map headline score, else by ℓ2."""
        by_zmap = score_mode(mode).overlay == ZMAP and result.slice_zvolume is not None
        self.top_label.setText(
            "Most anomalous slices (z-map)" if by_zmap else "Most anomalous slices (ℓ2)"
        )
        self.top_list.clear()
        for z, label in top_slices(result, by_zmap=by_zmap):
            item = QListWidgetItem(f"z = {z}    {label}")
            item.setData(Qt.ItemDataRole.UserRole, z)
            self.top_list.addItem(item)

    @guarded
    def _top_clicked(self, item: QListWidgetItem) -> None:
        self._on_slice(int(item.data(Qt.ItemDataRole.UserRole)))
