"""The domain guard: is a scan like the scans the model's healthy controls were?

A score is read against the model's controls (its percentile, its headline). That
comparison means something only for a scan acquired and prepared like them. Each scan's
:class:`~madgan_core.prep.domain_profile.DomainProfile` is made while it is preprocessed;
calibration stores the summary of its controls' profiles
(:class:`~madgan_core.prep.domain_profile.ProfileSummary`) in the model's reference.
:func:`compare` compares the two and says in plain words what differs; :func:`guard`,
which scoring calls, also compares the scan with the model's training scans.

The limits (:data:`LIMITS`):

- ``slice_ratio``: a scan whose slices are more than this many times thicker than the
  thickest control's is out of domain (resampling cannot restore what thick slices lost).
- ``coverage``: a brain whose extent along z is under this fraction of the controls'
  median extent is only partly covered.
- ``intensity_z``: a scan whose tissue contrast lies this many spreads (the controls'
  standard deviation, at least ``contrast_floor``) from the controls' mean is out of
  domain. The contrast is the upper half of the foreground's intensity distribution
  relative to its median: its 60th-90th percentiles divided by its 50th, in the scan's
  own units. Another sequence, an inverted or strongly curved intensity scale moves it;
  disease does not, which the deciles in model units could not tell apart: a bright
  lesion raises the clip percentile that normalises them and shifts every decile, and
  atrophy's extra CSF moves the lower deciles. On a validation cohort (100 healthy,
  60 AD-like, 30 metastasis-like, 30 other-lesion test scans) the deciles flagged
  15 of 60 AD-like, 12 of 30 metastasis-like and 2 of 30 other-lesion scans; the
  contrast flags 3 AD-like scans (all stage 3) and none of the others. Neither
  flagged a healthy scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from madgan_core.prep.domain_profile import DomainProfile, ProfileSummary

LIMITS = {"slice_ratio": 1.5, "coverage": 0.8, "intensity_z": 4.0, "contrast_floor": 0.03}
# The foreground percentiles the contrast compares, as indices into LANDMARK_PERCENTILES
# (10-90): the 60th to the 90th, each divided by the 50th (index 4).
CONTRAST_DECILES = slice(5, 9)


@dataclass(frozen=True)
class DomainCheck:
    """Whether a scan is inside the model's domain, and why not."""

    in_domain: bool
    reasons: list[str] = field(default_factory=list)


def _acquisition_reasons(
    profile: DomainProfile, seen: ProfileSummary, whose: str
) -> dict[str, str]:
    """By kind (``slices``, ``skull``): slices thicker than ``seen``'s and a skull they never
    had (``whose``: e.g. ``"the model's controls had"``)."""
    reasons = {}
    if profile.slice_mm > LIMITS["slice_ratio"] * seen.slice_mm[1]:
        reasons["slices"] = f"{profile.slice_mm:.1f} mm slices; {whose} {seen.resolution}"
    skulls, checked = seen.skull
    extracted = any(step.startswith("brain extracted") for step in profile.steps)
    if profile.skull and checked and skulls == 0 and not extracted:
        reasons["skull"] = (
            "skull present; the model was trained on skull-stripped scans and brain "
            "extraction is off"
        )
    return reasons


def compare(profile: DomainProfile, controls: ProfileSummary) -> DomainCheck:
    """The reasons ``profile`` lies outside the controls' domain (:data:`LIMITS`)."""
    reasons = list(_acquisition_reasons(profile, controls, "the model's controls had").values())
    if profile.brain_z_mm < LIMITS["coverage"] * controls.brain_z_mm:
        reasons.append(
            f"covers {profile.brain_z_mm:.0f} mm of the brain's {controls.brain_z_mm:.0f} mm "
            "along z (the controls' median)"
        )
    mean = np.asarray(controls.contrast_mean)
    if profile.contrast and len(profile.contrast) == len(mean):
        spread = np.maximum(np.asarray(controls.contrast_std), LIMITS["contrast_floor"])
        far = np.abs(np.asarray(profile.contrast) - mean) / spread
        if far[CONTRAST_DECILES].max() > LIMITS["intensity_z"]:
            reasons.append("intensity profile far from the controls'")
    return DomainCheck(in_domain=not reasons, reasons=reasons)


def check_domain(profile: DomainProfile | None, model) -> DomainCheck | None:
    """``profile`` against the controls of ``model`` (a LoadedModel); None when either
    has no profile (a model calibrated before profiles were stored has no guard)."""
    reference = getattr(model, "reference", None)
    summary = controls_profile(reference)
    if profile is None or summary is None:
        return None
    return compare(profile, summary)


def controls_profile(reference) -> ProfileSummary | None:
    """The controls' profile summary a reference stores, or None."""
    stored = getattr(reference, "domain", None)
    return None if not stored else ProfileSummary.from_dict(stored)


def compare_training(
    profile: DomainProfile, training: ProfileSummary, controls: ProfileSummary | None = None
) -> list[str]:
    """The reasons ``profile`` lies outside what the model was trained on, leaving out the
    kinds its ``controls`` already give."""
    given = {} if controls is None else _acquisition_reasons(profile, controls, "")
    found = _acquisition_reasons(profile, training, "the model was trained on")
    return [text for kind, text in found.items() if kind not in given]


def guard(
    profile: DomainProfile | None, reference, sequence: str | None, training: dict | None = None
) -> tuple[DomainCheck | None, str]:
    """A scored scan's domain check against the model's controls and its training scans
    (``training``: their stored summary), and the words naming the controls it is
    compared with (e.g. ``"healthy controls (T1, 1.0 mm)"``); ``(None, "")`` without
    stored profiles."""
    summary = controls_profile(reference)
    trained = ProfileSummary.from_dict(training) if training else None
    if profile is None or (summary is None and trained is None):
        check = None
    else:
        reasons = [] if summary is None else compare(profile, summary).reasons
        if trained is not None:
            reasons += compare_training(profile, trained, summary)
        check = DomainCheck(in_domain=not reasons, reasons=reasons)
    if summary is None:
        return check, ""
    named = sequence if sequence in (getattr(reference, "sequences", None) or ()) else None
    return check, f"healthy controls ({named + ', ' if named else ''}{summary.resolution})"


def domain_columns(check: DomainCheck | None) -> dict[str, object]:
    """The ``in_domain`` and ``domain_reasons`` columns of a score row (empty: no check)."""
    if check is None:
        return {"in_domain": None, "domain_reasons": ""}
    return {"in_domain": check.in_domain, "domain_reasons": "; ".join(check.reasons)}
