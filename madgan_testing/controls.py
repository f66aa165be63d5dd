"""Healthy references whose controls carry ages and sexes, as a model file stores them."""

from __future__ import annotations

import numpy as np

from madgan_core.model.reference import HealthyReference
from madgan_core.scans.covariates import Covariates


def aged_reference(
    n: int = 30, sequence: str = "T1", ages: tuple[float, float] = (50.0, 90.0), seed: int = 0
) -> HealthyReference:
    """``n`` controls of ``sequence``, aged evenly across ``ages``, alternately F and M,
    whose ``mean`` and ``top10`` scores grow with age (plus a little noise)."""
    rng = np.random.default_rng(seed)
    years = np.linspace(ages[0], ages[1], n)
    people = [Covariates(float(a), "F" if i % 2 else "M") for i, a in enumerate(years)]
    mean = 0.01 + 0.0004 * (years - ages[0]) + rng.normal(0.0, 0.002, n)
    return HealthyReference(
        scores={"mean": mean, "top10": 2.0 * mean + rng.normal(0.0, 0.002, n)},
        names=[f"control{i:02d}" for i in range(n)],
        sequences=[sequence] * n,
        covariates=people,
    )
