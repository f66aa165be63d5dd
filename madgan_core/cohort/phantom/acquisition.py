"""Acquisition variants: how a scanner could have stored the same head differently.

Each variant is a pure function ``f(volume, affine, masks=None, ...) -> Acquired``
that returns a new volume, its voxel-to-world affine (RAS mm) and the masks (a dict
of boolean arrays on the volume's grid) carried along. World coordinates stay
consistent: a point of the anatomy keeps its world position, except under
:func:`tilt`, which turns the head in the scanner (the grid stays axis-aligned).

Variants are named on the command line by :func:`parse_variant`:
``thick5``, ``aniso``, ``crop-top20``, ``crop-bottom30``, ``bias0.3``, ``tilt15``
(``tilt-10y``: 10 degrees the other way about the y axis), ``reorient-LPI``,
``sagittal`` (``sagittal5``: 5 mm sagittal slices).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import nibabel as nib
import numpy as np
from scipy import ndimage

WORLD_AXES = "xyz"


class Acquired(NamedTuple):
    volume: np.ndarray
    affine: np.ndarray
    masks: dict[str, np.ndarray]


def _masks(masks: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    return {} if masks is None else {k: np.asarray(m, dtype=bool) for k, m in masks.items()}


def voxel_axis(affine: np.ndarray, world_axis: str) -> int:
    """The voxel axis that runs most nearly along world axis ``x``, ``y`` or ``z``."""
    row = np.abs(np.asarray(affine)[WORLD_AXES.index(world_axis), :3])
    return int(np.argmax(row / np.linalg.norm(affine[:3, :3], axis=0)))


def _resample_axis(
    volume: np.ndarray, affine: np.ndarray, axis: int, step: float, offset: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` positions ``offset + k * step`` (old voxel units) along ``axis`` (linear)."""
    pos = offset + step * np.arange(n)
    lo = np.clip(np.floor(pos).astype(np.intp), 0, volume.shape[axis] - 1)
    hi = np.clip(lo + 1, 0, volume.shape[axis] - 1)
    w = (pos - lo).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
    out = np.take(volume, lo, axis=axis) * (1 - w) + np.take(volume, hi, axis=axis) * w
    new = np.array(affine, dtype=float)
    new[:3, 3] = new[:3, 3] + new[:3, axis] * offset
    new[:3, axis] = new[:3, axis] * step
    return out.astype(np.float32), new


