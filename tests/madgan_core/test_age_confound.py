"""The age-confound section of the evaluation: AUCs with and without the normative reference."""

from pathlib import Path

import numpy as np

from madgan_core.cohort.evaluation.ages import (
    ADJUSTED,
    age_confound_markdown,
    age_confound_rows,
    with_adjusted_scores,
)
from madgan_core.model.reference import HealthyReference
from madgan_core.scans.covariates import Covariates
from madgan_core.scans.manifest import ManifestRow

COLUMN = "madgan:mean"


def _score(age: float, disease: float, rng) -> float:
    """Error grows 0.01 a year; disease adds ``disease``; noise 0.01."""
    return 0.01 * age + disease + rng.normal(0, 0.01)


def _cohort(seed: int = 0):
    """Controls of all ages; test healthy scans of all ages, AD-like ones older on average."""
    rng = np.random.default_rng(seed)
    control_ages = rng.uniform(45, 95, 40)
    reference = HealthyReference(
        {"mean": np.array([_score(a, 0, rng) for a in control_ages])},
        [f"c{i}" for i in range(40)],
        ["T1"] * 40,
        covariates=[
            Covariates(float(a), "F" if i % 2 else "M") for i, a in enumerate(control_ages)
        ],
    )
    rows, records = [], []
    people = [("healthy", a) for a in rng.uniform(45, 95, 30)]
    people += [("ad", a) for a in rng.uniform(45, 70, 6)] + [
        ("ad", a) for a in rng.uniform(75, 95, 24)
    ]
    for i, (group, age) in enumerate(people):
        path = Path(f"/cohort/s{i}_T1.nii.gz")
        rows.append(
            ManifestRow(path, f"s{i}", group, int(group == "ad"), "T1", "test", age=age, sex="F")
        )
        value = _score(age, 0.05 if group == "ad" else 0.0, rng)
        records.append(
            {
                "path": str(path),
                "group": group,
                "stage": int(group == "ad"),
                "sequence": "T1",
                COLUMN: value,
            }
        )
    return reference, rows, records


def test_adjusted_scores_remove_what_age_predicts():
    reference, rows, records = _cohort()
    adjusted = with_adjusted_scores(records, rows, reference, [COLUMN])
    healthy = [r for r in adjusted if r["group"] == "healthy"]
    ages = np.array([r["age"] for r in healthy])
    plain = np.array([r[COLUMN] for r in healthy])
    residual = np.array([r[COLUMN + ADJUSTED] for r in healthy])
    assert np.corrcoef(ages, plain)[0, 1] > 0.9
    assert abs(np.corrcoef(ages, residual)[0, 1]) < 0.3
    assert abs(residual.mean()) < 0.01


def test_old_healthy_against_young_disease_is_rescued_by_the_adjustment():
    reference, rows, records = _cohort()
    found = {
        r.label: r
        for r in age_confound_rows(
            with_adjusted_scores(records, rows, reference, [COLUMN]), COLUMN, n_boot=50
        )
    }
    overall = found["T1: AD-like, all"]
    hard = found["T1: AD-like: healthy aged 75+ against diseased under 70"]
    assert overall.median_age_disease > overall.median_age_healthy
    assert hard.plain.auc < 0.2  # the old healthy score higher than the young diseased
    assert hard.adjusted.auc > 0.9
    assert overall.adjusted.auc > 0.9


def test_no_ages_no_section():
    reference, rows, records = _cohort()
    rows = [ManifestRow(r.path, r.subject, r.group, r.stage, r.sequence, r.split) for r in rows]
    adjusted = with_adjusted_scores(records, rows, reference, [COLUMN])
    assert age_confound_markdown(adjusted, [COLUMN], n_boot=10) == []


def test_the_section_is_a_markdown_table():
    reference, rows, records = _cohort()
    lines = age_confound_markdown(
        with_adjusted_scores(records, rows, reference, [COLUMN]), [COLUMN], n_boot=10
    )
    assert lines[0] == "## The age confound"
    table = [line for line in lines if line.startswith("| T1")]
    assert len(table) == 2  # AD-like (one stage, one group), then its hard case
    assert all(line.count("|") == 6 for line in table)
