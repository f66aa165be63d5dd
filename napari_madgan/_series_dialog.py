"""The "Choose a DICOM series" dialog: a list of the series found, readable ones selectable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from madgan_core.scans.dicom import SeriesInfo


class SeriesDialog(QDialog):
    """Lists each series (description, sequence, slices, spacing); greyed out if unreadable."""

    def __init__(self, series: Sequence[SeriesInfo], default: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Choose a DICOM series")
        self.list = QListWidget()
        self.list.setWordWrap(True)
        for info in series:
            item = QListWidgetItem(info.summary(uid=False))
            if not info.usable:
                item.setFlags(
                    item.flags() & ~(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                )
            item.setToolTip(info.summary())
            self.list.addItem(item)
        self.list.setCurrentRow(default)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"This folder holds {len(series)} series. Open which one?"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(720, 320)

    def chosen(self) -> int | None:
        row = self.list.currentRow()
        item = self.list.item(row) if row >= 0 else None
        if item is None or not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return None
        return row


def ask_series(series: Sequence[SeriesInfo], default: int) -> int | None:
    """Ask which series to open (modal); ``None`` if cancelled or no GUI is running."""
    app = QApplication.instance()
    if app is None:
        return None
    dialog = SeriesDialog(series, default, parent=app.activeWindow())
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.chosen()
