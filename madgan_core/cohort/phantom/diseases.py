"""Disease models on the template: AD-like atrophy, metastases and other focal lesions.

Atrophy is a pull-back velocity field (ventricles expand, hippocampi shrink)
composed with the healthy warp, plus grey matter turned CSF-like at sulcal
edges. Focal lesions are painted on the template intensities before the warp,
so the one resampling pass carries them with the anatomy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom.deform import ControlGrid
from madgan_core.cohort.phantom.healthy import Anatomy
from madgan_core.cohort.phantom.template import Template

CSF_LEVEL = 0.24
SUBTYPES = ("infarct", "cyst", "haemorrhage", "wm_lesions")

# Mean extra atrophy per AD stage (CDR 0.5, 1, 2 analogues) added to healthy variation.
AD_STAGE_EFFECT = {
    1: {"ventricle_mm": 1.0, "hippocampus_mm": 0.6, "cortical_atrophy": 0.12},
    2: {"ventricle_mm": 2.6, "hippocampus_mm": 1.3, "cortical_atrophy": 0.35},
    3: {"ventricle_mm": 4.6, "hippocampus_mm": 2.2, "cortical_atrophy": 0.6},
}


@dataclass
class Lesion:
    kind: str
    centre_mm: tuple[float, float, float]
    radius_mm: float

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "centre_mm": [round(c, 2) for c in self.centre_mm],
            "radius_mm": round(self.radius_mm, 2),
        }


@dataclass
class Painted:
    """Template-space intensities with lesions painted in, and their mask."""

    t1: np.ndarray
    mask: np.ndarray
    lesions: list[Lesion] = field(default_factory=list)


def apply_ad_stage(anatomy: Anatomy, stage: int, rng: np.random.Generator) -> Anatomy:
    """Add stage-dependent atrophy (with between-subject spread) to a healthy anatomy."""
    if stage not in AD_STAGE_EFFECT:
        raise ValueError(f"AD stage must be 1, 2 or 3, got {stage}")
    eff = AD_STAGE_EFFECT[stage]
    spread = rng.uniform(0.6, 1.4, 3)
    anatomy.ventricle_mm += eff["ventricle_mm"] * spread[0]
    anatomy.hippocampus_mm += eff["hippocampus_mm"] * spread[1]
    anatomy.cortical_atrophy += eff["cortical_atrophy"] * spread[2]
    return anatomy


@functools.lru_cache(maxsize=4)
def _unit_atrophy_fields(template: Template) -> tuple[np.ndarray, np.ndarray]:
    """Coarse unit pull-back velocities (3, cx, cy, cz) in template voxels: ventricle growth, hippocampal shrink."""
    v = template.voxel_mm
    grid = ControlGrid(template.shape, v)
    out = []
    for region, sigma_mm, sign in (
        (template.ventricles.astype(np.float32), 5.0, 1.0),
        (template.hippocampus.astype(np.float32), 4.0, -1.0),
    ):
        smooth = ndimage.gaussian_filter(region, sigma_mm / v)
        grad = np.stack(np.gradient(smooth))
        coarse = np.stack(
            [ndimage.map_coordinates(g, grid.identity, order=1, mode="nearest") for g in grad]
        )
        peak = float(np.sqrt((coarse**2).sum(axis=0)).max()) or 1.0
        out.append((sign * coarse / peak).astype(np.float32))
    return out[0], out[1]


def atrophy_velocity(
    template: Template, grid: ControlGrid, anatomy: Anatomy, rng: np.random.Generator
) -> np.ndarray:
    """Pull-back velocity (template voxels) for ventricle expansion and hippocampal shrink."""
    vent, hippo = _unit_atrophy_fields(template)
    # Mild left/right asymmetry, as atrophy is rarely symmetric.
    x = grid.identity[0] / max(grid.shape[0] - 1, 1) - 0.5
    asym = 1.0 + rng.uniform(-0.25, 0.25) * np.tanh(8 * x)
    vel = vent * (anatomy.ventricle_mm / template.voxel_mm) + hippo * (
        max(anatomy.hippocampus_mm, -0.5) / template.voxel_mm
    )
    return (vel * asym).astype(np.float32)


def cortical_atrophy(
    t1: np.ndarray, template: Template, anatomy: Anatomy, modulation: np.ndarray
) -> np.ndarray:
    """Turn sulcal-edge grey matter (and the medial temporal lobe) towards CSF: widened sulci."""
    k = float(np.clip(anatomy.cortical_atrophy, 0.0, 1.2))
    kh = float(np.clip(anatomy.hippocampus_mm / 4.0, 0.0, 0.6))
    if k <= 0 and kh <= 0:
        return t1
    w = np.clip(
        k * template.cortex_edge * modulation + kh * template.hippocampus * template.cortex_edge,
        0.0,
        0.95,
    )
    return (t1 * (1.0 - w) + CSF_LEVEL * w * template.mask).astype(np.float32)


# --- focal lesions ----------------------------------------------------------------------------


def _pick_centres(
    weight: np.ndarray, n: int, rng: np.random.Generator, min_dist_vox: float
) -> list[np.ndarray]:
    """Up to ``n`` voxel centres drawn with probability ~ weight**2, at least ``min_dist_vox`` apart."""
    flat = np.clip(weight, 0, None).ravel().astype(np.float64) ** 2
    cdf = np.cumsum(flat)
    if cdf[-1] <= 0:
        raise ValueError("no admissible voxel for a lesion")
    draws = np.searchsorted(cdf, rng.random(50 * n) * cdf[-1], side="right")
    chosen: list[np.ndarray] = []
    for idx in np.minimum(draws, flat.size - 1):
        c = np.array(np.unravel_index(idx, weight.shape), dtype=float)
        if all(np.linalg.norm(c - o) >= min_dist_vox for o in chosen):
            chosen.append(c)
        if len(chosen) == n:
            break
    return chosen


def _local(template: Template, centre: np.ndarray, extent_vox: float):
    """Bounding-box slices around ``centre`` and the offsets (3, bx, by, bz) from it in mm."""
    lo = np.maximum(np.floor(centre - extent_vox).astype(int), 0)
    hi = np.minimum(np.ceil(centre + extent_vox).astype(int) + 1, template.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    axes = [
        (np.arange(a, b) - c) * template.voxel_mm for a, b, c in zip(lo, hi, centre, strict=True)
    ]
    d = np.stack(np.meshgrid(*axes, indexing="ij"))
    return sl, d


def _ellipsoid_radius(d: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Normalised radius of a randomly oriented, slightly lumpy ellipsoid (1 at its surface)."""
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    axes = radius * rng.uniform(0.8, 1.2, 3)
    local = np.tensordot(q.T, d, axes=1)
    rho = np.sqrt(sum((local[i] / axes[i]) ** 2 for i in range(3)))
    dirs = local / np.maximum(np.linalg.norm(local, axis=0), 1e-6)
    k = rng.standard_normal(3)
    k /= np.linalg.norm(k)
    lumps = 1.0 + 0.08 * np.sin(3.0 * np.tensordot(k, dirs, axes=1) + rng.uniform(0, 2 * np.pi))
    return rho / lumps


