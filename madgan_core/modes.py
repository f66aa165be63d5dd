"""The one registry of scan score modes: what each is called, needs, means and is best read on.

The CLI's ``--mode`` choices, ``score.mode`` validation, the review widget's mode list
and overlay choice, evaluation's score columns and report, and the docs all read
:data:`SCORE_MODES`. The scores themselves are computed in :mod:`madgan_core.scoring.scorer`
(``mean``, ``top10``, ``ratio``) and :mod:`madgan_core.model.zstats` (the z-map modes).
"""

from __future__ import annotations

from dataclasses import dataclass

# Which overlay reads a mode best: the raw ℓ2 heatmap or the healthy-normalised z-map.
OVERLAYS = ("heatmap", "zmap")


@dataclass(frozen=True)
class ScoreMode:
    """One way of turning a scan's reconstruction error into a number.

    Attributes:
        name: the key in scores, files and options (``mean``, ``ztail``, ...).
        label: a short label for panels and menus.
        description: one line for reports and help texts.
        needs_calibration: computed only for a model with a healthy reference holding
            z-statistics of the scan's sequence (``madgan calibrate``).
        direction: ``higher``: a higher score is more anomalous (true of every mode).
        overlay: the overlay that shows where the score comes from, one of :data:`OVERLAYS`.
    """

    name: str
    label: str
    description: str
    needs_calibration: bool = False
    direction: str = "higher"
    overlay: str = "heatmap"


SCORE_MODES: tuple[ScoreMode, ...] = (
    ScoreMode("mean", "Mean ℓ2 (all windows)", "mean ℓ2 over all windows (paper)"),
    ScoreMode(
        "top10",
        "Top-10 windows ℓ2",
        "mean ℓ2 of the 10 contiguous windows with the highest loss (paper)",
    ),
    ScoreMode(
        "ratio",
        "ℓ2 / copy-slice ℓ2",
        "mean ℓ2 relative to a copy-last-slice predictor (difficulty-normalised)",
    ),
    ScoreMode(
        "ztail",
        "z-map tail (top 1%)",
        "mean of the top 1% of the healthy-normalised z-map over the brain",
        needs_calibration=True,
        overlay="zmap",
    ),
    ScoreMode(
        "zvolume",
        "z-map volume above 4 (noise-adj.)",
        "percentage of the brain with z above 4, noise-adjusted (focal lesions)",
        needs_calibration=True,
        overlay="zmap",
    ),
    ScoreMode(
        "zmean",
        "z-map mean (noise-adj.)",
        "mean z over the brain, noise-adjusted (diffuse change)",
        needs_calibration=True,
        overlay="zmap",
    ),
)

SCORE_MODES += (
    ScoreMode(
        "anomaly",
        "Anomaly score (calibrated)",
        "larger of zvolume (focal) and zmean (diffuse), each on the normal scale of the "
        "healthy controls' own distribution; its percentile is against the controls' own "
        "(the calibrated headline)",
        needs_calibration=True,
        overlay="zmap",
    ),
)

MODE_NAMES: tuple[str, ...] = tuple(m.name for m in SCORE_MODES)
# Modes that need a calibrated model (z-statistics for the scan's sequence).
CALIBRATED_MODES: tuple[str, ...] = tuple(m.name for m in SCORE_MODES if m.needs_calibration)
_BY_NAME = {m.name: m for m in SCORE_MODES}
# The headline a calibrated model leads with, and the one an uncalibrated model keeps.
CALIBRATED_HEADLINE = "anomaly"
PAPER_HEADLINE = "mean"
AUTO = "auto"


def headline_mode(configured: str, scores: dict[str, float]) -> str:
    """The headline to lead with: the configured mode, or for ``auto`` the calibrated
    headline where the scan has it and the paper's mean ℓ2 elsewhere."""
    if configured != AUTO:
        return configured
    return CALIBRATED_HEADLINE if CALIBRATED_HEADLINE in scores else PAPER_HEADLINE


def score_mode(name: str) -> ScoreMode:
    """The mode called ``name``; a :class:`ValueError` naming the known modes otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown score mode {name!r}; choose one of {', '.join(MODE_NAMES)}"
        ) from None
