"""Recent models, kept in a small JSON file under the user's config directory.

The directory is ``$NAPARI_MADGAN_CONFIG_DIR`` when set (tests use this), else
the platform's user config dir for ``napari-madgan``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

MAX_RECENT = 8
log = logging.getLogger(__name__)


def config_dir() -> Path:
    env = os.environ.get("NAPARI_MADGAN_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-madgan", appauthor=False))


def _settings_file() -> Path:
    return config_dir() / "settings.json"


def _read() -> dict:
    path = _settings_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable settings file %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict) -> None:
    from madgan_core.scans.atomic import atomic_write_text

    try:
        atomic_write_text(_settings_file(), json.dumps(data, indent=2))
    except OSError as exc:  # settings are a convenience; say so, do not fail the action
        log.warning("could not save settings to %s: %s", _settings_file(), exc)


def recent_models() -> list[str]:
    """Recently used model files, most recent first (missing files dropped)."""
    models = _read().get("recent_models", [])
    return [m for m in models if isinstance(m, str) and Path(m).is_file()][:MAX_RECENT]


def add_recent_model(path: str | os.PathLike) -> list[str]:
    """Put ``path`` first in the recent models list and return the list."""
    path = str(Path(path).resolve())
    data = _read()
    models = [path] + [m for m in data.get("recent_models", []) if m != path]
    data["recent_models"] = models[:MAX_RECENT]
    _write(data)
    return recent_models()


def reader_offer_declined() -> bool:
    """True once the user has said no to making this plugin napari's NIfTI/MGZ reader."""
    return bool(_read().get("reader_offer_declined", False))


def decline_reader_offer() -> None:
    data = _read()
    data["reader_offer_declined"] = True
    _write(data)
