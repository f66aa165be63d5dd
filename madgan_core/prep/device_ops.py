"""Model-space resampling and the map back to the scan's voxels, in torch on any device.

The same steps as the numpy/scipy path (:mod:`madgan_core.prep.slab`,
:mod:`madgan_core.prep.native_maps`, :func:`madgan_core.prep.stages.resample`), with the
same stencils, filters and edge rules, so results agree to float32 rounding. Stencils
are built in numpy (small: one per model grid) and the volumes move through torch.

Which path runs is chosen by device (:func:`ops_device`): on CUDA the torch path, on the
CPU the numpy/scipy path (bit for bit as before). ``MADGAN_DEVICE_OPS=1`` forces torch
on any device, ``0`` forces numpy/scipy.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

ENV_VAR = "MADGAN_DEVICE_OPS"
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default kernel radius, in sigmas
# Destination voxels interpolated at once by :func:`resample` (bounds its memory).
RESAMPLE_CHUNK = 1 << 22


def ops_device(device: torch.device | str | None) -> torch.device | None:
    """The device to run pre- and post-processing on in torch, or None for numpy/scipy.

    Default: a CUDA ``device`` runs them in torch, anything else in numpy/scipy.
    ``MADGAN_DEVICE_OPS`` set to ``1`` forces torch on ``device`` (any kind), ``0`` forces
    numpy/scipy.
    """
    if device is None:
        return None
    import torch

    device = torch.device(device)
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return None
    if forced in ("1", "true", "yes", "on") or device.type == "cuda":
        return device
    return None


def gaussian_filter(x: torch.Tensor, sigmas: tuple[float, ...], mode: str) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter(x, sigmas, mode=mode)`` for a float32 tensor.

    One 1-D pass per axis in axis order, summed in float64 in scipy's order and each
    rounded to float32, as scipy does; axes with a sigma of (about) 0 are skipped.
    ``mode`` is ``nearest`` or ``reflect``.
    """
    out = x
    for axis, sigma in enumerate(sigmas):
        if sigma > 1e-15:
            out = _filter_axis(out, float(sigma), axis, mode)
    return out


def _filter_axis(x: torch.Tensor, sigma: float, axis: int, mode: str) -> torch.Tensor:
    import torch

    radius = int(TRUNCATE * sigma + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / sigma**2 * taps**2)
    weights /= weights.sum()
    n = x.shape[axis]
    index = torch.as_tensor(_padded_index(n, radius, mode), device=x.device)
    padded = x.index_select(axis, index).double()
    # The centre tap, then each symmetric pair from the outside in (scipy's correlate1d).
    out = padded.narrow(axis, radius, n) * float(weights[radius])
    for j in range(radius, 0, -1):
        pair = padded.narrow(axis, radius - j, n) + padded.narrow(axis, radius + j, n)
        out += pair * float(weights[radius + j])
    return out.float()


def _padded_index(n: int, radius: int, mode: str) -> np.ndarray:
    """Source index of each position of an axis of ``n`` padded by ``radius`` each side."""
    i = np.arange(-radius, n + radius)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":  # d c b a | a b c d | d c b a, repeated
        j = np.mod(i, 2 * n)
        return np.where(j >= n, 2 * n - 1 - j, j)
    raise ValueError(f"unsupported filter mode {mode!r}")


def interp(x: torch.Tensor, xp: np.ndarray, fp: np.ndarray) -> torch.Tensor:
    """``np.interp(x, xp, fp)`` for ``x`` within ``[xp[0], xp[-1]]`` (``xp`` increasing),
    in float64; returns float32."""
    import torch

    xs = torch.as_tensor(np.asarray(xp, np.float64), device=x.device)
    fs = torch.as_tensor(np.asarray(fp, np.float64), device=x.device)
    x = x.double()
    i = torch.searchsorted(xs, x, right=True).clamp_(1, len(xs) - 1)
    x0, f0 = xs[i - 1], fs[i - 1]
    slope = (fs[i] - f0) / (xs[i] - x0)
    return (slope * (x - x0) + f0).float()


