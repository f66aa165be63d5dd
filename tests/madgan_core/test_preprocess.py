from __future__ import annotations

import numpy as np
import pytest

from madgan_core.config import ModelConfig, PreprocessConfig
from madgan_core.errors import ScanError
from madgan_core.prep.slab import preprocess
from madgan_core.prep.windows import target_coverage, window_arrays, window_count
from madgan_core.scans.files import load_scan
from madgan_core.scans.scan import Scan
from madgan_testing.brains import synthetic_brain

SMALL = PreprocessConfig(height=64, width=48, pixel_mm=2.0)


def test_shapes_and_range(brain_file):
    slab = preprocess(load_scan(brain_file), SMALL)
    assert slab.slices.shape == (slab.n_slices, 64, 48)
    assert slab.slices.dtype == np.float32
    assert slab.slices.min() == -1.0 and slab.slices.max() == pytest.approx(1.0)
    assert np.all(np.diff(slab.slice_indices) == 1)
    assert slab.n_slices >= 6


def test_band_is_inside_the_brain_extent(brain_volume):
    scan = Scan.from_array(brain_volume)
    slab = preprocess(scan, SMALL)
    nz = brain_volume.shape[2]
    assert slab.slice_indices[0] > 0.2 * nz and slab.slice_indices[-1] < 0.8 * nz


def test_explicit_slice_range(brain_volume):
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=2.0, slice_range=(10, 22))
    slab = preprocess(Scan.from_array(brain_volume), cfg)
    np.testing.assert_array_equal(slab.slice_indices, np.arange(10, 22))


def test_slice_step(brain_volume):
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=2.0, slice_range=(8, 28), slice_step=2)
    slab = preprocess(Scan.from_array(brain_volume), cfg)
    np.testing.assert_array_equal(slab.slice_indices, np.arange(8, 28, 2))


def test_explicit_range_outside_the_scan_is_refused(brain_volume):
    cfg = PreprocessConfig(height=64, width=48, slice_range=(10, 500))
    with pytest.raises(ScanError, match="exceeds the scan's 36 axial slices"):
        preprocess(Scan.from_array(brain_volume), cfg)


def test_empty_slices_are_discarded(brain_volume):
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=2.0, slice_range=(0, 36))
    slab = preprocess(Scan.from_array(brain_volume), cfg)
    assert slab.slice_indices[0] > 0 and slab.slice_indices[-1] < 35


def test_too_few_usable_slices(tmp_path):
    data = np.zeros((30, 30, 30), np.float32)
    data[5:25, 5:25, 14:18] = 100.0  # only 4 slices of brain
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "thin.nii.gz")
    with pytest.raises(ScanError, match=r"thin\.nii\.gz: only \d usable axial slices"):
        preprocess(load_scan(tmp_path / "thin.nii.gz"), PreprocessConfig(height=32, width=32))


def test_smaller_slices_are_zero_padded_not_stretched():
    # A 20 x 20 mm square of brain at 1 mm in a 64 x 48 field of view keeps its size.
    data = np.zeros((40, 40, 20), np.float32)
    data[10:30, 10:30, :] = np.random.default_rng(0).uniform(40.0, 60.0, (20, 20, 20))
    slab = preprocess(
        Scan.from_array(data), PreprocessConfig(height=64, width=48, pixel_mm=1.0, band=(0, 1))
    )
    middle = slab.slices[slab.n_slices // 2]
    rows, cols = np.nonzero(middle > -1.0 + 1e-4)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 == 20
    outside = np.ones_like(middle, dtype=bool)
    outside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = False
    np.testing.assert_allclose(middle[outside], -1.0, atol=1e-5)


def test_inverse_mapping_round_trip(brain_volume):
    scan = Scan.from_array(brain_volume, np.diag([2.0, 2.0, 2.0, 1.0]))
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=2.0, align="none")
    slab = preprocess(scan, cfg)
    back = slab.to_volume(slab.sample(scan.data, order=1))
    z = slab.slice_indices
    inside = ~np.isnan(back[:, :, z])
    assert inside.mean() > 0.9
    np.testing.assert_allclose(back[:, :, z][inside], scan.data[:, :, z][inside], atol=1e-3)
    outside = np.setdiff1d(np.arange(brain_volume.shape[2]), z)
    assert np.all(np.isnan(back[:, :, outside]))


def test_inverse_mapping_with_resampling_keeps_a_marker_in_place(brain_volume):
    scan = Scan.from_array(brain_volume, np.diag([1.0, 1.0, 1.0, 1.0]))
    slab = preprocess(scan, PreprocessConfig(height=32, width=32, pixel_mm=2.0))
    marker = np.zeros_like(brain_volume)
    z = slab.slice_indices[3]
    marker[18:22, 22:26, z] = 1.0
    back = slab.to_volume(slab.sample(marker, order=0))
    peak = np.unravel_index(np.nanargmax(back[:, :, z]), back.shape[:2])
    assert 17 <= peak[0] <= 22 and 21 <= peak[1] <= 26


