"""Findings: where a scan's z-map says it departs from healthy anatomy.

A finding is a 3-D connected region of the z-map above a threshold (26-connected,
so a lesion cut obliquely by the slice grid stays one region), at least a minimum
volume. An extent z then draws each region's outline; the threshold alone decides
*whether* there is a finding and how strong its evidence is. Above the threshold (the
default, z = 5) the outline is the region's core at or above that z: the z-map is
smoothed, and a lesion's error runs on past its last slice in the direction the model
predicts, so the thresholded region is about twice the lesion. Below the threshold each
region grows over the connected voxels above the lower z (hysteresis, as in Canny
edges), for lesions whose core alone stands out.

Given the scan's signed residual (scan minus prediction), each outline is also trimmed
to the voxels that depart in the region's dominant direction, and to the connected part
of those carrying most of its z. A lesion is where the *scan* is brighter (or darker)
than predicted; past its last slice the model, still seeing it in its input slices,
predicts a lesion that is not there, so the residual there has the other sign. The
direction is reported as the finding's ``signal``: ``brighter`` or ``darker`` than the
healthy prediction.

Each one carries what a reader needs to go and look: its volume in mL,
peak and mean z, its centre and peak in scanner (RAS+ world) coordinates, and the
axial slices it spans. Regions are ranked by evidence, the sum of their z above the
threshold, so a large moderate region and a small intense one both rank high.

Atrophy raises z a little everywhere and makes no region; :func:`describe_findings`
says "brain-wide elevation" when the z-map's mean, not a region, carries the scan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage

DEFAULT_THRESHOLD = 4.0
DEFAULT_MIN_VOLUME_ML = 0.1
DEFAULT_MAX_REGIONS = 20
RESIDUAL_SIGMA_MM = 2.0


@dataclass(frozen=True)
class Finding:
    """One region of the z-map above the threshold.

    Attributes:
        rank: 1 for the strongest evidence.
        volume_ml: volume of the region's outline in millilitres.
        peak_z: the largest z in the outline.
        mean_z: mean z over the outline.
        evidence: sum over the region's voxels of (z - threshold) x voxel volume in mL.
        centre_mm: the outline's centre of mass in scanner coordinates (RAS+, mm).
        peak_mm: the peak voxel in scanner coordinates.
        peak_voxel: the peak's RAS+ voxel index ``(i, j, k)``; ``k`` is the axial slice.
        slices: first and last axial (RAS+ ``k``) slice the outline touches.
        centre_mni: the centre in MNI152 mm, when the scan was registered to the template
            (brain extraction or ``preprocess.align = rigid | affine``); else None.
        signal: ``brighter`` or ``darker``: how the scan departs from the healthy
            prediction over the region; None when no residual was given.
    """

    rank: int
    volume_ml: float
    peak_z: float
    mean_z: float
    evidence: float
    centre_mm: tuple[float, float, float]
    peak_mm: tuple[float, float, float]
    peak_voxel: tuple[int, int, int]
    slices: tuple[int, int]
    centre_mni: tuple[float, float, float] | None = None
    signal: str | None = None

    def summary(self) -> str:
        """E.g. ``14.2 mL at (31, -12, 18) mm, peak z 9.1, brighter than predicted``."""
        x, y, z = (round(v) for v in self.centre_mm)
        text = f"{self.volume_ml:.1f} mL at ({x}, {y}, {z}) mm, peak z {self.peak_z:.1f}"
        return text if self.signal is None else f"{text}, {self.signal} than predicted"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def in_mni(self, scan_to_mni) -> Finding:
        """This finding with its centre in MNI152 mm (``scan_to_mni`` maps scanner mm)."""
        centre = np.asarray(scan_to_mni(np.asarray(self.centre_mm, dtype=float)))
        return replace(self, centre_mni=tuple(round(float(v), 2) for v in centre))


def signed_residual(
    data: np.ndarray,
    reconstruction: np.ndarray,
    voxel_mm,
    sigma_mm: float = RESIDUAL_SIGMA_MM,
    near: np.ndarray | None = None,
) -> np.ndarray:
    """The scan minus its reconstruction, in the scan's own units, Gaussian-smoothed over
    ``sigma_mm`` (``voxel_mm``: the voxel sizes); 0 where nothing was predicted.

    In the scan's units, not the model's: a lesion brighter than the normalisation's
    upper clip is clipped in model space, where its residual fades, but stays brighter
    than any prediction here. ``near`` (a boolean volume) limits the work to the box
    around its voxels, the same values there as over the whole volume; 0 elsewhere.
    """
    sigma = [sigma_mm / max(float(v), 1e-6) for v in voxel_mm]
    box = tuple(slice(0, n) for n in np.shape(data))
    if near is not None:
        if not near.any():
            return np.zeros(np.shape(data), np.float32)
        # the filter's reach (scipy truncates the kernel at 4 sigma) around the box
        reach = [int(4.0 * s + 0.5) + 1 for s in sigma]
        box = tuple(
            slice(max(b.start - r, 0), min(b.stop + r, n))
            for b, r, n in zip(_bounding_box(near), reach, np.shape(data), strict=True)
        )
    difference = np.asarray(data[box], np.float32) - np.asarray(reconstruction[box], np.float32)
    residual = np.zeros(np.shape(data), np.float32)
    residual[box] = ndimage.gaussian_filter(np.nan_to_num(difference), sigma=sigma)
    return residual


def find_regions(zmap: np.ndarray, affine: np.ndarray, *args, **kwargs) -> list[Finding]:
    """The connected regions of ``zmap`` above a threshold, strongest evidence first.

    Takes the arguments of :func:`label_regions` and keeps the findings only.
    """
    return label_regions(zmap, affine, *args, **kwargs)[0]


def label_regions(
    zmap: np.ndarray,
    affine: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    min_volume_ml: float = DEFAULT_MIN_VOLUME_ML,
    max_regions: int = DEFAULT_MAX_REGIONS,
    extent_threshold: float | None = None,
    residual: np.ndarray | None = None,
) -> tuple[list[Finding], np.ndarray]:
    """The findings and a label volume: voxel value ``r`` lies in the outline of the
    finding ranked ``r`` (0: none).

    Args:
        zmap: RAS+ volume of z-scores; NaN (outside the brain, unscored slices) never counts.
        affine: the volume's voxel-to-world (RAS+, mm) affine.
        threshold: z above which a voxel belongs to a region.
        min_volume_ml: smaller regions are dropped (noise specks).
        max_regions: at most this many regions are returned.
        extent_threshold: the z that draws each region's outline. Above ``threshold``,
            the outline is the region's voxels at or above it (a region whose peak is
            lower keeps its whole outline); below, the region takes in the connected
            voxels above it (hysteresis); None: the thresholded region. Which regions
            exist, their peak, evidence and rank depend on ``threshold`` alone, except
            that regions joined by a lower z become one.
        residual: the scan minus its prediction on the same grid
            (:func:`signed_residual`); each outline keeps the voxels departing in its dominant direction (see
            the module's docstring). None: outlines by z alone, and no ``signal``.
    """
    zmap = np.asarray(zmap, dtype=np.float32)
    if zmap.ndim != 3:
        raise ValueError(f"a z-map is 3-D, got shape {zmap.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    ranked = np.zeros(zmap.shape, np.int32)
    grow = extent_threshold is not None and extent_threshold < threshold
    shrink = extent_threshold is not None and extent_threshold > threshold
    if residual is not None and np.shape(residual) != zmap.shape:
        raise ValueError(f"residual shape {np.shape(residual)} is not the z-map's {zmap.shape}")
    if not np.any(zmap > threshold):  # NaN compares False
        return [], ranked
    # Label inside the box around every voxel that may join a region: the same regions,
    # labelled in the same order, as over the whole volume; positions are shifted back
    # by the box's corner.
    box = _bounding_box(zmap > (extent_threshold if grow else threshold))
    corner = np.array([b.start for b in box], dtype=np.intp)
    zmap = zmap[box]
    finite = np.nan_to_num(zmap, nan=-np.inf)
    above = finite > threshold
    connectivity = np.ones((3, 3, 3), bool)
    if grow:
        # Components of the lower threshold that hold at least one voxel above the strict one.
        extent = finite > extent_threshold
        labels, n = ndimage.label(extent, structure=connectivity)
        seeded = np.zeros(n + 1, bool)
        seeded[np.unique(labels[above])] = True
        seeded[0] = False
        labels = np.where(seeded[labels], labels, 0)
        region = labels > 0
    else:
        labels, n = ndimage.label(above, structure=connectivity)
        region = above
    if n == 0:
        return [], ranked
    index = np.arange(1, n + 1)
    core = np.where(above, labels, 0)
    core_counts = ndimage.sum_labels(above, core, index)
    keep = (core_counts > 0) & (core_counts * voxel_ml >= min_volume_ml)
    if not keep.any():
        return [], ranked
    index, core_counts = index[keep], core_counts[keep]
    values = np.where(region, zmap, 0.0)
    peaks, peak_at = label_maxima(values, labels, index)
    core_sums = ndimage.sum_labels(np.where(above, zmap, 0.0), core, index)
    if shrink:
        # Outline each region by its voxels at or above the extent z, where it has any.
        inner = region & (finite >= extent_threshold)
        has_inner = np.zeros(n + 1, bool)
        has_inner[np.unique(labels[inner])] = True
        region = np.where(has_inner[labels], inner, region)
        labels = np.where(region, labels, 0)
        values = np.where(region, zmap, 0.0)
    signs = None
    if residual is not None:
        labels, signs = _trim_by_sign(labels, index, finite, np.asarray(residual)[box])
        region = labels > 0
        values = np.where(region, zmap, 0.0)
        peaks, peak_at = label_maxima(values, labels, index)  # within the trimmed outline
    counts = ndimage.sum_labels(region, labels, index)
    sums = ndimage.sum_labels(values, labels, index)
    centres = ndimage.center_of_mass(region, labels, index)
    extents = ndimage.find_objects(labels)
    evidence = (core_sums - threshold * core_counts) * voxel_ml
    order = np.argsort(-evidence, kind="stable")[:max_regions]

    def world(voxel) -> tuple[float, float, float]:
        point = affine @ np.append(np.asarray(voxel, dtype=np.float64) + corner, 1.0)
        return tuple(round(float(v), 2) for v in point[:3])

    findings = []
    relabel = np.zeros(n + 1, np.int32)
    for rank, i in enumerate(order, start=1):
        relabel[index[i]] = rank
        extent = extents[index[i] - 1]
        findings.append(
            Finding(
                rank=rank,
                volume_ml=round(float(counts[i] * voxel_ml), 3),
                peak_z=round(float(peaks[i]), 3),
                mean_z=round(float(sums[i] / counts[i]), 3),
                evidence=round(float(evidence[i]), 4),
                centre_mm=world(centres[i]),
                peak_mm=world(peak_at[i]),
                peak_voxel=tuple(int(v) for v in np.add(peak_at[i], corner)),
                slices=(int(extent[2].start + corner[2]), int(extent[2].stop + corner[2] - 1)),
                signal=None if signs is None else ("brighter" if signs[i] > 0 else "darker"),
            )
        )
    ranked[box] = relabel[labels]
    return findings, ranked


def _trim_by_sign(
    labels: np.ndarray, index: np.ndarray, z: np.ndarray, residual: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each region of ``labels`` cut to its voxels whose residual has the region's
    z-weighted sign, then to the connected part of them with the most z; a region with
    no such voxel keeps its outline. Returns the new labels and each region's sign."""
    residual = np.nan_to_num(np.asarray(residual, dtype=np.float32))
    weight = np.maximum(z, 0.0)
    signs = np.sign(ndimage.sum_labels(residual * weight, labels, index))
    signs[signs == 0] = 1.0
    sign_of = np.zeros(int(labels.max()) + 1, np.float32)
    sign_of[index] = signs
    agrees = (labels > 0) & (np.sign(residual) == sign_of[labels])
    parts, n_parts = ndimage.label(agrees, structure=np.ones((3, 3, 3), bool))
    if n_parts == 0:
        return labels, signs
    part_index = np.arange(1, n_parts + 1)
    mass = ndimage.sum_labels(weight, parts, part_index)
    owner = np.zeros(n_parts + 1, np.int64)  # each part lies in one region
    owner[parts[agrees]] = labels[agrees]
    owner = owner[1:]
    best = np.zeros(int(labels.max()) + 1, np.int64)  # per region, its heaviest part
    for part in np.argsort(mass, kind="stable"):  # heavier parts overwrite lighter ones
        best[owner[part]] = part + 1
    keep = np.zeros(n_parts + 1, bool)
    keep[best[best > 0]] = True
    kept = keep[parts]
    has_part = best > 0
    trimmed = np.where(has_part[labels], np.where(kept, labels, 0), labels)
    return trimmed, signs


def label_maxima(
    values: np.ndarray, labels: np.ndarray, index: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Each label's largest value and its position: ``ndimage.maximum`` and
    ``maximum_position`` found in each label's own box instead of by sorting the whole
    volume (and, among equal values, the first in C order, where scipy's pick is arbitrary)."""
    boxes = ndimage.find_objects(labels)
    peaks = np.empty(len(index), dtype=np.float64)
    positions = []
    for i, label in enumerate(index):
        box = boxes[label - 1]
        inside = np.where(labels[box] == label, values[box], -np.inf)
        flat = int(np.argmax(inside))
        peaks[i] = inside.flat[flat]
        offset = np.unravel_index(flat, inside.shape)
        positions.append(tuple(int(o + b.start) for o, b in zip(offset, box, strict=True)))
    return peaks, positions


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box holding every True voxel of ``mask`` (which has at least one)."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def describe_findings(findings: list[Finding], brain_wide: bool = False, limit: int = 3) -> str:
    """One line for a reader: ``2 regions: 14.2 mL at (31, -12, 18) mm, peak z 9.1; ...``.

    ``brain_wide`` adds "brain-wide elevation" (diffuse change drives the score).
    """
    parts = []
    if findings:
        noun = "region" if len(findings) == 1 else "regions"
        shown = "; ".join(f.summary() for f in findings[:limit])
        more = f"; {len(findings) - limit} more" if len(findings) > limit else ""
        parts.append(f"{len(findings)} {noun}: {shown}{more}")
    else:
        parts.append("no focal region")
    if brain_wide:
        parts.append("brain-wide elevation")
    return "; ".join(parts) if findings else ", ".join(parts)