def thick_slices(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    mm: float = 5.0,
    world_axis: str = "z",
) -> Acquired:
    """Slices ``mm`` thick along ``world_axis``: each new slice averages its slab, one every ``mm``.

    Masks are averaged alike and kept where they cover at least half the slab.
    """
    axis = voxel_axis(affine, world_axis)
    spacing = float(np.linalg.norm(affine[:3, axis]))
    step = mm / spacing
    if step < 1.0:
        raise ValueError(f"slice thickness {mm} mm is finer than the voxel size {spacing:.3g} mm")
    n = int(np.floor(volume.shape[axis] / step))
    if n < 1:
        raise ValueError(f"the volume is thinner than one {mm} mm slice")
    offset = (step - 1.0) / 2.0  # the centre of slab k, which covers voxels [k*step, (k+1)*step)

    def slab(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        smooth = ndimage.uniform_filter1d(
            np.asarray(a, dtype=np.float32), max(1, int(round(step))), axis=axis, mode="nearest"
        )
        return _resample_axis(smooth, affine, axis, step, offset, n)

    out, new_affine = slab(volume)
    return Acquired(out, new_affine, {k: slab(m)[0] >= 0.5 for k, m in _masks(masks).items()})


def _zoom_axis(volume, affine, axis, mm, masks):
    spacing = float(np.linalg.norm(affine[:3, axis]))
    step = mm / spacing
    n = int(np.floor((volume.shape[axis] - 1) / step)) + 1
    out, new = _resample_axis(np.asarray(volume, np.float32), affine, axis, step, 0.0, n)
    carried = {
        k: _resample_axis(m.astype(np.float32), affine, axis, step, 0.0, n)[0] >= 0.5
        for k, m in masks.items()
    }
    return out, new, carried


def anisotropic(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    in_plane: float = 0.5,
    through: float = 5.0,
    world_axis: str = "z",
) -> Acquired:
    """``through`` mm thick slices along ``world_axis`` with ``in_plane`` mm pixels (linear resampling)."""
    volume, affine, carried = thick_slices(volume, affine, masks, through, world_axis)
    slice_axis = voxel_axis(affine, world_axis)
    for axis in range(3):
        if axis != slice_axis:
            volume, affine, carried = _zoom_axis(volume, affine, axis, in_plane, carried)
    return Acquired(volume, affine, carried)


def crop_field_of_view(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    top_mm: float = 0.0,
    bottom_mm: float = 0.0,
    reference: np.ndarray | None = None,
) -> Acquired:
    """Partial coverage: cut ``top_mm`` off the top and ``bottom_mm`` off the bottom of the brain.

    The brain's superior-inferior extent comes from ``reference`` (a mask), else
    ``masks["brain"]``, else the non-zero voxels. Voxel slices beyond the cuts are dropped.
    """
    masks = _masks(masks)
    ref = reference if reference is not None else masks.get("brain", volume > 0)
    if not np.any(ref):
        raise ValueError("cannot crop the field of view: the reference mask is empty")
    axis = voxel_axis(affine, "z")
    up = affine[2, axis] > 0  # index grows towards superior
    along = np.flatnonzero(np.any(ref, axis=tuple(a for a in range(3) if a != axis)))
    vox_mm = float(np.linalg.norm(affine[:3, axis]))
    first, last = int(along.min()), int(along.max())
    cut_hi, cut_lo = (top_mm, bottom_mm) if up else (bottom_mm, top_mm)
    lo = first + int(round(cut_lo / vox_mm)) if cut_lo > 0 else 0
    hi = last - int(round(cut_hi / vox_mm)) if cut_hi > 0 else volume.shape[axis] - 1
    if hi < lo:
        raise ValueError("the crop removes the whole brain")
    index = [slice(None)] * 3
    index[axis] = slice(lo, hi + 1)
    new = np.array(affine, dtype=float)
    new[:3, 3] = new[:3, 3] + new[:3, axis] * lo
    key = tuple(index)
    return Acquired(volume[key].copy(), new, {k: m[key].copy() for k, m in masks.items()})


def bias_field(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    strength: float = 0.3,
    seed: int = 0,
) -> Acquired:
    """Multiply by a smooth field ``exp(b)``, ``|b| <= strength``: a random gradient plus a bowl."""
    rng = np.random.default_rng(seed)
    shape = volume.shape
    idx = [
        np.arange(n, dtype=np.float32).reshape([-1 if a == i else 1 for a in range(3)])
        for i, n in enumerate(shape)
    ]
    centre = affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    radius = float(np.linalg.norm(affine[:3, :3] @ np.asarray(shape))) / 2.0 or 1.0
    world = [sum(affine[c, i] * idx[i] for i in range(3)) - centre[c] for c in range(3)]
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    linear = sum(direction[c] * world[c] for c in range(3)) / radius
    bowl = sum(w**2 for w in world) / radius**2
    log_field = linear + rng.uniform(-1.0, 1.0) * (bowl - float(bowl.mean()))
    log_field *= strength / (float(np.abs(log_field).max()) or 1.0)
    out = (volume * np.exp(log_field)).astype(np.float32)
    return Acquired(out, np.array(affine, dtype=float), _masks(masks))


def rotation_matrix(degrees: float, world_axis: str) -> np.ndarray:
    """3x3 rotation by ``degrees`` about world axis ``x``, ``y`` or ``z`` (right-handed)."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i = WORLD_AXES.index(world_axis)
    j, k = (i + 1) % 3, (i + 2) % 3
    rot = np.eye(3)
    rot[j, j], rot[j, k], rot[k, j], rot[k, k] = c, -s, s, c
    return rot


def tilt(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    degrees: float = 15.0,
    world_axis: str = "x",
    centre_mm: np.ndarray | None = None,
) -> Acquired:
    """The head turned ``degrees`` about ``world_axis`` through ``centre_mm`` (default: the grid's
    centre) in an unchanged, axis-aligned grid: content moves, the affine does not.

    A point at world ``p`` moves to ``R (p - c) + c`` (:func:`rotation_matrix`).
    """
    affine = np.array(affine, dtype=float)
    rot = rotation_matrix(degrees, world_axis)
    if centre_mm is None:
        centre_mm = affine[:3, :3] @ ((np.asarray(volume.shape) - 1) / 2.0) + affine[:3, 3]
    centre_mm = np.asarray(centre_mm, dtype=float)
    # Output voxel -> world -> back-rotated world -> input voxel, as one affine.
    back = np.eye(4)
    back[:3, :3] = rot.T
    back[:3, 3] = centre_mm - rot.T @ centre_mm
    pull = np.linalg.inv(affine) @ back @ affine

    def turn(a: np.ndarray, order: int) -> np.ndarray:
        return ndimage.affine_transform(
            np.asarray(a, dtype=np.float32), pull[:3, :3], pull[:3, 3], order=order, cval=0.0
        )

    carried = {k: turn(m, 1) >= 0.5 for k, m in _masks(masks).items()}
    return Acquired(turn(volume, 1), affine, carried)


def reorient(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    codes: str = "LPI",
) -> Acquired:
    """The same image stored in voxel order ``codes`` (e.g. ``LPI``, ``ASL``; nibabel axis codes)."""
    codes = codes.upper()
    if (
        sorted(c for c in codes.translate(str.maketrans("LPI", "RAS"))) != ["A", "R", "S"]
        or len(codes) != 3
    ):
        raise ValueError(f"orientation codes must name each of R/L, A/P, S/I once, got {codes!r}")
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(tuple(codes))
    )
    shape = volume.shape
    new = np.asarray(affine, dtype=float) @ nib.orientations.inv_ornt_aff(transform, shape)

    def turn(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(nib.orientations.apply_orientation(a, transform))

    return Acquired(turn(volume), new, {k: turn(m) for k, m in _masks(masks).items()})


def sagittal_acquisition(
    volume: np.ndarray,
    affine: np.ndarray,
    masks: dict[str, np.ndarray] | None = None,
    mm: float | None = None,
    codes: str = "PIR",
) -> Acquired:
    """Sagittal slices (``mm`` thick when given) stored sagittal-last, in voxel order ``codes``."""
    if mm is not None:
        volume, affine, masks = thick_slices(volume, affine, masks, mm, world_axis="x")
    return reorient(volume, affine, masks, codes)


Variant = Callable[..., Acquired]
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SPECS: tuple[tuple[str, Callable[[re.Match], Variant]], ...] = (
    (rf"thick{_NUMBER}", lambda m: lambda v, a, k, s: thick_slices(v, a, k, float(m[1]))),
    (r"aniso", lambda m: lambda v, a, k, s: anisotropic(v, a, k)),
    (
        rf"crop-top{_NUMBER}",
        lambda m: lambda v, a, k, s: crop_field_of_view(v, a, k, top_mm=float(m[1])),
    ),
    (
        rf"crop-bottom{_NUMBER}",
        lambda m: lambda v, a, k, s: crop_field_of_view(v, a, k, bottom_mm=float(m[1])),
    ),
    (rf"bias{_NUMBER}", lambda m: lambda v, a, k, s: bias_field(v, a, k, float(m[1]), seed=s)),
    (
        rf"tilt{_NUMBER}([xyz]?)",
        lambda m: lambda v, a, k, s: tilt(v, a, k, float(m[1]), m[2] or "x"),
    ),
    (r"reorient-([RLAPSIrlapsi]{3})", lambda m: lambda v, a, k, s: reorient(v, a, k, m[1])),
    (
        rf"sagittal{_NUMBER}?",
        lambda m: lambda v, a, k, s: sagittal_acquisition(v, a, k, float(m[1]) if m[1] else None),
    ),
)
VARIANT_HELP = (
    "thick<MM>, aniso, crop-top<MM>, crop-bottom<MM>, bias<STRENGTH>, tilt<DEG>[x|y|z], "
    "reorient-<CODES>, sagittal[<MM>]"
)


def parse_variant(text: str) -> Callable[[np.ndarray, np.ndarray, dict, int], Acquired]:
    """The variant a name stands for, as ``f(volume, affine, masks, seed)`` (see the module doc).

    Raises:
        ValueError: the name matches no variant.
    """
    for pattern, build in _SPECS:
        match = re.fullmatch(pattern, text.strip())
        if match:
            return build(match)
    raise ValueError(f"unknown acquisition variant {text!r}; use one of: {VARIANT_HELP}")
