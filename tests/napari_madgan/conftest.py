"""Fixtures for the plugin's GUI tests: a small phantom scan and a tiny real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    from madgan_core.zmap import NoiseFit, ZStats

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


@pytest.fixture(scope="session")
def phantom_scan():
    """A metastasis phantom at 4 mm (small and quick to score)."""
    from madgan_core.io import Scan
    from madgan_core.phantom import make_subject

    volume, affine, _ = make_subject("mets", voxel_mm=4.0)
    return Scan.from_array(volume, affine)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_model_file) -> Path:
    """A tiny untrained model file with a 20-control healthy reference."""
    return tiny_model_file(
        tmp_path_factory.mktemp("model") / "model.pt", step=1, reference=REFERENCE
    )


@pytest.fixture(scope="session")
def tiny_model_no_reference(tmp_path_factory, tiny_model_file) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model_noref") / "model.pt", step=1)
