"""Evaluate a model on lesion types the phantom generator never makes (held out, never tuned on).

Usage::

    python studies/unseen_lesions.py --manifest COHORT/manifest.csv --model RUN/model.pt \\
        [--autoencoder RUN/autoencoder.pt] --out OUT [--preview docs/images/unseen-lesions.png]

Every healthy *test* scan of the manifest hosts one lesion of each type of
:data:`madgan_core.cohort.phantom.unseen.UNSEEN_TYPES` (same sequence as its host).
The lesioned copies go to ``OUT/scans`` (masks to ``OUT/masks``), listed in
``OUT/manifest.csv`` together with the original healthy test rows, as group
``unseen-<type>``, split ``test``, stage 1, subject ``<host>-<type>``. The
healthy controls are the lesions' own hosts, so each comparison is paired.
The evaluation (MADGAN and its baselines, the same harness as ``madgan
evaluate``) is written to ``OUT/report`` and its AUC table printed.

Scans are regenerated on every run (deterministic for ``--seed``) and the
report's cached scores are discarded. ``OUT/manifest.csv`` records the data
set, but ``madgan evaluate`` cannot read it: its manifest reader accepts only
the generator's groups.
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib
from pathlib import Path

import numpy as np

from madgan_core.cohort.evaluation.run import evaluate
from madgan_core.cohort.phantom.unseen import SCORED_Z_MM, UNSEEN_TYPES, apply_unseen
from madgan_core.scans.files import load_scan, save_like
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest

log = logging.getLogger("unseen_lesions")

REPORT_NOTES = (
    "## Unseen lesion types\n\n"
    "Groups `unseen-<type>` are lesions the phantom generator never makes "
    "(madgan_core/cohort/phantom/unseen.py), painted into the healthy test scans listed as "
    "`healthy`: a paired design, each lesioned scan has its own host among the controls. "
    "They are for reporting only and were never used to tune the model or the score modes."
)


def lesion_rng(seed: int, kind: str, subject: str) -> np.random.Generator:
    """The generator for one host subject and type: the same for the host's T1 and T1c."""
    key = [int(seed), list(UNSEEN_TYPES).index(kind), zlib.crc32(subject.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


def make_lesioned(
    healthy: list[ManifestRow], kinds: list[str], out: Path, seed: int
) -> list[ManifestRow]:
    """Write one lesioned copy of each healthy row per type; return their manifest rows."""
    rows = []
    for host in healthy:
        scan = load_scan(host.path)
        for kind in kinds:
            volume, mask = apply_unseen(
                kind, scan.data, scan.affine, lesion_rng(seed, kind, host.subject)
            )
            subject = f"{host.subject}-{kind}"
            name = f"{subject}_{host.sequence}"
            scan_path = save_like(volume, scan, out / "scans" / f"{name}.nii.gz")
            mask_path = save_like(
                mask.astype(np.float32), scan, out / "masks" / f"{name}_lesion.nii.gz"
            )
            rows.append(
                ManifestRow(
                    path=scan_path.resolve(),
                    subject=subject,
                    group=f"unseen-{kind}",
                    stage=1,
                    sequence=host.sequence,
                    split="test",
                    subtype=kind,
                    mask=mask_path.resolve(),
                )
            )
            log.info("%s: %d lesion voxels", name, int(mask.sum()))
    return rows


def _scored_slice(mask: np.ndarray, affine: np.ndarray) -> int:
    """The axial slice with the most lesion voxels inside the scored band."""
    z = affine[2, 2] * np.arange(mask.shape[2]) + affine[2, 3]
    counts = mask.sum(axis=(0, 1)) * ((z >= SCORED_Z_MM[0]) & (z <= SCORED_Z_MM[1]))
    return int(np.argmax(counts))


def save_preview(rows: list[ManifestRow], healthy: list[ManifestRow], out_png: Path) -> Path:
    """One axial slice per type of the first host's T1 (or first sequence): host above, lesioned below."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from madgan_core.scans.atomic import atomic_write_with

    sequence = "T1" if any(r.sequence == "T1" for r in healthy) else healthy[0].sequence
    host = next(r for r in healthy if r.sequence == sequence)
    shown = [r for r in rows if r.subject.startswith(f"{host.subject}-") and r.sequence == sequence]
    before = load_scan(host.path)
    fig = Figure(figsize=(2.6 * len(shown), 6.0), dpi=110)
    for i, row in enumerate(shown):
        after = load_scan(row.path)
        mask = load_scan(row.mask).data > 0.5
        k = _scored_slice(mask, after.affine)
        vmax = float(np.percentile(before.data[before.data > 0], 99.5))
        z_mm = after.affine[2, 2] * k + after.affine[2, 3]
        for j, (scan, title) in enumerate(((before, "host"), (after, row.subtype))):
            ax = fig.add_subplot(2, len(shown), j * len(shown) + i + 1)
            ax.imshow(
                scan.data[:, :, k].T, cmap="gray", origin="lower", vmin=0, vmax=vmax,
                interpolation="nearest",
            )  # fmt: skip
            if j == 1 and mask[:, :, k].any():
                ax.contour(mask[:, :, k].T, levels=[0.5], colors="red", linewidths=0.5)
            ax.set_title(f"{title}\nz={z_mm:.0f} mm", fontsize=9)
            ax.axis("off")
    fig.suptitle(
        f"Unseen lesion types on {host.subject} ({sequence}): host (top), lesioned with mask "
        "in red (bottom); patient left on the left",
        fontsize=9,
    )
    fig.tight_layout()
    return atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="cohort manifest CSV")
    parser.add_argument("--model", type=Path, required=True, help="model file (model.pt)")
    parser.add_argument("--autoencoder", type=Path, default=None, help="autoencoder baseline")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--types", nargs="+", default=list(UNSEEN_TYPES), choices=list(UNSEEN_TYPES)
    )
    parser.add_argument("--seed", type=int, default=0, help="lesion seed (default 0)")
    parser.add_argument("--preview", type=Path, default=None, help="also save a preview PNG")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from madgan_core.cohort.evaluation.stats import format_table

    healthy = [
        r for r in read_manifest(args.manifest) if r.group == "healthy" and r.split == "test"
    ]
    if not healthy:
        log.error("%s has no healthy test scans to host the lesions", args.manifest)
        return 1
    out = args.out
    # Scores are reused by scan path: scans rewritten here would make them stale.
    (out / "report" / "scores.csv").unlink(missing_ok=True)
    rows = make_lesioned(healthy, args.types, out, args.seed)
    write_manifest([*healthy, *rows], out / "manifest.csv")
    if args.preview is not None:
        log.info("preview: %s", save_preview(rows, healthy, args.preview))
    report, table, columns = evaluate(
        args.model,
        out / "manifest.csv",
        out / "report",
        autoencoder=args.autoencoder,
        device=args.device,
        precision=args.precision,
        notes=REPORT_NOTES,
        progress=lambda stage, done, total: log.info("%s: %d of %d", stage, done, total),
    )
    print(format_table(table, columns, markdown=False))
    print(f"\nReport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
