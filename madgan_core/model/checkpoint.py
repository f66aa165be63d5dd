"""Versioned, atomic, safe checkpoints and the model bundle read by scoring.

A checkpoint is one plain dict saved with :func:`torch.save`::

    {format: "napari-madgan-checkpoint", format_version: 1, package_version, config,
     step, generator, critic, optim_g, optim_c, scaler, rng, healthy_reference,
     training_domain}

A run started from a trained model adds ``init: {path, sha256, step}`` (plain data;
readers that do not need it ignore it).

Every value is a tensor or a Python primitive/list/dict, so loading always uses
``torch.load(..., weights_only=True)``: a file that would run code when unpickled is
refused instead of executed. The refusal says what was found and why it is refused;
it never suggests loading the file another way.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from madgan_core import __version__
from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError, ConfigError
from madgan_core.model.reference import HealthyReference, MalformedReference
from madgan_core.scans.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = "napari-madgan-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "config", "step", "generator")
CKPT_PATTERN = re.compile(r"^ckpt_(\d{8,})\.pt$")


@dataclass
class LoadedModel:
    """A generator ready for scoring, with everything stored beside it.

    Attributes:
        generator: the network, in eval mode, on ``device``.
        config: the configuration it was trained with (preprocessing included).
        step: training steps behind the weights.
        path: the model file.
        reference: the healthy reference stored by calibration, if any.
        device: where the generator lives.
        training_domain: the training scans' profile summary (a dict), if stored.
    """

    generator: nn.Module
    config: MadganConfig
    step: int
    path: Path
    reference: HealthyReference | None
    device: torch.device
    training_domain: dict | None = None
    _folded: tuple[tuple, nn.Module] | None = field(default=None, init=False, repr=False)

    def inference_generator(self) -> nn.Module:
        """The network scoring runs: a copy of ``generator`` with its BatchNorms folded.

        Made once (:func:`madgan_core.model.networks.fold.fold_batchnorm`) and made again when
        the generator or any of its weights changes; a generator in training mode is
        returned as it is.
        """
        from madgan_core.model.networks.fold import fold_batchnorm

        if self.generator.training:
            return self.generator
        tensors = [*self.generator.parameters(), *self.generator.buffers()]
        key = (id(self.generator), *((id(t), t._version) for t in tensors))
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, fold_batchnorm(self.generator))
        return self._folded[1]

    def with_score(self, score: Mapping[str, Any] | None) -> LoadedModel:
        """This model scoring with ``score`` over its score settings, e.g.
        ``{"top_windows": 5}`` (:meth:`madgan_core.config.MadganConfig.with_score_overrides`
        merges and checks them); itself without any. The model file is left as it is."""
        config = self.config.with_score_overrides(score)
        return self if config is self.config else dataclasses.replace(self, config=config)


# ---------------------------------------------------------------- state helpers


def cpu_state(module_or_optim: Any) -> dict:
    """A state dict with every tensor moved to the CPU."""
    state = module_or_optim.state_dict()
    return _to_cpu(state)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def rng_state() -> dict:
    """torch, numpy, Python and CUDA RNG states as tensors and plain lists."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": [int(v) for v in np_state[1]],
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_version),
            "internal": [int(v) for v in py_internal],
            "gauss": py_gauss,
        },
        "cuda": [s.cpu() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available()
        else [],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            np.asarray(n["keys"], dtype=np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------- save / load


def make_checkpoint(
    cfg: MadganConfig,
    step: int,
    generator: nn.Module,
    critic: nn.Module | None = None,
    optim_g: torch.optim.Optimizer | None = None,
    optim_c: torch.optim.Optimizer | None = None,
    scaler: torch.amp.GradScaler | None = None,
    include_rng: bool = True,
    healthy_reference: dict | None = None,
    training_domain: dict | None = None,
) -> dict:
    """The checkpoint dict (pass unwrapped modules: no DDP/compile prefixes)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": cfg.to_dict(),
        "step": int(step),
        "generator": cpu_state(generator),
        "critic": cpu_state(critic) if critic is not None else None,
        "optim_g": cpu_state(optim_g) if optim_g is not None else None,
        "optim_c": cpu_state(optim_c) if optim_c is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rng_state() if include_rng else None,
        "healthy_reference": healthy_reference,
        "training_domain": training_domain,
    }


def save_checkpoint(record: dict, path: str | Path) -> Path:
    """Write a checkpoint dict atomically (temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(record, tmp)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint dict; every problem is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("checkpoint file not found", path)
    if path.is_dir():
        raise CheckpointError("is a directory, not a checkpoint file", path)
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt, truncated or unsafe files
        raise CheckpointError(_load_problem(exc), path) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"not a napari-madgan checkpoint (expected format {FORMAT!r})", path)
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise CheckpointError(f"checkpoint lacks {', '.join(missing)}", path)
    version = record["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {version} is newer than this napari-madgan "
            f"({__version__}) reads (<= {FORMAT_VERSION}); update napari-madgan",
            path,
        )
    if not isinstance(record["step"], int) or not isinstance(record["generator"], dict):
        raise CheckpointError("checkpoint has a malformed step or generator state", path)
    return record


# What torch's safe unpickler names when it meets something other than tensors and plain
# data. Only these parts of its message are shown: the rest advises loading the file
# unsafely, which a refusal must never suggest.
_UNSAFE_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")
_UNSAFE_OPCODE = re.compile(r"Unsupported operand (\d+)")


def _load_problem(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in words fit for a user."""
    text = str(exc)
    if "Weights only load failed" not in text and "weights_only" not in text:
        first = text.split("\n")[0][:300]
        return f"not a readable checkpoint (corrupt or truncated?): {type(exc).__name__}: {first}"
    unsafe_load = (
        "a model file holds only tensors and plain data, and loading this one could run "
        "code from it, so it was not loaded"
    )
    if found := _UNSAFE_GLOBAL.search(text):
        return f"refused: the file refers to the Python callable `{found.group(1)}`; {unsafe_load}"
    if found := _UNSAFE_OPCODE.search(text):
        return (
            f"refused: the file is a pickle with an instruction (opcode {found.group(1)}) that "
            f"safe loading does not accept; {unsafe_load}"
        )
    return f"refused: the file holds objects other than tensors and plain data; {unsafe_load}"


def config_of(record: dict, path: str | Path) -> MadganConfig:
    try:
        return MadganConfig.from_dict(record["config"], source=f"{path} (stored config)")
    except ConfigError as exc:
        raise CheckpointError(f"stored configuration is invalid: {exc}", path) from None


def load_state(module: nn.Module, state: dict | None, what: str, path: str | Path) -> None:
    """``load_state_dict(strict=True)`` with mismatches reported as :class:`CheckpointError`."""
    if state is None:
        raise CheckpointError(f"checkpoint has no {what} state", path)
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())[:400]
        raise CheckpointError(
            f"{what} weights do not match the stored configuration (architecture mismatch): {detail}",
            path,
        ) from None


def check_compatible(stored: MadganConfig, current: MadganConfig, path: str | Path) -> None:
    """Resuming needs the same model and preprocessing geometry."""
    if stored.model != current.model:
        raise CheckpointError(
            f"model configuration differs from the run's: stored {stored.model}, run {current.model}",
            path,
        )
    shape_s = (stored.preprocess.height, stored.preprocess.width)
    shape_c = (current.preprocess.height, current.preprocess.width)
    if shape_s != shape_c:
        raise CheckpointError(f"slice size differs: stored {shape_s}, run {shape_c}", path)


def load_model(path: str | Path, device: str | torch.device = "auto") -> LoadedModel:
    """Load a model file (or any checkpoint) for scoring: validated, strict, eval mode."""
    from madgan_core.model.networks import build_generator
    from madgan_core.runtime.device import resolve_device, to_channels_last

    path = Path(path)
    dev = resolve_device(device)
    record = read_checkpoint(path, map_location="cpu")
    cfg = config_of(record, path)
    generator = build_generator(cfg.model)
    load_state(generator, record["generator"], "generator", path)
    generator = to_channels_last(generator.to(dev)).eval()
    reference = reference_of(record, cfg, path)
    if reference is not None and reference.domain is None:
        log.info(
            "%s: calibrated before domain profiles were stored; scans are not checked "
            "against its controls' domain (re-run `madgan calibrate` to add the check)",
            path,
        )
    elif reference is not None and not reference.domain.get("contrast_mean"):
        log.info(
            "%s: calibrated before the tissue-contrast check; scans are not checked against "
            "its controls' intensities (re-run `madgan calibrate` to add the check)",
            path,
        )
    training = record.get("training_domain")
    return LoadedModel(generator, cfg, int(record["step"]), path, reference, dev, training)


def model_fingerprint(model: LoadedModel) -> dict[str, object]:
    """What identifies a model's results: its file, step and the file's size and time.

    Stored with resumable cohort results, so results of another model (or of an older
    state of the same file) are never mixed in.
    """
    path = Path(model.path)
    stat = path.stat() if path.exists() else None
    return {
        "model": str(path.resolve()),
        "step": int(model.step),
        "size": None if stat is None else stat.st_size,
        "mtime_ns": None if stat is None else stat.st_mtime_ns,
    }


def reference_of(record: dict, cfg: MadganConfig, path: str | Path) -> HealthyReference | None:
    """The checkpoint's healthy reference, parsed and checked against its configuration."""
    stored = record.get("healthy_reference")
    if stored is None:
        return None
    shape = (cfg.preprocess.height, cfg.preprocess.width)
    try:
        return HealthyReference.from_dict(stored, shape)
    except MalformedReference as exc:
        raise CheckpointError(
            f"the stored healthy reference is malformed ({exc}); calibrate the model again "
            "(`madgan calibrate`)",
            path,
        ) from None


def update_checkpoint(path: str | Path, **fields: Any) -> Path:
    """Replace top-level fields (e.g. ``healthy_reference``) and rewrite the file atomically."""
    protected = {"format", "format_version"}
    if protected & fields.keys():
        raise CheckpointError(
            f"cannot overwrite {', '.join(sorted(protected & fields.keys()))}", path
        )
    record = read_checkpoint(path)
    record.update(fields)
    return save_checkpoint(record, path)


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"ckpt_{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of ``ckpt_XXXXXXXX.pt`` files in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = CKPT_PATTERN.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune_checkpoints(
    directory: str | Path, keep_last: int, milestones: tuple[int, ...] = ()
) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints and the milestone steps, and the
    temporary files of checkpoint writes that a killed run left behind."""
    found = list_checkpoints(directory)
    keep = {s for s, _ in found[-keep_last:]} | set(milestones)
    removed = []
    for step, p in found:
        if step not in keep:
            p.unlink(missing_ok=True)
            removed.append(p)
    for stale in Path(directory).glob(".ckpt_*.tmp*"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed
