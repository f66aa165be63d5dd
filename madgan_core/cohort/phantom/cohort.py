"""A whole phantom cohort on disk: scans, lesion masks and the manifest."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from madgan_core.cohort.phantom.acquisition import parse_variant
from madgan_core.cohort.phantom.ageing import draw_person
from madgan_core.cohort.phantom.anatomies import anatomy_template, expand, resolve
from madgan_core.cohort.phantom.diseases import SUBTYPES
from madgan_core.cohort.phantom.head import wrap_in_head
from madgan_core.cohort.phantom.subject import GROUP_SEQUENCES, GROUPS, make_subject
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scans.files import save_nifti
from madgan_core.scans.manifest import ManifestRow, write_manifest

logger = logging.getLogger(__name__)

# Many calib and test controls: z-statistics and noise fits need the former, narrow AUC
# intervals the latter; training gains little from more healthy subjects.
SPLIT_FRACTIONS = {"train": 0.40, "calib": 0.25, "test": 0.35}
REORIENT_FRACTION = 0.2
# One JSON line per scan: its generation parameters (anatomy, scanner, lesions).
SUBJECTS_FILE = "subjects.jsonl"
ID_PREFIX = {"healthy": "healthy", "ad": "ad", "mets": "mets", "various": "various"}
MAX_WORKERS = 8  # the default number of simulating processes is the CPU count, at most this


@dataclass(frozen=True)
class PlannedSubject:
    subject: str
    group: str
    stage: int
    subtype: str
    seed: int
    split: str
    ornt: np.ndarray | None  # voxel orientation to store the scans in (None: RAS+)
    age: float | None = None  # years (ageing cohorts only)
    sex: str = ""  # F or M (ageing cohorts only)


def subject_seed(seed: int, group: str, index: int) -> int:
    """The seed of subject ``index`` of ``group``: independent of cohort sizes."""
    ss = np.random.SeedSequence([int(seed), GROUPS.index(group), int(index)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def healthy_splits(n: int, seed: int, stratum: int = 0) -> list[str]:
    """Split labels for ``n`` healthy subjects: ~40/25/35 %, at least one calib and test when n >= 3.

    ``stratum`` (an anatomy's index) draws another permutation for each stratum.
    """
    if n < 3:
        return ["train"] * n
    n_calib = max(1, round(SPLIT_FRACTIONS["calib"] * n))
    n_test = max(1, round(SPLIT_FRACTIONS["test"] * n))
    labels = ["calib"] * n_calib + ["test"] * n_test
    labels = ["train"] * (n - len(labels)) + labels
    key = [int(seed), 1000] + ([int(stratum)] if stratum else [])
    order = np.random.default_rng(np.random.SeedSequence(key)).permutation(n)
    return [labels[k] for k in np.argsort(order)]


def random_orientation(rng: np.random.Generator) -> np.ndarray:
    """A non-RAS voxel orientation (axis permutation and flips) as a nibabel ornt array."""
    while True:
        ornt = np.stack([rng.permutation(3), rng.choice([-1, 1], 3)], axis=1).astype(float)
        if not (np.array_equal(ornt[:, 0], [0, 1, 2]) and np.all(ornt[:, 1] == 1)):
            return ornt


def plan_cohort(
    healthy: int,
    ad: int,
    mets: int,
    various: int,
    seed: int,
    anatomies: int = 1,
    ageing: bool = False,
) -> list[PlannedSubject]:
    """Every subject of the cohort with its seed, stage, subtype, split and stored orientation
    (and, with ``ageing``, its age and sex: :func:`madgan_core.cohort.phantom.ageing.draw_person`).

    Subject ``i`` of each group is built from anatomy ``i % anatomies``; AD stages and
    lesion subtypes cycle within each anatomy, and the healthy subjects are split within
    each anatomy, so no anatomy stands for one stage and every anatomy has its train,
    calib and test share.
    """
    counts = {"healthy": healthy, "ad": ad, "mets": mets, "various": various}
    for group, n in counts.items():
        if n < 0:
            raise ValueError(f"number of {group} subjects must be >= 0, got {n}")
    if anatomies < 1:
        raise ValueError(f"number of anatomies must be >= 1, got {anatomies}")
    per_anatomy = [
        healthy_splits(len(range(a, healthy, anatomies)), seed, a) for a in range(anatomies)
    ]
    splits = [per_anatomy[i % anatomies][i // anatomies] for i in range(healthy)]
    plan = []
    for group, n in counts.items():
        for i in range(n):
            s = subject_seed(seed, group, i)
            turn = i // anatomies  # stages and subtypes cycle within each anatomy
            rng = np.random.default_rng(np.random.SeedSequence(s, spawn_key=(9,)))
            ornt = random_orientation(rng) if rng.random() < REORIENT_FRACTION else None
            person = draw_person(group, s) if ageing else None
            plan.append(
                PlannedSubject(
                    subject=f"{ID_PREFIX[group]}-{i:03d}",
                    group=group,
                    stage=0 if group == "healthy" else (1 + turn % 3 if group == "ad" else 1),
                    subtype=SUBTYPES[turn % len(SUBTYPES)] if group == "various" else "",
                    seed=s,
                    split=splits[i] if group == "healthy" else "test",
                    ornt=ornt,
                    age=person.age if person else None,
                    sex=person.sex if person else "",
                )
            )
    return plan


def cohort_anatomies(specs: Sequence[str | os.PathLike], voxel_mm: float) -> list[str]:
    """Fit every anatomy of a cohort once (before any scan is written); return their labels.

    Raises:
        ValueError: no anatomy, or two anatomies with the same label.
    """
    if not specs:
        raise ValueError("give at least one anatomy")
    labels = [anatomy_template(spec, voxel_mm)[1] for spec in specs]
    seen = [label for k, label in enumerate(labels) if label in labels[:k]]
    if seen:
        raise ValueError(f"two anatomies share the label {seen[0]!r}: rename one of the files")
    return labels


def to_image(volume: np.ndarray, affine: np.ndarray, ornt: np.ndarray | None) -> nib.Nifti1Image:
    """A NIfTI image of a RAS+ volume, stored in voxel orientation ``ornt`` (same world geometry)."""
    img = nib.Nifti1Image(np.asarray(volume), affine)
    img.header.set_xyzt_units("mm")
    if ornt is not None:
        img = img.as_reoriented(ornt)
    img.set_qform(img.affine, code=4)  # MNI152
    img.set_sform(img.affine, code=4)
    return img


def default_workers() -> int:
    """The CPU cores this process may use, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


@dataclass(frozen=True)
class _Job:
    """One scan to simulate and write, with everything a worker process needs."""

    planned: PlannedSubject
    sequence: str
    outdir: Path
    spec: str | os.PathLike
    label: str
    record_anatomy: bool
    voxel_mm: float
    head: bool
    variants: tuple[str, ...]


def _simulate_scan(job: _Job) -> tuple[ManifestRow, str]:
    """Simulate one scan, write it and its masks; return its manifest row and record line."""
    p, seq, outdir, voxel_mm = job.planned, job.sequence, job.outdir, job.voxel_mm
    volume, affine, info = make_subject(
        p.group,
        p.stage,
        seq,
        p.seed,
        voxel_mm,
        p.subtype or None,
        job.spec,
        age=p.age,
        sex=p.sex or None,
    )
    masks = {"lesion": info["lesion_mask"]}
    if job.head:
        volume, affine, brain, masks = wrap_in_head(
            volume, masks, voxel_mm, info["scanner"]["noise_sigma"], p.seed
        )
        masks["brain"] = brain
    for variant in (parse_variant(v) for v in job.variants):
        volume, affine, masks = variant(volume, affine, masks, p.seed)
    name = f"{p.subject}_{seq}"
    scan_path = save_nifti(to_image(volume, affine, p.ornt), outdir / "scans" / f"{name}.nii.gz")
    mask_path = brain_path = None
    if p.group in ("mets", "various"):
        mask_path = save_nifti(
            to_image(masks["lesion"].astype(np.uint8), affine, p.ornt),
            outdir / "masks" / f"{name}_lesion.nii.gz",
        )
    if job.head:
        brain_path = save_nifti(
            to_image(masks["brain"].astype(np.uint8), affine, p.ornt),
            outdir / "masks" / f"{name}_brainmask.nii.gz",
        )
    row = ManifestRow(
        path=scan_path,
        subject=p.subject,
        group=p.group,
        stage=p.stage,
        sequence=seq,
        split=p.split,
        subtype=p.subtype,
        mask=mask_path,
        brain_mask=brain_path,
        anatomy=job.label if job.record_anatomy else "",
        age=p.age,
        sex=p.sex,
    )
    source = resolve(job.spec)[1]
    record = json.dumps(
        {"scan": name, "subject": p.subject, "seed": p.seed}
        | {"template": job.label, "head": job.head, "variants": list(job.variants)}
        | ({"anatomy_file": str(source)} if source is not None else {})
        | {k: info[k] for k in ("group", "stage", "sequence", "subtype")}
        | {k: info[k] for k in ("anatomy", "scanner", "lesions")}
        | ({k: info[k] for k in ("age", "sex", "ageing")} if "ageing" in info else {})
    )
    logger.debug("%s: seed %d, lesions %s", name, p.seed, info["lesions"])
    return row, record


def _pool_context() -> multiprocessing.context.BaseContext:
    # Forked workers inherit the fitted anatomies; elsewhere fork is unsafe or missing.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _run_jobs(
    jobs: list[_Job], workers: int, progress: Callable[[int, int], None] | None
) -> list[tuple[ManifestRow, str]]:
    """Every job's result, in the jobs' order; ``progress`` ticks as each scan is written."""
    total = len(jobs)
    if progress is not None:
        progress(0, total)
    results: list[tuple[ManifestRow, str]] = []
    if workers <= 1:
        for done, job in enumerate(jobs, start=1):
            results.append(_simulate_scan(job))
            if progress is not None:
                progress(done, total)
        return results
    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        futures = [pool.submit(_simulate_scan, job) for job in jobs]
        pending, done = set(futures), 0
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    future.result()  # a worker's error stops the cohort here
                    done += 1
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return [f.result() for f in futures]


