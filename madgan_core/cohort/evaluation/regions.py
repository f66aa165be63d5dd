"""Region-level evaluation: do the findings land on the true lesions?

For cohorts whose manifest gives lesion masks (the phantom cohorts do), each test
scan is scored with maps and its findings (:mod:`madgan_core.scoring.findings`) are laid
over its mask:

- a true lesion (a connected component of the mask) is *detected* by a finding
  whose region (the z-map's connected voxels above the threshold) overlaps it;
- a finding on a healthy scan is a false positive.

Sweeping a minimum evidence over the findings gives the FROC curve: the share of
lesions detected against the false-positive regions per healthy scan of the same
sequence. The report gives the detection rate at 0, 1 and 5 false positives per
healthy scan, and the Dice of each lesioned scan's top finding, as outlined
(``score.finding_extent``, trimmed by sign with ``score.finding_sign``), with the
lesion it overlaps most.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scoring.findings import label_regions

if TYPE_CHECKING:
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.scans.manifest import ManifestRow

FP_RATES = (0.0, 1.0, 5.0)


@dataclass
class ScanRegions:
    """One test scan's findings against its lesions.

    Attributes:
        path, group, stage, sequence: from the manifest.
        evidence: each finding's evidence, strongest first.
        lesions_hit: per finding, the indices of the true lesions its region overlaps.
        n_lesions: the number of true lesions (0 for a healthy scan).
        lesion_ml: each true lesion's volume in mL.
        top_dice: Dice of the top finding's region with the true lesion it overlaps most
            (0 when it overlaps none; None: no lesion or no finding).
    """

    path: str
    group: str
    stage: int
    sequence: str
    evidence: list[float] = field(default_factory=list)
    lesions_hit: list[list[int]] = field(default_factory=list)
    n_lesions: int = 0
    lesion_ml: list[float] = field(default_factory=list)
    top_dice: float | None = None


def scan_regions(model: LoadedModel, row: ManifestRow) -> ScanRegions:
    """Score ``row``'s scan with maps and lay its findings over its lesion mask."""
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.scorer import score_scan

    scan = load_scan(row.path)
    result = score_scan(model, scan, maps=True, sequence=row.sequence)
    if result.zmap is None:
        return ScanRegions(str(row.path), row.group, int(row.stage), row.sequence)
    mask = None if row.mask is None else np.asarray(load_scan(row.mask).data) > 0.5
    return match_regions(
        row, result.zmap, scan.affine, mask, model.config.score, residual=result.residual
    )


def match_regions(
    row: ManifestRow,
    zmap: np.ndarray,
    affine: np.ndarray,
    mask: np.ndarray | None,
    settings,
    residual: np.ndarray | None = None,
) -> ScanRegions:
    """One scan's findings (``settings``: the model's :class:`~madgan_core.config.ScoreConfig`)
    laid over its lesion ``mask`` (RAS+, on the z-map's grid; None or empty: no lesion).
    ``residual`` (the scan's :attr:`~madgan_core.scoring.result.ScanScore.residual`) trims the
    outlines when ``settings.finding_sign`` is set."""
    threshold, min_ml, extent = (
        settings.finding_threshold,
        settings.finding_min_ml,
        settings.finding_extent,
    )
    residual = residual if settings.finding_sign else None
    findings, labels = label_regions(
        zmap, affine, threshold, min_ml, extent_threshold=extent, residual=residual
    )
    # A finding is detected by its region (grown, when the extent is below the threshold);
    # the outline drawn by its core or trimmed by sign is what its Dice is measured on.
    # Ranks are the same in both labellings.
    regions = labels
    if (extent is not None and extent > threshold) or residual is not None:
        grown = extent if extent is not None and extent < threshold else None
        regions = label_regions(zmap, affine, threshold, min_ml, extent_threshold=grown)[1]
    out = ScanRegions(str(row.path), row.group, int(row.stage), row.sequence)
    out.evidence = [f.evidence for f in findings]
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"{row.mask}: mask shape {mask.shape} is not the scan's {labels.shape}")
    if mask is None or not mask.any():
        out.lesions_hit = [[] for _ in findings]
        return out
    lesions, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    out.n_lesions = int(n)
    out.lesion_ml = [
        round(float(v) * voxel_ml, 3) for v in ndimage.sum_labels(mask, lesions, range(1, n + 1))
    ]
    for finding in findings:
        hit = np.unique(lesions[regions == finding.rank])
        out.lesions_hit.append([int(v) - 1 for v in hit if v > 0])
    if findings:
        # Dice with the lesion the top region overlaps most (0 if it misses them all)
        top = labels == 1
        overlaps = ndimage.sum_labels(top, lesions, range(1, n + 1))
        if overlaps.max() > 0:
            lesion = lesions == int(np.argmax(overlaps)) + 1
            out.top_dice = float(2.0 * (top & lesion).sum() / (top.sum() + lesion.sum()))
        else:
            out.top_dice = 0.0
    return out


def froc(
    healthy: Sequence[ScanRegions], lesioned: Sequence[ScanRegions]
) -> list[tuple[float, float, float]]:
    """The FROC curve as ``(min evidence, FP regions per healthy scan, lesions detected)``,
    from the strictest threshold (nothing kept) to the loosest (every finding kept)."""
    n_lesions = sum(s.n_lesions for s in lesioned)
    if not healthy or n_lesions == 0:
        return []
    thresholds = sorted({e for s in [*healthy, *lesioned] for e in s.evidence}, reverse=True)
    curve = [(float("inf"), 0.0, 0.0)]
    for t in thresholds:
        fp = sum(sum(e >= t for e in s.evidence) for s in healthy) / len(healthy)
        found = 0
        for s in lesioned:
            hit = {
                i for e, ids in zip(s.evidence, s.lesions_hit, strict=True) if e >= t for i in ids
            }
            found += len(hit)
        curve.append((float(t), float(fp), found / n_lesions))
    return curve