@pytest.mark.parametrize("n", [6, 7, 12, 40])
def test_window_counts_and_coverage(n):
    model = ModelConfig()
    assert window_count(n, model) == n - 5
    cov = target_coverage(n, model)
    assert cov[:3].tolist() == [0, 0, 0]
    assert cov.sum() == 3 * (n - 5)
    if n >= 8:
        assert cov[3] == 1 and cov[4] == 2 and cov[5] == 3 and cov[-1] == 1 and cov[-2] == 2


def test_window_contents():
    slices = np.arange(8, dtype=np.float32)[:, None, None] * np.ones((8, 2, 2), np.float32)
    inputs, targets = window_arrays(slices, ModelConfig())
    assert inputs.shape == (3, 3, 2, 2) and targets.shape == (3, 3, 2, 2)
    assert inputs[1, :, 0, 0].tolist() == [1, 2, 3]
    assert targets[1, :, 0, 0].tolist() == [4, 5, 6]


def test_window_gap():
    slices = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((10, 1, 1), np.float32)
    inputs, targets = window_arrays(slices, ModelConfig(gap=2))
    assert len(inputs) == 10 - 8 + 1
    assert targets[0, :, 0, 0].tolist() == [5, 6, 7]


def test_mni_template_band_covers_hippocampus_and_ventricles():
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    scan = Scan.from_array(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    slab = preprocess(scan, PreprocessConfig())
    z_mm = [(scan.affine @ np.r_[0, 0, z, 1])[2] for z in slab.slice_indices[[0, -1]]]
    # Hippocampus and amygdala reach down to about z = -20 mm; the lateral ventricles up to about +25 mm.
    assert z_mm[0] <= -18 and z_mm[1] >= 25
    assert slab.slices.shape[1:] == (256, 176)


def test_synthetic_brain_helper_is_not_constant():
    assert synthetic_brain().std() > 0


def test_landmarks_undo_a_contrast_curve(tmp_path):
    import nibabel as nib

    from madgan_core.cohort.phantom import make_subject
    from madgan_core.prep.slab import learn_landmarks

    base, affine, _ = make_subject("healthy", seed=3, voxel_mm=4.0)
    base = base.astype(np.float32)
    curved = (base / base.max()) ** 1.3 * 900.0  # another scanner's contrast curve and gain
    paths = []
    for name, volume in (("a", base), ("b", curved)):
        paths.append(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(volume, affine), paths[-1])
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=4.0, intensity="landmarks")
    cfg.landmarks = learn_landmarks(paths, cfg)
    cfg.validate()
    linear = PreprocessConfig(height=64, width=48, pixel_mm=4.0)
    a, b = (load_scan(p) for p in paths)
    gap_linear = np.abs(preprocess(a, linear).slices - preprocess(b, linear).slices).mean()
    gap_marks = np.abs(preprocess(a, cfg).slices - preprocess(b, cfg).slices).mean()
    assert gap_marks < 0.3 * gap_linear
    slab = preprocess(b, cfg)
    assert slab.slices.min() >= -1.0 and slab.slices.max() <= 1.0
    # the map back to scan intensities inverts the normalisation
    band = curved[:, :, slab.slice_indices]
    low, high = slab.intensity_range
    inside = (band > low) & (band < high)
    there = slab.to_intensity(preprocess(b, cfg).slices)
    assert there.shape == slab.slices.shape
    values = np.clip(band, low, high)
    back = slab.to_intensity(
        np.interp(
            (values - low) * 2 / (high - low) - 1,
            np.r_[-1.0, slab.landmarks[0], 1.0],
            np.r_[-1.0, slab.landmarks[1], 1.0],
        )
    )
    np.testing.assert_allclose(back[inside], band[inside], rtol=1e-3, atol=1e-2)


def test_landmarks_must_be_learned_first(brain_file):
    cfg = PreprocessConfig(height=64, width=48, pixel_mm=2.0, intensity="landmarks")
    from madgan_core.errors import ConfigError

    with pytest.raises(ConfigError, match="no landmarks were learned"):
        preprocess(load_scan(brain_file), cfg)


@pytest.mark.parametrize(
    "landmarks", [(0.1,) * 9, tuple(np.linspace(-1.0, 0.5, 9)), (0.0, 0.1), ("a",) * 9]
)
def test_bad_landmarks_are_config_errors(landmarks):
    from madgan_core.errors import ConfigError

    with pytest.raises(ConfigError, match="preprocess.landmarks"):
        PreprocessConfig(landmarks=landmarks).validate()


def test_unknown_intensity_mode_is_a_config_error():
    from madgan_core.errors import ConfigError

    with pytest.raises(ConfigError, match="preprocess.intensity"):
        PreprocessConfig(intensity="zscore").validate()
