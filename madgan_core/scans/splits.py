"""Subject-level splits with a seed, stratified so every split gets its share of each stratum."""

from __future__ import annotations

import random
from collections.abc import Mapping

from madgan_core.errors import ManifestError
from madgan_core.scans.manifest import SPLITS

# Healthy subjects of a cohort (docs/data.md): training gains little from more of them;
# the z-statistics and AUC intervals gain from more calib and test controls.
DEFAULT_FRACTIONS = {"train": 0.40, "calib": 0.25, "test": 0.35}


def parse_fractions(text: str) -> dict[str, float]:
    """``train=0.6,calib=0.2,test=0.2`` as a dict; fractions are normalised to sum to 1."""
    fractions: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SPLITS:
            raise ManifestError(
                f"split {part!r} is not NAME=FRACTION with NAME one of {', '.join(SPLITS)}"
            )
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not fraction >= 0:
            raise ManifestError(f"split {part!r}: the fraction is not a non-negative number")
        fractions[name] = fraction
    total = sum(fractions.values())
    if total <= 0:
        raise ManifestError(f"splits {text!r}: the fractions must sum to more than 0")
    return {name: fractions.get(name, 0.0) / total for name in SPLITS}


def split_subjects(
    strata: Mapping[str, str], fractions: Mapping[str, float], seed: int
) -> dict[str, str]:
    """Assign each subject (the keys of ``strata``) a split.

    Subjects are shuffled with ``seed`` within each stratum and dealt out in turn, each
    to the split furthest below its share, so every stratum and the whole set follow
    ``fractions`` as closely as whole subjects allow. The same subjects, strata, fractions
    and seed always give the same splits.
    """
    rng = random.Random(seed)
    order: list[str] = []
    for stratum in sorted(set(strata.values())):
        members = sorted(s for s, key in strata.items() if key == stratum)
        rng.shuffle(members)
        order.extend(members)
    names = [n for n in SPLITS if fractions.get(n, 0.0) > 0]
    counts = dict.fromkeys(names, 0)
    result: dict[str, str] = {}
    for i, subject in enumerate(order, start=1):
        name = max(names, key=lambda n: fractions[n] * i - counts[n])
        counts[name] += 1
        result[subject] = name
    return result
