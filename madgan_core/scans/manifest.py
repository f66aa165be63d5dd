"""The cohort manifest: a CSV listing scans with subject, group, stage, sequence and split.

Columns: ``path,subject,group,stage,sequence,split`` (required), then the
optional ``subtype`` (lesion sub-type of the ``various`` group), ``mask``
(a lesion mask scan), ``brain_mask`` (the true brain mask of a scan with a skull) and
``anatomy`` (the brain a phantom was built from; empty: the MNI152 template), and the
covariates ``age`` (years), ``sex`` and ``site``. Paths are relative to the manifest's
folder (absolute paths are allowed). Splits are made by subject: a subject never appears in two
splits.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from madgan_core.errors import ManifestError
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scans.files import scan_exists
from madgan_core.scans.readers import file_suffixes
from madgan_core.scans.scan import scan_stem

REQUIRED_COLUMNS = ("path", "subject", "group", "stage", "sequence", "split")
OPTIONAL_COLUMNS = ("subtype", "mask", "brain_mask", "anatomy", "age", "sex", "site")
GROUPS = ("healthy", "ad", "mets", "various")  # the phantom cohort's groups
# Real cohorts may name other groups (e.g. "mci", "glioma"); "healthy" is the one the
# tool treats specially (training, calibration, the negatives of every ROC).
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
SPLITS = ("train", "calib", "test")
MAX_REPORTED = 20


@dataclass(frozen=True)
class ManifestRow:
    """One scan of the cohort.

    Attributes:
        path: absolute path of the scan.
        subject: subject identifier (splits are made by subject).
        group: ``healthy``, or a disease group name (the phantoms use ``ad``, ``mets``, ``various``).
        stage: 0 for healthy; disease stage otherwise (AD: 1/2/3 ~ CDR 0.5/1/2).
        sequence: e.g. ``T1`` or ``T1c``.
        split: ``train``, ``calib`` or ``test``.
        subtype: optional lesion sub-type (``various``).
        mask: optional absolute path of a lesion mask.
        brain_mask: optional absolute path of the scan's true brain mask.
        anatomy: optional label of the brain a phantom scan was built from (for
            leave-one-anatomy-out evaluation).
        age: optional age in years (a covariate, e.g. from a BIDS ``participants.tsv``).
        sex: optional sex as the source gives it.
        site: optional acquisition site.
    """

    path: Path
    subject: str
    group: str
    stage: int
    sequence: str
    split: str
    subtype: str = ""
    mask: Path | None = None
    brain_mask: Path | None = None
    anatomy: str = ""
    age: float | None = None
    sex: str = ""
    site: str = ""


def read_manifest(path: str | Path, check_paths: bool = True) -> list[ManifestRow]:
    """Read and validate a manifest.

    Every problem found (up to 20) is reported in one :class:`ManifestError`
    naming the file, the row and the problem. Rows are numbered from 1 after
    the header; the line number in the file is given too.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("manifest file not found", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot be read as UTF-8 text ({exc})", path) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ManifestError(
            "is empty (expected a CSV header: " + ",".join(REQUIRED_COLUMNS) + ")", path
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(
            f"missing required column(s) {', '.join(missing)}; the header is {','.join(header)!r}",
            path,
        )
    reader.fieldnames = header
    base = path.parent
    rows: list[ManifestRow] = []
    problems: list[str] = []
    subject_split: dict[str, tuple[str, int]] = {}
    seen_paths: dict[Path, int] = {}
    for number, raw in enumerate(reader, start=1):
        where = f"row {number} (line {reader.line_num})"
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(f"{where}: more fields than columns in the header")
        row_problems = []
        empty = [c for c in REQUIRED_COLUMNS if not values.get(c)]
        if empty:
            problems.append(f"{where}: empty value(s) for {', '.join(empty)}")
            continue
        scan = _resolve(base, values["path"])
        if check_paths and not scan_exists(scan):
            row_problems.append(f"scan not found: {values['path']} (looked for {scan})")
        mask = _resolve(base, values["mask"]) if values.get("mask") else None
        if check_paths and mask is not None and not mask.is_file():
            row_problems.append(f"mask not found: {values['mask']} (looked for {mask})")
        brain_mask = _resolve(base, values["brain_mask"]) if values.get("brain_mask") else None
        if check_paths and brain_mask is not None and not brain_mask.is_file():
            row_problems.append(
                f"brain mask not found: {values['brain_mask']} (looked for {brain_mask})"
            )
        if not GROUP_NAME.match(values["group"]):
            row_problems.append(
                f"group {values['group']!r} is not a lower-case name "
                f"(letters, digits, '-', '_'; e.g. {', '.join(GROUPS)})"
            )
        if values["split"] not in SPLITS:
            row_problems.append(f"split {values['split']!r} is not one of {', '.join(SPLITS)}")
        try:
            stage = int(values["stage"])
            if stage < 0:
                raise ValueError
        except ValueError:
            row_problems.append(f"stage {values['stage']!r} is not a non-negative integer")
            stage = -1
        age = None
        if values.get("age"):
            try:
                age = float(values["age"])
                if not age >= 0:
                    raise ValueError
            except ValueError:
                row_problems.append(f"age {values['age']!r} is not a non-negative number")
        if scan in seen_paths:
            row_problems.append(
                f"scan {values['path']} is already listed in row {seen_paths[scan]}"
            )
        seen_paths.setdefault(scan, number)
        subject, split = values["subject"], values["split"]
        if subject in subject_split and subject_split[subject][0] != split:
            first_split, first_row = subject_split[subject]
            row_problems.append(
                f"subject {subject!r} is in split {split!r} here but in {first_split!r} in row {first_row}; "
                "split by subject so no subject is in two splits"
            )
        subject_split.setdefault(subject, (split, number))
        problems.extend(f"{where}: {p}" for p in row_problems)
        if not row_problems:
            rows.append(
                ManifestRow(
                    path=scan,
                    subject=subject,
                    group=values["group"],
                    stage=stage,
                    sequence=values["sequence"],
                    split=split,
                    subtype=values.get("subtype", ""),
                    mask=mask,
                    brain_mask=brain_mask,
                    anatomy=values.get("anatomy", ""),
                    age=age,
                    sex=values.get("sex", ""),
                    site=values.get("site", ""),
                )
            )
    if problems:
        shown = problems[:MAX_REPORTED]
        more = (
            f"\n  ... and {len(problems) - MAX_REPORTED} more"
            if len(problems) > MAX_REPORTED
            else ""
        )
        raise ManifestError(f"{len(problems)} problem(s):\n  " + "\n  ".join(shown) + more, path)
    if not rows:
        raise ManifestError("has a header but no rows", path)
    return rows


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def write_manifest(rows: Sequence[ManifestRow], path: str | Path) -> Path:
    """Write rows as CSV atomically, with paths relative to the manifest's folder when possible."""
    path = Path(path)
    base = path.parent.resolve()
    columns = list(REQUIRED_COLUMNS)
    columns += [c for c in OPTIONAL_COLUMNS if any(getattr(r, c) not in (None, "") for r in rows)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        values = {
            "path": _relative(r.path, base),
            "subject": r.subject,
            "group": r.group,
            "stage": str(int(r.stage)),
            "sequence": r.sequence,
            "split": r.split,
            "subtype": r.subtype,
            "mask": _relative(r.mask, base) if r.mask is not None else "",
            "brain_mask": _relative(r.brain_mask, base) if r.brain_mask is not None else "",
            "anatomy": r.anatomy,
            "age": "" if r.age is None else f"{r.age:g}",
            "sex": r.sex,
            "site": r.site,
        }
        writer.writerow([values[c] for c in columns])
    return atomic_write_text(path, buf.getvalue())


def _relative(p: Path, base: Path) -> str:
    """``p`` (absolute, or relative to the working directory) relative to ``base``."""
    absolute = Path(p).resolve()
    try:
        return Path(os.path.relpath(absolute, base)).as_posix()
    except ValueError:  # another drive on Windows
        return str(absolute)


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def rows_for(
    rows: Iterable[ManifestRow],
    split: str | Iterable[str] | None = None,
    group: str | Iterable[str] | None = None,
    sequence: str | Iterable[str] | None = None,
) -> list[ManifestRow]:
    """Rows matching every given filter (each a value or a collection of values)."""
    splits, groups, sequences = _as_set(split), _as_set(group), _as_set(sequence)
    return [
        r
        for r in rows
        if (splits is None or r.split in splits)
        and (groups is None or r.group in groups)
        and (sequences is None or r.sequence in sequences)
    ]


def manifest_from_folder(folder: str | Path, sequence: str = "T1") -> list[ManifestRow]:
    """An in-memory manifest of every scan file under ``folder`` as healthy/train rows.

    Scan files are those of the one-file formats (NIfTI, MGZ/MGH: the registry's
    :func:`~madgan_core.scans.readers.file_suffixes`). Hidden files and folders (names
    starting with ``.``) are skipped. The subject is the file name without its extension.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError("is not a folder", folder)
    suffixes = file_suffixes()
    scans = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and str(p).lower().endswith(suffixes)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not scans:
        patterns = ", ".join(f"*{s}" for s in suffixes)
        raise ManifestError(f"contains no scans ({patterns})", folder)
    return [
        ManifestRow(
            path=p.resolve(),
            subject=scan_stem(p),
            group="healthy",
            stage=0,
            sequence=sequence,
            split="train",
        )
        for p in scans
    ]
