"""A one-time offer to make napari-madgan napari's reader for the scan formats it reads.

napari's built-in reader also claims ``.nii`` and ``.nii.gz`` and fails on most
scans; the offer sets napari's own reader preference when the user agrees, and
remembers a refusal (:mod:`napari_madgan._reader_preference`).
"""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from madgan_core.scans.readers import format_names
from napari_madgan import _settings
from napari_madgan._guard import guarded
from napari_madgan._reader_preference import is_preferred_reader, prefer_this_reader

OFFER_TEXT = (
    "napari opens .nii and .nii.gz files with its built-in reader, which fails on "
    f"most scans, or asks each time. Open {format_names()} files with MADGAN? "
    "(You can change this later in Preferences → Plugins.)"
)


class ReaderOffer(QFrame):
    """Shown until the user accepts or declines; hidden when the preference is already set."""

    def __init__(self):
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        text = QLabel(OFFER_TEXT)
        text.setWordWrap(True)
        self.accept_btn = QPushButton("Open scans with MADGAN")
        self.decline_btn = QPushButton("No, thanks")
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_btn)
        buttons.addWidget(self.decline_btn)
        box = QVBoxLayout(self)
        box.addWidget(text)
        box.addLayout(buttons)
        self.accept_btn.clicked.connect(self._accept)
        self.decline_btn.clicked.connect(self._decline)
        self.setVisible(not is_preferred_reader() and not _settings.reader_offer_declined())

    @guarded
    def _accept(self) -> None:
        prefer_this_reader()
        self.setVisible(False)
        show_info(f"MADGAN: {format_names()} files now open with napari-madgan.")

    @guarded
    def _decline(self) -> None:
        _settings.decline_reader_offer()
        self.setVisible(False)