def sensitivity_at(curve: Sequence[tuple[float, float, float]], fp_rate: float) -> float | None:
    """The largest detection rate with at most ``fp_rate`` false-positive regions per
    healthy scan (None without a curve)."""
    if not curve:
        return None
    return max(sens for _, fp, sens in curve if fp <= fp_rate)


@dataclass
class RegionSummary:
    """Per disease group (and the healthy scans of its sequence): the FROC operating points
    and the median Dice of the top region."""

    group: str
    sequence: str
    n_scans: int
    n_lesions: int
    n_healthy: int
    detected: dict[str, float | None]
    median_top_dice: float | None
    curve: list[tuple[float, float, float]]
    median_top_dice_ci: tuple[float, float] | None = None


def median_interval(values: Sequence[float], n_boot: int = 1000) -> tuple[float, float] | None:
    """A bootstrap 95 % interval of the median (SciPy's percentile bootstrap, resampling
    scans); None for fewer than 2 values."""
    from scipy.stats import bootstrap

    if len(values) < 2:
        return None
    values = np.asarray(values, dtype=np.float64)
    if np.ptp(values) == 0:  # nothing to resample: SciPy refuses degenerate data
        return float(values[0]), float(values[0])
    result = bootstrap(
        (values,),
        np.median,
        n_resamples=n_boot,
        method="percentile",
        random_state=0,
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def summarise(records: Sequence[ScanRegions]) -> list[RegionSummary]:
    summaries = []
    groups = sorted({(r.group, r.sequence) for r in records if r.n_lesions > 0})
    for group, sequence in groups:
        lesioned = [r for r in records if r.group == group and r.sequence == sequence]
        lesioned = [r for r in lesioned if r.n_lesions > 0]
        healthy = [r for r in records if r.group == "healthy" and r.sequence == sequence]
        curve = froc(healthy, lesioned)
        dice = [r.top_dice for r in lesioned if r.top_dice is not None]
        dice += [0.0] * sum(r.top_dice is None for r in lesioned)  # no finding: Dice 0
        summaries.append(
            RegionSummary(
                group=group,
                sequence=sequence,
                n_scans=len(lesioned),
                n_lesions=sum(r.n_lesions for r in lesioned),
                n_healthy=len(healthy),
                detected={f"{fp:g}": sensitivity_at(curve, fp) for fp in FP_RATES},
                median_top_dice=float(np.median(dice)) if dice else None,
                curve=curve,
                median_top_dice_ci=median_interval(dice),
            )
        )
    return summaries


def evaluate_regions(
    model: LoadedModel,
    rows: Sequence[ManifestRow],
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[RegionSummary]:
    """Score the rows' scans, write ``regions.jsonl``, ``regions.csv`` and ``froc.png``
    into ``out_dir``, and return the summaries (empty when no row has a lesion mask)."""
    groups = {r.group for r in rows if r.mask is not None}
    if not groups or model.reference is None:
        return []
    sequences = {r.sequence for r in rows if r.mask is not None}
    chosen = [
        r for r in rows if r.group in groups or (r.group == "healthy" and r.sequence in sequences)
    ]
    records = []
    for i, row in enumerate(chosen, start=1):
        records.append(scan_regions(model, row))
        if progress is not None:
            progress(i, len(chosen))
    if progress is not None:
        progress(len(chosen), len(chosen))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out_dir / "regions.jsonl", "".join(json.dumps(asdict(r)) + "\n" for r in records)
    )
    summaries = summarise(records)
    write_summary_csv(summaries, out_dir / "regions.csv")
    if summaries:
        from madgan_core.cohort.evaluation.plots import plot_froc

        plot_froc(summaries, out_dir / "froc.png")
    return summaries


def write_summary_csv(summaries: Sequence[RegionSummary], path: Path) -> Path:
    fields = ["group", "sequence", "n_scans", "n_lesions", "n_healthy"]
    fields += [f"detected_at_{fp:g}_fp" for fp in FP_RATES]
    fields += ["median_top_dice", "median_top_dice_low", "median_top_dice_high"]
    rows = []
    for s in summaries:
        row = {k: getattr(s, k) for k in fields[:5]}
        row.update({f"detected_at_{k}_fp": v for k, v in s.detected.items()})
        row["median_top_dice"] = s.median_top_dice
        low, high = s.median_top_dice_ci or (None, None)
        row["median_top_dice_low"], row["median_top_dice_high"] = low, high
        rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def regions_markdown(summaries: Sequence[RegionSummary]) -> list[str]:
    """The report's section: a table of the operating points and the FROC plot."""
    if not summaries:
        return []

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.0f} %"

    lines = [
        "## Findings: region-level evaluation",
        "",
        "A lesion is detected when a finding's region overlaps it; false positives are "
        "findings on healthy scans of the same sequence.",
        "",
        "| group | sequence | scans | lesions | healthy | detected at 0 FP | at 1 FP | at 5 FP "
        "| median Dice of the top region [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        dice = "—" if s.median_top_dice is None else f"{s.median_top_dice:.2f}"
        if s.median_top_dice_ci is not None:
            dice += " [{:.2f}, {:.2f}]".format(*s.median_top_dice_ci)
        lines.append(
            f"| {s.group} | {s.sequence} | {s.n_scans} | {s.n_lesions} | {s.n_healthy} | "
            f"{pct(s.detected['0'])} | {pct(s.detected['1'])} | {pct(s.detected['5'])} | {dice} |"
        )
    lines += ["", "![FROC](froc.png)", ""]
    return lines