def generate_cohort(
    outdir: str | Path,
    healthy: int = 20,
    ad: int = 9,
    mets: int = 5,
    various: int = 4,
    seed: int = 0,
    voxel_mm: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    head: bool = False,
    anatomy: str | os.PathLike | Sequence[str | os.PathLike] = "mni",
    variants: Sequence[str] = (),
    ageing: bool = False,
    workers: int | None = None,
) -> Path:
    """Simulate a cohort and write ``outdir/scans/*.nii.gz``, ``outdir/masks/``,
    ``outdir/manifest.csv`` and ``outdir/subjects.jsonl`` (each scan's generation parameters).

    Healthy subjects get a T1 and a T1c scan (same anatomy) and are split by
    subject into train/calib/test (40/25/35 %). AD subjects (T1) cycle over
    stages 1, 2, 3; metastasis and ``various`` subjects (T1c, the latter
    cycling over :data:`SUBTYPES`) are all test. About 20 % of subjects are
    stored in a permuted/flipped voxel order. Same seed -> identical files.

    Args:
        outdir: output folder (created).
        healthy, ad, mets, various: number of subjects per group.
        seed: cohort seed.
        voxel_mm: isotropic voxel size.
        progress: called as ``progress(done, total)`` after each scan.
        head: wrap each brain in the average head (:func:`madgan_core.cohort.phantom.head.wrap_in_head`)
            and write its true brain mask to ``outdir/masks/<scan>_brainmask.nii.gz``
            (the manifest's ``brain_mask`` column).
        anatomy: the brain subjects are built from (:func:`madgan_core.cohort.phantom.make_subject`):
            a bundled name (``mni``, ``head``, ``colin27``, ...; ``all``: every distinct
            bundled brain installed, :func:`madgan_core.cohort.phantom.anatomies.available`)
            or a T1 file; or several,
            taken in turn by the subjects of each group. Unless every subject uses ``mni``,
            the manifest's ``anatomy`` column gives each scan's anatomy.
        variants: acquisition variants applied in order to every scan and its masks
            (names as in :func:`madgan_core.cohort.phantom.acquisition.parse_variant`).
        ageing: every subject gets an age and a sex (the manifest's ``age`` and ``sex``
            columns) and healthy ageing (:mod:`madgan_core.cohort.phantom.ageing`). Without
            it, subjects are exactly those of a cohort without ages.
        workers: processes simulating scans in parallel (default: the CPU cores, at most
            :data:`MAX_WORKERS`; 1: in this process). The files are the same either way.

    Returns:
        Path of the manifest.
    """
    outdir = Path(outdir)
    for v in variants:
        parse_variant(v)  # a bad name fails before any work
    specs = expand([anatomy] if isinstance(anatomy, (str, os.PathLike)) else list(anatomy))
    plan = plan_cohort(healthy, ad, mets, various, seed, len(specs), ageing)
    labels = cohort_anatomies(specs, voxel_mm)
    record_anatomy = set(labels) != {"mni"}
    index_in_group: dict[str, int] = {}
    subject_anatomy = {}
    for p in plan:
        i = index_in_group[p.group] = index_in_group.get(p.group, -1) + 1
        subject_anatomy[p.subject] = i % len(specs)
    jobs = [
        _Job(
            planned=p,
            sequence=seq,
            outdir=outdir,
            spec=specs[subject_anatomy[p.subject]],
            label=labels[subject_anatomy[p.subject]],
            record_anatomy=record_anatomy,
            voxel_mm=voxel_mm,
            head=head,
            variants=tuple(variants),
        )
        for p in plan
        for seq in GROUP_SEQUENCES[p.group]
    ]
    total = len(jobs)
    if total == 0:
        raise ValueError("the cohort is empty: ask for at least one subject")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = min(default_workers() if workers is None else workers, total)
    logger.info(
        "simulating %d scans of %d subjects at %g mm into %s", total, len(plan), voxel_mm, outdir
    )
    logger.debug("simulating in %d process(es)", workers)
    results = _run_jobs(jobs, workers, progress)
    records = [record for _, record in results]
    atomic_write_text(outdir / SUBJECTS_FILE, "\n".join(records) + "\n")
    return write_manifest([row for row, _ in results], outdir / "manifest.csv")
