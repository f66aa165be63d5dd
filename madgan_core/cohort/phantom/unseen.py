"""Held-out lesion types that the phantom generator never makes, for out-of-distribution tests.

Each ``apply_<type>(volume_ras, affine, rng) -> (volume, lesion_mask)`` takes
an existing scan's RAS+ volume (as :func:`madgan_core.scans.files.load_scan` returns it)
and its voxel-to-world affine, places the lesion by MNI world coordinates (the
phantoms live in MNI space), and returns a lesioned float32 copy and a boolean
mask on the same grid. Intensities are set relative to the scan's own tissue
levels (measured inside template white matter and ventricles), so the same
code works on T1 and T1c scans of any gain.

Every type puts at least part of its lesion in the axial band the model scores
(MNI z from about -20 to +35 mm); anomalies outside the scored slices are
invisible to it by design.

These types are for reporting only. Nothing in the model, the score modes or
the phantom generator may be tuned on them.

Example:
    >>> from madgan_core.scans.files import load_scan
    >>> scan = load_scan("healthy-001_T1.nii.gz")
    >>> volume, mask = apply_glioma(scan.data, scan.affine, np.random.default_rng(0))
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom.template import load_template

# MNI regions (mm). Deep grey matter: basal ganglia and thalami.
DEEP_GREY_BOX_MM = ((10.0, 30.0), (-22.0, 18.0), (-4.0, 14.0))  # (|x|, y, z)
SCORED_Z_MM = (-20.0, 35.0)


@dataclass(frozen=True)
class _Context:
    """A scan's world coordinates, brain mask, template priors and tissue levels."""

    x: np.ndarray  # MNI mm of every voxel
    y: np.ndarray
    z: np.ndarray
    brain: np.ndarray  # bool
    depth: np.ndarray  # mm to the brain's edge
    wm: np.ndarray  # template probabilities on the scan grid
    gm: np.ndarray
    ventricles: np.ndarray  # template ventricles on the scan grid (bool)
    zooms: np.ndarray  # voxel size (mm) along the three axes
    inv_affine: np.ndarray  # world mm -> voxel
    wm_level: float
    gm_level: float
    csf_level: float


