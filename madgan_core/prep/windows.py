"""Sliding windows over a slab: ``in_slices`` inputs -> ``out_slices`` targets.

With the paper's 3 -> 3 and no gap, window ``i`` reads slices ``i, i+1, i+2``
and predicts ``i+3, i+4, i+5``; a slab of ``n`` slices gives ``n - 5`` windows.

This is the splitter of the scoring chain, in the roles of MONAI's inferers: the
inferer is :mod:`madgan_core.scoring.reconstruct`, the merger
:mod:`madgan_core.prep.native_maps`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from madgan_core.config import ModelConfig


def window_count(n_slices: int, model: ModelConfig) -> int:
    return max(0, n_slices - model.window_span + 1)


def target_offset(model: ModelConfig) -> int:
    """Index of a window's first target slice, relative to its first input slice."""
    return model.in_slices + model.gap


def target_coverage(n_slices: int, model: ModelConfig) -> np.ndarray:
    """How many windows predict each slice (0 for slices never predicted)."""
    counts = np.zeros(n_slices, dtype=np.int64)
    offset = target_offset(model)
    for start in range(window_count(n_slices, model)):
        counts[start + offset : start + offset + model.out_slices] += 1
    return counts


def window_arrays(slices: np.ndarray, model: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """All windows as zero-copy views: inputs ``(w, in, H, W)`` and targets ``(w, out, H, W)``."""
    n = window_count(len(slices), model)
    offset = target_offset(model)
    view = np.lib.stride_tricks.sliding_window_view(slices, model.window_span, axis=0)
    view = np.moveaxis(view, -1, 1)[:n]
    return view[:, : model.in_slices], view[:, offset : offset + model.out_slices]


def iter_window_batches(
    slices: np.ndarray, model: ModelConfig, batch_size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(first_window, inputs, targets)`` in batches, copying one batch at a time."""
    inputs, targets = window_arrays(slices, model)
    for start in range(0, len(inputs), batch_size):
        stop = start + batch_size
        yield (
            start,
            np.ascontiguousarray(inputs[start:stop]),
            np.ascontiguousarray(targets[start:stop]),
        )
