"""The findings of a result: a table beside the plot, and a Points layer on the scan.

Each row is a connected region of the z-map (:mod:`madgan_core.scoring.findings`);
clicking it moves the slider to the region's peak slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from napari_madgan._geometry import display_index
from napari_madgan._layers import geometry_kwargs, in_viewer, real_layer

if TYPE_CHECKING:
    from madgan_core.scans.scan import Scan
    from madgan_core.scoring.findings import Finding

COLUMNS = (
    "#",
    "mL",
    "peak z",
    "mean z",
    "signal",
    "centre (R, A, S) mm",
    "slices",
    "MNI (x, y, z) mm",
)
FINDINGS_NAME = "findings"


def finding_cells(finding: Finding) -> tuple[str, ...]:
    x, y, z = (round(v) for v in finding.centre_mm)
    first, last = finding.slices
    return (
        str(finding.rank),
        f"{finding.volume_ml:.2f}",
        f"{finding.peak_z:.1f}",
        f"{finding.mean_z:.1f}",
        finding.signal or "",
        f"({x}, {y}, {z})",
        f"{first}–{last}",
        ""
        if finding.centre_mni is None
        else "({}, {}, {})".format(*map(round, finding.centre_mni)),
    )


class FindingsTable(QTableWidget):
    """One row per finding; ``on_pick(finding)`` when a row is clicked."""

    def __init__(self, on_pick: Callable[[Finding], None]):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setMaximumHeight(150)
        self.findings: list[Finding] = []
        self._on_pick = on_pick
        self.cellClicked.connect(self._clicked)

    def set_findings(self, findings: list[Finding]) -> None:
        self.findings = list(findings)
        self.setRowCount(len(self.findings))
        # MNI coordinates exist only for scans registered to the template; the signal
        # only where the outlines were trimmed by the residual's sign
        self.setColumnHidden(len(COLUMNS) - 1, all(f.centre_mni is None for f in self.findings))
        self.setColumnHidden(COLUMNS.index("signal"), all(f.signal is None for f in self.findings))
        for row, finding in enumerate(self.findings):
            for column, text in enumerate(finding_cells(finding)):
                self.setItem(row, column, QTableWidgetItem(text))

    def _clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.findings):
            self._on_pick(self.findings[row])


def findings_points(findings: list[Finding], name: str, scan: Scan) -> tuple[np.ndarray, dict]:
    """Points at each finding's peak voxel, on the scan's grid (its data indices and
    geometry, so the slider keeps one step per slice), sized by the region's extent."""
    peaks = display_index([f.peak_voxel for f in findings], scan.data.shape)
    # the equivalent sphere's diameter in mm, in in-plane voxels
    voxel_mm = float(np.mean(scan.zooms[:2]))
    sizes = [
        max(4.0, 2.0 * (3.0 * f.volume_ml * 1000.0 / (4.0 * np.pi)) ** (1 / 3)) for f in findings
    ]
    kwargs = {
        **geometry_kwargs(scan),
        "name": name,
        "size": np.asarray(sizes, dtype=float) / voxel_mm,
        # a thin circle the size of the region around its peak: the overlay inside stays visible
        "symbol": "disc",
        "face_color": "transparent",
        "border_color": "white",
        "border_width": 0.06,
        "border_width_is_relative": True,
        "text": {
            "string": [str(f.rank) for f in findings],
            "color": "white",
            "size": 10,
            "anchor": "upper_left",
        },
        "out_of_slice_display": True,
        "metadata": {"madgan_findings": [f.to_dict() for f in findings]},
    }
    return peaks, kwargs


def show_findings(viewer, findings: list[Finding], name: str, scan: Scan, previous=None):
    """Mark ``findings`` of ``scan`` with a Points layer, replacing ``previous`` (the layer
    made for the last result); returns the new layer, or None when there is nothing to mark."""
    if previous is not None and in_viewer(viewer, previous):
        viewer.layers.remove(previous)
    if not findings:
        return None
    points, kwargs = findings_points(findings, name, scan)
    return real_layer(viewer.add_points(points, **kwargs))
