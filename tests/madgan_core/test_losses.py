"""WGAN-GP losses: the swap schedule, the penalty on a hand-computed case, the ℓ1 weight."""

from __future__ import annotations

import pytest
import torch

from madgan_core.model.losses import (
    critic_loss,
    generator_loss,
    gradient_penalty,
    swap_labels,
)


def test_swap_schedule():
    assert [swap_labels(s, 3) for s in range(9)] == [False, False, True] * 3
    assert not any(swap_labels(s, 0) for s in range(10))
    assert all(swap_labels(s, 1) for s in range(5))
    assert [swap_labels(s, 2) for s in range(4)] == [False, True, False, True]


def test_critic_loss_and_swap():
    real = torch.tensor([2.0, 4.0])
    fake = torch.tensor([1.0, 1.0])
    assert critic_loss(real, fake).item() == pytest.approx(1.0 - 3.0)
    assert critic_loss(real, fake, swap=True).item() == pytest.approx(3.0 - 1.0)


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
def test_gradient_penalty_linear_critic(scale):
    torch.manual_seed(0)
    w = torch.randn(3 * 4 * 4) * scale

    def critic(condition, x):  # f(x) = w . x, gradient w everywhere
        return x.flatten(1) @ w + 0.0 * condition.sum()

    real, fake, cond = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = gradient_penalty(critic, cond, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_is_fp32_and_differentiable_under_autocast():
    lin = torch.nn.Linear(48, 1)

    def critic(condition, x):
        return lin(x.flatten(1)).squeeze(1)

    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real, real, fake)
    assert gp.dtype == torch.float32
    gp.backward()
    expected = 2 * (lin.weight.norm() - 1) * lin.weight / lin.weight.norm()
    torch.testing.assert_close(lin.weight.grad, expected, rtol=1e-4, atol=1e-6)


def test_l1_weight_scales_generator_loss():
    score = torch.tensor([0.5, -0.5, 1.0])
    pred, target = torch.zeros(3, 3, 4, 4), torch.full((3, 3, 4, 4), 0.2)
    total0, adv0, l1_0 = generator_loss(score, pred, target, adv_weight=1.0, l1_weight=0.0)
    total100, adv100, l1_100 = generator_loss(score, pred, target, adv_weight=1.0, l1_weight=100.0)
    assert adv0.item() == pytest.approx(-1.0 / 3.0)
    assert total0.item() == pytest.approx(adv0.item())
    assert l1_100.item() == pytest.approx(0.2)
    assert total100.item() == pytest.approx(adv100.item() + 100 * 0.2)
