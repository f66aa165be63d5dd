"""The ``preprocess`` section: how a scan becomes a stack of model-ready axial slices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madgan_core.errors import ConfigError

# Intensity normalisation: linear between two percentiles, or piecewise-linear onto
# standard landmarks learned from the training scans (Nyúl-Udupa style).
INTENSITY_MODES = ("linear", "landmarks")
# Foreground percentiles that serve as landmarks (the ends are the clip percentiles).
LANDMARK_PERCENTILES = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
# The prepare stage (madgan_core/prep/stages.py): brain step and bias step.
BRAIN_MODES = ("auto", "extract", "none")
BIAS_MODES = ("none", "n4")
# The grid step: the scan's own grid, resampled onto axis-aligned slice_mm slices, or
# the MNI152 template's field of view placed on the scan by a rigid or affine fit.
ALIGN_MODES = ("none", "resample", "rigid", "affine")


@dataclass
class PreprocessConfig:
    """How a scan becomes a stack of model-ready axial slices.

    Attributes:
        height: Slice height in pixels (anterior-posterior axis).
        width: Slice width in pixels (left-right axis).
        pixel_mm: In-plane pixel size of model space. 1 mm with 256 x 176 gives
            the paper's 256 x 176 mm field of view.
        slice_step: Take every ``slice_step``-th axial voxel slice.
        band: Slice band as fractions of the brain's inferior-superior extent.
            The default covers hippocampus, amygdala and lateral ventricles.
        slice_range: Explicit ``[start, stop)`` axial indices in RAS+ voxel
            space; overrides ``band``.
        min_brain_fraction: A slice is usable only if this fraction of the
            brain's largest axial cross-section is foreground.
        clip_percentiles: Robust intensity percentiles inside the foreground.
        foreground_fraction: Foreground threshold as a fraction of the
            99th intensity percentile.
        intensity: ``linear`` (clip to the percentiles, scale to [-1, 1]) or
            ``landmarks``: then also map the foreground's deciles
            (:data:`LANDMARK_PERCENTILES`) piecewise-linearly onto ``landmarks``, so
            scans whose contrast curves differ (scanner, protocol) line up.
        landmarks: The standard decile positions in [-1, 1], learned by training
            from its scans (their mean); stored with the model.
        brain: The brain step: ``auto`` (a scan with a skull has its brain extracted;
            one already skull-stripped passes through untouched), ``extract`` (always
            extract) or ``none`` (the scan as given). Extraction registers the MNI152
            template and carries its brain mask (:mod:`madgan_core.prep.anatomy`).
        bias: The bias step: ``none`` (intensities as given) or ``n4`` (SimpleITK's N4
            bias-field correction inside the brain).
        align: The grid step: ``resample`` (an axis-aligned RAS+ grid with axial
            slices ``slice_mm`` apart and the scan's own in-plane spacing; a scan
            already on such a grid is passed through untouched), ``rigid`` or
            ``affine`` (the MNI152 template's field of view, at ``slice_mm``, placed on
            the scan by a fit of that kind, so slices and the band follow anatomy
            rather than the head's tilt), or ``none`` (the scan's own axial voxel
            slices, whatever their thickness). Results are always mapped back onto the
            scan's own grid.
        slice_mm: Axial slice spacing of the working grid in mm: set it to the
            training scans' (the presets: 1 mm, the paper's). ``none``: each scan's own
            axial spacing (only an oblique scan is resampled), as models saved before
            this key existed.
    """

    height: int = 256
    width: int = 176
    pixel_mm: float = 1.0
    slice_step: int = 1
    band: tuple[float, float] = (0.30, 0.68)
    slice_range: tuple[int, int] | None = None
    min_brain_fraction: float = 0.25
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    foreground_fraction: float = 0.1
    intensity: str = "linear"
    landmarks: tuple[float, ...] | None = None
    brain: str = "auto"
    bias: str = "none"
    align: str = "resample"
    slice_mm: float | None = None

    def validate(self) -> None:
        if self.height < 16 or self.width < 16 or self.height % 16 or self.width % 16:
            raise ConfigError(
                f"preprocess.height/width must be multiples of 16 and >= 16, got {self.height}x{self.width}"
            )
        if self.pixel_mm <= 0 or self.slice_step < 1:
            raise ConfigError("preprocess.pixel_mm must be > 0 and slice_step >= 1")
        lo, hi = self.band
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(f"preprocess.band must satisfy 0 <= low < high <= 1, got {self.band}")
        if self.slice_range is not None and not 0 <= self.slice_range[0] < self.slice_range[1]:
            raise ConfigError(
                f"preprocess.slice_range must be [start, stop) with start < stop, got {self.slice_range}"
            )
        p_lo, p_hi = self.clip_percentiles
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise ConfigError(
                f"preprocess.clip_percentiles must be increasing in [0, 100], got {self.clip_percentiles}"
            )
        if self.intensity not in INTENSITY_MODES:
            raise ConfigError(
                f"preprocess.intensity must be one of {INTENSITY_MODES}, got {self.intensity!r}"
            )
        for key, allowed in (("brain", BRAIN_MODES), ("bias", BIAS_MODES), ("align", ALIGN_MODES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"preprocess.{key} must be one of {allowed}, got {getattr(self, key)!r}"
                )
        if self.slice_mm is not None and not (np.isfinite(self.slice_mm) and self.slice_mm > 0):
            raise ConfigError(f"preprocess.slice_mm must be > 0 or none, got {self.slice_mm}")
        if self.landmarks is not None:
            try:
                marks = np.asarray(self.landmarks, dtype=float)
            except (TypeError, ValueError):
                marks = np.zeros(0)
            if (
                marks.shape != (len(LANDMARK_PERCENTILES),)
                or not np.all(np.diff(marks) > 0)
                or marks[0] <= -1.0
                or marks[-1] >= 1.0
            ):
                raise ConfigError(
                    f"preprocess.landmarks must be {len(LANDMARK_PERCENTILES)} increasing values "
                    f"inside (-1, 1), got {self.landmarks}"
                )
