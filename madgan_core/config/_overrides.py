"""``section.key=value`` overrides, as ``--set``, the training dialog and the scripts give them.

Each value is read as its field's type (the sections' type hints), so
``train.steps=500`` is an integer and ``preprocess.band=0,1`` a pair of numbers.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Iterable
from typing import Any

from madgan_core.config._config import MadganConfig
from madgan_core.errors import ConfigError

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null")
_NUMBERS = {int: "an integer", float: "a number"}


def parse_override(text: str) -> tuple[str, Any]:
    """Read one ``section.key=value`` override, typed by the configuration's field.

    The value is read as the field's type: ``true``/``false`` for flags, numbers,
    plain or quoted text, ``none`` for optional fields, and comma-separated or
    bracketed lists for tuples (``preprocess.band=0,1`` or ``preprocess.band=[0, 1]``).

    Args:
        text: e.g. ``"train.steps=500"``, or ``"sequence=T1c"`` for a top-level key.

    Returns:
        The dotted key and its value, e.g. ``("train.steps", 500)``.

    Raises:
        ConfigError: naming the key, for a malformed text, an unknown key or a
            value of the wrong type.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.steps=500")
    hint = _field_type(key)
    return key, _parse_value(raw.strip(), hint, key)


def parse_overrides(
    texts: Iterable[str], sections: Collection[str] | None = None
) -> dict[str, Any]:
    """Nested overrides (``{"train": {"steps": 500}}``) from ``section.key=value`` texts.

    Later texts win over earlier ones. ``sections`` limits which sections may be set
    (a command that scores with a trained model takes only ``score``).
    """
    flat: dict[str, Any] = {}
    for text in texts:
        key, value = parse_override(text)
        section = key.rpartition(".")[0]
        if sections is not None and section not in sections:
            allowed = ", ".join(f"{s}.*" for s in sections)
            raise ConfigError(f"--set {key}: only {allowed} settings apply here")
        flat[key] = value
    return nest(flat)


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"train.steps": 5}`` as ``{"train": {"steps": 5}}``, the form :meth:`MadganConfig.updated` takes."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *sections, name = key.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return nested


def format_override(key: str, value: Any) -> str:
    """The ``section.key=value`` text that :func:`parse_override` reads back as ``value``."""
    _field_type(key)
    return f"{key}={_format_value(value)}"


def _format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(_format_value(v) for v in value) or "[]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def config_value(cfg: MadganConfig, key: str) -> Any:
    """The value of a dotted key, e.g. ``config_value(cfg, "train.steps")``."""
    _field_type(key)
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _field_type(key: str) -> Any:
    """The type hint of a dotted key's field; unknown keys are errors that list the known ones."""
    cls: Any = MadganConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(cls)
        if part not in hints:
            where = ".".join(parts[:depth]) or "the configuration"
            known = ", ".join(hints)
            raise ConfigError(f"--set {key}: unknown key {part!r} in {where} (known: {known})")
        cls = hints[part]
        if depth < len(parts) - 1 and not dataclasses.is_dataclass(cls):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a section")
    if dataclasses.is_dataclass(cls):
        names = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"--set {key}: a section, not a key; give {key}.KEY ({names})")
    return cls


def _parse_value(raw: str, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in _NONE:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _parse_value(raw, inner, key)
    if origin is tuple:
        return _parse_tuple(raw, args, key)
    if hint is bool:
        if raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"--set {key}: expected true or false, got {raw!r}")
    if hint in _NUMBERS:
        try:
            return hint(raw)
        except ValueError:
            raise ConfigError(f"--set {key}: expected {_NUMBERS[hint]}, got {raw!r}") from None
    if hint is str:
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            return raw[1:-1]
        return raw
    raise ConfigError(f"--set {key}: cannot be set from the command line")  # pragma: no cover


def _parse_tuple(raw: str, args: tuple, key: str) -> tuple:
    text = raw.strip()
    if text[:1] in "[(" and text[-1:] in "])":
        text = text[1:-1]
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if args and args[-1] is Ellipsis:
        types_ = [args[0]] * len(items)
    else:
        if len(items) != len(args):
            raise ConfigError(
                f"--set {key}: expected {len(args)} comma-separated values, got {raw!r}"
            )
        types_ = list(args)
    return tuple(_parse_value(item, t, key) for item, t in zip(items, types_, strict=True))