@functools.lru_cache(maxsize=2)
def _template_on_grid(
    affine_key: tuple[float, ...], shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Template white matter, grey matter and ventricles resampled onto a scan grid."""
    affine = np.asarray(affine_key, dtype=float).reshape(4, 4)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    template = load_template(float(np.clip(np.round(zooms.mean()), 1.0, 4.0)))
    maps = (template.wm, template.gm, template.ventricles.astype(np.float32))
    if shape == template.shape and np.allclose(affine, template.affine):
        return maps[0], maps[1], maps[2] > 0.5
    to_template = np.linalg.inv(template.affine) @ affine
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    coords = to_template[:3, :3] @ ijk + to_template[:3, 3:4]
    out = [
        ndimage.map_coordinates(m, coords, order=1, mode="constant").reshape(shape) for m in maps
    ]
    return out[0], out[1], out[2] > 0.5


def _context(volume: np.ndarray, affine: np.ndarray) -> _Context:
    if volume.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {volume.shape}")
    affine = np.asarray(affine, dtype=float)
    shape = tuple(int(s) for s in volume.shape)
    ijk = np.indices(shape, dtype=np.float32)
    world = np.tensordot(affine[:3, :3].astype(np.float32), ijk, axes=1)
    world += affine[:3, 3, None, None, None].astype(np.float32)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    wm, gm, ventricles = _template_on_grid(tuple(affine.ravel().tolist()), shape)

    high = float(np.percentile(volume, 99.5))
    if high <= 0:
        raise ValueError("the volume has no positive intensities")
    brain = ndimage.binary_fill_holes(volume > 0.08 * high)
    brain = ndimage.binary_opening(brain, iterations=1)
    wm_level = float(np.median(volume[brain & (wm > 0.9)])) if (brain & (wm > 0.9)).any() else high
    gm_level = float(np.median(volume[brain & (gm > 0.7)])) if (brain & (gm > 0.7)).any() else high
    vent = brain & ventricles
    # Warps move the ventricles by a few mm: their darker part is the CSF.
    csf_level = float(np.percentile(volume[vent], 20)) if vent.any() else 0.3 * wm_level
    depth = ndimage.distance_transform_edt(brain, sampling=zooms).astype(np.float32)
    return _Context(
        world[0],
        world[1],
        world[2],
        brain,
        depth,
        wm,
        gm,
        ventricles,
        zooms,
        np.linalg.inv(affine),
        wm_level,
        gm_level,
        csf_level,
    )


def _smooth_noise(shape: tuple[int, ...], sigma_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed noise scaled to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return noise / (float(noise.std()) or 1.0)


def _pick(candidates: np.ndarray, rng: np.random.Generator, what: str) -> np.ndarray:
    """One voxel index (3,) drawn uniformly from a boolean map."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        raise ValueError(f"no admissible voxel for the {what}: is the scan in MNI space?")
    return np.array(np.unravel_index(rng.choice(idx), candidates.shape))


def _world(ctx: _Context, voxel: np.ndarray) -> np.ndarray:
    i, j, k = (int(v) for v in voxel)
    return np.array([ctx.x[i, j, k], ctx.y[i, j, k], ctx.z[i, j, k]], dtype=np.float32)


def _blend(
    volume: np.ndarray, weight: np.ndarray, target: np.ndarray | float, brain: np.ndarray
) -> np.ndarray:
    w = np.clip(weight, 0.0, 1.0) * brain
    return (volume * (1.0 - w) + target * w).astype(np.float32)


# --- the lesion types -------------------------------------------------------------------------


def apply_glioma(
    volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A large non-enhancing infiltrative mass in the thalamus/deep grey matter.

    Mildly hypo-intense (below grey matter), homogeneous (grey/white contrast
    lost), with soft irregular margins over about a third of its radius.
    Radius 15-22 mm; centre at MNI x = +-(10..18), y = -22..-8, z = 0..12.
    """
    ctx = _context(volume_ras, affine)
    side = rng.choice([-1.0, 1.0])
    centre = np.array(
        [side * rng.uniform(10, 18), rng.uniform(-22, -8), rng.uniform(0, 12)], dtype=np.float32
    )
    radii = rng.uniform(15.0, 22.0) * rng.uniform(0.8, 1.2, 3)
    rho = np.sqrt(
        ((ctx.x - centre[0]) / radii[0]) ** 2
        + ((ctx.y - centre[1]) / radii[1]) ** 2
        + ((ctx.z - centre[2]) / radii[2]) ** 2
    )
    sigma = 8.0 / float(ctx.zooms.mean())
    rho = rho / (1.0 + 0.15 * _smooth_noise(rho.shape, sigma, rng))
    weight = 1.0 / (1.0 + np.exp(np.clip((rho - 1.0) / 0.1, -50.0, 50.0)))
    weight *= 1.0 - 0.8 * ctx.ventricles  # displaces rather than fills the ventricles
    level = rng.uniform(0.85, 0.93) * ctx.gm_level
    texture = 0.04 * ctx.gm_level * _smooth_noise(rho.shape, 1.0, rng)
    out = _blend(volume_ras, weight, level + texture, ctx.brain)
    return out, (weight > 0.5) & ctx.brain


def apply_sulcal_blood(
    volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Thin hyper-intense streaks filling the sulci of one lateral convexity (subarachnoid-blood-like).

    The scan's own sulcal CSF (dark voxels 1-14 mm under the brain's edge)
    within 20-28 mm of a seed and a 4 mm, roughly axial slab through it is filled with
    signal brighter than white matter (subacute blood on T1). Seed at
    |x| > 35 mm, y = -50..20, z = 0..30.
    """
    ctx = _context(volume_ras, affine)
    side = rng.choice([-1.0, 1.0])
    dark = volume_ras < ctx.csf_level + 0.7 * (ctx.gm_level - ctx.csf_level)
    sulcal = dark & ctx.brain & (ctx.depth >= 1.0) & (ctx.depth <= 14.0) & ~ctx.ventricles
    region = (side * ctx.x > 35) & (ctx.y > -50) & (ctx.y < 20) & (ctx.z > 0) & (ctx.z < 30)
    seed = _world(ctx, _pick(sulcal & region & (ctx.depth <= 6.0), rng, "sulcal blood"))
    # A thin, roughly axial slab through the seed: the sulci cut it in curved lines.
    radial = seed / (np.linalg.norm(seed) or 1.0)
    normal = np.array([0.0, 0.0, 1.0]) + 0.35 * rng.standard_normal(3)
    normal -= (normal @ radial) * radial
    normal /= np.linalg.norm(normal) or 1.0
    dx, dy, dz = ctx.x - seed[0], ctx.y - seed[1], ctx.z - seed[2]
    near = (dx**2 + dy**2 + dz**2) <= rng.uniform(20.0, 28.0) ** 2
    slab = np.abs(normal[0] * dx + normal[1] * dy + normal[2] * dz) <= 2.0
    streak = sulcal & near & slab
    weight = np.clip(ndimage.gaussian_filter(streak.astype(np.float32), 0.5) * 1.6, 0, 1)
    weight = np.maximum(weight, streak)
    level = rng.uniform(1.15, 1.35) * ctx.wm_level
    out = _blend(volume_ras, weight, level, ctx.brain)
    return out, streak


def apply_porencephaly(
    volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A CSF-filled wedge from a lateral ventricle to the cortex, with ex-vacuo enlargement of that ventricle.

    The wedge is narrow (2-3 mm) at the ventricle and wide (14-20 mm, irregular) at the
    surface, running laterally from the ventricle body at MNI z = 8..25 mm;
    the ventricle on that side grows by 2-4 mm within 25 mm of the wedge.
    """
    ctx = _context(volume_ras, affine)
    side = rng.choice([-1.0, 1.0])
    dark = volume_ras < 0.5 * (ctx.gm_level + ctx.csf_level)
    vent = ctx.ventricles & dark & ctx.brain
    apex_region = vent & (side * ctx.x > 6) & (ctx.z > 8) & (ctx.z < 25) & (ctx.y > -30)
    apex = _world(ctx, _pick(apex_region, rng, "porencephaly"))
    direction = np.array([side, rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.5)], dtype=np.float32)
    direction /= np.linalg.norm(direction)
    dx, dy, dz = ctx.x - apex[0], ctx.y - apex[1], ctx.z - apex[2]
    along = direction[0] * dx + direction[1] * dy + direction[2] * dz
    across = np.sqrt(np.maximum(dx**2 + dy**2 + dz**2 - along**2, 0.0))
    length = _distance_to_edge(ctx, apex, direction)
    r0, r1 = rng.uniform(2.0, 3.0), rng.uniform(14.0, 20.0)
    width = r0 + (r1 - r0) * np.clip(along / length, 0.0, 1.0)
    width *= 1.0 + 0.15 * _smooth_noise(width.shape, 4.0 / float(ctx.zooms.mean()), rng)
    voxel = float(ctx.zooms.mean())
    wedge = np.clip((width - across) / voxel + 0.5, 0, 1) * (along >= -voxel) * (along <= length)
    # Ex-vacuo: the same-side ventricle near the wedge grows outward.
    grow = max(rng.uniform(2.0, 4.0), float(ctx.zooms.max()))  # at least one voxel
    near = (dx**2 + dy**2 + dz**2) <= 25.0**2
    side_vent = vent & (side * ctx.x > 0)
    to_vent = ndimage.distance_transform_edt(~side_vent, sampling=ctx.zooms)
    enlarged = np.clip((grow - to_vent) / voxel + 0.5, 0, 1) * near * (side * ctx.x > 0)
    weight = np.maximum(wedge, enlarged) * ~vent  # the existing ventricle keeps its signal
    out = _blend(volume_ras, weight, ctx.csf_level, ctx.brain)
    return out, (weight >= 0.5) & ctx.brain


def _distance_to_edge(ctx: _Context, start: np.ndarray, direction: np.ndarray) -> float:
    """mm from ``start`` along ``direction`` to the first voxel outside the brain (at least 5)."""
    inv = ctx.inv_affine
    for t in np.arange(0.0, 150.0, 0.5 * float(ctx.zooms.min())):
        ijk = np.round(inv[:3, :3] @ (start + t * direction) + inv[:3, 3]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= ctx.brain.shape) or not ctx.brain[tuple(ijk)]:
            return float(max(t, 5.0))
    return 150.0


def apply_midline_shift(
    volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mass effect without a visible mass: one hemisphere pushed 6-10 mm across the midline.

    A smooth displacement along x (Gaussian, centred 5-15 mm off the midline at
    MNI y = -20..10, z = 5..20), tapered to zero at the brain's edge so the
    outline stays. The mask is the tissue displaced by at least 2 mm; unlike
    the other types, intensities change wherever tissue moved, not only there.
    """
    ctx = _context(volume_ras, affine)
    side = rng.choice([-1.0, 1.0])
    centre = np.array(
        [side * rng.uniform(5, 15), rng.uniform(-20, 10), rng.uniform(5, 20)], dtype=np.float32
    )
    sigmas = np.array([rng.uniform(18, 25), rng.uniform(25, 35), rng.uniform(18, 24)])
    amplitude = rng.uniform(6.0, 10.0)
    bump = np.exp(
        -0.5
        * (
            ((ctx.x - centre[0]) / sigmas[0]) ** 2
            + ((ctx.y - centre[1]) / sigmas[1]) ** 2
            + ((ctx.z - centre[2]) / sigmas[2]) ** 2
        )
    )
    depth = ndimage.gaussian_filter(ctx.depth, 2.0)
    taper = np.clip(depth / 15.0, 0.0, 1.0) ** 2 * (3 - 2 * np.clip(depth / 15.0, 0.0, 1.0))
    shift_mm = (-side * amplitude * bump * taper).astype(np.float32)  # push towards -side
    # Pull-back: the voxel at p shows what was at p - u (u along world x).
    shift_vox = ctx.inv_affine[:3, 0][:, None, None, None] * shift_mm[None]
    coords = np.indices(volume_ras.shape, dtype=np.float32) - shift_vox
    out = ndimage.map_coordinates(volume_ras, coords, order=1, mode="nearest").astype(np.float32)
    mask = (np.abs(shift_mm) >= 2.0) & ctx.brain
    return out, mask


def apply_lacunes(
    volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """8-16 tiny (1-2 voxel) CSF-dark dots in the basal ganglia and thalami (lacunes/perivascular spaces).

    Radius 1.5-3 mm, at least 6 mm apart, in deep grey matter at MNI
    |x| = 10..30, y = -22..18, z = -4..14, outside the ventricles.
    """
    ctx = _context(volume_ras, affine)
    (ax0, ax1), (y0, y1), (z0, z1) = DEEP_GREY_BOX_MM
    ax = np.abs(ctx.x)
    box = (ax >= ax0) & (ax <= ax1) & (ctx.y >= y0) & (ctx.y <= y1) & (ctx.z >= z0) & (ctx.z <= z1)
    far_from_vent = ndimage.distance_transform_edt(~ctx.ventricles, sampling=ctx.zooms) > 3.0
    candidates = box & ctx.brain & far_from_vent & (ctx.depth > 15.0)
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        raise ValueError("no admissible voxel for lacunes: is the scan in MNI space?")
    n = int(rng.integers(8, 17))
    centres: list[np.ndarray] = []
    for k in rng.permutation(idx)[: 50 * n]:
        p = _world(ctx, np.unravel_index(k, candidates.shape))
        p = p + rng.uniform(-0.25, 0.25, 3).astype(np.float32) * ctx.zooms.astype(np.float32)
        if all(np.linalg.norm(p - q) >= 6.0 for q in centres):
            centres.append(p)
        if len(centres) == n:
            break
    weight = np.zeros(volume_ras.shape, dtype=np.float32)
    for p in centres:
        r = max(rng.uniform(1.5, 3.0), 0.75 * float(ctx.zooms.max()))  # at least one voxel
        d = np.sqrt((ctx.x - p[0]) ** 2 + (ctx.y - p[1]) ** 2 + (ctx.z - p[2]) ** 2)
        weight = np.maximum(weight, np.clip(1.5 - d / r, 0.0, 1.0))
    level = ctx.csf_level * rng.uniform(0.9, 1.1)
    out = _blend(volume_ras, weight, level, ctx.brain)
    return out, (weight > 0.5) & ctx.brain


LesionFunction = Callable[
    [np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]
]
UNSEEN_TYPES: dict[str, LesionFunction] = {
    "glioma": apply_glioma,
    "sulcal_blood": apply_sulcal_blood,
    "porencephaly": apply_porencephaly,
    "midline_shift": apply_midline_shift,
    "lacunes": apply_lacunes,
}


def apply_unseen(
    kind: str, volume_ras: np.ndarray, affine: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the unseen lesion type ``kind`` (a key of :data:`UNSEEN_TYPES`)."""
    if kind not in UNSEEN_TYPES:
        raise ValueError(f"unseen lesion type must be one of {tuple(UNSEEN_TYPES)}, got {kind!r}")
    return UNSEEN_TYPES[kind](volume_ras, affine, rng)