def _soft(rho: np.ndarray, edge: float) -> np.ndarray:
    """1 inside rho < 1, falling to 0 over ``edge`` (in rho units)."""
    return np.clip((1.0 - rho) / max(edge, 1e-3) + 0.5, 0.0, 1.0)


def _centre_mm(template: Template, c: np.ndarray) -> tuple[float, float, float]:
    mm = template.affine[:3, :3] @ c + template.affine[:3, 3]
    return (float(mm[0]), float(mm[1]), float(mm[2]))


def paint_metastases(
    t1: np.ndarray, template: Template, rng: np.random.Generator, n: int | None = None
) -> Painted:
    """1-5 ring-enhancing lesions (bright rim, necrotic core) with hypointense oedema at the grey/white junction."""
    v = template.voxel_mm
    n = int(rng.integers(1, 6)) if n is None else n
    radii = np.sort(rng.uniform(3.0, 15.0, n))[::-1]
    out = t1.copy()
    mask = np.zeros(template.shape, dtype=bool)
    lesions = []
    centres = _pick_centres(template.junction, n, rng, min_dist_vox=25.0 / v)
    for c, r in zip(centres, radii, strict=False):
        oedema_factor = rng.uniform(1.6, 2.8)
        sl, d = _local(template, c, r * oedema_factor * 1.3 / v)
        rho = _ellipsoid_radius(d, r, rng)
        edge = v / r
        inside = _soft(rho, edge)
        rim_width = max(1.5, 0.3 * r) / r
        necrotic = r >= 5.0
        core = _soft(rho / (1.0 - rim_width), edge) if necrotic else np.zeros_like(rho)
        oedema = np.exp(-((np.maximum(rho - 1.0, 0) / (oedema_factor - 1.0)) ** 2) * 2.0) * (
            rho >= 1.0
        )
        wm = template.wm[sl] + 0.3 * template.gm[sl]
        local = out[sl] * (1.0 - 0.4 * oedema * np.clip(wm, 0, 1))
        rim_level = rng.uniform(1.15, 1.45)
        core_level = rng.uniform(0.3, 0.45) if necrotic else rim_level
        lesion = rim_level * (inside - core) + core_level * core
        local = local * (1.0 - inside) + lesion
        out[sl] = np.where(template.mask[sl], local, out[sl])
        mask[sl] |= (inside > 0.5) & template.mask[sl]
        lesions.append(Lesion("metastasis", _centre_mm(template, c), float(r)))
    return Painted(out.astype(np.float32), mask, lesions)


