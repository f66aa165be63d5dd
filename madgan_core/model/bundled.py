"""Models shipped inside the package, and how a model argument names one.

A bundled model is an ordinary model file (fp16 weights, see
:mod:`madgan_core.model.pack`) in ``madgan_core/model/bundled_models/``. Wherever a
model file is taken, its name (e.g. ``phantom-demo``) may stand for its path
(:func:`resolve_model`); a file of that name in the working directory wins over the
name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from madgan_core.errors import CheckpointError

FOLDER = "bundled_models"


@dataclass(frozen=True)
class BundledModel:
    """One entry of the registry.

    Attributes:
        name: what a command line calls it (``phantom-demo``).
        display_name: what a person reads (menus, ``Model:`` lines).
        filename: its file in ``bundled_models/``.
        intended_use: what it is for, and what not.
    """

    name: str
    display_name: str
    filename: str
    intended_use: str


PHANTOM_USE = (
    "trained on synthetic phantoms: for learning the tool, trying it on phantoms and as a "
    "starting point for fine-tuning; not for patients"
)

REGISTRY: dict[str, BundledModel] = {
    "phantom-demo": BundledModel(
        name="phantom-demo",
        display_name="Bundled: phantom demo, T1/T1c, 2 mm",
        filename="phantom-demo.pt",
        intended_use=PHANTOM_USE,
    ),
}
DEFAULT = "phantom-demo"


def bundled_folder() -> Path:
    """The installed folder of bundled model files (it may hold none)."""
    return Path(os.fspath(resources.files("madgan_core.model") / FOLDER))


def bundled_names() -> tuple[str, ...]:
    """The names of the registry, installed or not."""
    return tuple(REGISTRY)


def bundled_entry(name: str) -> BundledModel:
    """The registry entry of ``name``; an unknown name is a :class:`CheckpointError`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise CheckpointError(
            f"no bundled model is called {name!r} (bundled: {', '.join(REGISTRY)})"
        ) from None


def bundled_path(name: str) -> Path:
    """The installed file of the bundled model ``name``.

    Raises:
        CheckpointError: the name is unknown, or its file is not in this installation.
    """
    path = bundled_folder() / bundled_entry(name).filename
    if not path.is_file():
        raise CheckpointError(
            f"the bundled model {name!r} is not in this installation ({path} is missing); "
            "train a model (`madgan demo`) or pass a model file"
        )
    return path


def is_bundled(spec: str | Path | None) -> bool:
    """Whether ``spec`` names a bundled model (and no file of that name exists here)."""
    if spec is None:
        return False
    return str(spec) in REGISTRY and not Path(spec).exists()


def resolve_model(spec: str | Path) -> Path:
    """The model file ``spec`` means: a bundled model's installed file, or the path itself.

    Raises:
        CheckpointError: ``spec`` names a bundled model that is not installed.
    """
    return bundled_path(str(spec)) if is_bundled(spec) else Path(spec)


def default_model() -> Path | None:
    """The default bundled model's file, or None where this installation has none."""
    path = bundled_folder() / REGISTRY[DEFAULT].filename
    return path if path.is_file() else None


def bundled_entry_of(path: str | Path) -> BundledModel | None:
    """The registry entry whose installed file ``path`` is, or None for any other file."""
    try:
        target = Path(path).resolve()
    except OSError:
        return None
    folder = bundled_folder()
    for entry in REGISTRY.values():
        candidate = folder / entry.filename
        if candidate.is_file() and candidate.resolve() == target:
            return entry
    return None


def model_label(path: str | Path) -> str:
    """How a ``Model:`` line names a model file: its display name and path when bundled,
    else its path."""
    entry = bundled_entry_of(path)
    return f"{entry.display_name} ({path})" if entry is not None else str(path)


NO_MODEL = (
    "no model given, and this installation bundles none: train one (`madgan demo` trains "
    "one on phantoms, `madgan train` on your scans) or pass a model file"
)
MODEL_SUFFIXES = (".pt", ".pth")


def require_default_model() -> Path:
    """The default bundled model's file.

    Raises:
        CheckpointError: this installation has none (saying how to get a model).
    """
    path = default_model()
    if path is None:
        raise CheckpointError(NO_MODEL)
    return path


def looks_like_model(spec: str | Path) -> bool:
    """Whether a command-line argument means a model rather than a scan: a bundled name,
    a ``.pt``/``.pth`` file, or anything no scan reader claims."""
    from madgan_core.scans.files import is_scan_path

    if is_bundled(spec) or Path(spec).suffix.lower() in MODEL_SUFFIXES:
        return True
    return not is_scan_path(spec)
