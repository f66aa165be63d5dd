"""Pre- and post-processing in torch (prep/device_ops.py) against the numpy/scipy path.

The torch path runs on the CPU here and must match the numpy path on phantoms: the
slab's model-space slices, the native-grid heatmap and reconstruction, the z-map and
every score, well within the tolerances of the bf16 precision test (1% on scores).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from madgan_core.cohort.phantom import make_subject
from madgan_core.config import PreprocessConfig
from madgan_core.model.zstats import ZStatsBuilder, log_error
from madgan_core.prep import device_ops
from madgan_core.prep.device_ops import ENV_VAR, gaussian_filter, ops_device
from madgan_core.prep.native_maps import to_mask, to_volumes
from madgan_core.prep.slab import preprocess
from madgan_core.prep.stages import resample
from madgan_core.scans.scan import Scan
from madgan_core.scoring.reconstruct import copy_predictor, slab_errors
from madgan_core.scoring.scorer import scan_result, slab_scorer
from madgan_testing.brains import synthetic_brain
from tests.madgan_core.test_native_maps import KINDS, awkward_maps, make_slab
from tests.madgan_core.test_precision import tiny_model

CPU = torch.device("cpu")
# the torch path on every device there is; a GPU machine also runs it on CUDA
DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
SCORE_RTOL = 1e-3  # ten times tighter than the precision test's 1%
MAP_ATOL = 1e-4  # model units (intensities are compared relative to their range)


@pytest.fixture(scope="module")
def phantom() -> Scan:
    """A 3 mm MNI phantom with metastases (lesions for the z-map to find)."""
    volume, affine, _ = make_subject("mets", seed=3, voxel_mm=3.0)
    return Scan.from_array(volume, affine)


def test_ops_device_is_torch_on_cuda_and_numpy_on_cpu(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert ops_device(torch.device("cuda")) == torch.device("cuda")
    assert ops_device(CPU) is None and ops_device(None) is None
    monkeypatch.setenv(ENV_VAR, "1")
    assert ops_device("cpu") == CPU
    monkeypatch.setenv(ENV_VAR, "0")
    assert ops_device(torch.device("cuda")) is None


@pytest.mark.parametrize("mode", ["nearest", "reflect"])
@pytest.mark.parametrize("sigmas", [(0.0, 2.0, 2.0), (0.6, 0.0, 1.3), (3.0, 0.3, 5.0)])
def test_gaussian_filter_equals_scipy(mode, sigmas):
    x = np.random.default_rng(0).normal(size=(5, 9, 14)).astype(np.float32)
    expected = ndimage.gaussian_filter(x, sigmas, mode=mode)  # radius beyond the axis too
    got = gaussian_filter(torch.from_numpy(x), sigmas, mode).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["resampled", "oblique"])
def test_resample_equals_the_scipy_resample(kind):
    grid = make_slab(kind).grid
    volume = np.random.default_rng(1).normal(size=grid.working_shape).astype(np.float32)
    args = (grid.working_affine, grid.native_affine, grid.native_shape)
    expected = resample(volume, *args, 1, -3.0)
    got = device_ops.resample(torch.from_numpy(volume), *args, -3.0).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    back = (grid.native_affine, grid.working_affine, grid.working_shape)  # downsamples z
    native = np.random.default_rng(2).normal(size=grid.native_shape).astype(np.float32)
    np.testing.assert_allclose(
        device_ops.resample(torch.from_numpy(native), *back).numpy(),
        resample(native, *back, 1, 0.0),
        atol=1e-5,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_volumes_and_masks_match_the_numpy_merger(kind):
    slab = make_slab(kind)
    stacks = [awkward_maps(slab, 1), slab.slices, np.abs(awkward_maps(slab, 2))]
    volumes = to_volumes(slab, *stacks), to_volumes(slab, *stacks, device=CPU)
    for expected, got in zip(*volumes, strict=True):
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    seen = (slab.slices > 0.2).astype(np.float32)
    seen[0] = np.nan
    np.testing.assert_array_equal(to_mask(slab, seen, device=CPU), to_mask(slab, seen))


SLAB_CONFIGS = {
    "antialiased": PreprocessConfig(height=48, width=48, pixel_mm=6.0),
    "fine": PreprocessConfig(height=64, width=64, pixel_mm=2.5),
    "resampled": PreprocessConfig(height=48, width=48, pixel_mm=4.0, slice_mm=2.0),
    "landmarks": PreprocessConfig(
        height=48,
        width=48,
        pixel_mm=4.0,
        intensity="landmarks",
        landmarks=tuple(np.linspace(-0.7, 0.8, 9)),
    ),
}


@pytest.mark.parametrize("name", list(SLAB_CONFIGS))
def test_model_space_slices_match(phantom, name):
    cfg = SLAB_CONFIGS[name]
    expected = preprocess(phantom, cfg)
    got = preprocess(phantom, cfg, device=CPU)
    assert (got.grid is not None) == (name == "resampled")
    assert got.slices.dtype == np.float32 and got.slices.shape == expected.slices.shape
    np.testing.assert_array_equal(got.slice_indices, expected.slice_indices)
    np.testing.assert_allclose(got.slices, expected.slices, atol=1e-5)
    assert (got.landmarks is None) == (expected.landmarks is None)
    np.testing.assert_allclose(
        got.sample(phantom.data, device=CPU), expected.sample(phantom.data), rtol=1e-5, atol=1e-3
    )


def test_log_error_and_zmap_match():
    rng = np.random.default_rng(4)
    maps = [rng.gamma(2.0, 0.01, (15, 20, 24)).astype(np.float32) for _ in range(4)]
    maps[0][3] = np.nan
    stats = ZStatsBuilder.of(maps[1:]).finalize()
    got = log_error(maps[0], device=CPU)
    expected = log_error(maps[0])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(stats.zmap(maps[0], device=CPU), stats.zmap(maps[0]), atol=1e-4)


def test_slab_errors_on_device_match():
    model = tiny_model("none")
    slab = preprocess(Scan.from_array(synthetic_brain(), np.diag([2.0, 2.0, 2.0, 1.0])),
                      model.config.preprocess)  # fmt: skip
    predictor = copy_predictor(model.config.model.out_slices)
    args = (predictor, slab, model.config.model, CPU, "fp32", 4)
    expected = slab_errors(*args)
    got = slab_errors(*args, on_device=True)
    np.testing.assert_allclose(got.window_losses, expected.window_losses, rtol=1e-5)
    np.testing.assert_allclose(got.copy_losses, expected.copy_losses, rtol=1e-5)
    np.testing.assert_allclose(got.slice_loss_sum, expected.slice_loss_sum, rtol=1e-5)
    np.testing.assert_allclose(got.slice_error_sum, expected.slice_error_sum, atol=1e-6)
    np.testing.assert_allclose(got.slice_prediction_sum, expected.slice_prediction_sum, atol=1e-6)
    np.testing.assert_array_equal(got.coverage, expected.coverage)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("slice_mm", [None, 2.0])
def test_scores_and_native_maps_match(phantom, monkeypatch, slice_mm, device):
    """The whole scoring path, z-map included, with every stage's torch path on ``device``
    (by default on CUDA, forced on the CPU) against numpy/scipy, the network on ``device``."""
    device = torch.device(device)
    model = tiny_model("none")
    model = dataclasses.replace(model, generator=model.generator.to(device), device=device)
    model.config.preprocess.pixel_mm = 4.0
    model.config.preprocess.slice_mm = slice_mm
    settings = model.config.score

    def run(flag: str):
        monkeypatch.setenv(ENV_VAR, flag)
        ops = ops_device(device)
        assert (ops is None) == (flag == "0")
        slab = preprocess(phantom, model.config.preprocess, device=ops)
        score = slab_scorer(model, "fp32")
        controls = [score(slab, maps=True)[0].slice_maps()[0] * s for s in (0.7, 1.0, 1.4)]
        zstats = ZStatsBuilder.of(controls, settings).finalize()
        errors, scores, z = score(slab, zstats, maps=True)
        result = scan_result(phantom, slab, errors, scores, z, settings, maps=True, device=ops)
        return slab, result

    slab_np, expected = run("0")
    slab_t, got = run("1" if device.type == "cpu" else "")
    assert (slab_t.grid is not None) == (slice_mm is not None)
    np.testing.assert_allclose(slab_t.slices, slab_np.slices, atol=1e-5)
    np.testing.assert_allclose(got.window_losses, expected.window_losses, rtol=SCORE_RTOL)
    assert set(got.scores) == set(expected.scores)
    for mode, value in expected.scores.items():
        assert got.scores[mode] == pytest.approx(value, rel=SCORE_RTOL, abs=1e-6), mode
    low, high = slab_np.intensity_range
    for name, scale in (("heatmap", 1.0), ("reconstruction", high - low), ("zmap", 10.0)):
        a, b = getattr(expected, name), getattr(got, name)
        assert b.shape == a.shape == phantom.data.shape
        np.testing.assert_array_equal(np.isnan(b), np.isnan(a))
        np.testing.assert_allclose(b, a, atol=MAP_ATOL * scale, rtol=1e-4)
    np.testing.assert_array_equal(got.foreground, expected.foreground)


def test_the_bench_times_both_paths_and_finds_them_equal(phantom, tmp_path):
    import nibabel as nib

    from bench._device_ops import STAGES, device_ops_case

    path = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(phantom.data, phantom.affine), str(path))
    model = tiny_model("none")
    model.config.preprocess.pixel_mm = 4.0
    result = device_ops_case(model, path, CPU, reps=1)
    for path_name in ("numpy_seconds", "torch_seconds"):
        assert set(result[path_name]) == {*STAGES, "total"}
    assert set(result["speedup"]) == {*STAGES, "total"}
    for name, diff in result["differences"].items():
        assert diff["same_nan"] and diff["max_abs"] < 1e-3, name
