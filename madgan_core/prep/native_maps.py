"""The merger: model-space maps back on the scan's voxels, several at once through one stencil.

Scoring runs as MONAI's inferers do: the splitter cuts a slab into windows
(:mod:`madgan_core.prep.windows`), the inferer predicts them and keeps the ℓ2
bookkeeping (:mod:`madgan_core.scoring.reconstruct`), and this module, the merger,
places the per-slice maps back on the scan. It is the one implementation of that
mapping: :meth:`madgan_core.prep.slab.Slab.to_volume` and the scorer's maps, masks and
findings all go through it. The way back has three legs:

1. Model pixels -> working-grid voxels (:class:`NativeGrid`): one bilinear stencil,
   built once per slab, serves every stack; each axial voxel slice of the slab's band
   takes its nearest slab slice. Only the voxels inside the model's field of view are
   interpolated, and the band is written with the slice axis innermost, as the volume
   is laid out.
2. Working grid -> the scan's RAS+ grid (:func:`to_scan_grid`), when the prepare stage
   resampled the scan (``slab.grid``, a :class:`~madgan_core.prep.stages.GridMap`).
3. RAS+ -> the file's own voxel order, when a result is written:
   :meth:`madgan_core.scans.scan.Scan.to_native` (axes permuted and flipped, no
   interpolation), kept with the scan's orientation in the scans layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from madgan_core.prep import device_ops
from madgan_core.prep.stages import GridMap, resample

if TYPE_CHECKING:
    import torch


class SlabGeometry(Protocol):
    """What the merger reads of a slab (:class:`madgan_core.prep.slab.Slab` has it)."""

    slice_indices: np.ndarray
    center: np.ndarray
    voxels_per_pixel: np.ndarray
    volume_shape: tuple[int, int, int]
    grid: GridMap | None

    @property
    def working_shape(self) -> tuple[int, int, int]: ...

    @property
    def n_slices(self) -> int: ...

    @property
    def shape(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class NativeGrid:
    """The map from a slab's model pixels to its working-grid voxels, computed once.

    Attributes:
        inside: ``(nx, ny)`` voxels whose in-plane position falls on the model grid.
        index: ``(4, p)`` flat model-pixel indices of each inside voxel's four neighbours.
        weight: ``(4, p)`` float32 bilinear weights, in the order they are summed.
        z_first: first axial voxel slice of the band the slab covers.
        nearest: for each axial slice of the band, its nearest slab slice.
    """

    inside: np.ndarray
    index: np.ndarray
    weight: np.ndarray
    z_first: int
    nearest: np.ndarray

    @property
    def band(self) -> slice:
        """The axial voxel slices the slab covers."""
        return slice(self.z_first, self.z_first + len(self.nearest))

    def columns(self, first: int) -> slice | np.ndarray:
        """Columns of a stack that starts at column ``first``, one per axial slice of the band."""
        steps = np.diff(self.nearest)
        if len(self.nearest) and np.all(steps == 1):  # one slab slice per voxel slice
            return slice(first + int(self.nearest[0]), first + int(self.nearest[-1]) + 1)
        return first + self.nearest

    @classmethod
    def of(cls, slab: SlabGeometry) -> NativeGrid:
        """The stencil of ``slab`` on its working grid.

        A voxel is inside when its in-plane position lies within half a pixel of the
        model grid; its coordinates are then clipped onto the grid (the edge pixels
        extend to their edges). Along the axis, the band reaches half a slice step
        beyond the first and last slab slices.
        """
        nx, ny, nz = slab.working_shape
        height, width = slab.shape
        xs, ys = np.mgrid[0:nx, 0:ny].astype(np.float64)
        cols = (xs - slab.center[0]) / slab.voxels_per_pixel[0] + (width - 1) / 2.0
        rows = (height - 1) / 2.0 - (ys - slab.center[1]) / slab.voxels_per_pixel[1]
        inside = (rows >= -0.5) & (rows <= height - 0.5) & (cols >= -0.5) & (cols <= width - 0.5)
        r = np.clip(rows[inside], 0, height - 1)
        c = np.clip(cols[inside], 0, width - 1)
        r0 = np.clip(np.floor(r), 0, max(height - 2, 0)).astype(np.intp)
        c0 = np.clip(np.floor(c), 0, max(width - 2, 0)).astype(np.intp)
        fr = (r - r0).astype(np.float32)
        fc = (c - c0).astype(np.float32)
        r1 = np.minimum(r0 + 1, height - 1)
        c1 = np.minimum(c0 + 1, width - 1)
        index = np.stack([r0 * width + c0, r0 * width + c1, r1 * width + c0, r1 * width + c1])
        weight = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc]).astype(
            np.float32
        )
        z_first, z_last = int(slab.slice_indices[0]), int(slab.slice_indices[-1])
        half = (slab.slice_indices[1] - slab.slice_indices[0]) // 2 if slab.n_slices > 1 else 0
        zs = np.arange(max(0, z_first - half), min(nz, z_last + half + 1))
        nearest = np.abs(slab.slice_indices[None, :] - zs[:, None]).argmin(axis=1)
        start = int(zs[0]) if len(zs) else 0
        return cls(inside, index, weight, start, nearest)


def to_volumes(
    slab: SlabGeometry,
    *maps: np.ndarray,
    grid: NativeGrid | None = None,
    device: torch.device | None = None,
) -> list[np.ndarray]:
    """Each ``(n, height, width)`` stack of ``maps`` on the scan's RAS+ voxel grid.

    Args:
        slab: the slab the maps belong to.
        maps: per-slice model-space stacks; a slice that is all NaN has no prediction.
        grid: the slab's stencil, when the caller has built it already.
        device: map them there in torch (:mod:`madgan_core.prep.device_ops`, equal to
            float32 rounding); None: numpy/scipy.

    Returns:
        float32 volumes of ``volume_shape``, NaN outside the field of view, outside the
        slab's band and on slices whose slab slice is all NaN (never predicted). Other
        NaN count as 0 and infinities as the largest float.
    """
    grid = grid or NativeGrid.of(slab)
    if device is not None:
        return [v.cpu().numpy() for v in _volumes_on(slab, maps, grid, device)]
    values, predicted = _band_values(slab, maps, grid)
    n = slab.n_slices
    volumes = []
    weights: list[tuple[np.ndarray, np.ndarray]] = []  # stacks share where they have values
    for i in range(len(maps)):
        volume = np.full(slab.working_shape, np.nan, dtype=np.float32)
        if predicted[i * n : (i + 1) * n].any():
            volume[:, :, grid.band][grid.inside] = values[:, grid.columns(i * n)]
        volumes.append(volume if slab.grid is None else _to_scan_grid(slab.grid, volume, weights))
    return volumes


def to_mask(
    slab: SlabGeometry,
    maps: np.ndarray,
    level: float = 0.5,
    grid: NativeGrid | None = None,
    device: torch.device | None = None,
) -> np.ndarray:
    """``to_volumes(slab, maps)[0] > level`` without the float volume (NaN counts as below).

    ``device``: map it there in torch, as :func:`to_volumes` does.
    """
    grid = grid or NativeGrid.of(slab)
    if device is not None:
        (volume,) = _volumes_on(slab, (maps,), grid, device)
        return (volume.nan_to_num(nan=-float("inf")) > level).cpu().numpy()
    if slab.grid is not None:  # through the float volume and back to the scan's grid
        return np.nan_to_num(to_volumes(slab, maps, grid=grid)[0], nan=-np.inf) > level
    values, _ = _band_values(slab, (maps,), grid)
    mask = np.zeros(slab.volume_shape, dtype=bool)
    mask[:, :, grid.band][grid.inside] = values[:, grid.columns(0)] > level
    return mask


def to_scan_grid(grid: GridMap, volume: np.ndarray) -> np.ndarray:
    """A working-grid volume on the scan's RAS+ grid (linear); NaN where it has no value.

    NaN voxels of ``volume`` (no prediction) are left out of the interpolation rather
    than spread: a scan voxel takes the weighted mean of its valid neighbours, and is
    NaN when less than half of its interpolation weight is valid.
    """
    if tuple(volume.shape) != tuple(grid.working_shape):
        raise ValueError(
            f"volume shape {volume.shape} does not match the working grid {grid.working_shape}"
        )
    return _to_scan_grid(grid, volume, [])


def _to_scan_grid(
    grid: GridMap, volume: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """:func:`to_scan_grid`, reusing the interpolated weight of a volume in ``weights``
    (valid voxels, weight) valid at the same voxels, and adding its own."""
    volume = np.asarray(volume, dtype=np.float32)
    valid = np.isfinite(volume)
    args = (grid.working_affine, grid.native_affine, grid.native_shape, 1, 0.0)
    values = resample(np.where(valid, volume, 0.0), *args)
    weight = next((w for v, w in weights if np.array_equal(v, valid)), None)
    if weight is None:
        weight = resample(valid.astype(np.float32), *args)
        weights.append((valid, weight))
    out = np.full(grid.native_shape, np.nan, dtype=np.float32)
    np.divide(values, weight, out=out, where=weight >= 0.5)
    return out


def _band_values(
    slab: SlabGeometry, maps: tuple[np.ndarray, ...], grid: NativeGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated values ``(inside voxels, len(maps) * n)`` and which slab slices have any.

    Slices that are all NaN (never predicted) come out NaN; other NaN count as 0 and
    infinities as the largest float, as ``np.nan_to_num`` makes them.
    """
    n = slab.n_slices
    expected = (n, *slab.shape)
    # Pixels x slices, the slice axis innermost like the volume's: each of the four
    # gathers picks whole rows, and each voxel's band is written as one run.
    by_pixel = np.empty((expected[1] * expected[2], len(maps) * n), dtype=np.float32)
    for i, m in enumerate(maps):
        if m.shape != expected:
            raise ValueError(f"maps shape {m.shape} does not match slab {expected}")
        by_pixel[:, i * n : (i + 1) * n] = np.asarray(m, dtype=np.float32).reshape(n, -1).T
    predicted = ~np.isnan(by_pixel).all(axis=0)
    by_pixel[:, ~predicted] = 0.0
    if not np.isfinite(by_pixel).all():
        np.nan_to_num(by_pixel, copy=False)
    values = _interpolate(by_pixel, grid)
    values[:, ~predicted] = np.nan
    return values, predicted


