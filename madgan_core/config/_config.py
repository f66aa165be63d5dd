"""The whole configuration: one section of each kind, checked, merged and saved as JSON."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madgan_core.config._model import ModelConfig
from madgan_core.config._preprocess import PreprocessConfig
from madgan_core.config._score import ScoreConfig
from madgan_core.config._train import TrainConfig
from madgan_core.errors import ConfigError

SEQUENCES = ("T1", "T1c")


@dataclass
class MadganConfig:
    """Everything a model needs, saved with it."""

    sequence: str = "T1"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)

    def validate(self) -> MadganConfig:
        if self.sequence not in SEQUENCES:
            raise ConfigError(f"sequence must be one of {SEQUENCES}, got {self.sequence!r}")
        self.preprocess.validate()
        self.model.validate()
        self.train.validate()
        self.score.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> MadganConfig:
        """Build a config from a (possibly partial) dict; unknown keys are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
        base = cls()
        return _merge(base, data, source).validate()

    def updated(self, overrides: dict[str, Any], source: str = "overrides") -> MadganConfig:
        """A copy with nested ``overrides`` applied, e.g. ``{"train": {"steps": 10}}``.

        ``source`` names the overrides in error messages (empty: name only the key).
        """
        return _merge(MadganConfig.from_dict(self.to_dict()), overrides, source).validate()

    def with_score_overrides(self, score: Mapping[str, Any] | None) -> MadganConfig:
        """A copy with ``score`` over the ``score`` section, e.g. ``{"top_windows": 5}``.

        The one way a trained model's score settings are changed for a run: ``madgan
        score``, ``calibrate`` and ``evaluate`` apply their ``--set score.KEY=VALUE`` so.
        Unknown keys and bad values are errors naming the key; without settings this
        configuration itself is returned.
        """
        if not score:
            return self
        return self.updated({"score": dict(score)}, source="")

    def save_json(self, path: str | Path) -> None:
        from madgan_core.scans.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load_json(cls, path: str | Path) -> MadganConfig:
        return cls.from_dict(read_json(Path(path)), source=str(path))


def read_json(path: Path) -> Any:
    """The JSON in ``path``; a missing or unreadable file is a ConfigError naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not a readable JSON config ({exc})", path) from None


def _merge(obj: Any, data: dict[str, Any], source: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(obj)}
    prefix = f"{source}: " if source else ""
    for key, value in data.items():
        where = f"{source}.{key}" if source else key
        if key not in names:
            raise ConfigError(
                f"{prefix}unknown key {key!r} in {type(obj).__name__} (known: {', '.join(names)})"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key!r} must be a mapping")
            _merge(current, value, where)
            continue
        setattr(obj, key, _coerce(current, value, where))
    return obj


def _coerce(current: Any, value: Any, where: str) -> Any:
    if isinstance(value, list):
        value = tuple(value)
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(current, int) and not isinstance(value, bool) and isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if (
        isinstance(current, float)
        and not isinstance(value, bool)
        and isinstance(value, int | float)
    ):
        return float(value)
    if isinstance(current, str) and isinstance(value, str):
        return value
    if isinstance(current, tuple) and isinstance(value, tuple):
        return value
    raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}")
