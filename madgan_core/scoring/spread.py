"""How widely a scan departs from healthy: the share of the brain's regions its z-map exceeds.

A lesion, however large, departs in a few places. Atrophy raises z a little almost
everywhere, but seldom above the finding threshold. A brain whose anatomy the model
never learned departs above it all over: gyri, ventricles and cerebellum it cannot
predict. :func:`departure_spread` measures that: the brain's bounding box is cut into
:data:`BLOCKS` ³ blocks, a block *departs* when at least :data:`BLOCK_SHARE` of its brain
voxels have z above the threshold, and the spread is the share of departing blocks
among those that hold brain. Each score row carries it (``departure_spread``).

No check acts on it: on validation cohorts with a held-out anatomy, the healthy scans
of the brain the model never saw spread no wider than AD-like atrophy of the brains it
did, and large enhancing metastases spread widest of all (docs/real-scans.md,
"Can the guard tell an unfamiliar brain?").
"""

from __future__ import annotations

import numpy as np

BLOCKS = 3
BLOCK_SHARE = 0.02
# Blocks holding less than this share of an average block's brain are left out (edges).
MIN_BLOCK_SHARE = 0.2


def departure_spread(zmap: np.ndarray, threshold: float) -> float | None:
    """The share (0-1) of the brain's blocks where z exceeds ``threshold`` in at least
    :data:`BLOCK_SHARE` of the block's brain voxels; ``zmap`` is NaN outside the brain.
    None for a z-map without brain voxels."""
    brain = np.isfinite(zmap)
    if not brain.any():
        return None
    box = tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(brain))
    brain, above = brain[box], np.nan_to_num(zmap[box], nan=-np.inf) > threshold
    edges = [np.linspace(0, n, BLOCKS + 1).round().astype(int) for n in brain.shape]
    counts, departing = [], []
    for i in range(BLOCKS):
        for j in range(BLOCKS):
            for k in range(BLOCKS):
                block = tuple(slice(e[b], e[b + 1]) for e, b in zip(edges, (i, j, k), strict=True))
                n = int(brain[block].sum())
                counts.append(n)
                departing.append(n > 0 and above[block].sum() >= BLOCK_SHARE * n)
    counts = np.asarray(counts)
    held = counts >= MIN_BLOCK_SHARE * counts.mean()
    return float(np.asarray(departing)[held].mean())
