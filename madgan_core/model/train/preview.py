"""Preview images of one training window: input, target, prediction and ℓ2 map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from madgan_core.scans.atomic import atomic_path


def preview_path(out_dir: Path, step: int) -> Path:
    return out_dir / "previews" / f"step_{step:07d}.png"


def write_preview(path: Path, x: np.ndarray, y: np.ndarray, p: np.ndarray, step: int) -> Path:
    """A PNG of input | target | prediction | ℓ2 map for one window, written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    err = ((p - y) ** 2).mean(axis=0)
    fig = Figure(figsize=(10, 3.2), dpi=80)
    panels = [
        (x[-1], "input (last slice)", "gray", (-1, 1)),
        (y[0], "target (next slice)", "gray", (-1, 1)),
        (p[0], "prediction", "gray", (-1, 1)),
        (err, "ℓ2 map (mean over slices)", "inferno", (0, max(float(err.max()), 1e-6))),
    ]
    for i, (img, title, cmap, (lo, hi)) in enumerate(panels):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"step {step}", fontsize=10)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
