"""The brains phantoms are built from: the MNI152 template, bundled real brains, or any T1 file.

A T1 file is fitted once per voxel size: registered to the MNI152 template (affine, as the
prepare stage does; a scan with a skull is brain-extracted first), resampled onto the
phantom grid in MNI space, and split into grey matter, white matter and CSF by a 3-class
Gaussian mixture of its own intensities inside its brain, weighted by the template's tissue
priors. Its T1 is histogram-matched to the template's levels, so the disease models paint
on it as on the template. Fits are cached on disk (an ``.npz`` keyed by the file's content).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom.head import head_template
from madgan_core.cohort.phantom.template import (
    Template,
    derive_template,
    downsample,
    load_template,
    mni_1mm,
)
from madgan_core.errors import ScanError
from madgan_core.prep.anatomy.brain import BRAIN_ML
from madgan_core.scans.atomic import atomic_write_with
from madgan_core.scans.scan import scan_stem

logger = logging.getLogger(__name__)

COLIN27_PACKAGE = "mricron-data"
COLIN27_DIR = Path("/usr/share/mricron/templates")


@dataclass(frozen=True)
class BundledAnatomy:
    """A named brain shipped with the installation (never downloaded)."""

    name: str
    description: str
    file: Path | None = None  # a T1 file fitted like a user's file; None: built in
    package: str = ""  # the system package that provides ``file``


BUNDLED = {
    "mni": BundledAnatomy("mni", "nilearn's MNI152 template (the default)"),
    "head": BundledAnatomy("head", "pydeface's average head's own brain on the MNI152 tissue maps"),
    "colin27": BundledAnatomy(
        "colin27",
        "Colin27, one person scanned 27 times (skull-stripped)",
        COLIN27_DIR / "ch2bet.nii.gz",
        COLIN27_PACKAGE,
    ),
    "colin27-head": BundledAnatomy(
        "colin27-head",
        "Colin27 with its skull (brain-extracted when fitted)",
        COLIN27_DIR / "ch2.nii.gz",
        COLIN27_PACKAGE,
    ),
}
ALIASES = {"mni152": "mni"}
# ``all``: every distinct bundled brain installed here (:func:`available`).
ALL = "all"
NAMES = (*BUNDLED, *ALIASES, ALL)
# The distinct brains, one per person or average: ``colin27-head`` is Colin27 again.
DISTINCT = ("mni", "head", "colin27")

FIT_VERSION = 2  # bump when the fit changes: cached fits of older versions are not reused
CACHE_ENV = "MADGAN_ANATOMY_CACHE"
# Spatial tissue priors are softened by this much (a uniform share) before they weigh the
# intensity classes: an affine fit places another brain's sulci only roughly.
PRIOR_WEIGHT = 0.5
# The own brain mask may reach this far beyond the template's (a larger brain, after an
# affine fit); farther voxels are residue of the skull-stripping.
MASK_MARGIN_MM = 10.0
# A file whose fitted T1 correlates less with the template's inside the brain is no brain T1.
MIN_CORRELATION = 0.4
GMM_SAMPLES = 200_000


def resolve(spec: str | os.PathLike) -> tuple[str, Path | None]:
    """The label and file of an anatomy given by name or path: ``(label, file or None)``.

    Bundled names (:data:`NAMES`) map to their label and file (``None`` for the built-in
    ones); anything else is a T1 file, labelled by its name without extension.

    Raises:
        ValueError: neither a bundled name nor an existing file.
        FileNotFoundError: a bundled brain whose system package is not installed.
    """
    text = os.fspath(spec)
    name = ALIASES.get(text, text)
    if name == ALL:
        raise ValueError(f"{ALL!r} names several anatomies: expand it first (expand())")
    if name in BUNDLED:
        entry = BUNDLED[name]
        if entry.file is not None and not entry.file.is_file():
            raise FileNotFoundError(
                f"the {name!r} anatomy needs {entry.file}, from the {entry.package!r} package; "
                f"install it with `sudo apt-get install {entry.package}`"
            )
        return name, entry.file
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(
            f"anatomy must be one of {', '.join(NAMES)} or a T1 scan file, got {text!r} "
            "(no such file)"
        )
    return scan_stem(path), path.resolve()


def available() -> list[str]:
    """The distinct bundled brains (:data:`DISTINCT`) whose data is installed here."""
    from madgan_core.cohort.phantom.head import head_source

    found = []
    for name in DISTINCT:
        entry = BUNDLED[name]
        if entry.file is not None:
            if entry.file.is_file():
                found.append(name)
            else:
                logger.warning("anatomy %r left out: %s not installed", name, entry.package)
            continue
        if name == "head":
            try:
                head_source()  # installed: found without reading it
            except ModuleNotFoundError as exc:
                logger.warning("anatomy 'head' left out: %s", exc)
                continue
        found.append(name)
    return found


def expand(specs: Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """``specs`` with ``all`` replaced by :func:`available`'s brains (duplicates dropped)."""
    out: list[str | os.PathLike] = []
    for spec in specs:
        for item in available() if os.fspath(spec) == ALL else [spec]:
            if item not in out:
                out.append(item)
    return out


