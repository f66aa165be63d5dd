"""Trilinear sampling of a volume at points given in its voxel coordinates (torch).

The values are scipy's ``map_coordinates(order=1, mode="grid-constant")``: neighbours
beyond the volume's edge voxels count as ``cval``. ``torch.nn.functional.grid_sample`` computes
them on torch's threads, each point from its own eight neighbours, so the result does not
depend on the thread count.
"""

from __future__ import annotations

import numpy as np

# Points sampled per grid_sample call (bounds the grid's memory: 12 bytes a point).
CHUNK_POINTS = 1 << 22


def _source(volume: np.ndarray, cval: float):
    import torch

    source = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))
    if cval != 0.0:
        source = source - np.float32(cval)  # zero padding then stands for cval
    return source[None, None]


def _sample(source, grid, cval: float) -> np.ndarray:
    """grid_sample of ``source`` at ``grid`` (normalised, last axis W, H, D), plus ``cval``."""
    import torch

    values = torch.nn.functional.grid_sample(
        source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    out = values.view(-1).numpy()
    if cval != 0.0:
        out += np.float32(cval)
    return out


def _normaliser(shape: tuple[int, ...]) -> np.ndarray:
    """Per axis, the scale from voxel coordinates to grid_sample's [-1, 1]."""
    return 2.0 / np.maximum(np.asarray(shape[:3], dtype=np.float64) - 1.0, 1.0)


def sample_mapped(
    volume: np.ndarray, index: np.ndarray, voxel_map: np.ndarray, cval: float = 0.0
) -> np.ndarray:
    """float32 trilinear values of ``volume`` at ``voxel_map @ index`` for integer voxel
    indices ``index`` ``(n, 3)`` of another grid."""
    import torch

    source = _source(volume, cval)
    # grid_sample's last axis runs (W, H, D): the volume's axes in reverse.
    scale = _normaliser(volume.shape)[::-1, None]
    linear = np.asarray(voxel_map, dtype=np.float64)[:3][::-1] * scale
    offset = torch.from_numpy(np.ascontiguousarray(linear[:, 3] - 1.0))
    matrix = torch.from_numpy(np.ascontiguousarray(linear[:, :3].T))
    out = np.empty(len(index), dtype=np.float32)
    for start in range(0, len(index), CHUNK_POINTS):
        chunk = torch.from_numpy(np.asarray(index[start : start + CHUNK_POINTS])).double()
        grid = torch.addmm(offset, chunk, matrix).float()
        out[start : start + len(chunk)] = _sample(source, grid.view(1, 1, 1, -1, 3), cval)
    return out


def sample_affine(
    volume: np.ndarray,
    voxel_map: np.ndarray,
    shape: tuple[int, int, int],
    cval: float = 0.0,
    box: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """``volume`` resampled onto a grid of ``shape`` whose voxel ``v`` lies at
    ``voxel_map @ v`` in ``volume``'s voxels (float32; ``cval`` outside the volume).

    ``box``: the part of the output where values may differ from ``cval``; the rest is
    ``cval`` without being sampled.
    """
    import torch

    out = np.full(shape, cval, dtype=np.float32)
    box = box or tuple(slice(0, n) for n in shape)
    sizes = [s.stop - s.start for s in box]
    if min(sizes) <= 0:
        return out
    scale = _normaliser(volume.shape)
    grid = torch.zeros((1, *sizes, 3), dtype=torch.float32)
    for component, axis in enumerate((2, 1, 0)):  # W, H, D
        row = np.asarray(voxel_map, dtype=np.float64)[axis] * scale[axis]
        terms = []
        for k, s in enumerate(box):  # each output axis' share, in float64, then float32
            t = row[k] * np.arange(s.start, s.stop, dtype=np.float64)
            if k == 0:
                t = t + (row[3] - 1.0)
            view = [1, 1, 1]
            view[k] = -1
            terms.append(torch.from_numpy(t.astype(np.float32)).view(view))
        grid[0, ..., component] = terms[0] + terms[1] + terms[2]
    out[box] = _sample(_source(volume, cval), grid, cval).reshape(sizes)
    return out


def covering_box(
    voxel_map: np.ndarray, source_box: np.ndarray, shape: tuple[int, int, int]
) -> tuple[slice, slice, slice]:
    """The output voxels whose sample points may fall within one voxel of ``source_box``
    (``(2, 3)``: first and last source voxel, inclusive) under ``voxel_map``."""
    inverse = np.linalg.inv(np.asarray(voxel_map, dtype=np.float64))
    lo, hi = np.asarray(source_box, dtype=np.float64) + [[-1.0], [1.0]]
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
    mapped = inverse[:3, :3] @ corners + inverse[:3, 3:4]
    first = np.clip(np.floor(mapped.min(axis=1)) - 1, 0, shape).astype(int)
    last = np.clip(np.ceil(mapped.max(axis=1)) + 2, 0, shape).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(first, last, strict=True))
