"""bf16 inference must not move a scan's score: within 1% of fp32 on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from madgan_core.config import MadganConfig, ModelConfig, PreprocessConfig
from madgan_core.model.checkpoint import LoadedModel
from madgan_core.model.networks import build_generator
from madgan_core.runtime.device import to_channels_last
from madgan_core.scans.scan import Scan
from madgan_core.scoring.scorer import score_scan
from madgan_testing.brains import synthetic_brain


def tiny_model(variant: str) -> LoadedModel:
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(height=48, width=48, pixel_mm=2.0)
    cfg.model = ModelConfig(variant=variant, base_channels=8)
    cfg.validate()
    torch.manual_seed(0)
    generator = build_generator(cfg.model)
    with torch.no_grad():  # non-zero attention gains, so attention takes part
        for module in generator.attention_modules:
            module.gamma.fill_(0.5)
    generator = to_channels_last(generator).eval()
    return LoadedModel(generator, cfg, 0, Path("tiny.pt"), None, torch.device("cpu"))


@pytest.mark.parametrize("variant", ["none", "sa3"])
def test_bf16_score_within_one_percent_of_fp32(variant):
    model = tiny_model(variant)
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    fp32 = score_scan(model, scan, precision="fp32", maps=False)
    bf16 = score_scan(model, scan, precision="bf16", maps=False)
    for mode in ("mean", "top10"):
        assert bf16.scores[mode] == pytest.approx(fp32.scores[mode], rel=0.01)
    # Per-window losses agree too, not only their mean.
    np.testing.assert_allclose(bf16.window_losses, fp32.window_losses, rtol=0.03)
