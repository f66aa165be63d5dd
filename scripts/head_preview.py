"""Write docs/images/phantom_head.png: a phantom brain with metastases wrapped in the average head,
as stored and under three acquisition variants (5 mm slices, a 15 degree tilt, a bias field).

Run: ``python3 scripts/head_preview.py [OUT.png]`` (about a minute at 1.5 mm).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib.figure import Figure

from madgan_core.cohort.phantom import acquisition as acq
from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.head import wrap_in_head

VOXEL_MM = 1.5


def main(out: Path) -> None:
    volume, _, info = make_subject("mets", 1, "T1c", seed=4, voxel_mm=VOXEL_MM)
    head, affine, brain, masks = wrap_in_head(
        volume, {"lesion": info["lesion_mask"]}, VOXEL_MM, info["scanner"]["noise_sigma"], 4
    )
    masks["brain"] = brain
    x = int(np.argmax(masks["lesion"].sum(axis=(1, 2))))
    shown = {
        "wrapped head": (head, affine, masks),
        "5 mm slices": acq.thick_slices(head, affine, masks, 5.0),
        "tilted 15 degrees": acq.tilt(head, affine, masks, 15.0, "x"),
        "bias field 0.4": acq.bias_field(head, affine, masks, 0.4, seed=1),
    }
    fig = Figure(figsize=(12, 3.6), dpi=64)
    for i, (title, (vol, aff, m)) in enumerate(shown.items()):
        ax = fig.add_subplot(1, 4, i + 1)
        k = int(round((np.linalg.inv(aff) @ (affine @ [x, 0, 0, 1]))[0]))
        sz = np.linalg.norm(aff[:3, 2]) / np.linalg.norm(aff[:3, 1])
        vmax = np.percentile(vol[m["brain"]], 99.5)
        ax.imshow(vol[k].T, cmap="gray", origin="lower", vmin=0, vmax=vmax, aspect=sz)
        ax.contour(m["brain"][k].T, [0.5], colors="c", linewidths=0.6)
        if m["lesion"][k].any():
            ax.contour(m["lesion"][k].T, [0.5], colors="r", linewidths=0.8)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("Sagittal slices: true brain mask (cyan), lesion masks (red)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/phantom_head.png"))
