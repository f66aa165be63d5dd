"""The review widget's inputs, declared with magicgui: what to score, with what, and how to show it.

The form holds values only; :class:`~napari_madgan.review._widget.ReviewWidget`
connects it to the controller and the viewer.
"""

from __future__ import annotations

from collections.abc import Callable

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton

from madgan_core.config import DEVICES, HEATMAP_RANGE, SEQUENCES
from madgan_core.modes import AUTO, score_modes
from napari_madgan.review._layers import HEATMAP, ZMAP

MODEL_FILTER = "MADGAN models (*.pt *.pth)"
DEVICE_LABELS = {"auto": "auto", "cpu": "CPU", "cuda": "GPU"}
AUTO_LABEL = "Auto: anomaly score when calibrated, else mean ℓ2"
OVERLAYS = (("ℓ2 heatmap", HEATMAP), ("z-map vs healthy", ZMAP))


class ReviewForm(Container):
    """Scan layer, model, device, sequence, headline score, overlay, heatmap range, Run/Cancel.

    Args:
        scan_layers: returns the names of the layers that can be scored.
        recent_models: returns the recently used model files, most recent first.
    """

    def __init__(
        self, scan_layers: Callable[[], list[str]], recent_models: Callable[[], list[str]]
    ):
        self.scan_layer = ComboBox(label="Scan layer", choices=lambda _w: scan_layers())
        self.recent_model = ComboBox(
            label="Recent models", choices=lambda _w: recent_models(), nullable=True, value=None
        )
        self.model = FileEdit(label="Model", mode="r", filter=MODEL_FILTER)
        self.model.line_edit.native.setPlaceholderText("model.pt")
        self.device = ComboBox(
            label="Device", choices=[(DEVICE_LABELS.get(d, d), d) for d in DEVICES]
        )
        self.sequence = ComboBox(label="Sequence", choices=list(SEQUENCES), value="T1")
        self.headline = ComboBox(
            label="Headline score",
            choices=[(AUTO_LABEL, AUTO)] + [(mode.label, mode.name) for mode in score_modes()],
        )
        self.overlay = ComboBox(label="Overlay", choices=list(OVERLAYS))
        low, high = HEATMAP_RANGE["T1"]
        self.range_low = FloatSpinBox(value=low, min=0.0, max=10.0, step=0.01)
        self.range_high = FloatSpinBox(value=high, min=0.0, max=10.0, step=0.01)
        for box in (self.range_low, self.range_high):
            box.native.setDecimals(4)
        self.heatmap_range = Container(
            label="Heatmap range",
            layout="horizontal",
            labels=False,
            widgets=[self.range_low, Label(value="to"), self.range_high],
        )
        self.heatmap_range.margins = (0, 0, 0, 0)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        buttons = Container(
            layout="horizontal", labels=False, widgets=[self.run_button, self.cancel_button]
        )
        buttons.margins = (0, 0, 0, 0)
        self.status = Label(value="Choose a scan layer and a model, then Run.")
        self.status.native.setWordWrap(True)
        self.status.native.setMinimumHeight(2 * self.status.native.fontMetrics().lineSpacing())
        super().__init__(
            widgets=[
                self.scan_layer,
                self.recent_model,
                self.model,
                self.device,
                self.sequence,
                self.headline,
                self.overlay,
                self.heatmap_range,
                buttons,
                self.status,
            ]
        )

    @property
    def model_path(self) -> str:
        """The model file as typed or chosen ("" when none)."""
        return str(self.model.line_edit.value).strip()

    @model_path.setter
    def model_path(self, path: str) -> None:
        self.model.line_edit.value = path

    @property
    def range_values(self) -> tuple[float, float]:
        return float(self.range_low.value), float(self.range_high.value)

    def set_range(self, limits: tuple[float, float]) -> None:
        """Show ``limits`` without emitting change events."""
        for box, value in zip((self.range_low, self.range_high), limits, strict=True):
            with box.changed.blocked():
                box.value = float(value)

    def set_busy(self, busy: bool) -> None:
        self.run_button.enabled = not busy
        self.cancel_button.enabled = busy
