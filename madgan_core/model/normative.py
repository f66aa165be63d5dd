"""The normative reference: a scan's score against healthy controls of its age and sex.

In ageing brains the error of a healthy scan grows with age, so a plain percentile among
controls of all ages mixes age with disease. When the controls' ages (and sexes) are
stored with the model, each score is modelled in the controls as a linear function of
age and sex (scikit-learn's ordinary least squares), and the scan's percentile is that
of its residual among the controls' leave-one-out residuals: each control is predicted
by the model fitted without it, so the comparison is as honest as the scan's own.

The fit must earn its place: when its covariates do not predict the score out of sample
(leave-one-out R² at or below 0, as when the score does not change with age), the plain
percentile stands, with a note saying so; an adjustment there would only add the fit's
noise. Whatever the scan lacks is left out of the model (a scan with an age but no sex is
adjusted for age alone). Too few controls with the covariates, or a scan older or
younger than the controls by more than :data:`AGE_MARGIN` years, falls back to the plain
percentile and says why (:class:`Adjustment`). The headline, the findings and the guard
do not change: only the percentiles do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from madgan_core.scans.covariates import Covariates

MIN_CONTROLS = 20  # controls with finite scores and the covariates the model uses
MIN_PER_SEX = 5  # controls of each sex for sex to enter the model
AGE_MARGIN = 5.0  # years beyond the controls' youngest and oldest still adjusted


@dataclass(frozen=True)
class Adjustment:
    """How one percentile was made.

    Attributes:
        covariates: what it was adjusted for, e.g. ``"age 74 and sex F"``; empty when
            it was not.
        n: the controls behind the adjusted percentile (0 when not adjusted).
        note: why a scan with covariates was not adjusted, e.g. ``"not adjusted for age:
            only 12 controls have an age (20 needed)"``; empty otherwise.
        loo_r2: the share of the controls' variance the covariates explain, leave-one-out
            (negative: they explain nothing, and the adjusted percentile is the plain one
            with noise added).
    """

    covariates: str = ""
    n: int = 0
    note: str = ""
    loo_r2: float | None = None

    @property
    def adjusted(self) -> bool:
        return bool(self.covariates)

    def to_dict(self) -> dict[str, object]:
        return {
            "adjusted_for": self.covariates,
            "n_adjusted": self.n,
            "norms_note": self.note,
            "norms_loo_r2": self.loo_r2,
        }


@dataclass(frozen=True)
class NormativeFit:
    """A score modelled on age and/or sex in the controls, with leave-one-out residuals."""

    uses_age: bool
    uses_sex: bool
    coef: np.ndarray
    intercept: float
    loo_residuals: np.ndarray
    loo_r2: float
    age_range: tuple[float, float] | None

    @property
    def n(self) -> int:
        return len(self.loo_residuals)

    def predict(self, covariates: Covariates) -> float:
        return float(
            self.intercept + design([covariates], self.uses_age, self.uses_sex)[0] @ self.coef
        )

    def percentile(self, value: float, covariates: Covariates) -> float:
        """Percentage of the controls' leave-one-out residuals at or below the scan's."""
        residual = value - self.predict(covariates)
        return float(100.0 * np.count_nonzero(self.loo_residuals <= residual) / self.n)


def design(people: Sequence[Covariates], uses_age: bool, uses_sex: bool) -> np.ndarray:
    """The regressors: age in years, and 1 for F, 0 for M."""
    columns = []
    if uses_age:
        columns.append([float(p.age) for p in people])
    if uses_sex:
        columns.append([1.0 if p.sex == "F" else 0.0 for p in people])
    return np.asarray(columns, dtype=np.float64).T.reshape(len(people), len(columns))


def fit_norms(
    values: np.ndarray, people: Sequence[Covariates], uses_age: bool, uses_sex: bool
) -> NormativeFit:
    """Fit ``value ~ age + sex`` (the parts used) and its leave-one-out residuals."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    values = np.asarray(values, dtype=np.float64)
    x = design(people, uses_age, uses_sex)
    model = LinearRegression().fit(x, values)
    held_out = cross_val_predict(LinearRegression(), x, values, cv=LeaveOneOut())
    loo = values - held_out
    spread = float(np.sum((values - values.mean()) ** 2))
    loo_r2 = 1.0 - float(np.sum(loo**2)) / spread if spread > 0 else 0.0
    ages = [p.age for p in people] if uses_age else None
    return NormativeFit(
        uses_age=uses_age,
        uses_sex=uses_sex,
        coef=np.asarray(model.coef_, dtype=np.float64),
        intercept=float(model.intercept_),
        loo_residuals=np.sort(loo),
        loo_r2=loo_r2,
        age_range=None if ages is None else (float(min(ages)), float(max(ages))),
    )


