"""Healthy-normalised ℓ2 maps: z-scores against healthy controls, per pixel and slice position.

Preprocessing centres every slab on the brain and spans the same fraction of its
extent, so slab slice ``k`` of ``n`` sits at a comparable anatomical level in
every scan. Slices are binned by relative position ``k / (n - 1)``; in each bin
and pixel the healthy controls' log ℓ2 (Gaussian-smoothed) has a mean and a
standard deviation. A scan's z-map says how unusual its error is *for that
place*, so the lesion itself lights up rather than only the anatomy that is
always hard to predict.

The z-map modes (:func:`madgan_core.modes.score_modes` with ``needs`` ``zmap``) are
computed over the brain's z-values (see :meth:`ZStats.scan_scores`):

- ``ztail``: the mean of the top 1% of z over the brain, for focal lesions;
- ``zvolume``: the percentage of the brain with z above 4, for focal lesions;
- ``zmean``: the mean z over the brain, for diffuse change such as atrophy.

The smoothing (2 pixels), the tail (1%), the threshold (4) and the number of position
bins (24) are defaults of :class:`madgan_core.config.ScoreConfig`, saved with each
model; every function here takes those ``settings`` (default: the defaults).

The ``noise_adjusted`` ones, ``zvolume`` and ``zmean``, are also adjusted for the scan's noise level, which no
predictor can anticipate: calibration fits a line of each against the log of a
robust noise estimate over the controls, and the score is the excess over that
line (0: a typical healthy scan at this noise level).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from madgan_core.config import ScoreConfig
from madgan_core.modes import (
    ZMAP,
    ScoreInputs,
    compute_scores,
    noise_adjusted_modes,
    score_modes,
    zmap_mode_names,
)
from madgan_core.prep import device_ops

if TYPE_CHECKING:
    import torch

LOG_EPS = 1e-4
FOREGROUND_LEVEL = -0.95  # model-space intensity above which a pixel is brain
_LAPLACIAN = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def position_bins(n_slices: int, bins: int) -> np.ndarray:
    """Bin index of each slab slice by its relative position in the slab."""
    if n_slices == 1:
        return np.zeros(1, dtype=np.int64)
    return np.rint(np.arange(n_slices) / (n_slices - 1) * (bins - 1)).astype(np.int64)


def log_error(
    err_maps: np.ndarray,
    settings: ScoreConfig | None = None,
    *,
    device: torch.device | None = None,
) -> np.ndarray:
    """Smoothed log ℓ2, ``(n, H, W)``; NaN slices stay NaN.

    ``device``: compute it there in torch (equal to float32 rounding); None: numpy/scipy.
    """
    sigma = (settings or ScoreConfig()).smooth_sigma_px
    if device is not None:
        return _log_error_on(err_maps, sigma, device).cpu().numpy()
    smooth = ndimage.gaussian_filter(np.nan_to_num(err_maps), sigma=(0, sigma, sigma))
    out = np.log(smooth + LOG_EPS).astype(np.float32)
    out[np.isnan(err_maps).all(axis=(1, 2))] = np.nan
    return out


def _log_error_on(err_maps: np.ndarray, sigma: float, device: torch.device) -> torch.Tensor:
    """:func:`log_error` in torch on ``device``; the result stays there."""
    import torch

    err = torch.as_tensor(np.asarray(err_maps, dtype=np.float32), device=device)
    unpredicted = torch.isnan(err).flatten(1).all(dim=1)
    smooth = device_ops.gaussian_filter(torch.nan_to_num(err), (0.0, sigma, sigma), "reflect")
    out = torch.log(smooth + LOG_EPS)
    out[unpredicted] = float("nan")
    return out


def log_noise(slices: np.ndarray) -> float:
    """Log of the slab's noise standard deviation (model units), robust to anatomy.

    Immerkær's Laplacian-difference estimator with a median over the eroded brain,
    so edges and lesions barely move it.
    """
    brain = slices > FOREGROUND_LEVEL
    brain = ndimage.binary_erosion(brain, structure=np.ones((1, 3, 3), bool), iterations=2)
    response = ndimage.convolve(slices.astype(np.float32), _LAPLACIAN[None], mode="nearest")
    values = np.abs(response[brain])
    if values.size == 0:
        return float("nan")
    sigma = float(np.median(values)) / (0.6745 * 6.0)
    return float(np.log(max(sigma, 1e-6)))


def zmap_features(
    z: np.ndarray, slices: np.ndarray, settings: ScoreConfig | None = None
) -> dict[str, float]:
    """Every z-map mode, unadjusted, of a z-map over predicted brain pixels."""
    return brain_features(z, slices > FOREGROUND_LEVEL, settings)


def brain_features(
    z: np.ndarray, brain: np.ndarray, settings: ScoreConfig | None = None
) -> dict[str, float]:
    """:func:`zmap_features` over the predicted pixels of a boolean ``brain`` mask (NaN
    in every mode where it has none)."""
    settings = settings or ScoreConfig()
    values = z[brain & np.isfinite(z)]
    if values.size == 0:
        return {mode: float("nan") for mode in zmap_mode_names()}
    return compute_scores(ZMAP, ScoreInputs(settings, brain_z=values))


def slice_volumes(
    z: np.ndarray, slices: np.ndarray, settings: ScoreConfig | None = None
) -> np.ndarray:
    """Per slab slice, the percentage of its brain pixels with z above the threshold; NaN if none."""
    threshold = (settings or ScoreConfig()).volume_threshold
    brain = (slices > FOREGROUND_LEVEL) & np.isfinite(z)
    above = (z > threshold) & brain
    counts = brain.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * above.sum(axis=(1, 2)) / counts, np.nan)


@dataclass(frozen=True)
class NoiseFit:
    """The healthy line ``feature = intercept + slope * log_noise``."""

    intercept: float
    slope: float

    @classmethod
    def fit(cls, log_noises: np.ndarray, values: np.ndarray) -> NoiseFit:
        slope, intercept = np.polyfit(log_noises, values, 1)
        return cls(float(intercept), float(slope))

    def adjust(self, value: float, log_noise_value: float) -> float:
        """``value``'s excess over the healthy line at this noise level."""
        return value - (self.intercept + self.slope * log_noise_value)