def anatomy_template(spec: str | os.PathLike, voxel_mm: float) -> tuple[Template, str]:
    """The template a subject is warped from, and its label, for an anatomy name or file."""
    label, path = resolve(spec)
    if path is None:
        template = (load_template if label == "mni" else head_template)(float(voxel_mm))
        return template, label
    stat = path.stat()
    return _fitted(str(path), stat.st_mtime_ns, stat.st_size, float(voxel_mm)), label


def cache_dir() -> Path:
    """Where fitted anatomies are kept: ``$MADGAN_ANATOMY_CACHE``, else the user's cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "madgan" / "anatomies"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MAPS = ("t1", "gm", "wm", "csf", "mask")


@functools.lru_cache(maxsize=8)
def _fitted(path: str, mtime_ns: int, size: int, voxel_mm: float) -> Template:
    """A file's fitted template (in memory per file version; on disk per content)."""
    del mtime_ns, size  # part of the in-memory key only
    source = Path(path)
    affine = load_template(voxel_mm).affine  # checks voxel_mm first
    cached = cache_dir() / f"{file_digest(source)[:24]}-{voxel_mm:g}mm-v{FIT_VERSION}.npz"
    maps = _read_cache(cached)
    if maps is None:
        logger.info("fitting the anatomy of %s to the MNI152 template", source)
        maps = fit_maps(source, voxel_mm)
        _write_cache(cached, maps, source)
    return derive_template(*(maps[k] for k in MAPS), affine, voxel_mm)


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            maps = {k: np.asarray(data[k]) for k in MAPS}
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring an unreadable anatomy cache %s (%s)", path, exc)
        return None
    maps["mask"] = maps["mask"].astype(bool)
    return maps


def _write_cache(path: Path, maps: dict[str, np.ndarray], source: Path) -> None:
    meta = json.dumps({"source": str(source), "version": FIT_VERSION})
    try:
        atomic_write_with(
            path, lambda tmp: np.savez_compressed(tmp, meta=np.array(meta), **maps), ".npz"
        )
    except OSError as exc:  # a read-only cache only costs a refit next time
        logger.warning("could not cache the fitted anatomy at %s (%s)", path, exc)