def paint_wm_lesions(
    t1: np.ndarray,
    template: Template,
    rng: np.random.Generator,
    n: int,
    radius_mm: tuple[float, float] = (2.5, 7.0),
    kind: str = "wm_lesion",
) -> Painted:
    """Up to ``n`` small hypo-intense periventricular white-matter lesions (radius in ``radius_mm``)."""
    v = template.voxel_mm
    out = t1.copy()
    mask = np.zeros(template.shape, dtype=bool)
    lesions: list[Lesion] = []
    near_vent = template.ventricle_distance
    weight = np.clip(template.wm - 0.6, 0, None) * (near_vent < 18) * (near_vent > 2)
    for c in _pick_centres(weight, n, rng, min_dist_vox=6.0 / v):
        r = rng.uniform(*radius_mm)
        sl, d = _local(template, c, r * 1.6 / v)
        inside = _soft(_ellipsoid_radius(d, r, rng), v / r)
        level = rng.uniform(0.32, 0.48)
        out[sl] = np.where(template.mask[sl], out[sl] * (1 - inside) + level * inside, out[sl])
        mask[sl] |= (inside > 0.5) & template.mask[sl]
        lesions.append(Lesion(kind, _centre_mm(template, c), float(r)))
    return Painted(out, mask, lesions)


def paint_various(
    t1: np.ndarray, template: Template, rng: np.random.Generator, subtype: str
) -> Painted:
    """One of :data:`SUBTYPES`, painted on T1c-like template intensities."""
    if subtype not in SUBTYPES:
        raise ValueError(f"subtype must be one of {SUBTYPES}, got {subtype!r}")
    v = template.voxel_mm
    out = t1.copy()
    mask = np.zeros(template.shape, dtype=bool)
    lesions: list[Lesion] = []
    if subtype == "wm_lesions":
        return paint_wm_lesions(t1, template, rng, int(rng.integers(5, 16)))

    if subtype == "infarct":
        # Lateral cerebral cortex (middle cerebral artery territory), not cerebellum or vertex.
        x, y, z = template.voxel_mm_grids()
        territory = (np.abs(x) > 25) & (z > -10) & (z < 45) & (y > -70) & (y < 40)
        weight = template.gm * (template.depth > 3) * (template.depth < 10) * territory
        c = _pick_centres(weight, 1, rng, 0)[0]
        r = rng.uniform(8.0, 14.0)
        length = rng.uniform(15.0, 28.0)
        centre_vox = (np.asarray(template.shape) - 1) / 2.0
        normal = (c - centre_vox) / (np.linalg.norm(c - centre_vox) or 1.0)
        sl, d = _local(template, c, (length + r) / v)
        along = np.tensordot(normal, d, axes=1)  # mm outward from the seed
        across = np.sqrt(np.maximum((d**2).sum(axis=0) - along**2, 0.0))
        # Wedge: widest at the cortical surface, narrowing towards its apex in the white matter.
        t = np.clip((along + length) / (length + r), 0.0, 1.0)
        rho = np.maximum(across / (r * np.maximum(t, 1e-3)), np.where(along > r, 9.0, 0.0))
        rho = np.where(along < -length, 9.0, rho)
        inside = _soft(rho, v / r) * (template.gm[sl] + template.wm[sl] > 0.2)
        level = rng.uniform(0.3, 0.4)
        out[sl] = np.where(template.mask[sl], out[sl] * (1 - inside) + level * inside, out[sl])
        mask[sl] |= inside > 0.5
        lesions.append(Lesion("infarct", _centre_mm(template, c), float(r)))
        return Painted(out, mask, lesions)

    r = rng.uniform(4.0, 12.0) if subtype == "cyst" else rng.uniform(5.0, 15.0)
    depth = template.depth
    weight = (template.wm + 0.5 * template.gm) * (depth > r + 4) * ~template.ventricles
    c = _pick_centres(weight, 1, rng, 0)[0]
    sl, d = _local(template, c, r * 2.2 / v)
    rho = _ellipsoid_radius(d, r, rng)
    inside = _soft(rho, v / r)
    if subtype == "cyst":
        lesion = np.full_like(rho, CSF_LEVEL * rng.uniform(0.8, 1.1))
        local = out[sl] * (1 - inside) + lesion * inside
    else:
        tex = ndimage.gaussian_filter(rng.standard_normal(rho.shape).astype(np.float32), 1.5 / v)
        tex /= float(tex.std()) or 1.0
        lesion = rng.uniform(1.1, 1.35) + 0.15 * tex
        rim = np.exp(-(((rho - 1.0) / 0.12) ** 2))  # haemosiderin: dark rim
        oedema = np.exp(-((np.maximum(rho - 1.0, 0) / 0.6) ** 2)) * (rho >= 1.0)
        local = out[sl] * (1 - 0.25 * oedema) * (1 - inside) + lesion * inside
        local = local * (1 - 0.5 * rim)
    out[sl] = np.where(template.mask[sl], local, out[sl])
    mask[sl] |= (inside > 0.5) & template.mask[sl]
    lesions.append(Lesion(subtype, _centre_mm(template, c), float(r)))
    return Painted(out.astype(np.float32), mask, lesions)
