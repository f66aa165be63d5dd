"""BatchNorm folded into the (de)convolution before it, for inference.

At eval time a BatchNorm is a per-channel scale and shift, which the convolution that
feeds it can absorb: one pass over the feature map fewer per layer, the same output up
to rounding. Only a BatchNorm that directly follows its (de)convolution is folded; where
self-attention sits between them (``sa3``, ``sa7``) the layer is left as it is.

The training model and the saved checkpoint never change: :func:`fold_batchnorm` works
on a copy.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from madgan_core.runtime.device import to_channels_last


def fold_batchnorm(generator: nn.Module) -> nn.Module:
    """An eval-mode copy of ``generator`` with each foldable BatchNorm folded away.

    A layer is foldable when it has a ``norm`` BatchNorm2d, an identity ``attn`` and a
    ``conv`` (Conv2d) or ``deconv`` (ConvTranspose2d, or a resize followed by a Conv2d)
    right before it; its ``norm`` becomes an identity.

    Args:
        generator: the network (left untouched).

    Returns:
        The folded copy, in eval mode and channels_last, on the generator's device.

    Example:
        >>> from madgan_core.config import ModelConfig
        >>> from madgan_core.model.networks import build_generator
        >>> folded = fold_batchnorm(build_generator(ModelConfig(base_channels=4)))
        >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        False
    """
    folded = copy.deepcopy(generator).eval()
    for layer in folded.modules():
        norm = getattr(layer, "norm", None)
        if not isinstance(norm, nn.BatchNorm2d) or not _is_identity(layer, "attn"):
            continue
        for name in ("conv", "deconv"):
            conv = getattr(layer, name, None)
            if isinstance(conv, nn.Sequential) and isinstance(conv[-1], nn.Conv2d):
                conv = conv[-1]  # resize upsampling: the convolution after the resize
            if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
                _fold_into(conv, norm)
                layer.norm = nn.Identity()
                break
    return to_channels_last(folded)


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> None:
    """Replace ``conv``'s weight and bias (in the copy) by those of ``norm(conv(x))``."""
    conv.weight, conv.bias = fuse_conv_bn_weights(
        conv.weight,
        conv.bias,
        norm.running_mean,
        norm.running_var,
        norm.eps,
        norm.weight,
        norm.bias,
        transpose=isinstance(conv, nn.ConvTranspose2d),
    )


def _is_identity(layer: nn.Module, name: str) -> bool:
    return isinstance(getattr(layer, name, nn.Identity()), nn.Identity)
