"""Faster scoring gives the same results: folded BatchNorm, maps through one stencil, cropped labelling."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from madgan_core.config import MadganConfig, ModelConfig, PreprocessConfig
from madgan_core.model.checkpoint import LoadedModel
from madgan_core.model.networks import build_generator
from madgan_core.model.networks.fold import fold_batchnorm
from madgan_core.prep.native_maps import NativeGrid, to_mask, to_volumes
from madgan_core.prep.slab import Slab, preprocess
from madgan_core.scans.scan import Scan
from madgan_core.scoring.findings import label_regions
from madgan_core.scoring.scorer import score_scan, slab_scorer
from madgan_testing.brains import synthetic_brain


def trained_like(cfg: ModelConfig, seed: int = 0) -> nn.Module:
    """An eval-mode generator whose BatchNorms hold non-trivial statistics and affines."""
    torch.manual_seed(seed)
    generator = build_generator(cfg)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.3, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
            if hasattr(module, "gamma"):  # self-attention: make it matter
                module.gamma.fill_(0.7)
    return generator.eval()


@pytest.mark.parametrize("variant", ["none", "sa3", "sa7"])
@pytest.mark.parametrize("upsample", ["deconv", "resize"])
def test_folded_generator_gives_the_same_output(variant, upsample):
    cfg = ModelConfig(variant=variant, base_channels=4, upsample=upsample)
    generator = trained_like(cfg)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    folded = fold_batchnorm(generator)
    x = torch.randn(2, 3, 32, 48)
    with torch.inference_mode():
        expected, got = generator(x), folded(x)
    assert torch.allclose(expected, got, atol=1e-4)
    # The BatchNorms that follow their (de)convolution are gone, the others stay.
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert norms == sum(layer.norm is not None for layer in _layers_with_attention(generator))
    # The original is untouched: same weights, still every BatchNorm.
    after = generator.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.modules()) == 6


def _layers_with_attention(generator: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in generator.modules()
        if isinstance(getattr(m, "norm", None), nn.BatchNorm2d)
        and not isinstance(getattr(m, "attn", nn.Identity()), nn.Identity)
    ]


def test_folding_changes_the_output_when_norms_are_not_identity():
    """Guard: the BatchNorms of ``trained_like`` are not the identity, so the test above can fail."""
    generator = trained_like(ModelConfig(base_channels=4))
    x = torch.randn(1, 3, 32, 48)
    with torch.inference_mode():
        expected = generator(x)
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_var.fill_(1.0)
                module.running_mean.zero_()
        assert not torch.allclose(expected, generator(x), atol=1e-3)


def loaded(cfg: MadganConfig, generator: nn.Module) -> LoadedModel:
    return LoadedModel(generator, cfg, 0, Path("m.pt"), None, torch.device("cpu"))


def test_inference_generator_is_made_once_and_again_after_a_weight_change():
    cfg = MadganConfig()
    cfg.model.base_channels = 4
    model = loaded(cfg, trained_like(cfg.model))
    first = model.inference_generator()
    assert model.inference_generator() is first
    with torch.no_grad():
        model.generator.enc2.norm.running_mean.add_(1.0)
    second = model.inference_generator()
    assert second is not first
    x = torch.randn(1, 3, 32, 48)
    with torch.inference_mode():
        assert torch.allclose(model.generator(x), second(x), atol=1e-4)
    model.generator.train()
    assert model.inference_generator() is model.generator


def test_scores_with_and_without_folding_match():
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(height=48, width=48, pixel_mm=2.0)
    cfg.model.base_channels = 4
    cfg.validate()
    model = loaded(cfg, trained_like(cfg.model))
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    slab = preprocess(scan, cfg.preprocess)
    folded = slab_scorer(model, "fp32")(slab, maps=True)
    plain = slab_scorer(model, "fp32", fold=False)(slab, maps=True)
    assert np.allclose(folded[0].window_losses, plain[0].window_losses, rtol=1e-4, atol=1e-7)
    assert folded[1]["mean"] == pytest.approx(plain[1]["mean"], rel=1e-4)
    assert np.allclose(folded[0].slice_error_sum, plain[0].slice_error_sum, rtol=1e-3, atol=1e-6)


def random_slab(seed: int, step: int = 1, vpp=(1.3, 0.8), centre=(15.0, 30.0)) -> Slab:
    """A slab whose model grid overhangs its 30 x 40 x 50 volume on some sides."""
    rng = np.random.default_rng(seed)
    indices = np.arange(6, 6 + 12 * step, step)
    return Slab(
        slices=rng.uniform(-1, 1, (len(indices), 24, 32)).astype(np.float32),
        slice_indices=indices,
        center=np.asarray(centre),
        voxels_per_pixel=np.asarray(vpp),
        volume_shape=(30, 40, 50),
        intensity_range=(0.0, 100.0),
    )


@pytest.mark.parametrize(
    ("step", "vpp", "centre"),
    [(1, (1.3, 0.8), (15.0, 30.0)), (2, (0.7, 2.1), (3.0, 20.0)), (3, (1.0, 1.0), (14.5, 19.5))],
)
def test_to_volumes_equals_to_volume(step, vpp, centre):
    slab = random_slab(step, step, vpp, centre)
    rng = np.random.default_rng(step)
    a = rng.normal(size=slab.slices.shape).astype(np.float32)
    b = rng.normal(size=slab.slices.shape).astype(np.float32)
    b[:3] = np.nan  # never predicted
    b[-1] = np.nan
    c = np.full(slab.slices.shape, np.nan, np.float32)  # nothing predicted at all
    d = a.copy()
    d[4, 5, 6] = np.nan  # a stray NaN inside a predicted slice
    d[5, 1, 1] = np.inf
    got = to_volumes(slab, a, b, c, d)
    for maps, volume in zip((a, b, c, d), got, strict=True):
        expected = slab.to_volume(maps)
        assert volume.dtype == expected.dtype and volume.shape == expected.shape
        np.testing.assert_array_equal(volume, expected)
    assert np.isfinite(got[0]).any() and np.isnan(got[2]).all()


@pytest.mark.parametrize("step", [1, 2])
def test_to_mask_equals_thresholded_to_volume(step):
    slab = random_slab(7, step)
    seen = (slab.slices > 0.2).astype(np.float32)
    seen[0] = np.nan  # a slice that has no values
    grid = NativeGrid.of(slab)
    mask = to_mask(slab, seen, 0.5, grid)
    expected = np.nan_to_num(slab.to_volume(seen)) > 0.5
    assert mask.dtype == bool and 0 < mask.sum() < mask.size
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(to_volumes(slab, seen, grid=grid)[0], slab.to_volume(seen))


def test_to_volumes_refuses_a_wrong_shape():
    slab = random_slab(0)
    with pytest.raises(ValueError, match="does not match slab"):
        to_volumes(slab, slab.slices[:, :-1])


def full_volume_labels(zmap: np.ndarray, threshold: float) -> np.ndarray:
    above = np.nan_to_num(zmap, nan=-np.inf) > threshold
    return ndimage.label(above, structure=np.ones((3, 3, 3), bool))[0]


def test_cropped_labelling_places_regions_as_the_whole_volume_does():
    rng = np.random.default_rng(3)
    zmap = rng.normal(0, 1, (40, 44, 36)).astype(np.float32)
    zmap[:, :, :5] = np.nan
    zmap[10:14, 20:25, 12:16] = 8.0  # a cube
    zmap[12, 22, 14] = 11.0  # its peak
    zmap[30:33, 5:8, 25:30] = 6.0  # a weaker, elongated region
    zmap[30, 5, 25] = 6.5  # its peak (ties have no defined peak)
    zmap[2, 2, 30] = 9.0  # a speck below the minimum volume
    affine = np.array([[1.2, 0, 0, -20], [0, 1.0, 0, 5], [0, 0, 2.0, -30], [0, 0, 0, 1]])
    findings, ranked = label_regions(zmap, affine, threshold=5.0, min_volume_ml=0.01)
    assert [f.peak_voxel for f in findings] == [(12, 22, 14), (30, 5, 25)]
    assert [f.slices for f in findings] == [(12, 15), (25, 29)]
    assert findings[0].peak_mm == (-5.6, 27.0, -2.0)
    assert findings[0].centre_mm == pytest.approx(
        (-20 + 1.2 * 11.5, 5 + 22.0, -30 + 2 * 13.5), abs=0.1
    )
    # The label volume is the whole volume's components, ranked.
    labels = full_volume_labels(zmap, 5.0)
    cube, other = labels[12, 22, 14], labels[30, 5, 25]
    assert np.array_equal(ranked == 1, labels == cube)
    assert np.array_equal(ranked == 2, labels == other)
    assert ranked.shape == zmap.shape and ranked[2, 2, 30] == 0


def test_maps_of_a_scored_scan_agree_with_slab_to_volume():
    """The volumes ``score_scan`` returns are each map of the slab placed by ``Slab.to_volume``."""
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(height=48, width=48, pixel_mm=2.0)
    cfg.validate()
    scan = Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0]))
    model = SimpleNamespace(config=cfg, device=torch.device("cpu"), reference=None)
    noisy = lambda _x, t: t + 0.1 * torch.sin(t * 7)  # noqa: E731
    result = score_scan(model, scan, predictor=noisy, precision="fp32")
    slab = preprocess(scan, cfg.preprocess)
    seen = (slab.slices > -0.95).astype(np.float32)
    assert np.array_equal(result.foreground, np.nan_to_num(slab.to_volume(seen)) > 0.5)
    assert np.isfinite(result.heatmap).sum() > 100


def test_maps_of_a_resampled_scan_land_on_its_own_grid():
    """With a grid step (thick slices resampled), the maps still come back on the scan's grid."""
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(height=48, width=48, pixel_mm=2.0, slice_mm=2.0)
    cfg.validate()
    brain = synthetic_brain()[:, :, ::3]  # 6 mm axial slices
    scan = Scan.from_array(np.ascontiguousarray(brain), np.diag([2.0, 2.0, 6.0, 1.0]))
    model = SimpleNamespace(config=cfg, device=torch.device("cpu"), reference=None)
    noisy = lambda _x, t: t + 0.1 * torch.sin(t * 7)  # noqa: E731
    result = score_scan(model, scan, predictor=noisy, precision="fp32")
    slab = preprocess(scan, cfg.preprocess)
    assert slab.grid is not None and slab.working_shape != scan.data.shape
    assert result.heatmap.shape == result.foreground.shape == scan.data.shape
    seen = (slab.slices > -0.95).astype(np.float32)
    assert np.array_equal(result.foreground, np.nan_to_num(slab.to_volume(seen)) > 0.5)
    assert np.isfinite(result.heatmap).sum() > 100
