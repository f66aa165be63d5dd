"""A cohort manifest from a BIDS dataset: groups from a participants column, covariates,
quality-control exclusions and seeded subject-level splits.

Healthy subjects are split by the given fractions, stratified by age band (10 years)
when ``participants.tsv`` has an ``age`` column; every subject of a disease group goes to
``test`` (``train`` and ``calib`` hold healthy scans only). All sessions of a subject share
its split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from madgan_core.errors import ManifestError
from madgan_core.scans.bids import PARTICIPANTS, BidsDataset, BidsScan, index_bids
from madgan_core.scans.manifest import GROUP_NAME, ManifestRow
from madgan_core.scans.splits import DEFAULT_FRACTIONS, split_subjects

AGE_BAND_YEARS = 10


@dataclass
class BidsManifest:
    """The rows built from a dataset and what was left out of them.

    Attributes:
        rows: one row per T1w scan kept.
        excluded: subjects or files left out by the exclusion list.
        dropped: participant id -> group value left out as unmapped (``drop_unmapped``).
        without_t1: participants with no T1w scan.
    """

    rows: list[ManifestRow]
    excluded: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    without_t1: list[str] = field(default_factory=list)


def parse_value_map(text: str) -> dict[str, str]:
    """``AD=ad,MCI=mci`` as ``{"AD": "ad", "MCI": "mci"}`` (group names checked)."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        value, sep, group = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise ManifestError(f"map entry {part!r} is not VALUE=GROUP")
        if not GROUP_NAME.match(group) or group == "healthy":
            raise ManifestError(
                f"map entry {part!r}: the group must be a lower-case disease group name "
                "(letters, digits, '-', '_'; healthy values go to --healthy)"
            )
        mapping[value] = group
    return mapping


def read_exclusions(path: str | Path) -> list[str]:
    """The entries of an exclusion list: one subject or file per line; ``#`` starts a comment."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"exclusion list cannot be read ({exc})", path) from None
    entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [e for e in entries if e]


def manifest_from_bids(
    root: str | Path,
    group_column: str | None = None,
    healthy: tuple[str, ...] = (),
    value_map: Mapping[str, str] | None = None,
    drop_unmapped: bool = False,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    exclude: list[str] | None = None,
    exclude_source: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    stage_column: str | None = None,
) -> BidsManifest:
    """Build manifest rows (absolute paths) from a BIDS dataset.

    Args:
        root: the dataset's folder.
        group_column: the ``participants.tsv`` column holding the diagnosis; ``None``: every
            subject is healthy (e.g. IXI).
        healthy: values of ``group_column`` meaning healthy.
        value_map: other values -> disease group names (``{"AD": "ad"}``).
        drop_unmapped: leave out subjects whose value is neither healthy nor mapped, instead
            of raising one error listing those values.
        fractions: the healthy subjects' split fractions (``train``, ``calib``, ``test``).
        seed: the shuffle's seed.
        exclude: subjects (``sub-01`` or ``01``) or files (relative to ``root``, absolute,
            or a bare file name) to leave out.
        exclude_source: the exclusion list's file, named in errors.
        progress: called as ``progress(done, total)`` over the scans.
        stage_column: the ``participants.tsv`` column holding each disease subject's
            integer stage (e.g. from the CDR); healthy subjects get stage 0. ``None``: every
            disease subject gets stage 1.
    """
    dataset = index_bids(root)
    value_map = dict(value_map or {})
    participants_file = dataset.root / PARTICIPANTS
    groups = _groups(dataset, group_column, healthy, value_map, drop_unmapped, participants_file)
    dropped = {
        pid: dataset.participants[pid].get(group_column or "", "")
        for pid, g in groups.items()
        if g is None
    }
    excluded_subjects, excluded_files = _match_exclusions(dataset, exclude or [], exclude_source)
    kept = [
        s
        for s in dataset.scans
        if groups[s.subject] is not None
        and s.subject not in excluded_subjects
        and s.path not in excluded_files
    ]
    has_age = "age" in dataset.columns
    ages = {
        pid: _age(row.get("age", ""), participants_file, pid)
        for pid, row in dataset.participants.items()
    }
    stages = _stages(dataset, stage_column, {s.subject for s in kept}, groups, participants_file)
    healthy_subjects = sorted({s.subject for s in kept if groups[s.subject] == "healthy"})
    strata = {pid: _age_band(ages[pid]) if has_age else "" for pid in healthy_subjects}
    splits = split_subjects(strata, fractions, seed)
    rows = []
    for done, scan in enumerate(kept, start=1):
        rows.append(_row(scan, dataset, groups, splits, ages, stages))
        if progress is not None:
            progress(done, len(kept))
    if not rows:
        raise ManifestError("no T1w scan is left after grouping and exclusions", dataset.root)
    with_t1 = {s.subject for s in dataset.scans}
    return BidsManifest(
        rows=rows,
        excluded=sorted(excluded_subjects) + sorted(str(p) for p in excluded_files),
        dropped=dropped,
        without_t1=sorted(set(dataset.participants) - with_t1),
    )


def _groups(
    dataset: BidsDataset,
    column: str | None,
    healthy: tuple[str, ...],
    value_map: dict[str, str],
    drop_unmapped: bool,
    participants_file: Path,
) -> dict[str, str | None]:
    """Participant id -> group (``None``: dropped as unmapped)."""
    if column is None:
        return dict.fromkeys(dataset.participants, "healthy")
    if column not in dataset.columns:
        raise ManifestError(
            f"has no column {column!r} for the groups (its columns: {', '.join(dataset.columns)})",
            participants_file,
        )
    if not healthy:
        raise ManifestError("the values meaning healthy are needed (--healthy CN)")
    groups: dict[str, str | None] = {}
    unmapped: dict[str, list[str]] = {}
    for pid, row in dataset.participants.items():
        value = row.get(column, "")
        if value in healthy:
            groups[pid] = "healthy"
        elif value in value_map:
            groups[pid] = value_map[value]
        else:
            groups[pid] = None
            unmapped.setdefault(value or "n/a", []).append(pid)
    if unmapped and not drop_unmapped:
        listed = "; ".join(
            f"{value!r} ({len(pids)} subject(s), e.g. {pids[0]})"
            for value, pids in sorted(unmapped.items())
        )
        raise ManifestError(
            f"column {column!r} has value(s) neither healthy nor mapped: {listed}. "
            "Map them with --map VALUE=group, or leave their subjects out with --drop-unmapped",
            participants_file,
        )
    return groups


def _stages(
    dataset: BidsDataset,
    column: str | None,
    subjects: set[str],
    groups: Mapping[str, str | None],
    participants_file: Path,
) -> dict[str, int]:
    """Participant id -> stage for the kept subjects: 0 healthy, the column's integer (or 1)."""
    if column is not None and column not in dataset.columns:
        raise ManifestError(
            f"has no column {column!r} for the stages (its columns: {', '.join(dataset.columns)})",
            participants_file,
        )
    stages = {}
    for pid in sorted(subjects):
        if groups[pid] == "healthy":
            stages[pid] = 0
        elif column is None:
            stages[pid] = 1
        else:
            stages[pid] = _stage(
                dataset.participants[pid].get(column, ""), column, pid, participants_file
            )
    return stages


