"""Shared test set-up: the tiny configuration and model files every kind of test uses.

napari's ``make_napari_viewer`` fixture comes from napari's pytest plugin.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings

# Fuzz tests draw the same examples on every run (CI is reproducible, and a failure found
# once stays found); HYPOTHESIS_PROFILE=explore draws new ones each run.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# napari reads its settings path when napari.settings is first imported: keep the tests'
# reader preferences and window state out of the user's napari settings.
os.environ.setdefault(
    "NAPARI_CONFIG", os.path.join(tempfile.mkdtemp(prefix="napari_madgan_tests_"), "settings.yaml")
)

# 32 x 32 slices and 4-channel networks: a model file of ~130 kB that scores in
# milliseconds, and a few training steps on the CPU in seconds.
TINY = {
    "preprocess": {"height": 32, "width": 32, "pixel_mm": 6.0},
    "model": {"base_channels": 4, "critic_channels": 4},
    "train": {
        "steps": 6,
        "batch_size": 4,
        "num_workers": 0,
        "device": "cpu",
        "precision": "fp32",
        "log_every": 1,
        "preview_every": 3,
        "checkpoint_every": 2,
        "keep_last": 2,
        "milestones": [],
    },
}


@pytest.fixture(autouse=True)
def _isolated_plugin_settings(tmp_path_factory, monkeypatch):
    """Keep the plugin's recent-models file out of the user's config dir."""
    monkeypatch.setenv(
        "NAPARI_MADGAN_CONFIG_DIR", str(tmp_path_factory.mktemp("napari_madgan_config"))
    )


@pytest.fixture(scope="session")
def tiny_settings() -> Callable[..., dict]:
    """``tiny_settings(model={"variant": "sa3"}, ...)``: the tiny configuration as a dict,
    with each section's given keys over it."""

    def make(**sections: dict) -> dict:
        data = copy.deepcopy(TINY)
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return data

    return make


@pytest.fixture(scope="session")
def tiny_config(tiny_settings) -> Callable[..., object]:
    """``tiny_config(train={"steps": 2}, ...)``: the tiny :class:`MadganConfig`."""
    from madgan_core.config import MadganConfig

    return lambda **sections: MadganConfig.from_dict(tiny_settings(**sections))


@pytest.fixture(scope="session")
def tiny_config_file(tiny_settings) -> Callable[..., Path]:
    """``tiny_config_file(path, train={...})``: the tiny configuration written as JSON."""

    def write(path: Path, **sections: dict) -> Path:
        path.write_text(json.dumps(tiny_settings(**sections)))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_model_file(tiny_config) -> Callable[..., Path]:
    """``tiny_model_file(path, seed=0, step=0, reference=None, model={...})``: a randomly
    initialised tiny generator saved as a model file (with a healthy reference, if given)."""

    def save(
        path: Path, seed: int = 0, step: int = 0, reference: dict | None = None, **sections: dict
    ) -> Path:
        import torch

        from madgan_core.model.checkpoint import make_checkpoint, save_checkpoint
        from madgan_core.model.networks import build_generator

        torch.manual_seed(seed)
        cfg = tiny_config(**sections)
        generator = build_generator(cfg.model).eval()
        record = make_checkpoint(
            cfg, step, generator, include_rng=False, healthy_reference=reference
        )
        return save_checkpoint(record, path)

    return save


REFERENCE = {
    "scores": {
        "mean": [float(v) for v in np.linspace(0.01, 0.05, 20)],
        "top10": [float(v) for v in np.linspace(0.02, 0.08, 20)],
    },
    "names": [f"control{i:02d}" for i in range(20)],
}


def reference_with_zstats(height: int, width: int) -> dict:
    """REFERENCE plus flat z-statistics and noise fits for both sequences, for slices of this size."""
    from madgan_core.config import ScoreConfig
    from madgan_core.model.zstats import NoiseFit, ZStats

    shape = (ScoreConfig().position_bins, height, width)
    stats = ZStats(
        mean=np.full(shape, np.log(0.01), np.float32),
        std=np.ones(shape, np.float32),
        n=20,
        noise_fits={"zmean": NoiseFit(0.0, 0.0), "zvolume": NoiseFit(0.0, 0.0)},
    )
    z_scores = {
        m: [float(v) for v in np.linspace(0.0, 2.0, 20)] for m in ("ztail", "zvolume", "zmean")
    }
    return {
        **REFERENCE,
        "scores": {**REFERENCE["scores"], **z_scores},
        "zstats": {"T1": stats.to_dict(), "T1c": stats.to_dict()},
    }


@pytest.fixture(scope="session")
def tiny_model_zstats(tmp_path_factory, tiny_model_file, tiny_config) -> Path:
    """A tiny model whose reference has z-statistics: z-map layer and z-map scores."""
    size = tiny_config().preprocess
    reference = reference_with_zstats(size.height, size.width)
    return tiny_model_file(
        tmp_path_factory.mktemp("model_z") / "model.pt", step=1, reference=reference
    )
