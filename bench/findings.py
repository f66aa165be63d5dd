"""The findings' post-processing on a 1 mm z-map: regions, outlines trimmed by sign, peaks.

A synthetic z-map on the 197 x 233 x 189 grid of the MNI152 1 mm template (smooth
noise plus four lesion-like blobs up to z = 15, spread over the brain, as a metastasis
scan gives) and a residual whose sign changes inside each blob are labelled as scoring
does (:func:`madgan_core.scoring.findings.label_regions`). The peaks of the labelled regions are
also timed both ways in the same run: in each region's own box (what the product does)
and by ``scipy.ndimage.maximum`` and ``maximum_position`` over the whole volume (what it
did before), with the same result checked.

    python bench/findings.py [--reps 5] [--out f.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, header, repeat, resolve, spread  # noqa: E402

SHAPE = (197, 233, 189)
BLOBS = (
    (60, 80, 70, 12.0, 15.0),
    (140, 150, 110, 8.0, 9.0),
    (100, 60, 40, 5.0, 6.0),
    (80, 170, 150, 6.0, 5.5),
)


def synthetic_maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A z-map and a residual on a 1 mm grid: smooth noise and four blobs."""
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(size=SHAPE).astype(np.float32), 2.0) * 6.0
    residual = np.zeros(SHAPE, np.float32)
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    for x, y, s, radius, peak in BLOBS:
        distance = np.sqrt((grid[0] - x) ** 2 + (grid[1] - y) ** 2 + (grid[2] - s) ** 2)
        z += peak * np.exp(-0.5 * (distance / radius) ** 2)
        # brighter inside the lesion, darker where the model carries it on past it
        residual += np.where(grid[2] <= s + radius / 2, 1.0, -1.0) * (distance < 1.5 * radius)
    return z.astype(np.float32), residual


def main(argv: list[str] | None = None) -> dict:
    from madgan_core.scoring.findings import label_maxima, label_regions

    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    device = resolve(args.device)
    result = header("findings", device, args.peak_reps)
    zmap, residual = synthetic_maps()
    affine = np.eye(4)
    findings, ranked = label_regions(zmap, affine, residual=residual)
    result["grid"] = list(SHAPE)
    result["regions"] = len(findings)
    result["region_ml"] = [f.volume_ml for f in findings]

    def label() -> None:
        label_regions(zmap, affine, residual=residual)

    result["label_regions"] = spread(repeat(label, device, args.reps))
    index = np.arange(1, int(ranked.max()) + 1)
    values = np.where(ranked > 0, zmap, 0.0)
    boxed = label_maxima(values, ranked, index)
    whole = (
        ndimage.maximum(values, ranked, index),
        ndimage.maximum_position(values, ranked, index),
    )
    assert np.array_equal(boxed[0], whole[0])
    assert boxed[1] == [tuple(map(int, p)) for p in whole[1]]
    box_times = repeat(lambda: label_maxima(values, ranked, index), device, args.reps)
    scipy_times = repeat(
        lambda: (
            ndimage.maximum(values, ranked, index),
            ndimage.maximum_position(values, ranked, index),
        ),
        device,
        args.reps,
    )
    result["peaks_in_boxes"] = spread(box_times)
    result["peaks_scipy_whole_volume"] = spread(scipy_times)
    result["peaks_speedup"] = round(min(scipy_times) / min(box_times), 1)
    result["torch_threads"] = torch.get_num_threads()
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
