"""A scan's domain profile: how it was acquired and prepared, as far as the model can tell.

Each scan's :class:`DomainProfile` is made while it is preprocessed (its voxels, its slice
spacing, the brain's extent along z, whether a skull was seen, its foreground intensity
deciles and their contrast, the prepare steps). Training and calibration store the summary
of their scans' profiles (:class:`ProfileSummary`) with the model; the domain guard
(:mod:`madgan_core.scoring.domain`) compares a scored scan's profile with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# The foreground percentiles (10-90) a profile keeps: the median is the 50th (index 4).
MEDIAN_DECILE = 4


@dataclass(frozen=True)
class DomainProfile:
    """How one scan was acquired and prepared, as far as the model can tell.

    Attributes:
        zooms: the scan's voxel size (mm) along its RAS+ axes.
        brain_z_mm: extent of the foreground along z (mm).
        brain_cut: the foreground reaches the scan's first or last axial slice.
        skull: a skull was seen (True), the scan looked stripped (False), not checked (None).
        deciles: the slice band's foreground deciles in linear model units.
        steps: what the prepare stage did.
        contrast: the band's foreground deciles in the scan's units, each divided by
            their median (empty: not measured, or a median that is not positive).
    """

    zooms: tuple[float, float, float]
    brain_z_mm: float
    brain_cut: bool
    skull: bool | None
    deciles: tuple[float, ...]
    steps: tuple[str, ...] = ()
    contrast: tuple[float, ...] = ()

    @property
    def slice_mm(self) -> float:
        return float(self.zooms[2])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> DomainProfile:
        return cls(
            zooms=tuple(float(v) for v in data["zooms"]),
            brain_z_mm=float(data["brain_z_mm"]),
            brain_cut=bool(data["brain_cut"]),
            skull=None if data.get("skull") is None else bool(data["skull"]),
            deciles=tuple(float(v) for v in data["deciles"]),
            steps=tuple(str(s) for s in data.get("steps", ())),
            contrast=tuple(float(v) for v in data.get("contrast", ())),
        )


@dataclass(frozen=True)
class ProfileSummary:
    """The profiles of a set of scans (a model's healthy controls).

    Attributes:
        n: how many scans.
        slice_mm: the thinnest and thickest slice spacing (mm).
        brain_z_mm: the median extent of the brain along z (mm).
        skull: how many had a skull seen (of those checked), and how many were checked.
        deciles_mean: the mean foreground deciles.
        deciles_std: their standard deviation.
        contrast_mean: the mean contrast (empty for controls profiled before it was).
        contrast_std: its standard deviation.
    """

    n: int
    slice_mm: tuple[float, float]
    brain_z_mm: float
    skull: tuple[int, int]
    deciles_mean: tuple[float, ...]
    deciles_std: tuple[float, ...]
    contrast_mean: tuple[float, ...] = ()
    contrast_std: tuple[float, ...] = ()

    @classmethod
    def of(cls, profiles: Sequence[DomainProfile]) -> ProfileSummary:
        slices = [p.slice_mm for p in profiles]
        checked = [p.skull for p in profiles if p.skull is not None]
        deciles = np.array([p.deciles for p in profiles], dtype=np.float64)
        contrasts = [p.contrast for p in profiles if p.contrast]
        contrast = np.array(contrasts, dtype=np.float64) if contrasts else np.zeros((0, 0))
        return cls(
            n=len(profiles),
            slice_mm=(float(min(slices)), float(max(slices))),
            brain_z_mm=float(np.median([p.brain_z_mm for p in profiles])),
            skull=(int(sum(checked)), len(checked)),
            deciles_mean=tuple(float(v) for v in deciles.mean(axis=0)),
            deciles_std=tuple(float(v) for v in deciles.std(axis=0)),
            contrast_mean=tuple(float(v) for v in contrast.mean(axis=0)) if contrasts else (),
            contrast_std=tuple(float(v) for v in contrast.std(axis=0)) if contrasts else (),
        )

    @property
    def resolution(self) -> str:
        """The controls' slice spacing in words, e.g. ``"1.0 mm"`` or ``"1.0-1.2 mm"``."""
        low, high = self.slice_mm
        return f"{low:.1f} mm" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f} mm"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> ProfileSummary:
        return cls(
            n=int(data["n"]),
            slice_mm=tuple(float(v) for v in data["slice_mm"]),
            brain_z_mm=float(data["brain_z_mm"]),
            skull=tuple(int(v) for v in data["skull"]),
            deciles_mean=tuple(float(v) for v in data["deciles_mean"]),
            deciles_std=tuple(float(v) for v in data["deciles_std"]),
            contrast_mean=tuple(float(v) for v in data.get("contrast_mean", ())),
            contrast_std=tuple(float(v) for v in data.get("contrast_std", ())),
        )


def scan_profile(
    zooms: Sequence[float],
    foreground: np.ndarray,
    slice_mm: float,
    deciles: Sequence[float],
    steps: Sequence[str] = (),
    skull: bool | None = None,
    raw_deciles: Sequence[float] | None = None,
) -> DomainProfile:
    """A scan's profile from its voxel size and its foreground on the working grid.

    Args:
        zooms: the scan's own voxel size (before the prepare stage).
        foreground: the foreground mask on the working grid.
        slice_mm: the working grid's axial spacing.
        deciles: the slice band's foreground deciles (linear model units).
        steps: the prepare stage's steps.
        skull: the brain step's finding.
        raw_deciles: the same deciles in the scan's own units, for its contrast.
    """
    area = foreground.sum(axis=(0, 1)).astype(np.float64)
    occupied = np.flatnonzero(area > 0.02 * area.max()) if area.max() > 0 else np.zeros(0, int)
    extent = (occupied[-1] - occupied[0] + 1) * slice_mm if occupied.size else 0.0
    cut = bool(area[0] > 0 or area[-1] > 0)
    return DomainProfile(
        zooms=tuple(float(z) for z in zooms),
        brain_z_mm=float(extent),
        brain_cut=cut,
        skull=skull,
        deciles=tuple(float(v) for v in deciles),
        steps=tuple(steps),
        contrast=intensity_contrast(raw_deciles),
    )


def intensity_contrast(raw_deciles: Sequence[float] | None) -> tuple[float, ...]:
    """Foreground deciles divided by their median: how the tissue intensities relate,
    whatever the scanner's scale (empty when the median is not positive)."""
    if raw_deciles is None or len(raw_deciles) <= MEDIAN_DECILE:
        return ()
    values = np.asarray(raw_deciles, dtype=np.float64)
    median = values[MEDIAN_DECILE]
    if not (np.isfinite(values).all() and median > 0):
        return ()
    return tuple(float(v) for v in values / median)
