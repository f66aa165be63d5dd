"""Where a disease group's z-map differs from healthy: mean z per group minus healthy, as a PNG.

Usage::

    python studies/zmap_group_difference.py --model RUN/model.pt \\
        --manifest COHORT/manifest.csv --sequence T1 --out zdiff.png

The model must be calibrated (``madgan calibrate``). Every ``test`` scan of the
sequence is scored; its z-map (model space) is averaged per group and stage and
per slice position (the z-statistics' position bins), and each group's mean
minus the healthy test scans' mean is drawn over the healthy mean anatomy at a
few levels: red where the group's error is more unusual than healthy, blue
where less. It shows where a score such as ``zmean`` finds its signal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from madgan_core.cohort.evaluation.cohort import reconstruct_cohort  # noqa: E402
from madgan_core.errors import MadganError  # noqa: E402
from madgan_core.model.checkpoint import load_model  # noqa: E402
from madgan_core.model.zstats import position_bins  # noqa: E402
from madgan_core.scans.manifest import read_manifest  # noqa: E402

LEVELS = 5  # position bins drawn, spread over the slab's middle 70%


def group_means(model_path: Path, manifest: Path, sequence: str):
    """Per group label: [sum of z, slices, sum of anatomy] per position bin, and scans."""
    model = load_model(model_path, device="auto")
    reference = model.reference
    zstats = None if reference is None else reference.zstats_for(sequence)
    if zstats is None:
        raise MadganError(f"no z-statistics for {sequence}; run 'madgan calibrate'", model_path)
    cfg = model.config
    shape = (cfg.preprocess.height, cfg.preprocess.width)
    bins = len(zstats.mean)
    sums: dict[str, list[np.ndarray]] = {}
    scans: dict[str, int] = {}
    rows = [r for r in read_manifest(manifest) if r.split == "test" and r.sequence == sequence]
    if not rows:
        raise MadganError(f"no {sequence} scans in the 'test' split", manifest)
    for item in tqdm(reconstruct_cohort(model, rows, zmaps=True), total=len(rows), desc="scoring"):
        row, slab, z = item.row, item.slab, item.zmap
        label = "healthy" if row.group == "healthy" else f"{row.group} {row.stage}"
        total = sums.setdefault(
            label, [np.zeros((bins, *shape)), np.zeros(bins), np.zeros((bins, *shape))]
        )
        scans[label] = scans.get(label, 0) + 1
        for k, b in enumerate(position_bins(len(z), bins)):
            if np.isfinite(z[k]).all():
                total[0][b] += z[k]
                total[1][b] += 1
                total[2][b] += slab.slices[k]
    return sums, scans


def plot(sums, scans, out: Path, limit: float, sequence: str) -> None:
    if "healthy" not in sums:
        raise MadganError("no healthy test scans to compare with", out)

    def mean(label, which):
        values, counts = sums[label][which], sums[label][1]
        return values / np.maximum(counts, 1)[:, None, None]

    healthy_z, anatomy = mean("healthy", 0), mean("healthy", 2)
    filled = np.flatnonzero(sums["healthy"][1] > 0)
    levels = filled[(np.linspace(0.15, 0.85, LEVELS) * (len(filled) - 1)).astype(int)]
    groups = sorted(label for label in sums if label != "healthy")
    fig, axes = plt.subplots(
        len(groups), LEVELS, figsize=(2.2 * LEVELS, 2.6 * len(groups)), squeeze=False
    )
    for i, label in enumerate(groups):
        diff = mean(label, 0) - healthy_z
        for j, b in enumerate(levels):
            ax = axes[i, j]
            ax.imshow(anatomy[b], cmap="gray")
            image = ax.imshow(diff[b], cmap="bwr", vmin=-limit, vmax=limit, alpha=0.65)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{label} (n={scans[label]})")
            if i == 0:
                ax.set_title(f"position bin {b}")
    fig.colorbar(image, ax=axes, shrink=0.8, label="mean z minus healthy mean z")
    fig.suptitle(f"{sequence} test scans against {scans['healthy']} healthy test scans")
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a calibrated model")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--sequence", default="T1")
    parser.add_argument("--limit", type=float, default=1.5, help="colour range ±limit")
    parser.add_argument("--out", type=Path, default=Path("zmap_group_difference.png"))
    args = parser.parse_args()
    sums, scans = group_means(args.model, args.manifest, args.sequence)
    plot(sums, scans, args.out, args.limit, args.sequence)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
