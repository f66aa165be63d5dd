"""Baselines scored in the same harness as MADGAN.

- ``copy``: the next slices predicted as copies of the last input slice
  (:func:`madgan_core.scoring.reconstruct.copy_predictor`).
- ``autoencoder``: a plain convolutional autoencoder that reconstructs each
  slice from itself, the single-image approach the paper argues against.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from madgan_core.config import MadganConfig
from madgan_core.errors import CheckpointError
from madgan_core.prep.slab import preprocess
from madgan_core.scans.atomic import atomic_path
from madgan_core.scans.files import load_scan
from madgan_core.scoring.reconstruct import Predictor

log = logging.getLogger(__name__)

BASELINE_FORMAT = "napari-madgan-autoencoder"


class SliceAutoencoder(nn.Module):
    """Single-slice convolutional autoencoder without skip connections.

    ``1 x H x W -> 4 strided convs -> bottleneck (H/16 x W/16) -> 4 transposed convs -> 1 x H x W``
    """

    def __init__(self, base_channels: int = 32):
        super().__init__()
        widths = [base_channels * m for m in (1, 2, 4, 8)]
        layers: list[nn.Module] = []
        previous = 1
        for width in widths:
            layers += [
                nn.Conv2d(previous, width, 4, 2, 1),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
            ]
            previous = width
        for width in reversed([1, *widths[:-1]]):
            last = width == 1
            layers.append(nn.ConvTranspose2d(previous, width, 4, 2, 1))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(width), nn.ReLU()]
            previous = width
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def autoencoder_predictor(model: SliceAutoencoder) -> Predictor:
    """Reconstruct every target slice from itself.

    A batch of consecutive windows shares its target slices (window ``j``'s target ``o``
    is window ``j + 1``'s target ``o - 1``), so each distinct slice is reconstructed
    once and the windows are read back from that run of slices.
    """

    def reconstruct(slices: torch.Tensor) -> torch.Tensor:
        n, h, w = slices.shape
        flat = slices.reshape(n, 1, h, w).contiguous(memory_format=torch.channels_last)
        return model(flat).reshape(n, h, w)

    def predict(_inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        b, c, h, w = targets.shape
        if b > 1 and c > 1 and torch.equal(targets[1:, :-1], targets[:-1, 1:]):
            run = torch.cat([targets[:, 0], targets[-1, 1:]])  # b + c - 1 slices
            return reconstruct(run).unfold(0, c, 1).permute(0, 3, 1, 2)
        return reconstruct(targets.reshape(b * c, h, w)).reshape(b, c, h, w)

    return predict


def load_training_slices(scan_paths: Sequence[Path], cfg: MadganConfig) -> np.ndarray:
    """All preprocessed slices of the given scans, stacked ``(N, H, W)``."""
    return np.concatenate([preprocess(load_scan(p), cfg.preprocess).slices for p in scan_paths])


def train_autoencoder(
    slices: np.ndarray,
    cfg: MadganConfig,
    steps: int,
    device: torch.device,
    precision: str = "fp32",
    base_channels: int = 32,
    batch_size: int = 32,
    progress: Callable[[int, int, float], None] | None = None,
) -> SliceAutoencoder:
    """Train the autoencoder with ℓ2 loss on random healthy slices."""
    from madgan_core.runtime.device import autocast_context

    generator = torch.Generator().manual_seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    model = SliceAutoencoder(base_channels).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, betas=(0.5, 0.999))
    data = torch.from_numpy(slices)
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(data), (batch_size,), generator=generator)
        x = data[index].unsqueeze(1).to(device).contiguous(memory_format=torch.channels_last)
        with autocast_context(device, precision):
            loss = torch.mean((model(x).float() - x) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(step, steps, loss.detach().item())
    return model.eval()


def save_autoencoder(model: SliceAutoencoder, base_channels: int, path: str | Path) -> Path:
    record = {
        "format": BASELINE_FORMAT,
        "format_version": 1,
        "base_channels": base_channels,
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(record, tmp)
    return Path(path)


def load_autoencoder(path: str | Path, device: torch.device) -> SliceAutoencoder:
    """Load a saved autoencoder without executing code from the file."""
    path = Path(path)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError("baseline file not found", path) from None
    except Exception as exc:
        raise CheckpointError(
            f"not a readable baseline file ({type(exc).__name__})", path
        ) from None
    if not isinstance(record, dict) or record.get("format") != BASELINE_FORMAT:
        raise CheckpointError("not a napari-madgan autoencoder baseline", path)
    model = SliceAutoencoder(int(record["base_channels"]))
    try:
        model.load_state_dict(record["state"])
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit the autoencoder ({exc})", path) from None
    return model.to(device).to(memory_format=torch.channels_last).eval()