def sample_band(
    band: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    voxels_per_pixel: np.ndarray,
    cval: float,
    device: torch.device,
    intensity: tuple[float, float] | None = None,
    as_tensor: bool = False,
) -> np.ndarray | torch.Tensor:
    """:meth:`madgan_core.prep.slab.Slab._sample_band` (order 1) on ``device``.

    Args:
        band: ``(nx, ny, n)`` axial slices.
        x: ``(height, width)`` voxel x coordinate of every model pixel.
        y: the same for y.
        voxels_per_pixel: (x, y) voxel steps per model pixel (sets the anti-alias filter).
        cval: value outside the slices.
        device: where to compute.
        intensity: ``(low, high)``: normalise the band first
            (:func:`madgan_core.prep.slab.normalise_intensity`).
        as_tensor: return the tensor on ``device`` rather than a numpy array.

    Returns:
        ``(n, height, width)`` float32.
    """
    import torch

    planes = torch.as_tensor(np.asarray(band, dtype=np.float32), device=device).permute(2, 0, 1)
    if intensity is not None:
        low, high = intensity
        planes = (planes - float(np.float32(low))) * float(np.float32(2.0 / (high - low))) - 1.0
        planes = planes.clamp_(-1.0, 1.0)
    sigma = np.maximum((np.asarray(voxels_per_pixel, dtype=float) - 1.0) / 2.0, 0.0)
    if np.any(sigma >= 0.25):
        planes = gaussian_filter(planes.contiguous(), (0.0, *sigma), "nearest")
    out = _bilinear(planes.contiguous(), x, y, cval)
    return out if as_tensor else out.cpu().numpy()


