"""The merger (prep/native_maps.py) against a plain reference, on every kind of grid.

The reference maps one slice at a time over every voxel of the working grid, then
goes back to the scan's grid by two resamples (values and their valid weight). The
merger's stencil must give the same float32 bits on axis-aligned, anisotropic,
resampled and oblique grids.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from madgan_core.prep.native_maps import NativeGrid, to_mask, to_scan_grid, to_volumes
from madgan_core.prep.slab import Slab
from madgan_core.prep.stages import GridMap, resample, working_grid
from madgan_core.scans.scan import Scan

HEIGHT, WIDTH = 24, 32


def reference_working(slab: Slab, maps: np.ndarray) -> np.ndarray:
    """``maps`` on the working grid: every voxel, slice by slice, float32 bilinear."""
    nx, ny, nz = slab.working_shape
    height, width = slab.shape
    xs, ys = np.mgrid[0:nx, 0:ny].astype(np.float64)
    cols = (xs - slab.center[0]) / slab.voxels_per_pixel[0] + (width - 1) / 2.0
    rows = (height - 1) / 2.0 - (ys - slab.center[1]) / slab.voxels_per_pixel[1]
    inside = (rows >= -0.5) & (rows <= height - 0.5) & (cols >= -0.5) & (cols <= width - 0.5)
    r, c = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
    r0 = np.clip(np.floor(r), 0, height - 2).astype(np.intp)
    c0 = np.clip(np.floor(c), 0, width - 2).astype(np.intp)
    fr, fc = (r - r0).astype(np.float32), (c - c0).astype(np.float32)
    r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
    weights = [(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc]
    corners = [(r0, c0), (r0, c1), (r1, c0), (r1, c1)]
    planes = {}
    for k in range(slab.n_slices):
        if np.isnan(maps[k]).all():  # never predicted
            continue
        plane = np.nan_to_num(np.asarray(maps[k], dtype=np.float32))
        value = plane[corners[0]] * weights[0]
        for (i, j), w in zip(corners[1:], weights[1:], strict=True):
            value += plane[i, j] * w
        value[~inside] = np.nan
        planes[k] = value
    volume = np.full((nx, ny, nz), np.nan, dtype=np.float32)
    idx = slab.slice_indices
    half = (idx[1] - idx[0]) // 2 if slab.n_slices > 1 else 0
    for z in range(max(0, int(idx[0]) - half), min(nz, int(idx[-1]) + half + 1)):
        k = int(np.abs(idx - z).argmin())
        if k in planes:
            volume[:, :, z] = planes[k]
    return volume


def reference_volume(slab: Slab, maps: np.ndarray) -> np.ndarray:
    """``maps`` on the scan's RAS+ grid: the working volume, resampled when there is a grid."""
    volume = reference_working(slab, maps)
    grid = slab.grid
    if grid is None:
        return volume
    valid = np.isfinite(volume)
    args = (grid.working_affine, grid.native_affine, grid.native_shape, 1, 0.0)
    values = resample(np.where(valid, volume, 0.0), *args)
    weight = resample(valid.astype(np.float32), *args)
    ok = weight >= 0.5
    return np.where(ok, values / np.where(ok, weight, 1.0), np.nan).astype(np.float32)


def rotation(degrees: float, axes: tuple[int, int]) -> np.ndarray:
    t = np.deg2rad(degrees)
    out = np.eye(4)
    i, j = axes
    out[i, i], out[i, j], out[j, i], out[j, j] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return out


