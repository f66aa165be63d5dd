"""Errors the user can act on: each names the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class MadganError(Exception):
    """Base class of every error shown to users as one clear message."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class ScanError(MadganError):
    """A scan cannot be read or is unusable (wrong shape, empty, NaN, ...)."""


class ConfigError(MadganError):
    """A configuration value or file is invalid."""


class CheckpointError(MadganError):
    """A checkpoint or model file is corrupt, foreign or mismatched."""


class ManifestError(MadganError):
    """A cohort manifest is malformed."""
