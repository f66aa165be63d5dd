"""The one registry of scan score modes: what each is called, needs, means and how it is computed.

Each :class:`ScoreMode` entry of :data:`SCORE_MODES` declares its metadata and its
``compute``, a formula over a :class:`ScoreInputs`. Scoring computes the modes in
stages, as their inputs become known (a mode's ``needs``):

- ``windows``: every scan, from its per-window ℓ2 and copy-slice losses
  (:func:`madgan_core.scoring.scorer.scan_scores`);
- ``zmap``: a calibrated model, from the z-map's values over the brain
  (:meth:`madgan_core.model.zstats.ZStats.scan_scores`); calibration fits a healthy
  noise line for the ``noise_adjusted`` ones (:mod:`madgan_core.scoring.calibrate`);
- ``reference``: a calibrated model, from the scan's other scores placed among the
  healthy controls' (:meth:`madgan_core.model.reference.HealthyReference.with_anomaly`).

The CLI's ``--mode`` choices, ``score.mode`` validation, the review widget's mode list
and overlay choice, evaluation's score columns and report, and the docs all read the
registry when they run, so a mode added here reaches every one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import ndtri

# Which overlay reads a mode best: the raw ℓ2 heatmap or the healthy-normalised z-map.
OVERLAYS = ("heatmap", "zmap")
# What a mode is computed from, in the order scoring learns it (see the module docstring).
WINDOWS, ZMAP, REFERENCE = "windows", "zmap", "reference"
NEEDS = (WINDOWS, ZMAP, REFERENCE)


class ScoreSettings(Protocol):
    """The score settings the formulas read (:class:`madgan_core.config.ScoreConfig`)."""

    top_windows: int
    tail_fraction: float
    volume_threshold: float


class HealthyControls(Protocol):
    """What the ``reference`` modes read of a healthy reference
    (:class:`madgan_core.model.reference.HealthyReference`)."""

    def control_scores(self, mode: str, sequence: str | None) -> np.ndarray:
        """The controls' finite ``mode`` scores, those of ``sequence`` where it has any."""
        ...


@dataclass(frozen=True)
class ScoreInputs:
    """What a mode is computed from; each stage fills in what its modes need.

    Attributes:
        settings: the score settings (``windows`` and ``zmap`` modes).
        window_losses: mean ℓ2 of each window, in slab order (``windows``).
        copy_losses: the copy-last-slice predictor's ℓ2 on the same windows (``windows``).
        brain_z: the z-map's finite values over the brain, never empty (``zmap``).
        scores: the scan's scores of the earlier stages (``reference``).
        reference: the healthy controls (``reference``).
        sequence: the scan's sequence, to pick the matching controls (``reference``).
    """

    settings: ScoreSettings | None = None
    window_losses: np.ndarray | None = None
    copy_losses: np.ndarray | None = None
    brain_z: np.ndarray | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    reference: HealthyControls | None = None
    sequence: str | None = None


@dataclass(frozen=True)
class ScoreMode:
    """One way of turning a scan's reconstruction error into a number.

    Attributes:
        name: the key in scores, files and options (``mean``, ``ztail``, ...).
        label: a short label for panels and menus.
        description: one line for reports and help texts.
        compute: the score from a :class:`ScoreInputs` holding what ``needs`` names;
            None where the scan has no such score (e.g. too few controls).
        needs: ``windows``, ``zmap`` or ``reference``: the stage that computes it.
        noise_adjusted: (``zmap`` modes) ``compute`` gives the raw value; the score is its
            excess over the line calibration fits of it against the controls' log noise.
        for_baselines: evaluation scores the baseline predictors in this mode too.
        direction: ``higher``: a higher score is more anomalous (true of every mode).
        overlay: the overlay that shows where the score comes from, one of :data:`OVERLAYS`.
    """

    name: str
    label: str
    description: str
    compute: Callable[[ScoreInputs], float | None]
    needs: str = WINDOWS
    noise_adjusted: bool = False
    for_baselines: bool = False
    direction: str = "higher"
    overlay: str = "heatmap"

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"score mode {self.name!r}: needs must be one of {NEEDS}")
        if self.overlay not in OVERLAYS:
            raise ValueError(f"score mode {self.name!r}: overlay must be one of {OVERLAYS}")
        if self.noise_adjusted and self.needs != ZMAP:
            raise ValueError(f"score mode {self.name!r}: only z-map modes are noise-adjusted")

    @property
    def needs_calibration(self) -> bool:
        """Computed only for a model with a healthy reference holding z-statistics of the
        scan's sequence (``madgan calibrate``)."""
        return self.needs != WINDOWS


