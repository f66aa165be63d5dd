"""Scan results made by hand, for tests of what a reader is shown."""

from __future__ import annotations

import dataclasses

import numpy as np

from madgan_core.scoring.result import ScanScore


def plain_result(
    percentiles: dict[str, float] | None = None, n: int = 0, ztail: bool = True, **changes
) -> ScanScore:
    """A result with the paper's scores (and ``ztail``), no maps and ``n`` controls."""
    scores = {"mean": 0.02, "top10": 0.03, "ratio": 1.1}
    if ztail:
        scores["ztail"] = 4.2
    empty = np.zeros(0)
    result = ScanScore(
        "scan",
        None,
        scores,
        empty,
        empty,
        empty,
        empty,
        empty,
        percentiles=percentiles or {},
        n_controls=n,
    )
    return dataclasses.replace(result, **changes)
