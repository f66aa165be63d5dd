"""The ``score`` section: how a scan's reconstruction error becomes a score, and display ranges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madgan_core.errors import ConfigError
from madgan_core.modes import AUTO, mode_names

# Heatmap display range per sequence, as in the paper's figures.
HEATMAP_RANGE = {"T1": (0.0, 0.2), "T1c": (0.0, 0.06)}
# The z-map's display range (z), in napari and in the DICOM overlays alike.
ZMAP_RANGE = (0.0, 6.0)


@dataclass
class ScoreConfig:
    """How a scan's reconstruction error becomes a score.

    The z-map settings (``smooth_sigma_px`` to ``position_bins``) shape the healthy
    reference that ``madgan calibrate`` stores, and are read again to score against
    it: change them before calibrating, not after.

    Attributes:
        mode: the headline score that reports lead with and rank by (every mode is
            always computed): ``auto`` (``anomaly`` for a model calibrated for the
            scan's sequence, else ``mean``), or one of ``mean`` (the paper's),
            ``top10``, ``ratio``, ``ztail``, ``zvolume``, ``zmean``, ``anomaly``
            (:mod:`madgan_core.modes`).
        top_windows: window count of the ``top10`` mode.
        batch_size: windows per inference batch (0: chosen per device).
        smooth_sigma_px: Gaussian smoothing (pixels) of the ℓ2 maps before their log is
            compared with the healthy controls'.
        tail_fraction: fraction of the brain's highest z that ``ztail`` averages.
        volume_threshold: the z above which a pixel counts toward ``zvolume`` and the
            per-slice z-volume.
        position_bins: relative slice positions the healthy z-statistics are kept for.
        finding_threshold: the z above which a voxel belongs to a finding, a connected
            region of the z-map (:mod:`madgan_core.scoring.findings`).
        finding_min_ml: smaller regions (mL) are not reported as findings.
        finding_extent: the z that draws each finding's outline. Above
            ``finding_threshold`` a finding is outlined by its voxels at or above it,
            the core of its smoothed region; below, each finding grows over the
            connected voxels above it (hysteresis); ``None`` (the default): the regions
            as thresholded.
        finding_sign: trim each outline to the voxels where the scan departs from its
            prediction in the region's dominant direction (brighter or darker), which
            drops the error the model carries on past a lesion. With ``finding_extent``,
            chosen on validation cohorts (``studies/finding_extent_validation.py``).
    """

    mode: str = "auto"
    top_windows: int = 10
    batch_size: int = 0
    smooth_sigma_px: float = 2.0
    tail_fraction: float = 0.01
    volume_threshold: float = 4.0
    position_bins: int = 24
    finding_threshold: float = 4.0
    finding_min_ml: float = 0.2
    finding_extent: float | None = None
    finding_sign: bool = True

    def validate(self) -> None:
        if self.mode not in (choices := (AUTO, *mode_names())):
            raise ConfigError(f"score.mode must be one of {choices}, got {self.mode!r}")
        if self.top_windows < 1:
            raise ConfigError("score.top_windows must be >= 1")
        if self.batch_size < 0:
            raise ConfigError("score.batch_size must be >= 0")
        if not self.smooth_sigma_px >= 0:
            raise ConfigError(f"score.smooth_sigma_px must be >= 0, got {self.smooth_sigma_px}")
        if not 0.0 < self.tail_fraction <= 1.0:
            raise ConfigError(f"score.tail_fraction must be in (0, 1], got {self.tail_fraction}")
        if not np.isfinite(self.volume_threshold):
            raise ConfigError(
                f"score.volume_threshold must be a finite number, got {self.volume_threshold}"
            )
        if self.position_bins < 1:
            raise ConfigError("score.position_bins must be >= 1")
        if not np.isfinite(self.finding_threshold):
            raise ConfigError(
                f"score.finding_threshold must be a finite number, got {self.finding_threshold}"
            )
        if not self.finding_min_ml >= 0:
            raise ConfigError(f"score.finding_min_ml must be >= 0, got {self.finding_min_ml}")
        if self.finding_extent is not None and not np.isfinite(self.finding_extent):
            raise ConfigError(
                f"score.finding_extent must be a finite number or null, got {self.finding_extent}"
            )