def _interpolate(by_pixel: np.ndarray, grid: NativeGrid, chunk: int = 2048) -> np.ndarray:
    """Bilinear values ``(p, slices)`` of the inside voxels, in cache-sized chunks of voxels.

    The four neighbours are weighted in float32 and added in the order of ``grid.index``.
    """
    p = grid.index.shape[1]
    values = np.empty((p, by_pixel.shape[1]), np.float32)
    buf = np.empty((min(chunk, p), by_pixel.shape[1]), np.float32)
    for start in range(0, p, chunk):
        stop = min(p, start + chunk)
        out, tmp = values[start:stop], buf[: stop - start]
        np.take(by_pixel, grid.index[0, start:stop], axis=0, out=out)
        out *= grid.weight[0, start:stop, None]
        for k in range(1, 4):
            np.take(by_pixel, grid.index[k, start:stop], axis=0, out=tmp)
            tmp *= grid.weight[k, start:stop, None]
            out += tmp
    return values


def _volumes_on(
    slab: SlabGeometry, maps: tuple[np.ndarray, ...], grid: NativeGrid, device: torch.device
) -> list[torch.Tensor]:
    """:func:`to_volumes` in torch on ``device``; the volumes stay there."""
    import torch

    n = slab.n_slices
    expected = (n, *slab.shape)
    for m in maps:
        if m.shape != expected:
            raise ValueError(f"maps shape {m.shape} does not match slab {expected}")
    stacked = torch.stack([torch.as_tensor(np.asarray(m, np.float32), device=device) for m in maps])
    by_pixel = stacked.reshape(len(maps) * n, -1).T.contiguous()  # pixels x slices
    predicted = ~torch.isnan(by_pixel).all(dim=0)
    by_pixel = torch.nan_to_num(by_pixel.masked_fill(~predicted, 0.0))
    values = device_ops.interpolate(by_pixel, grid.index, grid.weight)
    values[:, ~predicted] = float("nan")
    inside = torch.as_tensor(grid.inside, device=device)
    any_predicted = predicted.reshape(len(maps), n).any(dim=1).tolist()
    volumes = []
    weights: list[tuple[torch.Tensor, torch.Tensor]] = []
    for i in range(len(maps)):
        volume = torch.full(slab.working_shape, float("nan"), dtype=torch.float32, device=device)
        if any_predicted[i]:
            columns = grid.columns(i * n)
            if not isinstance(columns, slice):
                columns = torch.as_tensor(columns, device=device)
            band = volume[:, :, grid.band]
            band[inside] = values[:, columns]
        volumes.append(
            volume if slab.grid is None else _to_scan_grid_on(slab.grid, volume, weights)
        )
    return volumes


def _to_scan_grid_on(
    grid: GridMap, volume: torch.Tensor, weights: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """:func:`_to_scan_grid` in torch on ``volume``'s device."""
    import torch

    valid = torch.isfinite(volume)
    args = (grid.working_affine, grid.native_affine, grid.native_shape, 0.0)
    values = device_ops.resample(torch.where(valid, volume, 0.0), *args)
    weight = next((w for v, w in weights if torch.equal(v, valid)), None)
    if weight is None:
        weight = device_ops.resample(valid.float(), *args)
        weights.append((valid, weight))
    usable = weight >= 0.5
    return torch.where(usable, values / torch.where(usable, weight, 1.0), float("nan"))
