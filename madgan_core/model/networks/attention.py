"""SAGAN self-attention (Zhang et al., 2019) computed with fused scaled-dot-product attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention2d(nn.Module):
    """Self-attention over all pixels of a feature map, added back with a learnable gain.

    ``y = x + gamma * Attention(Wq x, Wk x, Wv x)`` with 1x1 convolutions, query/key
    width ``C // 8`` and ``gamma`` initialised to 0, so a fresh module is the identity.

    The attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`,
    whose fused kernels (flash on CPU and CUDA) never build the ``N x N`` matrix.
    Those kernels need query, key and value of one width, so the ``C // 8`` query and
    key are zero-padded to ``C``; the dot products are unchanged and the softmax scale
    stays ``1 / sqrt(C // 8)``. (An unequal width falls back to the math kernel, which
    materialises ``N x N``: 24 GB at 128 x 88, batch 16.)

    Args:
        channels: channels ``C`` of the feature map.
        reduction: query/key width is ``max(1, C // reduction)``.

    Example:
        >>> sa = SelfAttention2d(32)
        >>> sa(torch.randn(2, 32, 8, 6)).shape
        torch.Size([2, 32, 8, 6])
    """

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.channels = channels
        self.qk_channels = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, self.qk_channels, 1)
        self.key = nn.Conv2d(channels, self.qk_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(self.qk_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # (B, C, H, W) -> (B, 1 head, N tokens, channels)
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)
        pad = c - self.qk_channels
        if pad > 0:
            q = F.pad(q, (0, pad))
            k = F.pad(k, (0, pad))
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma.to(out.dtype) * out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, qk_channels={self.qk_channels}"
