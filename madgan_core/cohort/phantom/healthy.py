"""Healthy between-subject variation: shape, pose, and scanner-like intensity effects."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom.deform import (
    ControlGrid,
    affine_pullback,
    exp_velocity,
    random_velocity,
)
from madgan_core.cohort.phantom.template import CHOROID_CENTRES_MM, Template


@dataclass
class Anatomy:
    """Per-subject anatomical parameters (drawn from the subject's anatomy generator)."""

    rotation_deg: np.ndarray
    scale: np.ndarray
    shift_mm: np.ndarray
    ventricle_mm: float  # signed ventricle expansion (negative: smaller ventricles)
    hippocampus_mm: float  # hippocampal shrink
    cortical_atrophy: float  # fraction of sulcal-edge grey matter turned CSF-like


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Normal anatomical variation of healthy adults (age spread included)."""
    return Anatomy(
        rotation_deg=rng.normal(0.0, 2.0, 3).clip(-5, 5),
        scale=rng.normal(1.0, 0.025, 3).clip(0.95, 1.05),
        shift_mm=rng.normal(0.0, 1.5, 3).clip(-4, 4),
        # Healthy ventricles vary roughly two-fold in volume between adults.
        ventricle_mm=float(rng.normal(0.3, 0.8)),
        hippocampus_mm=float(rng.normal(0.0, 0.35)),
        cortical_atrophy=float(rng.uniform(0.0, 0.15)),
    )


def healthy_pullback(
    template: Template, grid: ControlGrid, anatomy: Anatomy, rng: np.random.Generator
) -> np.ndarray:
    """Coarse pull-back coordinates (3, cx, cy, cz): pose, then a two-scale random diffeomorphism."""
    v = template.voxel_mm
    velocity = random_velocity(grid, rng, sigma_mm=24.0, max_mm=5.0, voxel_mm=v)
    velocity += random_velocity(grid, rng, sigma_mm=9.0, max_mm=1.8, voxel_mm=v)
    disp = exp_velocity(grid, velocity)
    pts = affine_pullback(
        grid, grid.identity, anatomy.rotation_deg, anatomy.scale, anatomy.shift_mm / v
    )
    return pts + grid.sample(disp, pts)


def bias_field_coarse(
    grid: ControlGrid, rng: np.random.Generator, strength: float, voxel_mm: float
) -> np.ndarray:
    """A smooth log bias field on the control grid (peak ``strength``; exp taken after upsampling)."""
    noise = rng.standard_normal(grid.coarse_shape).astype(np.float32)
    field = ndimage.gaussian_filter(noise, 40.0 / (grid.step * voxel_mm), mode="reflect")
    field /= float(np.abs(field).max()) or 1.0
    return field * strength


@functools.lru_cache(maxsize=4)
def enhancement_map(template: Template) -> np.ndarray:
    """Where gadolinium brightens a healthy T1c (0..1): cortical vessels, choroid plexus, dura-like rim.

    Built once per template with a fixed seed (it is anatomy); subjects differ by the warp.
    """
    rng = np.random.default_rng(20210101)
    v = template.voxel_mm
    noise = rng.standard_normal(template.shape).astype(np.float32)
    smooth = ndimage.gaussian_filter(noise, 2.0 / v)
    smooth /= float(smooth.std()) or 1.0
    # Thin tubes/sheets: the near-zero level set of smooth noise, kept in sulcal CSF.
    vessels = np.exp(-((smooth / 0.25) ** 2)) * np.clip(template.csf * 1.6 - 0.4, 0, 1)
    depth = template.depth
    rim = np.exp(-(((depth - 1.0) / 1.2) ** 2)) * template.mask
    x, y, z = template.voxel_mm_grids()
    choroid = np.zeros(template.shape, dtype=np.float32)
    for cx, cy, cz in CHOROID_CENTRES_MM:
        r2 = ((x - cx) / 5.0) ** 2 + ((y - cy) / 9.0) ** 2 + ((z - cz) / 5.0) ** 2
        choroid = np.maximum(choroid, np.exp(-r2))
    dilated = ndimage.binary_dilation(template.ventricles, iterations=max(1, int(round(2 / v))))
    choroid *= dilated
    out = np.maximum.reduce([vessels * 0.9, rim * 0.6, choroid])
    return np.clip(out, 0.0, 1.0).astype(np.float32) * template.mask


def contrast_t1c(t1: np.ndarray, enhancement: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """T1-weighted post-contrast look: flatter grey/white contrast plus enhancing structures."""
    strength = rng.uniform(0.6, 1.0)
    flat = 0.22 + 0.82 * (t1 - 0.22)
    return np.where(t1 > 0, flat + strength * 0.7 * enhancement, 0.0).astype(np.float32)


def scanner_effects(
    volume: np.ndarray, log_bias: np.ndarray, rng: np.random.Generator, sequence: str
) -> tuple[np.ndarray, dict[str, float]]:
    """Gamma/contrast change, multiplicative bias, Rician noise and an arbitrary gain.

    Returns the new volume and the drawn ``gamma``, ``noise_sigma`` and ``gain``.
    """
    fg = volume > 1e-3
    vals = np.clip(volume[fg], 1e-4, None)
    gamma = rng.uniform(0.8, 1.25) if sequence == "T1" else rng.uniform(0.9, 1.4)
    vals = vals**gamma
    vals *= np.exp(log_bias[fg])
    sigma = rng.uniform(0.012, 0.035)
    n1 = rng.standard_normal(vals.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(vals.shape, dtype=np.float32) * sigma
    vals = np.sqrt((vals + n1) ** 2 + n2**2)
    gain = rng.uniform(600.0, 1400.0)
    out = np.zeros_like(volume)
    out[fg] = vals * gain
    return out, {"gamma": float(gamma), "noise_sigma": float(sigma), "gain": float(gain)}
