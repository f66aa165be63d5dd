"""Networks of MADGAN: the U-Net generator (with optional self-attention) and the critic."""

from __future__ import annotations

from torch import nn

from madgan_core.config import ModelConfig
from madgan_core.model.networks.attention import SelfAttention2d
from madgan_core.model.networks.critic import Critic
from madgan_core.model.networks.generator import ATTENTION_LAYERS, Generator

__all__ = [
    "ATTENTION_LAYERS",
    "Critic",
    "Generator",
    "SelfAttention2d",
    "build_critic",
    "build_generator",
    "count_parameters",
]


def build_generator(model_cfg: ModelConfig) -> Generator:
    """The generator a :class:`ModelConfig` describes (validated first)."""
    model_cfg.validate()
    return Generator(model_cfg)


def build_critic(model_cfg: ModelConfig) -> Critic:
    """The critic a :class:`ModelConfig` describes (validated first)."""
    model_cfg.validate()
    return Critic(model_cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