@dataclass(frozen=True)
class NormsPlan:
    """Which covariates a scan is adjusted for, and which controls can take part.

    ``failed_check``: the fit was made but its covariates predict nothing out of sample
    (leave-one-out R² at or below 0, ``loo_r2``), so the plain percentile stands (see
    ``note``).
    """

    uses_age: bool
    uses_sex: bool
    note: str = ""
    failed_check: bool = False
    loo_r2: float | None = None

    @property
    def adjusts(self) -> bool:
        return self.uses_age or self.uses_sex


def plan_norms(scan: Covariates | None, controls: Sequence[Covariates | None]) -> NormsPlan:
    """What ``scan`` can be adjusted for among ``controls`` (the sequence's controls, with
    finite scores), or why it cannot (:attr:`NormsPlan.note`).

    A scan without age or sex is not adjusted and gets no note (everything as before).
    """
    if scan is None or (scan.age is None and scan.sex is None):
        return NormsPlan(False, False)
    people = [c for c in controls if c is not None]
    with_age = [c for c in people if c.age is not None]
    uses_age = scan.age is not None
    if uses_age and len(with_age) < MIN_CONTROLS:
        return NormsPlan(False, False, _too_few("an age", len(with_age), "age"))
    pool = with_age if uses_age else people
    sexed = [c for c in pool if c.sex is not None]
    per_sex = [sum(c.sex == s for c in sexed) for s in ("F", "M")]
    uses_sex = scan.sex is not None and len(sexed) >= MIN_CONTROLS and min(per_sex) >= MIN_PER_SEX
    if not uses_age and not uses_sex:
        return NormsPlan(False, False, _too_few("a sex", len(sexed), "sex", per_sex))
    if uses_age:
        ages = [c.age for c in (sexed if uses_sex else with_age)]
        low, high = min(ages), max(ages)
        if not low - AGE_MARGIN <= scan.age <= high + AGE_MARGIN:
            return NormsPlan(
                False,
                False,
                f"not adjusted for age: {scan.age:g} is outside the controls' ages "
                f"({low:g}-{high:g})",
            )
    return NormsPlan(uses_age, uses_sex)


def usable(control: Covariates | None, plan: NormsPlan) -> bool:
    """Whether a control has every covariate the plan uses."""
    if control is None:
        return False
    return (not plan.uses_age or control.age is not None) and (
        not plan.uses_sex or control.sex is not None
    )


def failed_check(fit: NormativeFit, scan: Covariates, plan: NormsPlan) -> NormsPlan:
    """The plan, marked as not adjusted because ``fit`` predicts nothing out of sample."""
    names = [name for name, used in (("age", plan.uses_age), ("sex", plan.uses_sex)) if used]
    subject = " and ".join(names)
    verb = "do" if len(names) > 1 else "does"
    return NormsPlan(
        False,
        False,
        f"not adjusted for {subject}: among the {fit.n} controls, {subject} {verb} not "
        f"predict this score (leave-one-out R² {fit.loo_r2:.2f})",
        failed_check=True,
        loo_r2=fit.loo_r2,
    )


def describe_adjustment(scan: Covariates, plan: NormsPlan) -> str:
    """E.g. ``"age 74 and sex F"``."""
    parts = []
    if plan.uses_age:
        parts.append(f"age {scan.age:g}")
    if plan.uses_sex:
        parts.append(f"sex {scan.sex}")
    return " and ".join(parts)


def _too_few(what: str, count: int, covariate: str, per_sex: list[int] | None = None) -> str:
    detail = f"only {count} controls have {what} ({MIN_CONTROLS} needed)"
    if per_sex is not None and count >= MIN_CONTROLS:
        detail = f"{per_sex[0]} F and {per_sex[1]} M controls ({MIN_PER_SEX} of each needed)"
    return f"not adjusted for {covariate}: {detail}"
