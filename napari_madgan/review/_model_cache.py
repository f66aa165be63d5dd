"""Keep loaded models between runs: keyed by file path, modification time and device."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from madgan_core.model.checkpoint import LoadedModel


class ModelCache:
    """A small thread-safe cache of loaded models (the newest ``size`` kept)."""

    def __init__(self, size: int = 2, loader: Callable[[str, str], LoadedModel] | None = None):
        self.size = size
        self.loader = loader or _load_model
        self._models: dict[tuple[str, float, str], LoadedModel] = {}
        self._lock = threading.Lock()
        self.loads = 0

    @staticmethod
    def key(path: str | os.PathLike, device: str) -> tuple[str, float, str]:
        p = Path(path).resolve()
        try:
            mtime = p.stat().st_mtime
        except OSError:
            mtime = -1.0
        return str(p), mtime, device

    def get(self, path: str | os.PathLike, device: str) -> LoadedModel:
        """The model at ``path`` on ``device``, loading it (torch import included) only when needed."""
        key = self.key(path, device)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                return model
            model = self.loader(key[0], device)
            self.loads += 1
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.pop(next(iter(self._models)))
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


def _load_model(path: str, device: str) -> LoadedModel:
    from madgan_core.model.checkpoint import load_model

    return load_model(path, device=device)