@dataclass
class ZStats:
    """Per slice-position and pixel mean/std of healthy log ℓ2 (``(bins, H, W)`` each).

    ``noise_fits`` holds, per noise-adjusted mode, the controls' :class:`NoiseFit`;
    statistics calibrated before it existed have none and give no adjusted modes.
    """

    mean: np.ndarray
    std: np.ndarray
    n: int
    noise_fits: dict[str, NoiseFit] = field(default_factory=dict)

    def zmap(
        self,
        err_maps: np.ndarray,
        settings: ScoreConfig | None = None,
        *,
        device: torch.device | None = None,
    ) -> np.ndarray:
        """z-scores of a slab's ℓ2 maps ``(n, H, W)``; NaN where there is no prediction.

        ``settings`` must smooth as those that built the statistics did. ``device``:
        compute them there in torch (equal to float32 rounding); None: numpy/scipy.
        """
        bins = position_bins(len(err_maps), len(self.mean))
        if device is not None:
            import torch

            sigma = (settings or ScoreConfig()).smooth_sigma_px
            index = torch.as_tensor(bins, device=device)
            mean = torch.as_tensor(self.mean, device=device)[index]
            std = torch.as_tensor(self.std, device=device)[index]
            return ((_log_error_on(err_maps, sigma, device) - mean) / std).cpu().numpy()
        return (log_error(err_maps, settings) - self.mean[bins]) / self.std[bins]

    def scan_scores(
        self, z: np.ndarray, slices: np.ndarray, settings: ScoreConfig | None = None
    ) -> dict[str, float]:
        """The scan's z-map scores: the plain z-map modes always, the noise-adjusted ones
        the statistics have a fit for."""
        features = zmap_features(z, slices, settings)
        scores = {m.name: features[m.name] for m in score_modes(ZMAP) if not m.noise_adjusted}
        if self.noise_fits:
            noise = log_noise(slices)
            for mode, fit in self.noise_fits.items():
                scores[mode] = fit.adjust(features[mode], noise)
        return scores

    def to_dict(self) -> dict[str, object]:
        import torch

        return {
            "mean": torch.from_numpy(self.mean.astype(np.float16)),
            "std": torch.from_numpy(self.std.astype(np.float16)),
            "n": int(self.n),
            "noise_fits": {
                mode: [fit.intercept, fit.slope] for mode, fit in self.noise_fits.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> ZStats:
        """Statistics as :meth:`to_dict` stored them; a :class:`ValueError` says what is wrong."""
        mean = np.asarray(
            data["mean"].float().numpy() if hasattr(data["mean"], "float") else data["mean"]
        )
        std = np.asarray(
            data["std"].float().numpy() if hasattr(data["std"], "float") else data["std"]
        )
        if mean.ndim != 3 or mean.shape != std.shape or not len(mean):
            raise ValueError(
                f"mean and std must both be (bins, height, width), got {mean.shape} and {std.shape}"
            )
        fits = {
            str(mode): NoiseFit(*(float(v) for v in values))
            for mode, values in (data.get("noise_fits") or {}).items()
            if mode in noise_adjusted_modes() and len(values) == 2
        }
        return cls(mean.astype(np.float32), std.astype(np.float32), int(data["n"]), fits)


class ZStatsBuilder:
    """Accumulates healthy log ℓ2 maps and finalises them into :class:`ZStats`.

    Sums are kept in float64, so one scan can be left out exactly
    (:meth:`finalize` with ``leave_out``) to score the controls themselves honestly.
    ``settings`` give the smoothing and the number of position bins.
    """

    def __init__(self, shape: tuple[int, int], settings: ScoreConfig | None = None):
        self.settings = settings or ScoreConfig()
        self.bins = bins = self.settings.position_bins
        self.count = np.zeros((bins, 1, 1), dtype=np.float64)
        self.total = np.zeros((bins, *shape), dtype=np.float64)
        self.total_sq = np.zeros((bins, *shape), dtype=np.float64)
        self.scans = 0

    def _binned(self, err_maps: np.ndarray):
        logs = log_error(err_maps, self.settings)
        for k, b in enumerate(position_bins(len(err_maps), self.bins)):
            if not np.isnan(logs[k]).all():
                yield b, logs[k].astype(np.float64)

    def add(self, err_maps: np.ndarray) -> None:
        for b, values in self._binned(err_maps):
            self.count[b] += 1
            self.total[b] += values
            self.total_sq[b] += values**2
        self.scans += 1

    def finalize(self, leave_out: np.ndarray | None = None) -> ZStats:
        """Statistics of all scans added, or of all but ``leave_out`` (a scan's ℓ2 maps).

        Bins with fewer than 2 samples borrow their nearest filled neighbour's; the
        standard deviation is smoothed and floored at half its median.
        """
        count, total, total_sq, scans = (
            self.count.copy(),
            self.total.copy(),
            self.total_sq.copy(),
            self.scans,
        )
        if leave_out is not None:
            for b, values in self._binned(leave_out):
                count[b] -= 1
                total[b] -= values
                total_sq[b] -= values**2
            scans -= 1
        filled = count[:, 0, 0] >= 2
        if not filled.any():
            raise ValueError("need at least 2 healthy scans for z-statistics")
        safe = np.maximum(count, 1)
        mean = total / safe
        var = np.maximum(total_sq / safe - mean**2, 0.0) * safe / np.maximum(count - 1, 1)
        idx = np.flatnonzero(filled)
        for b in np.flatnonzero(~filled):
            nearest = idx[np.argmin(np.abs(idx - b))]
            mean[b], var[b] = mean[nearest], var[nearest]
        std = ndimage.gaussian_filter(np.sqrt(var), sigma=(0, 2, 2))
        floor = 0.5 * float(np.median(std))
        return ZStats(mean.astype(np.float32), np.maximum(std, floor).astype(np.float32), scans)

    def leave_one_out_zmap(self, err_maps: np.ndarray) -> np.ndarray:
        """The z-map of a scan already added, against the statistics of all the others."""
        return self.finalize(leave_out=err_maps).zmap(err_maps, self.settings)

    @classmethod
    def of(cls, maps: list[np.ndarray], settings: ScoreConfig | None = None) -> ZStatsBuilder:
        """A builder holding every ``(n, H, W)`` ℓ2 map stack of ``maps``."""
        builder = cls(maps[0].shape[1:], settings)
        for err_maps in maps:
            builder.add(err_maps)
        return builder
