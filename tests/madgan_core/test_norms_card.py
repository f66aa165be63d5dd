"""The controls' covariates on a model's card: ``madgan info`` and ``madgan calibrate``."""

from __future__ import annotations

import json

import numpy as np

from madgan_core.cli import main
from madgan_core.model.norms_card import NO_AGES, controls_covariates, covariates_lines
from madgan_core.model.reference import HealthyReference
from madgan_core.scans.covariates import Covariates
from madgan_testing.controls import aged_reference


def _two_sequences() -> HealthyReference:
    """80 controls, 40 per sequence: ages for 20 of T1 and 12 of T1c, two sites."""
    t1, t1c = aged_reference(40, "T1", (45, 92)), aged_reference(40, "T1c", (45, 92), seed=1)
    people = [
        None if i >= 20 else Covariates(p.age, p.sex, "A") for i, p in enumerate(t1.covariates)
    ] + [None if i >= 12 else Covariates(p.age, p.sex, "B") for i, p in enumerate(t1c.covariates)]
    return HealthyReference(
        scores={m: np.concatenate([t1.scores[m], t1c.scores[m]]) for m in t1.scores},
        names=t1.names + [f"other{i:02d}" for i in range(40)],
        sequences=t1.sequences + t1c.sequences,
        covariates=people,
    )


def test_the_controls_ages_sexes_and_sites_are_counted_per_sequence():
    summary = controls_covariates(_two_sequences())
    lines = covariates_lines(summary)
    assert lines[0] == (
        "Controls' ages: 32 of 80 (T1 20, T1c 12), 45-68 years (median 54); "
        "sex: 16 F, 16 M; site: A 20, B 12"
    )
    assert lines[1].startswith(
        "Age- and sex-adjusted percentiles: T1 for age and sex (n = 20, leave-one-out R² of "
        "the mean score 0."
    )
    assert lines[1].endswith(
        "T1c not available (not adjusted for age: only 12 controls have an age (20 needed))"
    )
    assert summary["adjusted"]["T1"]["loo_r2"] > 0.5
    json.dumps(summary)  # the card is JSON


def test_the_fit_is_that_of_the_headline_score_at_the_controls_median_age():
    reference = aged_reference(30)
    summary = controls_covariates(reference)
    fit, _ = reference.normative_fit("mean", "T1", Covariates(70.0, "F"))
    assert summary["age_median"] == 70.0
    assert summary["adjusted"]["T1"] == {
        "available": True,
        "covariates": "age and sex",
        "n": 30,
        "mode": "mean",
        "loo_r2": fit.loo_r2,
        "note": "",
    }


def test_controls_without_ages_say_percentiles_are_not_age_adjusted():
    reference = aged_reference(30)
    reference.covariates = []
    assert covariates_lines(controls_covariates(reference)) == [f"Controls' ages: {NO_AGES}"]
    reference.covariates = [Covariates(sex="F" if i % 2 else "M") for i in range(30)]
    lines = covariates_lines(controls_covariates(reference))
    assert lines[0] == f"Controls' ages: {NO_AGES}; sex: 15 F, 15 M; site: not stored"
    # the scores grow with age, not with sex: a fit on sex alone fails its check
    assert lines[1].startswith(
        "Age- and sex-adjusted percentiles: T1 not available (not adjusted for sex: among "
        "the 30 controls, sex does not predict this score (leave-one-out R² -"
    )


def test_info_describes_the_controls_covariates(tiny_model_file, tmp_path, capsys):
    path = tiny_model_file(tmp_path / "m.pt", step=1, reference=aged_reference(30).to_dict())
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Controls' ages: 30 of 30 (T1 30), 50-90 years (median 70); sex: 15 F, 15 M" in text
    assert "Age- and sex-adjusted percentiles: T1 for age and sex (n = 30" in text
    assert main(["info", str(path), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["calibration"]["covariates"]["with_age"] == 30
    without_ages = aged_reference(20)
    without_ages.covariates = []
    plain = tiny_model_file(tmp_path / "plain.pt", step=1, reference=without_ages.to_dict())
    assert main(["info", str(plain)]) == 0
    assert f"Controls' ages: {NO_AGES}" in capsys.readouterr().out


def test_calibrate_prints_the_controls_covariates(tiny_model_file, tmp_path, capsys, monkeypatch):
    from madgan_core.scans import manifest
    from madgan_core.scoring import calibrate

    path = tiny_model_file(tmp_path / "m.pt", step=1)
    monkeypatch.setattr(manifest, "read_manifest", lambda _path: [])
    monkeypatch.setattr(calibrate, "calibrate_model", lambda *a, **k: aged_reference(30))
    assert main(["calibrate", str(path), "--manifest", str(tmp_path / "m.csv")]) == 0
    out = capsys.readouterr().out
    assert "Stored 30 healthy controls" in out
    assert "Controls' ages: 30 of 30 (T1 30), 50-90 years (median 70); sex: 15 F, 15 M" in out
    assert "Age- and sex-adjusted percentiles: T1 for age and sex (n = 30" in out