def fit_maps(path: Path, voxel_mm: float) -> dict[str, np.ndarray]:
    """Fit a T1 file to the MNI152 template: its T1, tissue maps and brain mask at ``voxel_mm``.

    Raises:
        ScanError: the file is unreadable, or not a brain T1 (registration fails, the brain
            is of an implausible size, or the fitted T1 does not resemble the template's).
    """
    from madgan_core.prep.anatomy import register_to_template
    from madgan_core.prep.anatomy.steps import brain_step
    from madgan_core.scans.files import load_scan

    scan = load_scan(path)
    step = brain_step(scan, "auto")
    alignment = step.alignment or register_to_template(scan, "affine", brain_mask=step.mask)
    mni_t1, gm_p, wm_p, mni_mask_f, _ = mni_1mm()
    mni_mask = mni_mask_f > 0.5
    data = scan.data
    if step.mask is not None:  # skull on: the extracted brain
        own = alignment.to_template(np.where(step.mask, data, 0.0), scan.affine)
        mask = alignment.to_template(step.mask.astype(np.float32), scan.affine) > 0.5
    else:
        lo, hi = float(data.min()), float(np.percentile(data, 99.5))
        fg = ndimage.binary_fill_holes(data > lo + 0.02 * (hi - lo))
        own = alignment.to_template(data - lo, scan.affine)
        mask = alignment.to_template(fg.astype(np.float32), scan.affine) > 0.5
        mask &= _near_template_brain()
        mask = ndimage.binary_fill_holes(_largest_component(mask))
    if own.shape != mni_t1.shape:
        raise RuntimeError(f"template grids differ: {own.shape} vs {mni_t1.shape}")
    volume_ml = float(mask.sum()) / 1000.0
    if not BRAIN_ML[0] <= volume_ml <= BRAIN_ML[1]:
        raise ScanError(
            f"as an anatomy: its brain fitted to the MNI152 template holds {volume_ml:.0f} mL, "
            f"outside an adult brain's {BRAIN_ML[0]:.0f}-{BRAIN_ML[1]:.0f} mL; "
            "is this a T1 brain scan?",
            path,
        )
    own = np.where(mask, np.clip(own, 0.0, None), 0.0).astype(np.float32)
    own /= float(np.percentile(own[mask], 99)) or 1.0
    both = mask & mni_mask
    r = float(np.corrcoef(own[both], mni_t1[both])[0, 1]) if both.sum() > 10 else 0.0
    if not r >= MIN_CORRELATION:
        raise ScanError(
            f"as an anatomy: after registration to the MNI152 template its intensities "
            f"correlate {r:.2f} with the template's (at least {MIN_CORRELATION} expected); "
            "is this a T1-weighted brain scan?",
            path,
        )
    csf_p = np.clip(mni_mask_f - gm_p - wm_p, 0.0, 1.0)
    tissue = classify_tissue(own[mask], np.stack([csf_p[mask], gm_p[mask], wm_p[mask]], 1))
    q = np.linspace(0.5, 99.5, 100)
    matched = np.interp(own, np.percentile(own[mask], q), np.percentile(mni_t1[mni_mask], q))
    maps_1mm = {"t1": np.where(mask, matched, 0.0).astype(np.float32)}
    for k, name in enumerate(("csf", "gm", "wm")):
        full = np.zeros(mask.shape, np.float32)
        full[mask] = tissue[:, k]
        maps_1mm[name] = full
    t1, gm, wm, mask_f = (
        downsample(a, voxel_mm)
        for a in (maps_1mm["t1"], maps_1mm["gm"], maps_1mm["wm"], mask.astype(np.float32))
    )
    small_mask = mask_f > 0.5
    return {
        "t1": np.where(small_mask, t1, 0.0).astype(np.float32),
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "csf": np.clip(mask_f - gm - wm, 0.0, 1.0).astype(np.float32),
        "mask": small_mask,
    }


def classify_tissue(values: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """CSF, grey and white matter probabilities ``(n, 3)`` of brain voxels.

    A 3-class Gaussian mixture of the intensities (``values``, started at the priors'
    weighted means) gives each class's likelihood; the spatial ``priors`` ``(n, 3)``,
    softened by :data:`PRIOR_WEIGHT`, weigh them.
    """
    from sklearn.mixture import GaussianMixture

    weights = priors.sum(axis=0) + 1e-6
    means = np.sort((priors * values[:, None]).sum(axis=0) / weights)
    step = max(1, values.size // GMM_SAMPLES)
    gmm = GaussianMixture(3, means_init=means[:, None], random_state=0, max_iter=200)
    gmm.fit(values[::step, None].astype(np.float64))
    order = np.argsort(gmm.means_.ravel())
    likelihood = gmm.predict_proba(values[:, None])[:, order] / gmm.weights_[order]
    spatial = PRIOR_WEIGHT * priors + (1.0 - PRIOR_WEIGHT) / 3.0
    posterior = likelihood * spatial
    posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1e-12)
    return posterior.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _near_template_brain() -> np.ndarray:
    """The template's 1 mm brain mask grown by :data:`MASK_MARGIN_MM`."""
    mask = mni_1mm()[3] > 0.5
    return ndimage.distance_transform_edt(~mask) <= MASK_MARGIN_MM


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)