def make_slab(kind: str, seed: int = 0) -> Slab:
    """A slab with random slices on an ``kind`` grid; the model grid overhangs the volume."""
    rng = np.random.default_rng(seed)
    native_shape = (30, 36, 24)
    step, vpp, centre, grid = 1, (1.0, 1.0), (14.5, 17.5), None
    if kind == "anisotropic":  # non-square pixels, every other slice, off-centre
        step, vpp, centre = 2, (1.3, 0.7), (12.0, 22.0)
    elif kind in ("resampled", "oblique"):
        zooms = [1.5, 1.2, 4.0] if kind == "resampled" else [1.5, 1.5, 2.5]
        affine = np.diag([*zooms, 1.0])
        if kind == "oblique":
            affine = rotation(12, (1, 2)) @ rotation(-7, (0, 1)) @ affine
        scan = Scan.from_array(np.zeros(native_shape, np.float32) + np.arange(24), affine)
        target, shape = working_grid(scan, 1.5)
        grid = GridMap(scan.affine, scan.data.shape, target, shape)
        step, vpp = (3, (0.9, 1.6)) if kind == "oblique" else (1, (2.0, 1.7))
        centre = (shape[0] / 2.0 - 1.0, shape[1] / 2.0 + 0.5)
    working = native_shape if grid is None else grid.working_shape
    n = min(12, (working[2] - 4) // step)
    indices = np.arange(2, 2 + n * step, step)
    return Slab(
        slices=rng.uniform(-1, 1, (n, HEIGHT, WIDTH)).astype(np.float32),
        slice_indices=indices,
        center=np.asarray(centre),
        voxels_per_pixel=np.asarray(vpp),
        volume_shape=native_shape,
        intensity_range=(0.0, 100.0),
        grid=grid,
    )


def awkward_maps(slab: Slab, seed: int) -> np.ndarray:
    """Maps with an unpredicted slice, a stray NaN and infinities."""
    maps = np.random.default_rng(seed).normal(0, 3, slab.slices.shape).astype(np.float32)
    maps[1] = np.nan
    maps[2, 4, 5] = np.nan
    maps[3, 6, 7], maps[3, 8, 9] = np.inf, -np.inf
    return maps


KINDS = ["axis-aligned", "anisotropic", "resampled", "oblique"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_stencil_equals_the_reference_bit_for_bit(kind):
    slab = make_slab(kind)
    assert (slab.grid is None) == (kind in ("axis-aligned", "anisotropic"))
    stacks = [awkward_maps(slab, 1), slab.slices, np.abs(awkward_maps(slab, 2))]
    got = to_volumes(slab, *stacks)
    for maps, volume in zip(stacks, got, strict=True):
        expected = reference_volume(slab, maps)
        assert volume.dtype == np.float32 and volume.shape == slab.volume_shape
        np.testing.assert_array_equal(volume, expected)
        assert np.isfinite(volume).sum() > 200 and np.isnan(volume).sum() > 200
    np.testing.assert_array_equal(slab.to_volume(stacks[0]), got[0])


@pytest.mark.parametrize("kind", KINDS)
def test_the_mask_equals_the_thresholded_reference(kind):
    slab = make_slab(kind, seed=3)
    seen = (slab.slices > 0.2).astype(np.float32)
    seen[0] = np.nan
    grid = NativeGrid.of(slab)
    mask = to_mask(slab, seen, 0.5, grid)
    expected = np.nan_to_num(reference_volume(slab, seen), nan=-np.inf) > 0.5
    assert mask.dtype == bool and mask.shape == slab.volume_shape and mask.any()
    np.testing.assert_array_equal(mask, expected)


def test_the_reference_agrees_with_scipy_on_the_working_grid():
    """Guard on the reference itself: scipy's linear interpolation, up to float32 rounding."""
    slab = make_slab("anisotropic", seed=5)
    maps = slab.slices
    volume = reference_working(slab, maps)
    nx, ny, _ = slab.working_shape
    xs, ys = np.mgrid[0:nx, 0:ny].astype(np.float64)
    cols = (xs - slab.center[0]) / slab.voxels_per_pixel[0] + (WIDTH - 1) / 2.0
    rows = (HEIGHT - 1) / 2.0 - (ys - slab.center[1]) / slab.voxels_per_pixel[1]
    k = 4
    plane = ndimage.map_coordinates(
        maps[k].astype(np.float64), [rows, cols], order=1, mode="nearest"
    )
    z = int(slab.slice_indices[k])
    inside = np.isfinite(volume[:, :, z])
    assert inside.sum() > 200
    np.testing.assert_allclose(volume[:, :, z][inside], plane[inside], atol=1e-5)


def test_a_slab_never_predicted_maps_to_nan_everywhere():
    for kind in ("axis-aligned", "resampled"):
        slab = make_slab(kind)
        nothing = np.full(slab.slices.shape, np.nan, dtype=np.float32)
        assert np.isnan(to_volumes(slab, nothing)[0]).all()
        assert not to_mask(slab, nothing).any()


def test_maps_of_the_wrong_shape_are_refused():
    slab = make_slab("axis-aligned")
    with pytest.raises(ValueError, match="does not match slab"):
        to_volumes(slab, slab.slices[:, :-1])
    grid = make_slab("resampled").grid
    with pytest.raises(ValueError, match="does not match the working grid"):
        to_scan_grid(grid, np.zeros(grid.native_shape, np.float32))


def test_back_on_the_scan_grid_holes_do_not_spread():
    """A constant with NaN holes stays that constant wherever it comes back at all."""
    grid = make_slab("oblique").grid
    volume = np.full(grid.working_shape, 7.0, dtype=np.float32)
    volume[:, :, :4] = np.nan
    back = to_scan_grid(grid, volume)
    assert back.shape == grid.native_shape
    finite = np.isfinite(back)
    assert finite.mean() > 0.5 and np.isnan(back).any()
    np.testing.assert_allclose(back[finite], 7.0, rtol=1e-6)
