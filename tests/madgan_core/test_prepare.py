"""The prepare stage: the grid step and the slab's map back to the scan's own grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from madgan_core.config import MadganConfig, PreprocessConfig, parse_overrides
from madgan_core.errors import ConfigError
from madgan_core.prep.loader import _slab_arrays, _slab_from
from madgan_core.prep.native_maps import to_scan_grid
from madgan_core.prep.slab import preprocess
from madgan_core.prep.stages import is_axis_aligned, prepare_scan, resample
from madgan_core.scans.scan import Scan
from madgan_testing.brains import synthetic_brain

# The grid step on synthetic volumes: no brain step (noise is not a head).
CFG = PreprocessConfig(
    height=48, width=48, pixel_mm=2.0, slice_mm=1.0, band=(0.2, 0.8), brain="none"
)


def thick(volume: np.ndarray, factor: int) -> np.ndarray:
    """A thick-slice acquisition of ``volume``: each slice the mean of ``factor`` thin ones."""
    nz = volume.shape[2] // factor * factor
    return volume[:, :, :nz].reshape(*volume.shape[:2], -1, factor).mean(axis=3)


def test_a_scan_on_the_working_grid_is_passed_through_bit_identically():
    scan = Scan.from_array(synthetic_brain((40, 48, 40)))
    prepared = prepare_scan(scan, CFG)
    assert prepared.scan is scan and prepared.grid is None and prepared.steps == []
    today = preprocess(scan, dataclasses.replace(CFG, align="none"))
    new = preprocess(scan, CFG)
    assert new.grid is None
    np.testing.assert_array_equal(new.slices, today.slices)
    np.testing.assert_array_equal(new.slice_indices, today.slice_indices)
    maps = np.random.default_rng(0).random(new.slices.shape).astype(np.float32)
    np.testing.assert_array_equal(new.to_volume(maps), today.to_volume(maps))
    np.testing.assert_array_equal(new.sample(scan.data), today.sample(scan.data))


def test_thick_slices_become_slice_mm_slices_and_map_back_to_the_scan():
    thin = synthetic_brain((40, 48, 60))
    scan = Scan.from_array(thick(thin, 5), np.diag([1.0, 1.0, 5.0, 1.0]))
    slab = preprocess(scan, CFG)
    assert slab.grid is not None and slab.steps == ("resampled 5 mm -> 1 mm slices",)
    world = slab.grid.working_affine @ np.stack(
        [
            np.zeros(slab.n_slices),
            np.zeros(slab.n_slices),
            slab.slice_indices,
            np.ones(slab.n_slices),
        ]
    )
    np.testing.assert_allclose(np.diff(world[2]), 1.0)
    assert slab.n_slices > 20  # the 12 thick slices' band, now at 1 mm
    assert slab.volume_shape == scan.data.shape
    back = slab.to_volume(slab.sample(scan.data))
    assert back.shape == scan.data.shape
    # The thick slices inside the slab come back where they were, with their values.
    native = np.unique(slab.native_slice_indices)
    assert native.min() >= 1 and native.max() <= 10 and len(native) >= 6
    inner = native[1:-1]
    known = np.isfinite(back[:, :, inner])
    assert known.mean() > 0.8
    error = np.abs(back[:, :, inner][known] - scan.data[:, :, inner][known])
    assert np.median(error) < 3.0  # intensities run 0-100
    outside = np.setdiff1d(
        np.arange(scan.data.shape[2]), np.arange(native.min() - 1, native.max() + 2)
    )
    assert np.all(np.isnan(back[:, :, outside]))


def test_anisotropic_in_plane_voxels_keep_their_in_plane_grid():
    volume = thick(synthetic_brain((80, 96, 40)), 5)
    scan = Scan.from_array(volume, np.diag([0.5, 0.5, 5.0, 1.0]))
    prepared = prepare_scan(scan, CFG)
    assert prepared.scan.data.shape == (80, 96, 40)
    np.testing.assert_allclose(prepared.scan.zooms, [0.5, 0.5, 1.0])
    # Only the through-plane axis is interpolated: a thick slice's centre keeps its values.
    centre_of_slice_3 = 3 * 5 + 2
    np.testing.assert_allclose(
        prepared.scan.data[:, :, centre_of_slice_3], volume[:, :, 3], atol=1e-4
    )


def test_a_sagittal_acquisition_with_thick_x_voxels_keeps_its_axial_slices():
    # Stored sagittal (i: anterior, j: superior, k: left-right, 4 mm thick); RAS+ puts k on x.
    data = np.random.default_rng(0).random((48, 40, 10)).astype(np.float32)
    affine = np.array([[0, 0, 4.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    scan = Scan.from_array(data, affine)
    np.testing.assert_allclose(scan.zooms, [4.0, 1.0, 1.0])
    assert prepare_scan(scan, CFG).scan is scan


def test_an_oblique_scan_goes_onto_an_axis_aligned_grid_that_covers_it():
    volume = synthetic_brain((40, 48, 40))
    angle = np.deg2rad(15)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    affine = rotation @ np.diag([1.0, 1.0, 2.0, 1.0])
    scan = Scan.from_array(volume, affine)
    assert not is_axis_aligned(scan.affine)
    prepared = prepare_scan(scan, CFG)
    grid = prepared.grid
    assert is_axis_aligned(grid.working_affine) and grid.working_affine[2, 2] == 1.0
    assert "oblique" in prepared.steps[0]
    # Every corner voxel of the scan lies inside the working grid.
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in scan.data.shape], indexing="ij")).reshape(
        3, -1
    )
    world = scan.affine[:3, :3] @ corners + scan.affine[:3, 3:4]
    inside = np.linalg.solve(grid.working_affine[:3, :3], world - grid.working_affine[:3, 3:4])
    assert np.all(inside > -0.5) and np.all(np.array(grid.working_shape) - 0.5 > inside.T)
    # There and back keeps a smooth volume (up to interpolation).
    back = to_scan_grid(grid, grid.from_native(scan.data))
    brain = scan.data > 50
    assert np.isfinite(back[brain]).mean() > 0.99
    assert np.median(np.abs(back[brain] - scan.data[brain])) < 5.0


def test_downsampling_through_plane_is_anti_aliased():
    stripes = np.zeros((8, 8, 40), dtype=np.float32)
    stripes[:, :, ::2] = 1.0  # a 1-voxel pattern that a 4 mm grid cannot hold
    out = resample(stripes, np.eye(4), np.diag([1.0, 1.0, 4.0, 1.0]), (8, 8, 10))
    assert np.ptp(out[:, :, 2:-2]) < 0.2 and abs(out[:, :, 2:-2].mean() - 0.5) < 0.1


def test_a_cached_slab_keeps_its_map_back():
    scan = Scan.from_array(thick(synthetic_brain((40, 48, 60)), 5), np.diag([1.0, 1.0, 5.0, 1.0]))
    slab = preprocess(scan, CFG)
    again = _slab_from({k: np.asarray(v) for k, v in _slab_arrays(slab).items()})
    assert again.grid == slab.grid and again.steps == slab.steps
    maps = np.random.default_rng(1).random(slab.slices.shape).astype(np.float32)
    np.testing.assert_array_equal(again.to_volume(maps), slab.to_volume(maps))


def test_grid_settings_are_checked_and_set_from_text():
    cfg = MadganConfig().updated(
        parse_overrides(["preprocess.align=none", "preprocess.slice_mm=2.5"])
    )
    assert cfg.preprocess.align == "none" and cfg.preprocess.slice_mm == 2.5
    cfg = MadganConfig().updated(
        parse_overrides(
            ["preprocess.align=affine", "preprocess.brain=extract", "preprocess.bias=n4"]
        )
    )
    assert (cfg.preprocess.align, cfg.preprocess.brain, cfg.preprocess.bias) == (
        "affine",
        "extract",
        "n4",
    )
    for bad in ({"align": "warp"}, {"brain": "strip"}, {"bias": "n3"}, {"slice_mm": 0.0}):
        with pytest.raises(ConfigError, match="preprocess"):
            MadganConfig().updated({"preprocess": bad})
