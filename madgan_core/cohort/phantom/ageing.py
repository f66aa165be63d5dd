"""Ages, sexes and healthy ageing of phantom subjects.

Each subject of an ageing cohort draws an age and a sex from its own stream (not the
anatomy's, so cohorts without ages are unchanged). Healthy ageing is applied to every
subject before any disease effect: ventricles enlarge, hippocampi shrink and sulci widen
with an ageing load that grows quadratically with age, 0 at :data:`REFERENCE_AGE` (the
age-free default anatomy) and the mean effect of AD stage :data:`AGEING_STAGE` at
:data:`FULL_LOAD_AGE`. Older
subjects also get occasional small periventricular white-matter lesions (healthy
ageing: recorded, never a lesion mask). Men's heads are slightly larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madgan_core.cohort.phantom.diseases import AD_STAGE_EFFECT, Painted, paint_wm_lesions
from madgan_core.cohort.phantom.healthy import Anatomy
from madgan_core.cohort.phantom.template import Template

# Age distributions per group (OASIS-3-like): mean, SD, lowest, highest (years).
AGE_DISTRIBUTION = {
    "healthy": (68.0, 9.0, 42.0, 95.0),
    "ad": (75.0, 7.0, 55.0, 95.0),
    "mets": (62.0, 12.0, 30.0, 90.0),
    "various": (62.0, 12.0, 30.0, 90.0),
}
# Probability that a subject is female.
FEMALE_PROBABILITY = {"healthy": 0.5, "ad": 0.55, "mets": 0.5, "various": 0.5}
# Head-size factor (all three axes) by sex.
HEAD_SCALE = {"F": 0.985, "M": 1.015}

REFERENCE_AGE = 68.0  # ageing load 0: the anatomy the age-free phantoms draw
FULL_LOAD_AGE = 85.0  # ageing load 1: the mean extra atrophy of AD stage AGEING_STAGE
# Healthy ageing from 68 to 85 is about the difference between an AD stage-2 (CDR 1-like)
# brain and its age-matched controls. Stage 1's effect lies within the phantoms' healthy
# spread, and an ageing that small never reached the models' scores (docs/data.md).
AGEING_STAGE = 2
ONSET_AGE = 40.0  # the load's quadratic starts here
PACE_RANGE = (0.7, 1.3)  # per-subject speed of ageing
# White-matter lesions of ageing: probability 0 below WMH_START_AGE, rising by
# WMH_PER_YEAR up to WMH_MAX; 1-4 lesions of radius 1.5-3 mm.
WMH_START_AGE = 50.0
WMH_PER_YEAR = 0.015
WMH_MAX = 0.6
WMH_COUNT = (1, 5)
WMH_RADIUS_MM = (1.5, 3.0)


@dataclass(frozen=True)
class Person:
    """A phantom subject's age (years, one decimal) and sex (``F`` or ``M``)."""

    age: float
    sex: str


def _stream(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(key,)))


def draw_person(group: str, seed: int) -> Person:
    """The age and sex of the subject with ``seed`` in ``group`` (its own random stream)."""
    mean, sd, low, high = AGE_DISTRIBUTION[group]
    rng = _stream(seed, 5)
    age = round(float(np.clip(rng.normal(mean, sd), low, high)), 1)
    sex = "F" if rng.random() < FEMALE_PROBABILITY[group] else "M"
    return Person(age, sex)


def ageing_load(age: float) -> float:
    """0 at :data:`REFERENCE_AGE`, 1 at :data:`FULL_LOAD_AGE`, quadratic in age (negative younger)."""

    def q(a: float) -> float:
        return ((max(a, ONSET_AGE) - ONSET_AGE) / (FULL_LOAD_AGE - ONSET_AGE)) ** 2

    return (q(age) - q(REFERENCE_AGE)) / (q(FULL_LOAD_AGE) - q(REFERENCE_AGE))


def wmh_probability(age: float) -> float:
    """Probability of white-matter lesions of ageing at ``age``."""
    return float(np.clip((age - WMH_START_AGE) * WMH_PER_YEAR, 0.0, WMH_MAX))


def ageing_stream(seed: int) -> np.random.Generator:
    """The subject's ageing generator (pace, white-matter lesions): apart from its anatomy's."""
    return _stream(seed, 3)


def apply_ageing(
    anatomy: Anatomy, age: float | None, sex: str | None, rng: np.random.Generator
) -> tuple[Anatomy, dict]:
    """Add healthy ageing (``age``) and head size (``sex``) to a drawn anatomy.

    Returns the anatomy and the effects added (``load``, ``pace``, the change of each
    field, ``head_scale``) for the subject's record.
    """
    effects: dict = {}
    if age is not None:
        load = ageing_load(age)
        pace = float(rng.uniform(*PACE_RANGE))
        full = AD_STAGE_EFFECT[AGEING_STAGE]
        dv = full["ventricle_mm"] * load * pace
        dh = full["hippocampus_mm"] * load * pace
        cortical = max(anatomy.cortical_atrophy + full["cortical_atrophy"] * load * pace, 0.0)
        dc = cortical - anatomy.cortical_atrophy
        anatomy.ventricle_mm += dv
        anatomy.hippocampus_mm += dh
        anatomy.cortical_atrophy = cortical
        effects |= {"load": load, "pace": pace, "ventricle_mm": dv, "hippocampus_mm": dh}
        effects["cortical_atrophy"] = dc
    if sex is not None:
        anatomy.scale = anatomy.scale * HEAD_SCALE[sex]
        effects["head_scale"] = HEAD_SCALE[sex]
    return anatomy, {k: round(float(v), 4) for k, v in effects.items()}


def paint_ageing_wmh(
    t1: np.ndarray, template: Template, age: float, rng: np.random.Generator
) -> Painted | None:
    """Small white-matter lesions of ageing, with probability :func:`wmh_probability`; None
    when the subject has none."""
    if rng.random() >= wmh_probability(age):
        return None
    n = int(rng.integers(*WMH_COUNT))
    return paint_wm_lesions(t1, template, rng, n, WMH_RADIUS_MM, kind="wm_hyperintensity")