def model_slices(
    band: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    voxels_per_pixel: np.ndarray,
    intensity: tuple[float, float],
    device: torch.device,
    landmarks: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`madgan_core.prep.slab.preprocess`'s last steps on ``device``: normalise the
    band to [-1, 1], resample it into model space (-1 outside), clip, and with
    ``landmarks`` (the scan's and the standard ones, ends included) map one onto the other.

    Returns:
        ``(n, height, width)`` float32.
    """
    slices = sample_band(band, x, y, voxels_per_pixel, -1.0, device, intensity, as_tensor=True)
    slices = slices.clamp_(-1.0, 1.0)
    if landmarks is not None:
        slices = interp(slices, *landmarks)
    return slices.cpu().numpy()


def _bilinear(planes: torch.Tensor, x: np.ndarray, y: np.ndarray, cval: float) -> torch.Tensor:
    """:func:`madgan_core.prep.slab._bilinear` on ``planes``' device, same weights and order."""
    import torch

    n, nx, ny = planes.shape
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    x0 = np.clip(np.floor(x), 0, max(nx - 2, 0)).astype(np.int64)
    y0 = np.clip(np.floor(y), 0, max(ny - 2, 0)).astype(np.int64)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    x1 = np.minimum(x0 + 1, nx - 1)
    y1 = np.minimum(y0 + 1, ny - 1)
    index = np.stack([x0 * ny + y0, x0 * ny + y1, x1 * ny + y0, x1 * ny + y1])
    weight = np.stack([(1 - fx) * (1 - fy), (1 - fx) * fy, fx * (1 - fy), fx * fy])
    flat = planes.reshape(n, nx * ny)
    index_t = torch.as_tensor(index.reshape(4, -1), device=planes.device)
    weight_t = torch.as_tensor(weight.reshape(4, -1), device=planes.device)
    out = flat[:, index_t[0]] * weight_t[0]
    for k in range(1, 4):
        out += flat[:, index_t[k]] * weight_t[k]
    out[:, torch.as_tensor(~inside.reshape(-1), device=planes.device)] = cval
    return out.reshape(n, *x.shape)


def interpolate(by_pixel: torch.Tensor, index: np.ndarray, weight: np.ndarray) -> torch.Tensor:
    """:func:`madgan_core.prep.native_maps._interpolate` on ``by_pixel``'s device: bilinear
    values ``(p, slices)`` of the inside voxels, the neighbours added in ``index`` order."""
    import torch

    index_t = torch.as_tensor(index, device=by_pixel.device)
    weight_t = torch.as_tensor(weight, device=by_pixel.device)
    out = by_pixel[index_t[0]] * weight_t[0, :, None]
    for k in range(1, 4):
        out += by_pixel[index_t[k]] * weight_t[k, :, None]
    return out


def resample(
    volume: torch.Tensor,
    src_affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_shape: tuple[int, int, int],
    cval: float = 0.0,
) -> torch.Tensor:
    """:func:`madgan_core.prep.stages.resample` (linear) on ``volume``'s device.

    Downsampled axes are smoothed first; points outside the source's voxel box take
    ``cval``, inside the edge voxels extend to their edges.
    """
    import torch

    src = volume.float()
    to_src = np.linalg.solve(np.asarray(src_affine, float), np.asarray(dst_affine, float))
    linear, offset = to_src[:3, :3], to_src[:3, 3]
    step = np.abs(linear).max(axis=1)
    sigma = np.maximum((step - 1.0) / 2.0, 0.0)
    if np.any(sigma >= 0.25):
        src = gaussian_filter(src, tuple(np.where(sigma >= 0.25, sigma, 0.0)), "nearest")
    same_xy = np.allclose(linear[:2], np.eye(3)[:2], atol=1e-9) and np.allclose(
        offset[:2], 0.0, atol=1e-9
    )
    if (
        same_xy
        and tuple(dst_shape[:2]) == tuple(src.shape[:2])
        and np.allclose(linear[2, :2], 0.0, atol=1e-9)
    ):
        return _resample_z(src, linear[2, 2] * np.arange(dst_shape[2]) + offset[2], cval)
    dev = src.device
    shape = tuple(src.shape)
    flat = src.reshape(-1)
    lin = torch.as_tensor(linear, dtype=torch.float64, device=dev)
    off = torch.as_tensor(offset, dtype=torch.float64, device=dev)
    nx, ny, nz = (int(s) for s in dst_shape)
    out = torch.empty(nx * ny * nz, dtype=torch.float32, device=dev)
    for start in range(0, out.numel(), RESAMPLE_CHUNK):
        stop = min(out.numel(), start + RESAMPLE_CHUNK)
        flat_index = torch.arange(start, stop, device=dev)
        points = torch.stack(
            [flat_index // (ny * nz), (flat_index // nz) % ny, flat_index % nz]
        ).double()
        coords = lin @ points + off[:, None]
        outside = torch.zeros(stop - start, dtype=torch.bool, device=dev)
        lower, frac = [], []
        for axis in range(3):
            c = coords[axis]
            outside |= (c < -0.5) | (c > shape[axis] - 0.5)
            c = c.clamp(0, shape[axis] - 1)
            c0 = c.floor().clamp_(0, max(shape[axis] - 2, 0))
            lower.append(c0.long())
            frac.append(c - c0)
        # In float64, each corner's value times its x, y and z weights, corners summed with
        # z fastest (scipy's map_coordinates, order 1).
        values = torch.zeros(stop - start, dtype=torch.float64, device=dev)
        for corner in range(8):
            bits = [(corner >> (2 - axis)) & 1 for axis in range(3)]
            idx = [
                (lower[a] + bits[a]).clamp_(max=shape[a] - 1) if bits[a] else lower[a]
                for a in range(3)
            ]
            term = flat[(idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]].double()
            for a in range(3):
                term = term * (frac[a] if bits[a] else 1 - frac[a])
            values += term
        values[outside] = cval
        out[start:stop] = values.float()
    return out.reshape(nx, ny, nz)


def _resample_z(src: torch.Tensor, z: np.ndarray, cval: float) -> torch.Tensor:
    """:func:`madgan_core.prep.stages._resample_z` (linear) on ``src``'s device."""
    import torch

    nz = src.shape[2]
    outside = (z < -0.5) | (z > nz - 0.5)
    zc = np.clip(z, 0, nz - 1)
    z0 = np.clip(np.floor(zc), 0, max(nz - 2, 0)).astype(np.int64)
    z1 = np.minimum(z0 + 1, nz - 1)
    f = torch.as_tensor((zc - z0).astype(np.float32), device=src.device)
    out = src[:, :, torch.as_tensor(z0, device=src.device)] * (1 - f)
    out += src[:, :, torch.as_tensor(z1, device=src.device)] * f
    out[:, :, torch.as_tensor(outside, device=src.device)] = cval
    return out
