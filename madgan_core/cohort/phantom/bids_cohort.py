"""A phantom cohort written as a BIDS dataset.

Layout (``madgan manifest`` reads it back)::

    OUT/dataset_description.json        DatasetType raw
    OUT/README
    OUT/participants.tsv, .json         participant_id, [age, sex,] diagnosis, stage, subtype, anatomy
    OUT/sub-<label>/anat/sub-<label>_T1w.nii.gz
    OUT/sub-<label>/anat/sub-<label>_ce-gadolinium_T1w.nii.gz
    OUT/derivatives/phantom/dataset_description.json      DatasetType derivative
    OUT/derivatives/phantom/sub-<label>/anat/sub-<label>[_ce-gadolinium]_desc-lesion_mask.nii.gz
    OUT/derivatives/phantom/sub-<label>/anat/sub-<label>[_ce-gadolinium]_desc-brain_mask.nii.gz
    OUT/derivatives/phantom/subjects.jsonl  each scan's generation parameters

Subject labels are the phantom ids without their hyphen (``healthy-003`` -> ``healthy003``).
The dataset is built in a hidden folder beside ``OUT`` and renamed into place at the end,
so ``OUT`` is either complete or absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from madgan_core.cohort.phantom.cohort import SUBJECTS_FILE, generate_cohort
from madgan_core.cohort.phantom.preview import preview_groups
from madgan_core.scans.manifest import ManifestRow, read_manifest

BIDS_VERSION = "1.9.0"
CONTRAST_LABEL = "gadolinium"  # the ce- entity of T1c scans
DERIVATIVES = Path("derivatives") / "phantom"
PREVIEW = DERIVATIVES / "preview.png"
MISSING = "n/a"

PARTICIPANTS_JSON = {
    "participant_id": {"Description": "phantom subject: its group and index, e.g. sub-ad002"},
    "age": {"Description": "age at the scan (drawn per group; see docs/data.md)", "Units": "year"},
    "sex": {
        "Description": "sex (sets a slightly smaller or larger head)",
        "Levels": {"F": "female", "M": "male"},
    },
    "diagnosis": {
        "Description": "simulated group",
        "Levels": {
            "healthy": "healthy, with normal and age-related variation",
            "ad": "Alzheimer's-disease-like atrophy",
            "mets": "brain metastases",
            "various": "another focal lesion (see subtype)",
        },
    },
    "stage": {
        "Description": "0 healthy; AD-like atrophy 1, 2, 3 as analogues of CDR 0.5, 1, 2; "
        "1 for the lesion groups"
    },
    "subtype": {"Description": "lesion type of the 'various' group"},
    "anatomy": {"Description": "the brain the phantom was built from (mni: MNI152 2009)"},
}


def bids_label(subject: str) -> str:
    """A phantom subject id as a BIDS label: letters and digits only."""
    label = re.sub(r"[^A-Za-z0-9]", "", subject)
    if not label:
        raise ValueError(f"subject {subject!r} has no letter or digit for a BIDS label")
    return label


def generate_bids_cohort(
    outdir: str | Path,
    preview: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **cohort_options,
) -> Path:
    """Simulate a cohort (:func:`~madgan_core.cohort.phantom.generate_cohort`'s options) and
    write it as a BIDS dataset in ``outdir``; return ``outdir``.

    Args:
        outdir: the dataset's folder: new, or an empty folder.
        preview: also write ``derivatives/phantom/preview.png``.
        progress: called as ``progress(done, total)`` after each scan.
        cohort_options: ``healthy``, ``ad``, ``mets``, ``various``, ``seed``, ``voxel_mm``,
            ``head``, ``anatomy``, ``variants``, ``ageing``, ``workers``.

    Raises:
        FileExistsError: ``outdir`` exists and is not an empty folder.
    """
    outdir = Path(outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise FileExistsError(f"{outdir} exists and is not an empty folder: give a new folder")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".partial", dir=outdir.parent)
    )
    try:
        flat = staging / "flat"
        manifest = generate_cohort(flat, progress=progress, **cohort_options)
        if preview:
            preview_groups(manifest, staging / PREVIEW)
        rows = read_manifest(manifest)
        seed = cohort_options.get("seed", 0)
        _write_dataset(staging, flat, rows, seed)
        shutil.rmtree(flat)
        if outdir.exists():
            outdir.rmdir()
        os.replace(staging, outdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return outdir


def _scan_name(label: str, sequence: str) -> str:
    contrast = f"_ce-{CONTRAST_LABEL}" if sequence == "T1c" else ""
    return f"sub-{label}{contrast}"


def _write_dataset(root: Path, flat: Path, rows: list[ManifestRow], seed: int) -> None:
    """Move the flat cohort's files into the BIDS layout under ``root``; write its tables."""
    moved: dict[str, str] = {}
    participants: dict[str, ManifestRow] = {}
    for row in rows:
        label = bids_label(row.subject)
        participants.setdefault(label, row)
        stem = _scan_name(label, row.sequence)
        scan = Path(f"sub-{label}") / "anat" / f"{stem}_T1w.nii.gz"
        _move(row.path, root / scan)
        moved[Path(row.path).name.removesuffix(".nii.gz")] = scan.as_posix()
        for mask, desc in ((row.mask, "lesion"), (row.brain_mask, "brain")):
            if mask is not None:
                target = DERIVATIVES / f"sub-{label}" / "anat" / f"{stem}_desc-{desc}_mask.nii.gz"
                _move(mask, root / target)
    _write_json(
        root / "dataset_description.json",
        {
            "Name": f"madgan phantom cohort (seed {seed})",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "madgan phantom"}],
        },
    )
    _write_json(
        root / DERIVATIVES / "dataset_description.json",
        {
            "Name": "madgan phantom truth: lesion and brain masks, generation parameters",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "madgan phantom"}],
        },
    )
    (root / "README").write_text(
        "Simulated brain MRI (madgan phantom): skull-stripped T1w and contrast-enhanced T1w "
        "scans in MNI152 space. Lesion and brain masks and each scan's generation parameters "
        f"are in {DERIVATIVES.as_posix()}/.\n",
        encoding="utf-8",
    )
    with_age = any(r.age is not None for r in participants.values())
    columns = ["participant_id"] + (["age", "sex"] if with_age else [])
    columns += ["diagnosis", "stage", "subtype", "anatomy"]
    lines = ["\t".join(columns)]
    for label, r in participants.items():
        values = {
            "participant_id": f"sub-{label}",
            "age": MISSING if r.age is None else f"{r.age:g}",
            "sex": r.sex or MISSING,
            "diagnosis": r.group,
            "stage": str(r.stage),
            "subtype": r.subtype or MISSING,
            "anatomy": r.anatomy or "mni",
        }
        lines.append("\t".join(values[c] for c in columns))
    (root / "participants.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_json(root / "participants.json", {c: PARTICIPANTS_JSON[c] for c in columns})
    records = []
    for line in (flat / SUBJECTS_FILE).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records.append(json.dumps({"file": moved[record["scan"]]} | record))
    (root / DERIVATIVES / SUBJECTS_FILE).write_text("\n".join(records) + "\n", encoding="utf-8")


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
