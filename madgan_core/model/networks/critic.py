"""WGAN-GP critic, conditioned pix2pix-style on the input slices."""

from __future__ import annotations

import torch
from torch import nn

from madgan_core.config import ModelConfig


class Critic(nn.Module):
    """PatchGAN-style critic without normalisation (BatchNorm breaks the gradient penalty).

    ::

        cat(input slices, real-or-predicted slices)   (in + out, H, W)
        conv k4 s2  ->  c    H/2   LReLU(0.2)
        conv k4 s2  -> 2c    H/4   LReLU(0.2)
        conv k4 s2  -> 4c    H/8   LReLU(0.2)
        conv 1x1    ->  1    H/8   patch scores -> mean -> one score per sample

    Args:
        cfg: the model configuration (in/out slices, critic_channels).

    Example:
        >>> c = Critic(ModelConfig(critic_channels=4))
        >>> c(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)).shape
        torch.Size([2])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.critic_channels
        self.net = nn.Sequential(
            nn.Conv2d(cfg.in_slices + cfg.out_slices, c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * c, 1, 1),
        )

    def forward(self, condition: torch.Tensor, slices: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, slices], 1)).mean(dim=(1, 2, 3))
