"""WGAN-GP losses with the ℓ1 reconstruction term of MADGAN.

Critic:    L_C = E[C(x, G(x))] - E[C(x, y)] + λ_gp · GP
Generator: L_G = adv_weight · (-E[C(x, G(x))]) + l1_weight · |G(x) - y|_1
with ``x`` the input slices and ``y`` the true next slices; ``l1_weight = 0`` is the
paper's "w/o ℓ1" ablation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def swap_labels(step: int, every: int) -> bool:
    """The paper's trick: swap the critic's real and synthetic inputs once every ``every`` steps.

    Steps count from 0; with ``every = 3`` steps 2, 5, 8, ... are swapped. ``every = 0``
    never swaps.
    """
    return every > 0 and step % every == every - 1


def critic_loss(
    score_real: torch.Tensor, score_fake: torch.Tensor, swap: bool = False
) -> torch.Tensor:
    """Wasserstein critic loss ``E[C(fake)] - E[C(real)]`` (real and fake exchanged when ``swap``)."""
    if swap:
        score_real, score_fake = score_fake, score_real
    return score_fake.float().mean() - score_real.float().mean()


def generator_adversarial_loss(score_fake: torch.Tensor) -> torch.Tensor:
    return -score_fake.float().mean()


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction.float() - target.float()).abs().mean()


def generator_loss(
    score_fake: torch.Tensor,
    prediction: torch.Tensor,
    target: torch.Tensor,
    adv_weight: float,
    l1_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Total generator loss and its two parts ``(total, adversarial, l1)``."""
    adv = generator_adversarial_loss(score_fake)
    l1 = l1_loss(prediction, target)
    return adv_weight * adv + l1_weight * l1, adv, l1


def gradient_penalty(
    critic: Critic,
    condition: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gulrajani et al.'s penalty ``E[(|∇_ŷ C(x, ŷ)|_2 - 1)^2]`` on random interpolates ŷ.

    Computed in fp32 with autocast disabled, since second-order gradients in bf16/fp16
    are too coarse. Only the predicted slices are interpolated; the condition is fixed.
    """
    device = real.device
    with torch.autocast(device_type=device.type, enabled=False):
        real = real.detach().float()
        fake = fake.detach().float()
        eps = torch.rand(real.shape[0], 1, 1, 1, device=device, generator=generator)
        mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        scores = critic(condition.detach().float(), mixed)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
        norm = grad.flatten(1).norm(2, dim=1)
        return ((norm - 1.0) ** 2).mean()
