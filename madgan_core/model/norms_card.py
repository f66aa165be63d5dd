"""What a model's healthy controls say about age and sex: the covariates stored with them
and, per sequence, whether percentiles can be adjusted for them
(:mod:`madgan_core.model.normative`), as plain data and as text.

``madgan info`` shows it on the model's card and ``madgan calibrate`` after calibrating.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from madgan_core.model.normative import MIN_CONTROLS
from madgan_core.model.reference import HealthyReference
from madgan_core.modes import ANOMALY, PAPER_HEADLINE
from madgan_core.scans.covariates import SEXES, Covariates

NO_AGES = "no ages stored with the controls: percentiles are not age-adjusted"


def controls_covariates(reference: HealthyReference) -> dict[str, Any]:
    """The controls' covariates and, per sequence, the adjusted percentiles they allow
    (JSON-ready).

    Keys: ``controls``, ``with_age`` (controls with an age), ``with_age_per_sequence``,
    ``age_range`` (``[youngest, oldest]`` or None), ``age_median``, ``sex`` (controls per
    sex), ``sites`` (controls per site) and ``adjusted``: per sequence, ``available``,
    ``covariates`` (e.g. ``"age and sex"``), ``n``, ``mode`` (the headline score whose
    model it is), ``loo_r2`` and ``note`` (why not, when not).
    """
    people = list(reference.covariates) or [None] * reference.n
    aged = [p.age for p in people if p is not None and p.age is not None]
    sequences = sorted(set(reference.sequences))
    per_sequence = {
        s: sum(
            1 for p, q in zip(people, reference.sequences, strict=True) if _has_age(p) and q == s
        )
        for s in sequences
    }
    sexes = Counter(p.sex for p in people if p is not None and p.sex is not None)
    sites = Counter(p.site for p in people if p is not None and p.site is not None)
    return {
        "controls": reference.n,
        "with_age": len(aged),
        "with_age_per_sequence": per_sequence,
        "age_range": [float(min(aged)), float(max(aged))] if aged else None,
        "age_median": float(np.median(aged)) if aged else None,
        "sex": {s: sexes[s] for s in SEXES if sexes[s]},
        "sites": dict(sorted(sites.items())),
        "adjusted": {str(s): _adjusted(reference, s) for s in (sequences or [None])}
        if aged or sexes
        else {},
    }


def covariates_lines(summary: dict[str, Any]) -> list[str]:
    """The summary of :func:`controls_covariates` as one or two lines of text, e.g.
    ``Controls' ages: 40 of 80 (T1 20, T1c 20), 45-92 years (median 70); sex: 21 F, 19 M;
    site: not stored``."""
    if not summary["with_age"] and not summary["sex"]:
        return [f"Controls' ages: {NO_AGES}"]
    if summary["with_age"]:
        per = ", ".join(f"{s} {n}" for s, n in summary["with_age_per_sequence"].items())
        low, high = summary["age_range"]
        ages = (
            f"{summary['with_age']} of {summary['controls']}{f' ({per})' if per else ''}, "
            f"{low:.0f}-{high:.0f} years (median {summary['age_median']:.0f})"
        )
    else:
        ages = NO_AGES
    sex = ", ".join(f"{n} {s}" for s, n in summary["sex"].items()) or "not stored"
    site = ", ".join(f"{s} {n}" for s, n in summary["sites"].items()) or "not stored"
    lines = [f"Controls' ages: {ages}; sex: {sex}; site: {site}"]
    parts = []
    for sequence, adjusted in summary["adjusted"].items():
        where = "all controls" if sequence == "None" else sequence
        if adjusted["available"]:
            r2 = adjusted["loo_r2"]
            parts.append(
                f"{where} for {adjusted['covariates']} (n = {adjusted['n']}, leave-one-out R² "
                f"of the {adjusted['mode']} score {r2:.2f}"
                f"{': they explain none of it' if r2 <= 0 else ''})"
            )
        else:
            parts.append(f"{where} not available ({adjusted['note']})")
    if parts:
        lines.append(f"Age- and sex-adjusted percentiles: {'; '.join(parts)}")
    return lines


def _has_age(person: Covariates | None) -> bool:
    return person is not None and person.age is not None


def _adjusted(reference: HealthyReference, sequence: str | None) -> dict[str, Any]:
    """Whether a scan of ``sequence`` of the controls' median age (and sex F) gets adjusted
    percentiles of the headline score, for what, and how well the covariates predict it."""
    mode = ANOMALY if reference.supports_anomaly(sequence) else PAPER_HEADLINE
    chosen = [
        p
        for p, s in zip(
            reference.covariates, reference.sequences or [None] * reference.n, strict=True
        )
        if p is not None and (s == sequence or not reference.sequences)
    ]
    ages = [p.age for p in chosen if p.age is not None]
    has_sex = any(p.sex is not None for p in chosen)
    probe = Covariates(
        age=float(np.median(ages)) if ages else None,
        sex="F" if has_sex else None,
    )
    fit, plan = reference.normative_fit(mode, sequence, probe)
    if fit is None:
        note = plan.note or f"only {len(ages)} controls have an age ({MIN_CONTROLS} needed)"
        return {"available": False, "mode": mode, "note": note}
    uses = [name for name, used in (("age", plan.uses_age), ("sex", plan.uses_sex)) if used]
    return {
        "available": True,
        "covariates": " and ".join(uses),
        "n": fit.n,
        "mode": mode,
        "loo_r2": fit.loo_r2,
        "note": "",
    }
