"""A model card shows the evaluations its recipe records."""

from __future__ import annotations

from madgan_core.model.card import evaluation_lines


def test_recorded_evaluations_are_listed_figure_by_figure():
    lines = evaluation_lines(
        {
            "the demo test split": {
                "auc": {"T1: AD-like, all": 0.6701},
                "detected_at_1fp": {"mets (T1c)": 0.655},
            }
        }
    )
    assert lines == [
        "Evaluated on the demo test split:",
        "  AUC T1: AD-like, all: 0.670",
        "  detected at 1 FP per healthy scan, mets (T1c): 66 %",
    ]
    assert evaluation_lines(None) == [] and evaluation_lines({"x": 3}) == []
