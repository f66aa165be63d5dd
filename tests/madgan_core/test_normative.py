"""The normative reference: percentiles against controls of the scan's age and sex."""

import numpy as np
import pytest

from madgan_core.model.normative import MIN_CONTROLS, fit_norms, plan_norms
from madgan_core.model.reference import HealthyReference, MalformedReference
from madgan_core.outputs.wording import describe_percentile, percentile_reading
from madgan_core.scans.covariates import Covariates, dicom_age_years, normalise_sex
from madgan_core.scoring.result import ScanScore


def _ageing_controls(n: int = 60, seed: int = 0, with_sex: bool = True):
    """Scores that grow 0.01 a year, women 0.05 lower, with noise of 0.02."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(45, 95, n)
    sexes = ["F" if i % 2 else "M" for i in range(n)]
    values = 0.01 * ages - 0.05 * (np.asarray(sexes) == "F") + rng.normal(0, 0.02, n)
    people = [
        Covariates(float(a), s if with_sex else None) for a, s in zip(ages, sexes, strict=True)
    ]
    reference = HealthyReference(
        {"mean": values}, [f"c{i}" for i in range(n)], ["T1"] * n, covariates=people
    )
    return reference, values


def test_an_old_healthy_scan_is_ordinary_among_people_of_its_age():
    reference, _ = _ageing_controls()
    old_healthy = 0.01 * 90 - 0.05  # the expected score of a 90-year-old woman
    plain = reference.percentile(old_healthy, "mean", "T1")
    adjusted, how = reference.adjusted_percentiles({"mean": old_healthy}, "T1", Covariates(90, "F"))
    assert plain > 80  # among controls of all ages she looks unusual
    assert 25 < adjusted["mean"] < 75  # among people of her age and sex she does not
    assert how["mean"].covariates == "age 90 and sex F"
    assert how["mean"].n == 60
    assert how["mean"].loo_r2 > 0.8


def test_a_young_scan_with_an_old_brain_stands_out_once_adjusted():
    reference, _ = _ageing_controls()
    young_but_high = 0.01 * 85  # a 50-year-old man scoring like an 85-year-old
    plain = reference.percentile(young_but_high, "mean", "T1")
    adjusted, _ = reference.adjusted_percentiles(
        {"mean": young_but_high}, "T1", Covariates(50, "M")
    )
    assert plain < 90
    assert adjusted["mean"] >= 99


def test_a_scan_without_covariates_gets_the_plain_percentiles_and_no_note():
    reference, _ = _ageing_controls()
    scores = {"mean": 0.7}
    for covariates in (None, Covariates()):
        percentiles, how = reference.adjusted_percentiles(scores, "T1", covariates)
        assert percentiles == reference.percentiles(scores, "T1")
        assert how == {}


def test_a_reference_without_covariates_is_unchanged():
    reference, values = _ageing_controls()
    reference.covariates = []
    percentiles, how = reference.adjusted_percentiles({"mean": 0.7}, "T1", Covariates(70, "F"))
    assert percentiles == reference.percentiles({"mean": 0.7}, "T1")
    assert how == {}


def test_too_few_controls_fall_back_to_the_plain_percentile_and_say_so():
    reference, _ = _ageing_controls(n=MIN_CONTROLS - 1)
    percentiles, how = reference.adjusted_percentiles({"mean": 0.7}, "T1", Covariates(70, "F"))
    assert percentiles == reference.percentiles({"mean": 0.7}, "T1")
    assert how["mean"].note == (
        f"not adjusted for age: only {MIN_CONTROLS - 1} controls have an age ({MIN_CONTROLS} needed)"
    )


def test_an_age_outside_the_controls_is_not_extrapolated():
    reference, _ = _ageing_controls()
    _, how = reference.adjusted_percentiles({"mean": 0.2}, "T1", Covariates(21, "F"))
    assert not how["mean"].adjusted
    assert how["mean"].note.startswith("not adjusted for age: 21 is outside the controls' ages (45")


def test_sex_enters_only_with_enough_controls_of_each_sex():
    reference, _ = _ageing_controls(with_sex=False)
    _, how = reference.adjusted_percentiles({"mean": 0.7}, "T1", Covariates(70, "F"))
    assert how["mean"].covariates == "age 70"
    plan = plan_norms(Covariates(None, "F"), [Covariates(60, "F")] * 30 + [Covariates(60, "M")] * 2)
    assert not plan.adjusts
    assert plan.note == "not adjusted for sex: 30 F and 2 M controls (5 of each needed)"


def test_leave_one_out_residuals_are_those_of_fits_without_each_control():
    rng = np.random.default_rng(3)
    people = [Covariates(float(a)) for a in rng.uniform(50, 90, 25)]
    values = np.array([0.02 * p.age for p in people]) + rng.normal(0, 0.05, 25)
    fit = fit_norms(values, people, uses_age=True, uses_sex=False)
    x = np.array([p.age for p in people])
    expected = []
    for i in range(25):
        keep = np.arange(25) != i
        slope, intercept = np.polyfit(x[keep], values[keep], 1)
        expected.append(values[i] - (slope * x[i] + intercept))
    np.testing.assert_allclose(fit.loo_residuals, np.sort(expected), atol=1e-10)


def test_covariates_are_stored_with_the_reference_and_checked_on_reading():
    reference, _ = _ageing_controls(n=4)
    reference.covariates[1] = None
    again = HealthyReference.from_dict(reference.to_dict())
    assert again.covariates == reference.covariates
    stored = reference.to_dict()
    stored["covariates"] = stored["covariates"][:3]
    with pytest.raises(MalformedReference, match="3 covariates for 4 controls"):
        HealthyReference.from_dict(stored)
    stored["covariates"] = ["74"] * 4
    with pytest.raises(MalformedReference, match="covariates must be mappings"):
        HealthyReference.from_dict(stored)
    assert "covariates" not in HealthyReference({"mean": np.zeros(2)}, ["a", "b"]).to_dict()


def test_the_reading_names_the_adjustment_and_its_controls():
    reference, _ = _ageing_controls(n=120)
    percentiles, how = reference.adjusted_percentiles({"mean": 0.74}, "T1", Covariates(74, "F"))
    result = ScanScore(
        name="scan",
        path=None,
        scores={"mean": 0.74},
        window_losses=np.zeros(1),
        copy_losses=np.zeros(1),
        slice_losses=np.zeros(1),
        slice_coverage=np.ones(1),
        slice_indices=np.zeros(1),
        percentiles=percentiles,
        n_controls=120,
        controls="healthy controls (T1, 1.0 mm)",
        covariates=Covariates(74, "F"),
        adjustments=how,
    )
    reading = percentile_reading(result, "mean")
    assert reading.endswith(
        "percentile among healthy controls (T1, 1.0 mm), adjusted for age 74 and sex F "
        "(n = 120): highly unusual"
    )
    row = result.to_row()
    assert (row["age"], row["sex"], row["adjusted_for"], row["n_adjusted"]) == (
        74,
        "F",
        "age 74 and sex F",
        120,
    )
    assert describe_percentile(100.0, 120, "healthy controls", "age 74") == (
        "above all healthy controls, adjusted for age 74 (n = 120)"
    )


def test_covariates_read_the_usual_spellings():
    assert [normalise_sex(v) for v in ("F", "female", "M", " male ", "O", "", None)] == [
        "F",
        "F",
        "M",
        "M",
        None,
        None,
        None,
    ]
    assert dicom_age_years("074Y") == 74
    assert dicom_age_years("006M") == 0.5
    assert dicom_age_years("74") is None
    assert Covariates.of("", "female", "").to_dict() == {"age": None, "sex": "F", "site": None}
    with pytest.raises(ValueError, match="not a non-negative"):
        Covariates(age=-3)


def test_a_fit_that_predicts_nothing_out_of_sample_leaves_the_plain_percentile():
    rng = np.random.default_rng(5)
    ages = rng.uniform(45, 95, 40)
    values = rng.normal(0.5, 0.02, 40)  # the score does not change with age
    reference = HealthyReference(
        {"mean": values},
        [f"c{i}" for i in range(40)],
        ["T1"] * 40,
        covariates=[Covariates(float(a)) for a in ages],
    )
    percentiles, how = reference.adjusted_percentiles({"mean": 0.52}, "T1", Covariates(80))
    assert percentiles == reference.percentiles({"mean": 0.52}, "T1")
    assert not how["mean"].adjusted and how["mean"].loo_r2 <= 0  # the row's norms_loo_r2
    assert how["mean"].note.startswith(
        "not adjusted for age: among the 40 controls, age does not predict this score "
        "(leave-one-out R² -"
    )
