"""Packing a trained model into a file fit to ship inside the package.

The packed file is an ordinary model file (:mod:`madgan_core.model.checkpoint`) with
the generator's and critic's floating tensors stored as float16 (loading copies them
into the float32 networks), without optimizer, scaler or RNG states, and with a
plain-data ``recipe`` saying how it was made::

    {preset, cohort: {command, seed, anatomies, voxel_mm, counts}, steps, device,
     precision, commit, trained_at, packed_from_sha256}
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from madgan_core.errors import CheckpointError
from madgan_core.model.checkpoint import config_of, read_checkpoint
from madgan_core.scans.atomic import atomic_path

MAX_BYTES = 10_000_000  # 10 MB: the most a bundled model file may weigh
NETWORKS = ("generator", "critic")
RECIPE_KEYS = (
    "preset",
    "cohort",
    "steps",
    "device",
    "precision",
    "commit",
    "trained_at",
    "packed_from_sha256",
)
COHORT_KEYS = ("command", "seed", "anatomies", "voxel_mm", "counts")


class ModelTooLarge(CheckpointError):
    """The packed model would be larger than a bundled model may be."""


@dataclass(frozen=True)
class Packed:
    """What :func:`pack_model` wrote: the file, its size in bytes and its recipe."""

    path: Path
    size: int
    recipe: dict


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def half_state(state: Mapping[str, Any], what: str, path: str | Path) -> dict:
    """``state`` with its floating tensors as float16 (integer buffers such as BatchNorm's
    ``num_batches_tracked`` unchanged).

    Raises:
        CheckpointError: a finite weight does not fit float16 (it would become infinite).
    """
    halved = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            half = value.detach().cpu().to(torch.float16)
            if bool((torch.isfinite(value) & ~torch.isfinite(half)).any()):
                raise CheckpointError(f"{what} weight {key!r} overflows float16", path)
            value = half
        halved[key] = value
    return halved


def make_recipe(recipe: Mapping[str, Any] | None, record: dict, source_sha256: str) -> dict:
    """The stored recipe: every key of :data:`RECIPE_KEYS` (None where unknown), steps,
    device and precision defaulting to the model's, and the source file's digest.

    Raises:
        CheckpointError: the recipe is not plain JSON data.
    """
    given = dict(recipe or {})
    cohort = dict(given.get("cohort") or {})
    train = record["config"].get("train", {}) if isinstance(record["config"], dict) else {}
    out: dict[str, Any] = {key: given.get(key) for key in RECIPE_KEYS}
    out.update({k: v for k, v in given.items() if k not in out})
    out["cohort"] = {**{key: cohort.get(key) for key in COHORT_KEYS}, **cohort}
    out["steps"] = int(record["step"]) if out["steps"] is None else out["steps"]
    out["device"] = train.get("device") if out["device"] is None else out["device"]
    out["precision"] = train.get("precision") if out["precision"] is None else out["precision"]
    out["packed_from_sha256"] = source_sha256
    try:
        return json.loads(json.dumps(out))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the recipe must be plain JSON data: {exc}") from None


def pack_record(record: dict, recipe: dict, path: str | Path) -> dict:
    """The packed model dict of a checkpoint ``record`` read from ``path``."""
    packed = {
        key: copy.deepcopy(value)
        for key, value in record.items()
        if key not in (*NETWORKS, "optim_g", "optim_c", "scaler", "rng", "recipe")
    }
    for name in NETWORKS:
        state = record.get(name)
        packed[name] = None if state is None else half_state(state, name, path)
    packed.update(optim_g=None, optim_c=None, scaler=None, rng=None, recipe=recipe)
    return packed


def pack_model(
    src: str | Path,
    dst: str | Path,
    recipe: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Packed:
    """Write ``src`` (a trained ``model.pt``) to ``dst`` as a bundled model file.

    Args:
        src: the trained model file (read safely, never executed).
        dst: where the packed file goes (written atomically).
        recipe: how the model was made (:data:`RECIPE_KEYS`; ``cohort`` a dict of
            :data:`COHORT_KEYS`); missing keys are stored as None, and steps, device and
            precision default to the model's.
        max_bytes: the size limit (default :data:`MAX_BYTES`).

    Raises:
        CheckpointError: ``src`` is not a readable model, or the recipe is not plain data.
        ModelTooLarge: the packed file would exceed the limit (nothing is written).
    """
    src, dst = Path(src), Path(dst)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    record = read_checkpoint(src)
    config_of(record, src)  # a model whose configuration is invalid is not packed
    stored = make_recipe(recipe, record, sha256_of(src))
    if stored["trained_at"] is None:
        mtime = src.stat().st_mtime
        stored["trained_at"] = datetime.fromtimestamp(mtime, timezone.utc).isoformat(
            timespec="seconds"
        )
    buffer = io.BytesIO()
    torch.save(pack_record(record, stored, src), buffer)
    data = buffer.getvalue()
    if len(data) > limit:
        raise ModelTooLarge(
            f"packed model is {len(data) / 1e6:.1f} MB, above the {limit / 1e6:.1f} MB a "
            "bundled model may weigh; nothing was written",
            src,
        )
    with atomic_path(dst, suffix=".pt") as tmp:
        tmp.write_bytes(data)
    return Packed(dst, len(data), stored)