def _stage(value: str, column: str, pid: str, participants_file: Path) -> int:
    try:
        number = float(value)
        if not (number >= 0 and number.is_integer()):
            raise ValueError
    except ValueError:
        raise ManifestError(
            f"line {_line_of(participants_file, pid)} ({pid}): stage column {column!r} holds "
            f"{value or 'n/a'!r}, not a non-negative integer (give each disease subject an "
            "integer stage, e.g. 1/2/3 for CDR 0.5/1/2)",
            participants_file,
        ) from None
    return int(number)


def _line_of(path: Path, pid: str) -> int | str:
    """The line number of participant ``pid`` in ``participants.tsv`` (``?`` if not found)."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return next(
        (n for n, line in enumerate(lines, start=1) if line.split("\t", 1)[0].strip() == pid),
        "?",
    )


def _match_exclusions(
    dataset: BidsDataset, entries: list[str], source: str | Path | None
) -> tuple[set[str], set[Path]]:
    by_name: dict[str, list[Path]] = {}
    for scan in dataset.scans:
        by_name.setdefault(scan.path.name, []).append(scan.path)
    subjects: set[str] = set()
    files: set[Path] = set()
    unknown = []
    for entry in entries:
        pid = entry if entry.startswith("sub-") else f"sub-{entry}"
        candidate = Path(entry).expanduser()
        candidate = candidate if candidate.is_absolute() else dataset.root / candidate
        if "/" not in entry and pid in dataset.participants:
            subjects.add(pid)
        elif candidate.is_file():
            files.add(candidate.resolve())
        elif entry in by_name:
            files.update(by_name[entry])
        else:
            unknown.append(entry)
    if unknown:
        raise ManifestError(
            f"exclusion list entries match no subject or file of {dataset.root}: "
            + ", ".join(repr(u) for u in unknown),
            source,
        )
    return subjects, files


def _age(value: str, participants_file: Path, pid: str) -> float | None:
    if not value:
        return None
    try:
        age = float(value.rstrip("+"))  # BIDS top-codes ages, e.g. "89+"
        if not age >= 0:
            raise ValueError
    except ValueError:
        raise ManifestError(
            f"age {value!r} of {pid} is not a non-negative number", participants_file
        ) from None
    return age


def _age_band(age: float | None) -> str:
    return "unknown" if age is None else f"{int(age // AGE_BAND_YEARS):03d}"


def _row(
    scan: BidsScan,
    dataset: BidsDataset,
    groups: Mapping[str, str | None],
    splits: Mapping[str, str],
    ages: Mapping[str, float | None],
    stages: Mapping[str, int],
) -> ManifestRow:
    group = groups[scan.subject] or ""
    participant = dataset.participants[scan.subject]
    return ManifestRow(
        path=scan.path,
        subject=scan.subject,
        group=group,
        stage=stages[scan.subject],
        sequence=scan.sequence,
        split=splits.get(scan.subject, "test"),
        age=ages[scan.subject],
        sex=participant.get("sex", ""),
        site=participant.get("site", ""),
    )