# -- the formulas ------------------------------------------------------------------------


def top_contiguous_mean(losses: np.ndarray, k: int = 10) -> float:
    """Mean of the ``k`` contiguous window losses with the highest mean (all, if fewer)."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        raise ValueError("no window losses")
    if losses.size <= k:
        return float(losses.mean())
    sums = np.convolve(losses, np.ones(k), mode="valid")
    return float(sums.max() / k)


def _mean(s: ScoreInputs) -> float:
    return float(np.mean(s.window_losses))


def _ratio(s: ScoreInputs) -> float:
    copy_mean = float(np.mean(s.copy_losses))
    return _mean(s) / copy_mean if copy_mean > 0 else float("nan")


def _ztail(s: ScoreInputs) -> float:
    values = s.brain_z
    k = max(1, int(round(s.settings.tail_fraction * values.size)))
    return float(np.mean(np.partition(values, values.size - k)[-k:]))  # the top tail


def _zvolume(s: ScoreInputs) -> float:
    above = np.count_nonzero(s.brain_z > s.settings.volume_threshold)
    return float(100.0 * above / s.brain_z.size)


# The calibrated headline: the larger of a focal and a diffuse z-map score, each placed
# on the normal scale of the controls' own distribution. zvolume answers focal lesions,
# zmean diffuse change. Chosen on a validation cohort (studies/headline_validation.py).
ANOMALY = "anomaly"
ANOMALY_PARTS = ("zvolume", "zmean")
MIN_CONTROLS_FOR_ANOMALY = 6


def normal_score(values: np.ndarray, score: float) -> float:
    """``score`` on the normal scale of the controls' ``values`` (NaN ignored).

    Inside the controls' range it is the normal quantile of its plotting position,
    linear between neighbouring controls (the i-th smallest of n sits at the quantile
    of i / (n + 1)); past the largest it goes on in the controls' standard deviations
    from there (and likewise below the smallest), so it is continuous and increasing.
    Unlike a plain standardisation it gives every part the same healthy distribution
    whatever its shape: ``zvolume`` is near 0 for most healthy scans with a long upper
    tail, which a mean and SD would either let dominate (MAD) or squash (SD).
    """
    values = np.sort(values[np.isfinite(values)])
    n = len(values)
    if n == 0:
        return float("nan")
    quantiles = ndtri(np.arange(1, n + 1) / (n + 1))
    scale = float(np.std(values, ddof=1)) if n > 1 else 0.0
    scale = scale if scale > 0 else 1.0
    if score > values[-1]:
        return float(quantiles[-1] + (score - values[-1]) / scale)
    if score < values[0]:
        return float(quantiles[0] + (score - values[0]) / scale)
    if n == 1:
        return float(quantiles[0])
    # Equal control values: np.interp needs increasing x, so average the tied quantiles.
    unique, first = np.unique(values, return_index=True)
    counts = np.diff(np.append(first, n))
    tied = np.add.reduceat(quantiles, first) / counts
    return float(np.interp(score, unique, tied))


def anomaly_of(
    scores: Mapping[str, float], controls: Callable[[str], np.ndarray]
) -> tuple[float, str] | None:
    """The anomaly score and the part that sets it: the largest of the scan's
    :data:`ANOMALY_PARTS`, each on the normal scale of ``controls(part)`` (the controls'
    finite scores); None where no part has :data:`MIN_CONTROLS_FOR_ANOMALY` controls."""
    placed = {
        part: normal_score(values, float(scores[part]))
        for part in ANOMALY_PARTS
        if part in scores
        and np.isfinite(scores[part])
        and len(values := controls(part)) >= MIN_CONTROLS_FOR_ANOMALY
    }
    if not placed:
        return None
    driver = max(placed, key=placed.__getitem__)
    return placed[driver], driver


def leave_one_out_anomaly(table: np.ndarray) -> np.ndarray:
    """Each control's anomaly score against the other controls, from its parts' scores
    ``table`` ``(parts, controls)``; NaN for a control with no finite part."""
    out = np.full(table.shape[1], np.nan)
    for j in range(table.shape[1]):
        others = np.delete(table, j, axis=1)
        values = [
            normal_score(others[k], table[k, j])
            for k in range(len(table))
            if np.isfinite(table[k, j])
        ]
        if values:
            out[j] = max(values)
    return out


def _anomaly(s: ScoreInputs) -> float | None:
    if s.reference is None:
        return None
    found = anomaly_of(s.scores, lambda part: s.reference.control_scores(part, s.sequence))
    return None if found is None else found[0]


# -- the registry ------------------------------------------------------------------------

SCORE_MODES: tuple[ScoreMode, ...] = (
    ScoreMode(
        "mean",
        "Mean ℓ2 (all windows)",
        "mean ℓ2 over all windows (paper)",
        _mean,
        for_baselines=True,
    ),
    ScoreMode(
        "top10",
        "Top-10 windows ℓ2",
        "mean ℓ2 of the 10 contiguous windows with the highest loss (paper)",
        lambda s: top_contiguous_mean(s.window_losses, s.settings.top_windows),
        for_baselines=True,
    ),
    ScoreMode(
        "ratio",
        "ℓ2 / copy-slice ℓ2",
        "mean ℓ2 relative to a copy-last-slice predictor (difficulty-normalised)",
        _ratio,
    ),
    ScoreMode(
        "ztail",
        "z-map tail (top 1%)",
        "mean of the top 1% of the healthy-normalised z-map over the brain",
        _ztail,
        needs=ZMAP,
        overlay="zmap",
    ),
    ScoreMode(
        "zvolume",
        "z-map volume above 4 (noise-adj.)",
        "percentage of the brain with z above 4, noise-adjusted (focal lesions)",
        _zvolume,
        needs=ZMAP,
        noise_adjusted=True,
        overlay="zmap",
    ),
    ScoreMode(
        "zmean",
        "z-map mean (noise-adj.)",
        "mean z over the brain, noise-adjusted (diffuse change)",
        lambda s: float(np.mean(s.brain_z)),
        needs=ZMAP,
        noise_adjusted=True,
        overlay="zmap",
    ),
    ScoreMode(
        ANOMALY,
        "Anomaly score (calibrated)",
        "larger of zvolume (focal) and zmean (diffuse), each on the normal scale of the "
        "healthy controls' own distribution; its percentile is against the controls' own "
        "(the calibrated headline)",
        _anomaly,
        needs=REFERENCE,
        overlay="zmap",
    ),
)

# The headline a calibrated model leads with, and the one an uncalibrated model keeps.
CALIBRATED_HEADLINE = ANOMALY
PAPER_HEADLINE = "mean"
AUTO = "auto"


# -- reading the registry (when called, so a mode added to SCORE_MODES is seen) ----------


def score_modes(needs: str | None = None) -> tuple[ScoreMode, ...]:
    """The registered modes in registry order; with ``needs``, those of that stage."""
    return tuple(m for m in SCORE_MODES if needs is None or m.needs == needs)


def mode_names() -> tuple[str, ...]:
    """Every mode's name, in registry order (the ``--mode`` choices after ``auto``)."""
    return tuple(m.name for m in SCORE_MODES)


