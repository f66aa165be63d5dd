"""The review widget's inputs, declared with magicgui: what to score, with what, and how to show it.

The form holds values only; :class:`~napari_madgan.review._widget.ReviewWidget`
connects it to the controller and the viewer.
"""

from __future__ import annotations

from collections.abc import Callable

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
)
from qtpy.QtCore import QLocale
from qtpy.QtGui import QDoubleValidator

from madgan_core.config import DEVICES, HEATMAP_RANGE, SEQUENCES
from madgan_core.errors import MadganError
from madgan_core.modes import AUTO, score_modes
from madgan_core.scans.covariates import SEXES, Covariates
from napari_madgan import _bundled
from napari_madgan.review._layers import HEATMAP, ZMAP

MODEL_FILTER = "MADGAN models (*.pt *.pth)"
DEVICE_LABELS = {"auto": "auto", "cpu": "CPU", "cuda": "GPU"}
AUTO_LABEL = "Auto: anomaly score when calibrated, else mean ℓ2"
USE_BUNDLED = "Use bundled model"
OVERLAYS = (("ℓ2 heatmap", HEATMAP), ("z-map vs healthy", ZMAP))
UNKNOWN = "unknown"
MAX_AGE = 130.0
COVARIATES_TIP = (
    "The person's age and sex: the percentiles are then made against healthy controls of "
    "that age and sex, where the model's controls have them. A DICOM series fills them in "
    "from its headers; left empty, the percentiles are the plain ones."
)


class ReviewForm(Container):
    """Scan layer, model, device, sequence, age and sex, headline score, overlay, heatmap
    range, Run/Cancel.

    A bundled model (see :mod:`madgan_core.model.bundled`) is shown by its display name
    and stands for its installed file; with the model field left empty the default
    bundled model, when installed, is the one used.

    Args:
        scan_layers: returns the names of the layers that can be scored.
        recent_models: returns the recently used model files, most recent first.
    """

    def __init__(
        self, scan_layers: Callable[[], list[str]], recent_models: Callable[[], list[str]]
    ):
        self.bundled = _bundled.default()
        self.scan_layer = ComboBox(label="Scan layer", choices=lambda _w: scan_layers())
        self.recent_model = ComboBox(
            label="Recent models",
            choices=lambda _w: [(self.model_label(m), m) for m in recent_models()],
            nullable=True,
            value=None,
        )
        self.model = FileEdit(mode="r", filter=MODEL_FILTER)
        self.use_bundled_button = PushButton(text=USE_BUNDLED)
        if self.bundled is None:
            self.model.line_edit.native.setPlaceholderText("model.pt")
            self.use_bundled_button.visible = False
        else:
            entry, path = self.bundled
            self.model.line_edit.native.setPlaceholderText(entry.display_name)
            self.use_bundled_button.tooltip = _bundled.tooltip(entry, path)
        self.model.line_edit.changed.connect(self._model_text_changed)
        self.model_row = Container(
            label="Model",
            layout="horizontal",
            labels=False,
            widgets=[self.model, self.use_bundled_button],
        )
        self.model_row.margins = (0, 0, 0, 0)
        self.model_row.native.layout().setStretch(0, 1)
        self.device = ComboBox(
            label="Device", choices=[(DEVICE_LABELS.get(d, d), d) for d in DEVICES]
        )
        self.sequence = ComboBox(label="Sequence", choices=list(SEQUENCES), value="T1")
        self.age = LineEdit(tooltip=COVARIATES_TIP)
        self.age.native.setPlaceholderText(UNKNOWN)
        validator = QDoubleValidator(0.0, MAX_AGE, 2, self.age.native)
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        validator.setLocale(QLocale.c())  # a point for decimals, whatever the locale
        self.age.native.setValidator(validator)
        self.sex = ComboBox(
            choices=[(UNKNOWN, "")] + [(s, s) for s in SEXES], value="", tooltip=COVARIATES_TIP
        )
        self.covariates_row = Container(
            label="Age (years)",
            layout="horizontal",
            labels=False,
            widgets=[self.age, Label(value="Sex"), self.sex],
        )
        self.covariates_row.margins = (0, 0, 0, 0)
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
                self.model_row,
                self.device,
                self.sequence,
                self.covariates_row,
                self.headline,
                self.overlay,
                self.heatmap_range,
                buttons,
                self.status,
            ]
        )
        self._model_text_changed()

    @property
    def model_text(self) -> str:
        """The model field as it reads (a path, or a bundled model's display name)."""
        return str(self.model.line_edit.value).strip()

    @property
    def model_path(self) -> str:
        """The model file as typed or chosen: a bundled model's file where the field shows
        its display name or is empty; "" when none."""
        text = self.model_text
        if self.bundled is not None:
            entry, path = self.bundled
            if text in ("", entry.display_name):
                return str(path)
        return text

    @model_path.setter
    def model_path(self, path: str) -> None:
        entry = _bundled.entry_of(path)
        self.model.line_edit.value = path if entry is None else entry.display_name
        self.model.line_edit.native.setCursorPosition(0)  # a long name shows its start

    @property
    def uses_bundled(self) -> bool:
        """Whether the model in use is the default bundled model."""
        return self.bundled is not None and self.model_path == str(self.bundled[1])

    def use_bundled(self) -> None:
        """Show the default bundled model in the model field (when installed)."""
        if self.bundled is not None:
            self.model_path = str(self.bundled[1])

    def model_label(self, path: str) -> str:
        """How a model file is listed: a bundled model by its display name."""
        entry = _bundled.entry_of(path)
        return path if entry is None else entry.display_name

    def _model_text_changed(self, _value=None) -> None:
        """The field's tooltip names the bundled model's file and intended use."""
        entry = _bundled.entry_of(self.model_path) if self.uses_bundled else None
        tip = "" if entry is None else _bundled.tooltip(entry, self.model_path)
        self.model.line_edit.tooltip = tip

    @property
    def covariate_texts(self) -> tuple[str, str]:
        """The age and sex fields as they read."""
        return str(self.age.value).strip(), str(self.sex.value or "")

    @covariate_texts.setter
    def covariate_texts(self, texts: tuple[str, str]) -> None:
        self.age.value, self.sex.value = texts

    @property
    def covariates(self) -> Covariates | None:
        """The age and sex entered; None when both are left empty.

        Raises:
            MadganError: the age is not a number of years.
        """
        age_text, sex = self.covariate_texts
        try:
            age = float(age_text) if age_text else None
        except ValueError:
            raise MadganError(f"age {age_text!r} is not a number of years") from None
        if age is not None and not 0.0 <= age <= MAX_AGE:
            raise MadganError(f"age {age_text} is not an age in years")
        if age is None and not sex:
            return None
        return Covariates(age=age, sex=sex or None)

    def set_covariates(self, covariates: Covariates | None) -> None:
        """Show ``covariates`` (empty fields for what is unknown)."""
        known = covariates or Covariates()
        self.covariate_texts = ("" if known.age is None else f"{known.age:g}", known.sex or "")

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
