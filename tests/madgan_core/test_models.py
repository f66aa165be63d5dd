"""Generator, self-attention and critic: shapes per variant, identity at gamma 0, SDPA vs naive."""

from __future__ import annotations

import pytest
import torch

from madgan_core.config import ModelConfig
from madgan_core.errors import ConfigError
from madgan_core.model.networks import (
    ATTENTION_LAYERS,
    SelfAttention2d,
    build_critic,
    build_generator,
)

VARIANT_COUNTS = {"none": 0, "sa3": 3, "sa7": 7}


@pytest.mark.parametrize("variant", ["none", "sa3", "sa7"])
def test_generator_paper_size(variant):
    torch.manual_seed(0)
    g = build_generator(ModelConfig(variant=variant, base_channels=4)).eval()
    assert len(g.attention_modules) == VARIANT_COUNTS[variant] == len(ATTENTION_LAYERS[variant])
    with torch.no_grad():
        y = g(torch.randn(1, 3, 256, 176))
    assert y.shape == (1, 3, 256, 176)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("variant", ["none", "sa3", "sa7"])
@pytest.mark.parametrize("skip_top", [True, False])
@pytest.mark.parametrize("upsample", ["deconv", "resize"])
@pytest.mark.parametrize("shape", [(32, 32), (64, 48)])
def test_generator_small_sizes(variant, skip_top, upsample, shape):
    cfg = ModelConfig(
        variant=variant, base_channels=4, skip_top=skip_top, upsample=upsample, out_slices=2
    )
    g = build_generator(cfg)
    y = g(torch.randn(2, 3, *shape))
    assert y.shape == (2, 2, *shape)
    y.mean().backward()
    assert all(p.grad is not None for n, p in g.named_parameters() if "gamma" not in n)


def _checkerboard(upsample: str) -> float:
    """Period-2 energy of the output's interior for a constant input, relative to its spread."""
    torch.manual_seed(0)
    g = build_generator(ModelConfig(base_channels=8, upsample=upsample)).eval()
    with torch.no_grad():
        y = g(torch.full((1, 3, 64, 64), 0.3))[0, :, 16:48, 16:48]
    # A constant input has a constant interior unless the upsampling imprints a 2x2 pattern.
    phases = torch.stack([y[:, i::2, j::2].mean(dim=(1, 2)) for i in (0, 1) for j in (0, 1)])
    return float(phases.std(dim=0).max())


def test_resize_upsampling_has_no_checkerboard():
    assert _checkerboard("deconv") > 1e-3  # the pattern the resize option removes
    assert _checkerboard("resize") < 1e-4  # float rounding only


def test_unknown_upsampling_is_a_config_error():
    with pytest.raises(ConfigError, match="model.upsample"):
        ModelConfig(upsample="bilinear").validate()


def test_generator_rejects_sizes_not_multiple_of_16():
    g = build_generator(ModelConfig(base_channels=4))
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.randn(1, 3, 40, 32))


def test_decoder_has_two_dropout_layers():
    g = build_generator(ModelConfig(base_channels=4))
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 2
    g0 = build_generator(ModelConfig(base_channels=4, dropout=0.0))
    assert sum(isinstance(m, torch.nn.Dropout) for m in g0.modules()) == 0


def test_attention_gamma_zero_is_identity():
    sa = SelfAttention2d(16)
    x = torch.randn(2, 16, 8, 6)
    assert torch.equal(sa(x), x)


def test_attention_matches_naive_sagan():
    torch.manual_seed(0)
    sa = SelfAttention2d(16)
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    x = torch.randn(2, 16, 8, 6)
    q = sa.query(x).flatten(2)  # (B, C/8, N)
    k = sa.key(x).flatten(2)
    v = sa.value(x).flatten(2)  # (B, C, N)
    attn = torch.softmax(q.transpose(1, 2) @ k / (16 // 8) ** 0.5, dim=-1)  # (B, N, N)
    expected = x + 0.7 * (v @ attn.transpose(1, 2)).reshape_as(x)
    torch.testing.assert_close(sa(x), expected, rtol=1e-4, atol=1e-5)


def test_attention_channels_last_and_bf16():
    sa = SelfAttention2d(16)
    with torch.no_grad():
        sa.gamma.fill_(1.0)
    x = torch.randn(2, 16, 8, 6).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = sa(x)
    torch.testing.assert_close(y.float(), sa(x.contiguous()), rtol=0.05, atol=0.05)


def test_critic_one_score_per_sample():
    c = build_critic(ModelConfig(critic_channels=4))
    assert c(torch.randn(3, 3, 32, 48), torch.randn(3, 3, 32, 48)).shape == (3,)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in c.modules())


def test_bad_model_config_is_config_error():
    with pytest.raises(ConfigError, match="variant"):
        build_generator(ModelConfig(variant="sa5"))
    with pytest.raises(ConfigError, match="dropout"):
        build_generator(ModelConfig(dropout=1.5))
    with pytest.raises(ConfigError):
        build_critic(ModelConfig(critic_channels=2))
