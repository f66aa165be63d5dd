"""MADGAN generator: a 4-level U-Net that predicts the next slices from the previous ones."""

from __future__ import annotations

import torch
from torch import nn

from madgan_core.config import ModelConfig
from madgan_core.model.networks.attention import SelfAttention2d

# Layer names in order. Self-attention sits between a layer's (de)convolution and its
# BatchNorm. See docs/method.md for why these positions.
LAYERS = ("enc1", "enc2", "enc3", "enc4", "dec1", "dec2", "dec3", "dec4")
ATTENTION_LAYERS = {
    "none": (),
    # the three lowest-resolution layers (1/8 and 1/16 of the input): global context, cheap
    "sa3": ("enc3", "enc4", "dec1"),
    # every layer except the full-resolution output deconvolution
    "sa7": ("enc1", "enc2", "enc3", "enc4", "dec1", "dec2", "dec3"),
}


class _Down(nn.Module):
    """Conv k4 s2 p1 -> [self-attention] -> [BatchNorm] -> LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, norm: bool, attention: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)
        self.attn = SelfAttention2d(cout) if attention else nn.Identity()
        self.norm = nn.BatchNorm2d(cout) if norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.attn(self.conv(x))))


def upsampling_conv(cin: int, cout: int, mode: str, bias: bool) -> nn.Module:
    """A 2x upsampling layer: transposed conv k4 s2 p1, or nearest resize then conv k3 p1."""
    if mode == "resize":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)
        )
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)


class _Up(nn.Module):
    """Deconv (or resize-conv) -> [self-attention] -> BatchNorm -> ReLU -> [Dropout]."""

    def __init__(self, cin: int, cout: int, attention: bool, dropout: float, upsample: str):
        super().__init__()
        # Named deconv in both modes, so the paper models' checkpoint keys stay valid.
        self.deconv = upsampling_conv(cin, cout, upsample, bias=False)
        self.attn = SelfAttention2d(cout) if attention else nn.Identity()
        self.norm = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.attn(self.deconv(x)))))


class Generator(nn.Module):
    """U-Net generator of MADGAN (Han et al., 2021), pix2pix style.

    ::

        x (in, H, W)
        enc1  conv  in  ->  b    H/2   LReLU (no BN, as pix2pix's outermost layer) ----------.
        enc2  conv  b   -> 2b    H/4   BN LReLU ------------------------------------.      |
        enc3  conv 2b   -> 4b    H/8   BN LReLU ----------------------------.       |      |
        enc4  conv 4b   -> 8b    H/16  BN LReLU (bottleneck)                |       |      |
        dec1  deconv 8b -> 4b    H/8   BN ReLU Dropout   cat(dec1, enc3) <--'       |      |
        dec2  deconv 8b -> 2b    H/4   BN ReLU Dropout   cat(dec2, enc2) <----------'      |
        dec3  deconv 4b ->  b    H/2   BN ReLU           cat(dec3, enc1) <-----------------'  (skip_top)
        dec4  deconv 2b -> out   H     tanh
        y (out, H, W) in [-1, 1]

    All (de)convolutions are k4 s2 p1, so ``H`` and ``W`` must be multiples of 16. With
    ``upsample: resize`` each deconvolution is a nearest-neighbour 2x resize and a k3
    convolution instead, which removes the transposed convolutions' checkerboard artefacts.
    Self-attention modules (``variant``) sit between a layer's (de)convolution and its
    BatchNorm, at the layers listed in :data:`ATTENTION_LAYERS`.

    Args:
        cfg: the model configuration (variant, base_channels, in/out slices, dropout,
            skip_top, upsample).

    Example:
        >>> g = Generator(ModelConfig(base_channels=4))
        >>> g(torch.randn(1, 3, 32, 48)).shape
        torch.Size([1, 3, 32, 48])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        b = cfg.base_channels
        sa = set(ATTENTION_LAYERS[cfg.variant])
        self.skip_top = cfg.skip_top
        self.enc1 = _Down(cfg.in_slices, b, norm=False, attention="enc1" in sa)
        self.enc2 = _Down(b, 2 * b, norm=True, attention="enc2" in sa)
        self.enc3 = _Down(2 * b, 4 * b, norm=True, attention="enc3" in sa)
        self.enc4 = _Down(4 * b, 8 * b, norm=True, attention="enc4" in sa)
        up = cfg.upsample
        self.dec1 = _Up(8 * b, 4 * b, attention="dec1" in sa, dropout=cfg.dropout, upsample=up)
        self.dec2 = _Up(8 * b, 2 * b, attention="dec2" in sa, dropout=cfg.dropout, upsample=up)
        self.dec3 = _Up(4 * b, b, attention="dec3" in sa, dropout=0.0, upsample=up)
        self.dec4 = upsampling_conv(2 * b if cfg.skip_top else b, cfg.out_slices, up, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 16 or x.shape[-1] % 16:
            raise ValueError(
                f"input height and width must be multiples of 16, got {tuple(x.shape[-2:])}"
            )
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        d = self.dec1(e4)
        d = self.dec2(torch.cat([d, e3], 1))
        d = self.dec3(torch.cat([d, e2], 1))
        if self.skip_top:
            d = torch.cat([d, e1], 1)
        return torch.tanh(self.dec4(d))

    @property
    def attention_modules(self) -> list[SelfAttention2d]:
        return [m for m in self.modules() if isinstance(m, SelfAttention2d)]
