"""The most anomalous slices of a scored scan: the review's list and the report's pictures.

Slices are ranked by their mean ℓ2, or by the z-map (the percentage of the slice's brain
with z above 4) where the result has one and the reader looks at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from madgan_core.scoring.result import ScanScore

REPORT_SLICES = 3  # slices the report page shows


def ranked_slices(result: ScanScore, by_zmap: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """The scored slab slices, most anomalous first: ``(positions, values, label)``.

    ``positions`` index the slab (``result.slice_indices``), ``values`` are per slab slice
    and ``label`` formats one value. With ``by_zmap`` (when the result has per-slice
    z-map volumes) the ranking is by those, else by ℓ2; ties keep the later slice first.
    """
    if by_zmap and result.slice_zvolume is not None:
        values, label = np.asarray(result.slice_zvolume, dtype=float), "z>4: {:.1f} %"
    else:
        values, label = np.asarray(result.slice_losses, dtype=float), "ℓ2 = {:.4g}"
    valid = np.flatnonzero(np.isfinite(values))
    return valid[np.argsort(values[valid], kind="stable")[::-1]], values, label


def top_slices(result: ScanScore, k: int = 10, by_zmap: bool = False) -> list[tuple[int, str]]:
    """The ``k`` most anomalous scored slices, highest first, as ``(axial index, label)``,
    e.g. ``(42, "ℓ2 = 0.0131")`` (:func:`ranked_slices`)."""
    order, values, label = ranked_slices(result, by_zmap)
    return [(int(result.slice_indices[i]), label.format(values[i])) for i in order[:k]]


def report_slices(result: ScanScore, k: int = REPORT_SLICES) -> list[int]:
    """Axial (RAS+ z) indices of up to ``k`` of the most anomalous scored slices, in order.

    Ranked by the z-map when the result has one (the report's overlay then shows the
    z-map), else by ℓ2. Slices closer than a tenth of the scored range (at least 3) to one
    already chosen are passed over, so the page shows different places; when that leaves
    fewer than ``k``, the choice starts from the next-worst slice instead.
    """
    order, _, _ = ranked_slices(result, by_zmap=result.zmap is not None)
    if order.size == 0:
        return [int(result.slice_indices[len(result.slice_indices) // 2])]
    gap = max(3, order.size // 10)
    ranked = [int(i) for i in order]
    chosen: list[int] = []
    # Greedy from the worst slice; when the spacing leaves fewer than k, from the next.
    for start in range(len(ranked)):
        picked: list[int] = []
        for i in ranked[start:] + ranked[:start]:
            if all(abs(i - j) >= gap for j in picked):
                picked.append(i)
            if len(picked) == k:
                break
        if len(picked) > len(chosen):
            chosen = picked
        if len(chosen) == k:
            break
    return sorted(int(result.slice_indices[i]) for i in chosen)
