"""Per-slice ℓ2 plot: a matplotlib canvas with the current slice marked; clicks pick a slice."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure


class SlicePlot(FigureCanvasQTAgg):
    """ℓ2 per slice against the axial (RAS+ z) index.

    Args:
        on_pick: called with the axial index nearest a mouse click on the axes.
    """

    def __init__(self, on_pick: Callable[[int], None] | None = None):
        self.figure = Figure(figsize=(4, 2.2), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.on_pick = on_pick
        self.indices = np.zeros(0, dtype=int)
        self.losses = np.zeros(0)
        self.marker = None
        self.setMinimumHeight(160)
        self._style_empty()
        self.mpl_connect("button_press_event", self._clicked)

    def _style_empty(self) -> None:
        ax = self.axes
        ax.clear()
        ax.set_xlabel("axial slice (z)")
        ax.set_ylabel("ℓ2")
        ax.tick_params(labelsize=8)
        self.marker = ax.axvline(0, color="crimson", lw=1.2, visible=False)

    def set_data(self, indices: np.ndarray, losses: np.ndarray, current: int | None = None) -> None:
        self.indices = np.asarray(indices, dtype=int)
        self.losses = np.asarray(losses, dtype=float)
        self._style_empty()
        self.axes.plot(self.indices, self.losses, color="tab:blue", lw=1.2, marker=".", ms=3)
        if current is not None:
            self.set_current(current)
        self.draw_idle()

    def set_current(self, z: int) -> None:
        if self.marker is None:
            return
        self.marker.set_xdata([z, z])
        self.marker.set_visible(True)
        self.draw_idle()

    @property
    def current(self) -> float | None:
        if self.marker is None or not self.marker.get_visible():
            return None
        return float(self.marker.get_xdata()[0])

    def _clicked(self, event) -> None:
        if event.inaxes is not self.axes or event.xdata is None or not self.indices.size:
            return
        z = int(self.indices[np.argmin(np.abs(self.indices - event.xdata))])
        if self.on_pick is not None:
            self.on_pick(z)
