"""One axial slice per group/stage of a phantom cohort, as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from madgan_core.scans.atomic import atomic_write_with
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import ManifestRow, read_manifest

PREVIEW_Z_MM = 14.0  # through the lateral ventricles; the hippocampi sit lower (z ~ -15 mm)
CDR = {1: "CDR 0.5", 2: "CDR 1", 3: "CDR 2"}


def _title(row: ManifestRow) -> str:
    if row.group == "healthy":
        return f"healthy {row.sequence}"
    if row.group == "ad":
        return f"AD stage {row.stage} ({CDR.get(row.stage, '?')}) {row.sequence}"
    if row.group == "various":
        return f"{row.subtype or 'various'} {row.sequence}"
    return f"metastases {row.sequence}"


def _representatives(rows: list[ManifestRow]) -> list[ManifestRow]:
    """The first row of each (group, stage, subtype, sequence), in a fixed group order."""
    order = {"healthy": 0, "ad": 1, "mets": 2, "various": 3}
    seen: dict[tuple, ManifestRow] = {}
    for r in rows:
        seen.setdefault((order.get(r.group, 9), r.stage, r.subtype, r.sequence), r)
    return [seen[k] for k in sorted(seen)]


def _axial_index(mask: np.ndarray | None, affine: np.ndarray, shape: tuple[int, ...]) -> int:
    if mask is not None and mask.any():
        return int(np.argmax(mask.sum(axis=(0, 1))))
    k = (np.linalg.inv(affine) @ np.array([0.0, 0.0, PREVIEW_Z_MM, 1.0]))[2]
    return int(np.clip(round(k), 0, shape[2] - 1))


def preview_groups(manifest_path: str | Path, out_png: str | Path) -> Path:
    """Save a grid of one axial slice per group/stage (and sub-type, sequence) of a cohort."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    reps = _representatives(read_manifest(manifest_path))
    ncols = min(4, len(reps))
    nrows = int(np.ceil(len(reps) / ncols))
    fig = Figure(figsize=(3.0 * ncols, 3.4 * nrows), dpi=100)
    for i, row in enumerate(reps):
        scan = load_scan(row.path)
        mask = load_scan(row.mask).data > 0.5 if row.mask is not None else None
        k = _axial_index(mask, scan.affine, scan.data.shape)
        img = scan.data[:, :, k].T  # rows: posterior->anterior, columns: left->right
        fg = img[img > 0]
        vmax = float(np.percentile(fg, 99.5)) if fg.size else 1.0
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(img, cmap="gray", origin="lower", vmin=0, vmax=vmax, interpolation="nearest")
        if mask is not None and mask[:, :, k].any():
            ax.contour(mask[:, :, k].T, levels=[0.5], colors="red", linewidths=0.6)
        z_mm = (scan.affine @ np.array([0, 0, k, 1.0]))[2]
        ax.set_title(f"{_title(row)}\n{row.subject}, z={z_mm:.0f} mm", fontsize=9)
        ax.axis("off")
    fig.suptitle(
        f"Phantom cohort ({Path(manifest_path).parent.name}): axial slices, patient left on the left, lesion masks in red",
        fontsize=10,
    )
    fig.tight_layout()
    return atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
