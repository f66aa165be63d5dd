"""What the training dialog asks of ``madgan train``; free of Qt, so it is tested without a display.

The form starts from the chosen preset with the chosen config file over it (both read
from :mod:`madgan_core.config`, never copied here). Only the settings the user then
changes are sent, as ``--set section.key=value``, so everything else comes from the
preset and the file. A run may start from a trained model (``--init``, fine-tuning; a
model file or a bundled model's name): then the model's preprocessing and architecture
are kept, and the preset gives the training settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madgan_core.config import config_value, format_override, preset

# The form's fields and the configuration keys they show.
FORM_KEYS = {
    "variant": "model.variant",
    "l1_weight": "train.l1_weight",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "device": "train.device",
    "precision": "train.precision",
}


def form_values(preset_name: str, config: str = "") -> dict[str, Any]:
    """The form's values for a preset, with the config file at ``config`` (if any) over it.

    Raises:
        ConfigError: the file cannot be read or holds a bad value (the message names it).
    """
    cfg = preset(preset_name, config or None)
    return {name: config_value(cfg, key) for name, key in FORM_KEYS.items()}


def changed_settings(shown: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the user changed: ``{config key: value}`` for each field whose
    ``current`` value differs from the one ``shown`` when the preset or file was loaded."""
    return {FORM_KEYS[name]: value for name, value in current.items() if shown.get(name) != value}


@dataclass(frozen=True)
class TrainRequest:
    """One ``madgan train`` run as the dialog asks for it.

    Attributes:
        manifest: the cohort manifest, or a folder of healthy scans.
        out: the run's folder.
        preset: the preset the run starts from.
        config: a JSON config file applied over the preset ("" for none).
        settings: what the user changed in the form, as ``{config key: value}``;
            these alone are sent, after the preset and the file.
        steps: the run's total steps, for the progress line.
        init: a trained model to start from, sent as ``--init``: a model file, or a
            bundled model's name (``phantom-demo``); "" to train from scratch.
    """

    manifest: str
    out: str
    preset: str = "demo"
    config: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 0
    init: str = ""

    def arguments(self, resume: bool = False) -> list[str]:
        """Arguments after the Python executable: ``-m madgan_core.cli train ...``."""
        args = ["-m", "madgan_core.cli", "train", "--manifest", self.manifest, "--out", self.out]
        args += ["--preset", self.preset]
        if self.init:
            args += ["--init", self.init]
        if self.config:
            args += ["--config", self.config]
        for key, value in self.settings.items():
            args += ["--set", format_override(key, value)]
        args.append("--no-progress")
        if resume:
            args.append("--resume")
        return args

    @property
    def model_path(self) -> Path:
        return Path(self.out) / "model.pt"