def calibrated_mode_names() -> tuple[str, ...]:
    """The modes that need a calibrated model (z-statistics for the scan's sequence)."""
    return tuple(m.name for m in SCORE_MODES if m.needs_calibration)


def zmap_mode_names() -> tuple[str, ...]:
    """The z-map modes in the order scans and controls are scored in them: the plain
    ones in registry order, then the noise-adjusted ones (:func:`noise_adjusted_modes`)."""
    plain = tuple(m.name for m in score_modes(ZMAP) if not m.noise_adjusted)
    return plain + noise_adjusted_modes()


def noise_adjusted_modes() -> tuple[str, ...]:
    """The noise-adjusted z-map modes in name order, the order their fits are stored in."""
    return tuple(sorted(m.name for m in score_modes(ZMAP) if m.noise_adjusted))


def compute_scores(needs: str, inputs: ScoreInputs) -> dict[str, float]:
    """The scores of every mode of stage ``needs``, in registry order; a mode whose
    ``compute`` gives None is left out."""
    scores = {}
    for mode in score_modes(needs):
        value = mode.compute(inputs)
        if value is not None:
            scores[mode.name] = value
    return scores


def headline_mode(configured: str, scores: dict[str, float]) -> str:
    """The headline to lead with: the configured mode, or for ``auto`` the calibrated
    headline where the scan has it and the paper's mean ℓ2 elsewhere."""
    if configured != AUTO:
        return configured
    return CALIBRATED_HEADLINE if CALIBRATED_HEADLINE in scores else PAPER_HEADLINE


def score_mode(name: str) -> ScoreMode:
    """The mode called ``name``; a :class:`ValueError` naming the known modes otherwise."""
    for mode in SCORE_MODES:
        if mode.name == name:
            return mode
    raise ValueError(f"unknown score mode {name!r}; choose one of {', '.join(mode_names())}")
