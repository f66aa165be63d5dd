"""The training dialog's inputs, declared with magicgui: what to train on, where, and how.

The form shows the chosen preset's values with the chosen config file over them
(read through :func:`~napari_madgan.training._request.form_values`, never copied
here) and remembers them, so :meth:`TrainingForm.request` sends only what the user
then changed. :class:`~napari_madgan.training._widget.TrainingWidget` connects it
to the controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.application import use_app
from magicgui.types import FileDialogMode
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)

from madgan_core.config import DEVICES, PRECISIONS, PRESETS, VARIANTS
from madgan_core.errors import MadganError
from napari_madgan import _bundled
from napari_madgan.review._form import DEVICE_LABELS
from napari_madgan.training._request import FORM_KEYS, TrainRequest, changed_settings, form_values

MANIFEST_FILTER = "Manifest (*.csv);;All files (*)"
CONFIG_FILTER = "JSON (*.json);;All files (*)"
MODEL_FILTER = "MADGAN model (*.pt);;All files (*)"
# The "Start from" choices besides the bundled models (which are chosen by name).
SCRATCH = "<scratch>"
MODEL_FILE = "<file>"
START_TIP = (
    "Where training starts: from scratch, from a bundled model or from a trained model "
    "file, fine-tuned (e.g. on a site's healthy scans) with its preprocessing and "
    "architecture kept. Passed to madgan train as --init"
)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def _path_edit(mode: str, file_filter: str | None, placeholder: str, button: str) -> FileEdit:
    edit = FileEdit(mode=mode, filter=file_filter)
    edit.line_edit.native.setPlaceholderText(placeholder)
    edit.choose_btn.text = button
    return edit


def _row(label: str, *widgets) -> Container:
    """A labelled row of a path and its buttons; the path takes the spare width."""
    row = Container(label=label, layout="horizontal", labels=False, widgets=list(widgets))
    row.margins = (0, 0, 0, 0)
    row.native.layout().setStretch(0, 1)
    return row


class TrainingForm(Container):
    """Manifest or folder, output folder, where to start from (scratch, a bundled model or
    a model file), preset, the six settings, config file, Start/Stop/Resume and a status
    line.

    The settings fields are named as in :data:`~napari_madgan.training._request.FORM_KEYS`
    (``variant``, ``l1_weight``, ``steps``, ``batch_size``, ``device``, ``precision``).
    """

    def __init__(self):
        self.manifest = _path_edit(
            "r", MANIFEST_FILTER, "manifest.csv or a folder of healthy scans", "File…"
        )
        self.manifest_folder_button = PushButton(text="Folder…")
        self.out = _path_edit("d", None, "output folder", "Folder…")
        self.start_from = ComboBox(choices=self._start_choices())
        self.start_from.value = self._default_start()
        self.init = _path_edit("r", MODEL_FILTER, "trained model file", "File…")
        self.start_from.changed.connect(self._start_chosen)
        self._start_chosen()
        self.init.changed.connect(self._init_file_chosen)
        self.preset = ComboBox(label="Preset", choices=list(PRESETS), value="demo")
        self.variant = ComboBox(label="Variant", choices=list(VARIANTS))
        self.l1_weight = FloatSpinBox(label="ℓ1 weight", min=0.0, max=10_000.0, step=1.0)
        self.steps = SpinBox(label="Steps", min=1, max=100_000_000)
        self.batch_size = SpinBox(label="Batch size", min=1, max=4096)
        self.device = ComboBox(
            label="Device", choices=[(DEVICE_LABELS.get(d, d), d) for d in DEVICES]
        )
        self.precision = ComboBox(label="Precision", choices=list(PRECISIONS))
        self.config = _path_edit(
            "r", CONFIG_FILTER, "optional config JSON (overrides the preset)", "File…"
        )
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.resume_button = PushButton(text="Resume", enabled=False)
        self.status = Label(value="Not running.")
        self.status.native.setWordWrap(True)
        # the settings as last loaded from the preset and the config file
        self.shown: dict[str, Any] = {}
        # Added after construction, so magicgui gives the labels one common width.
        fields = Container()
        fields.margins = (0, 0, 0, 0)
        manifest_row = _row("Manifest", self.manifest, self.manifest_folder_button)
        manifest_row.tooltip = "A cohort manifest (CSV file), or a folder of healthy scans"
        start_row = _row("Start from", self.start_from, self.init)
        start_row.native.layout().setStretch(0, 0)
        start_row.native.layout().setStretch(1, 1)  # the file's path takes the spare width
        start_row.tooltip = START_TIP
        fields.extend(
            [
                manifest_row,
                _row("Output folder", self.out),
                start_row,
                self.preset,
                self.variant,
                self.l1_weight,
                self.steps,
                self.batch_size,
                self.device,
                self.precision,
                _row("Config", self.config),
            ]
        )
        buttons = Container(
            layout="horizontal",
            labels=False,
            widgets=[self.start_button, self.stop_button, self.resume_button],
        )
        buttons.margins = (0, 0, 0, 0)
        super().__init__(labels=False, widgets=[fields, buttons, self.status])

    # ---- paths (as typed; "" when empty) ----------------------------------------------------
    @property
    def manifest_path(self) -> str:
        return str(self.manifest.line_edit.value).strip()

    @property
    def out_path(self) -> str:
        return str(self.out.line_edit.value).strip()

    @property
    def init_path(self) -> str:
        """The model file to start from, as typed ("" when none)."""
        return str(self.init.line_edit.value).strip()

    @staticmethod
    def _start_choices() -> list[tuple[str, str]]:
        """From scratch, each installed bundled model (by name), a model file."""
        bundled = [(entry.display_name, entry.name) for entry, _ in _bundled.installed()]
        return [("From scratch", SCRATCH), *bundled, ("A model file", MODEL_FILE)]

    @staticmethod
    def _default_start() -> str:
        """The default bundled model where one is installed, else from scratch."""
        found = _bundled.default()
        return SCRATCH if found is None else found[0].name

    def _start_chosen(self, _choice: str | None = None) -> None:
        """The file field serves the "A model file" choice; a bundled model's tooltip
        names its file and intended use."""
        choice = self.start_from.value
        self.init.enabled = choice == MODEL_FILE
        tips = [_bundled.tooltip(e, p) for e, p in _bundled.installed() if e.name == choice]
        self.start_from.tooltip = tips[0] if tips else ""

    def _init_file_chosen(self, _value=None) -> None:
        """A model file picked or typed is the one to start from."""
        if self.init_path:
            self.start_from.value = MODEL_FILE

    def start_from_init(self) -> str:
        """What ``--init`` gets: "" (from scratch), a bundled model's name, or the model
        file made absolute.

        Raises:
            MadganError: the model file is not chosen or not there, or the bundled model
                is not installed.
        """
        from madgan_core.model.bundled import bundled_path

        choice = self.start_from.value
        if choice == SCRATCH:
            return ""
        if choice != MODEL_FILE:
            bundled_path(choice)  # installed (else a CheckpointError saying so)
            return choice
        init = _absolute(self.init_path)
        if not init:
            raise MadganError("choose the model file to start from (or start from scratch)")
        if not Path(init).is_file():
            raise MadganError(f"{init}: model to start from not found")
        return init

    @property
    def config_path(self) -> str:
        return str(self.config.line_edit.value).strip()

    def choose_manifest_folder(self) -> None:
        """Ask for a folder of healthy scans (the manifest's own button picks a CSV file)."""
        show_file_dialog = use_app().get_obj("show_file_dialog")
        folder = show_file_dialog(
            FileDialogMode.EXISTING_DIRECTORY,
            caption="Folder of healthy scans",
            start_path=self.manifest_path or None,
            parent=self.native,
        )
        if folder:
            self.manifest.value = folder

    # ---- settings ---------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """The six settings as they are now, by form field name."""
        return {name: getattr(self, name).value for name in FORM_KEYS}

    def load(self) -> None:
        """Show the preset's values with the config file's over them; edits start from here.

        Raises:
            ConfigError: the config file cannot be read or holds a bad value; the form
                keeps what it showed.
        """
        values = form_values(self.preset.value, _absolute(self.config_path))
        for name, value in values.items():
            getattr(self, name).value = value
        self.shown = self.settings()

    def request(self) -> TrainRequest:
        """The form as a frozen :class:`TrainRequest`, paths made absolute; only the
        settings changed since :meth:`load` are sent.

        Raises:
            MadganError: no manifest or output folder, or the manifest or the model to
                start from is not there.
        """
        if not self.manifest_path or not self.out_path:
            raise MadganError("choose a manifest (or folder of healthy scans) and an output folder")
        manifest = _absolute(self.manifest_path)
        if not Path(manifest).exists():
            raise MadganError(f"{manifest}: not found")
        init = self.start_from_init()
        return TrainRequest(
            manifest=manifest,
            out=_absolute(self.out_path),
            preset=self.preset.value,
            config=_absolute(self.config_path),
            settings=changed_settings(self.shown, self.settings()),
            steps=int(self.steps.value),
            init=init,
        )

    def set_running(self, running: bool) -> None:
        """Start and Resume while idle (Resume once a run has been started), Stop while running."""
        self.start_button.enabled = not running
        self.stop_button.enabled = running
        self.resume_button.enabled = not running
