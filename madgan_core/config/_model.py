"""The ``model`` section: generator and critic architecture."""

from __future__ import annotations

from dataclasses import dataclass

from madgan_core.errors import ConfigError

VARIANTS = ("none", "sa3", "sa7")
# Decoder upsampling: the paper's transposed convolutions, or nearest-neighbour resize + conv.
UPSAMPLING = ("deconv", "resize")


@dataclass
class ModelConfig:
    """Generator and critic architecture.

    Attributes:
        variant: ``none``, ``sa3`` or ``sa7`` self-attention modules.
        base_channels: Width of the first encoder layer (the paper's U-Net: 64).
        in_slices: Input slices (channels); the paper uses 3.
        out_slices: Predicted slices; the paper uses 3.
        gap: Slices skipped between the input and the predicted slices (0 in the paper).
        dropout: Decoder dropout probability (two layers).
        critic_channels: Width of the critic's first layer.
        skip_top: Keep the highest-resolution skip connection.
        upsample: ``deconv`` (the paper's transposed convolutions) or ``resize``
            (nearest-neighbour upsampling then a 3x3 convolution, free of checkerboard
            artefacts).
    """

    variant: str = "none"
    base_channels: int = 64
    in_slices: int = 3
    out_slices: int = 3
    gap: int = 0
    dropout: float = 0.5
    critic_channels: int = 64
    skip_top: bool = True
    upsample: str = "deconv"

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"model.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"model.upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.base_channels < 4 or self.critic_channels < 4:
            raise ConfigError("model.base_channels and critic_channels must be >= 4")
        if self.in_slices < 1 or self.out_slices < 1 or self.gap < 0:
            raise ConfigError("model.in_slices/out_slices must be >= 1 and gap >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")

    @property
    def window_span(self) -> int:
        """Slices one window touches: inputs, gap and targets."""
        return self.in_slices + self.gap + self.out_slices
