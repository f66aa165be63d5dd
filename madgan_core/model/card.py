"""A model's card: what a model file says about itself, as plain data and as text.

Read with :func:`madgan_core.model.checkpoint.read_checkpoint`, so nothing in the file
is ever executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from madgan_core.model.bundled import bundled_entry_of
from madgan_core.model.checkpoint import config_of, read_checkpoint, reference_of
from madgan_core.model.norms_card import controls_covariates, covariates_lines
from madgan_core.prep.domain_profile import ProfileSummary


def model_card(path: str | Path) -> dict[str, Any]:
    """The card of the model file at ``path`` (JSON-ready).

    Keys: ``path``, ``name``, ``display_name``, ``size_bytes``, ``package_version``,
    ``architecture``, ``training``, ``calibration`` (None when uncalibrated; its
    ``covariates`` are :func:`~madgan_core.model.norms_card.controls_covariates`),
    ``training_domain`` (None when not stored) and ``intended_use`` (bundled models).

    Raises:
        CheckpointError: the file is missing, not a model, or malformed.
    """
    path = Path(path)
    record = read_checkpoint(path)
    cfg = config_of(record, path)
    reference = reference_of(record, cfg, path)
    entry = bundled_entry_of(path)
    pre, model, train = cfg.preprocess, cfg.model, cfg.train
    recipe = record.get("recipe") if isinstance(record.get("recipe"), dict) else None
    calibration = None
    if reference is not None:
        sequences = sorted(set(reference.sequences))
        calibration = {
            "controls": reference.n,
            "per_sequence": {s: reference.n_for(s) for s in sequences},
            "sequences": sequences,
            "zmap_sequences": sorted(reference.zstats),
            "modes": sorted(reference.scores),
            "resolution": _resolution(reference.domain),
            "covariates": controls_covariates(reference),
        }
    domain = record.get("training_domain")
    training_domain = None
    if isinstance(domain, dict):
        training_domain = {
            "acquisitions": domain.get("n"),
            "spacing": _resolution(domain),
            "slice_mm": list(domain["slice_mm"]) if "slice_mm" in domain else None,
            "sequences": domain.get("sequences")
            or (calibration["sequences"] if calibration else None),
        }
    return {
        "path": str(path),
        "name": None if entry is None else entry.name,
        "display_name": None if entry is None else entry.display_name,
        "size_bytes": path.stat().st_size,
        "package_version": record.get("package_version"),
        "architecture": {
            "variant": model.variant,
            "base_channels": model.base_channels,
            "critic_channels": model.critic_channels,
            "slices_in_out": [model.in_slices, model.out_slices],
            "slice_size": [pre.height, pre.width],
            "pixel_mm": pre.pixel_mm,
            "slice_mm": pre.slice_mm,
            "weights_dtype": _weights_dtype(record["generator"]),
            "has_critic": record.get("critic") is not None,
        },
        "training": {
            "steps": int(record["step"]),
            "seed": train.seed,
            "device": train.device,
            "precision": train.precision,
            "preset": None if recipe is None else recipe.get("preset"),
            "init": record.get("init"),
            "recipe": recipe,
        },
        "calibration": calibration,
        "training_domain": training_domain,
        "intended_use": None if entry is None else entry.intended_use,
    }


def format_card(card: dict[str, Any]) -> str:
    """The card as lines of text for a terminal."""
    arch, train = card["architecture"], card["training"]
    lines = []
    if card["name"] is not None:
        lines.append(f"Model: {card['display_name']} (bundled as {card['name']!r})")
    lines.append(f"File: {card['path']} ({card['size_bytes'] / 1e6:.2f} MB)")
    spacing = "the scan's own" if arch["slice_mm"] is None else f"{arch['slice_mm']:g} mm"
    lines.append(
        f"Architecture: variant {arch['variant']}, {arch['base_channels']} base channels "
        f"(critic {arch['critic_channels']}{'' if arch['has_critic'] else ', not stored'}), "
        f"slices {arch['slice_size'][0]} x {arch['slice_size'][1]} at {arch['pixel_mm']:g} mm "
        f"pixels, slice spacing {spacing}, weights {arch['weights_dtype']}"
    )
    preset = f", preset {train['preset']}" if train["preset"] else ""
    lines.append(
        f"Training: {train['steps']} steps, seed {train['seed']}, device {train['device']}, "
        f"precision {train['precision']}{preset}"
    )
    if train["init"]:
        init = train["init"]
        lines.append(
            f"Started from: {init.get('path')} ({init.get('step')} steps, "
            f"sha256 {str(init.get('sha256'))[:12]})"
        )
    if train["recipe"]:
        recipe = {k: v for k, v in train["recipe"].items() if k != "evaluation"}
        lines.append("Recipe: " + _recipe_text(recipe))
        lines += evaluation_lines(train["recipe"].get("evaluation"))
    cal = card["calibration"]
    if cal is None:
        lines.append("Calibration: none (`madgan calibrate` stores healthy controls)")
    else:
        per = ", ".join(f"{s}: {n}" for s, n in cal["per_sequence"].items())
        zmaps = ", ".join(cal["zmap_sequences"]) or "none"
        resolution = f"; controls at {cal['resolution']}" if cal["resolution"] else ""
        lines.append(
            f"Calibration: {cal['controls']} controls{f' ({per})' if per else ''}; "
            f"z-maps for {zmaps}{resolution}"
        )
        lines += covariates_lines(cal["covariates"])
    dom = card["training_domain"]
    if dom is None:
        lines.append("Training domain: not recorded")
    else:
        sequences = ", ".join(dom["sequences"]) if dom["sequences"] else "not recorded"
        lines.append(
            f"Training domain: {dom['acquisitions']} training scans, slice spacing "
            f"{dom['spacing'] or 'not recorded'}, sequences {sequences}"
        )
    if card["intended_use"]:
        lines.append(f"Intended use: {card['intended_use']}")
    return "\n".join(lines)


def evaluation_lines(evaluation: object) -> list[str]:
    """A recipe's recorded evaluations, e.g. ``{"demo test split": {"auc": {...},
    "detected_at_1fp": {...}}}``: one line per figure."""
    if not isinstance(evaluation, dict):
        return []
    lines = []
    for where, figures in evaluation.items():
        if not isinstance(figures, dict):
            continue
        lines.append(f"Evaluated on {where}:")
        for label, value in (figures.get("auc") or {}).items():
            lines.append(f"  AUC {label}: {value:.3f}")
        for label, value in (figures.get("detected_at_1fp") or {}).items():
            lines.append(f"  detected at 1 FP per healthy scan, {label}: {100 * value:.0f} %")
    return lines


def _recipe_text(recipe: dict) -> str:
    parts = []
    for key, value in recipe.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
            if inner:
                parts.append(f"{key} ({inner})")
        elif value is not None:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def _resolution(domain: dict | None) -> str | None:
    """A stored profile summary's slice spacing in words, or None."""
    if not isinstance(domain, dict):
        return None
    try:
        return ProfileSummary.from_dict(domain).resolution
    except (KeyError, TypeError, ValueError):
        return None


def _weights_dtype(state: dict) -> str:
    """The dtype(s) of a state's floating tensors, e.g. ``float16``."""
    dtypes = sorted(
        {
            str(v.dtype).removeprefix("torch.")
            for v in state.values()
            if isinstance(v, torch.Tensor) and v.is_floating_point()
        }
    )
    return "/".join(dtypes) or "none"
