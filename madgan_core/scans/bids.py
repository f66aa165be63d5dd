"""A BIDS dataset's participants and T1-weighted scans, checked before use.

Reads ``dataset_description.json``, ``participants.tsv`` and every
``sub-<label>/[ses-<label>/]anat/*_T1w.nii[.gz]``. The ``ce-`` entity marks a
contrast-enhanced T1 (sequence ``T1c``); without it the sequence is ``T1``. Only the
file names are read, never the images. The dataset is indexed by ancpbids (subjects,
sessions, datatype folders, entities, ``.bidsignore``); the checks below are madgan's own.

Checked, each failure one :class:`~madgan_core.errors.ManifestError` naming the file and
the problem: the description exists and is a JSON object with ``Name`` and
``BIDSVersion``; ``participants.tsv`` exists, has a ``participant_id`` column, one row per
subject and as many fields per row as columns; every ``sub-*`` folder is listed in it;
every file name in an ``anat`` folder follows ``sub-<label>[_ses-<label>][_<key>-<label>]*
_<suffix>.<extension>`` with the labels of its folders.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from madgan_core.errors import ManifestError

DESCRIPTION = "dataset_description.json"
PARTICIPANTS = "participants.tsv"
T1_EXTENSIONS = (".nii", ".nii.gz")
MISSING = "n/a"  # BIDS's marker of a missing value
MAX_REPORTED = 20

_LABEL = r"[A-Za-z0-9]+"
_FILE_NAME = re.compile(
    rf"^sub-(?P<sub>{_LABEL})(?P<entities>(?:_[a-z]+-{_LABEL})*)_(?P<suffix>[A-Za-z0-9]+)"
    r"(?P<ext>\.[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)?)$"
)
_ENTITY = re.compile(rf"_([a-z]+)-({_LABEL})")


@dataclass(frozen=True)
class BidsScan:
    """One T1-weighted scan file of a BIDS dataset.

    Attributes:
        path: absolute path of the file.
        subject: the participant id (``sub-<label>``).
        session: the session label (without ``ses-``); empty when the dataset has none.
        contrast: the ``ce-`` label (contrast agent); empty for a plain T1.
    """

    path: Path
    subject: str
    session: str = ""
    contrast: str = ""

    @property
    def sequence(self) -> str:
        """``T1c`` for a contrast-enhanced scan, ``T1`` otherwise."""
        return "T1c" if self.contrast else "T1"


@dataclass(frozen=True)
class BidsDataset:
    """The checked content of a BIDS dataset.

    Attributes:
        root: the dataset's folder.
        columns: the columns of ``participants.tsv`` (``participant_id`` first).
        participants: each participant id's row, values stripped, ``n/a`` as empty.
        scans: every T1w NIfTI file, sorted by path.
    """

    root: Path
    columns: tuple[str, ...]
    participants: dict[str, dict[str, str]]
    scans: list[BidsScan]


def index_bids(root: str | Path) -> BidsDataset:
    """Check a BIDS dataset and list its participants and T1w scans.

    Raises:
        ManifestError: naming the file and the problem (several problems: each on one line).
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError("is not a folder (expected a BIDS dataset)", root)
    root = root.resolve()
    _check_description(root / DESCRIPTION)
    columns, participants = read_participants(root / PARTICIPANTS)
    problems: list[str] = []
    scans: list[BidsScan] = []
    import ancpbids  # imported here: it costs start-up time to every other command

    try:
        dataset = ancpbids.load_dataset(str(root))
    except Exception as exc:  # the library's own errors carry no common base class
        raise ManifestError(f"cannot be indexed as a BIDS dataset ({exc})", root) from None
    for subject in sorted(dataset.subjects, key=lambda s: s.name):
        folder = root / subject.name
        if subject.name not in participants:
            problems.append(
                f"{folder}: subject folder is not listed in {root / PARTICIPANTS} "
                "(add a row with this participant_id)"
            )
            continue
        places = [(ses.name, ses.datatypes) for ses in subject.sessions or []]
        for session, datatypes in [*places, ("", subject.datatypes or [])]:
            for anat in (d for d in datatypes if d.name == "anat"):
                where = folder / session / "anat"
                for file in anat.files or []:
                    scan = _parse(file, where, subject.name, session[4:], problems)
                    if scan is not None:
                        scans.append(scan)
    if problems:
        _raise(problems, root)
    return BidsDataset(root, columns, participants, sorted(scans, key=lambda s: s.path))


def _raise(problems: list[str], root: Path) -> None:
    if len(problems) == 1:
        raise ManifestError(problems[0])
    shown = problems[:MAX_REPORTED]
    more = (
        f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    )
    raise ManifestError(
        f"{len(problems)} problems in the BIDS dataset:\n  " + "\n  ".join(shown) + more, root
    )


def _check_description(path: Path) -> None:
    if not path.is_file():
        raise ManifestError(
            "missing: a BIDS dataset needs a dataset_description.json with Name and BIDSVersion",
            path,
        )
    try:
        description = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"is not valid JSON ({exc})", path) from None
    if not isinstance(description, dict):
        raise ManifestError("is not a JSON object", path)
    missing = [k for k in ("Name", "BIDSVersion") if not description.get(k)]
    if missing:
        raise ManifestError(f"lacks the required field(s) {', '.join(missing)}", path)


def read_participants(path: Path) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """The columns and rows of a ``participants.tsv``, keyed by ``participant_id``."""
    if not path.is_file():
        raise ManifestError(
            "missing: a BIDS dataset needs a participants.tsv with a participant_id column", path
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot be read as UTF-8 text ({exc})", path) from None
    lines = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not lines or not any(h.strip() for h in lines[0]):
        raise ManifestError("is empty (expected a tab-separated header with participant_id)", path)
    columns = tuple(h.strip() for h in lines[0])
    if "participant_id" not in columns:
        raise ManifestError(
            f"has no participant_id column (the header is {', '.join(columns)!r}; "
            "columns are separated by tabs)",
            path,
        )
    participants: dict[str, dict[str, str]] = {}
    for number, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(columns):
            raise ManifestError(
                f"line {number} has {len(fields)} field(s) but the header has {len(columns)}", path
            )
        row = {
            c: ("" if v.strip() == MISSING else v.strip())
            for c, v in zip(columns, fields, strict=True)
        }
        pid = row["participant_id"]
        if not re.fullmatch(rf"sub-{_LABEL}", pid):
            raise ManifestError(
                f"line {number}: participant_id {pid!r} is not sub-<label> (letters and digits)",
                path,
            )
        if pid in participants:
            raise ManifestError(f"line {number}: participant_id {pid!r} is listed twice", path)
        participants[pid] = row
    return columns, participants


def _parse(file, folder: Path, subject: str, session: str, problems: list[str]) -> BidsScan | None:
    """The scan an indexed file describes (``None`` for other files); problems are appended."""
    if file.name.startswith("."):
        return None
    path = folder / file.name
    match = _FILE_NAME.match(path.name)
    expected = f"{subject}{f'_ses-{session}' if session else ''}_[<key>-<label>_]<suffix>.<ext>"
    entities = getattr(file, "entities", None)  # absent: not a BIDS name to the library
    if match is None or not entities:
        problems.append(f"{path}: malformed BIDS file name (expected {expected})")
        return None
    keys = [k for k, _ in _ENTITY.findall(match["entities"])]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    found_session = entities.get("ses", "")
    wrong = []
    if f"sub-{entities.get('sub', '')}" != subject:
        wrong.append(f"its subject is sub-{entities.get('sub', '')} but its folder is {subject}")
    if found_session != session:
        wrong.append(
            f"its session is {found_session or 'none'} but its folder's is {session or 'none'}"
        )
    if duplicated:
        wrong.append(f"entity {', '.join(duplicated)} appears twice")
    if keys and keys[0] != "ses" and "ses" in keys:
        wrong.append("ses- must come right after sub-")
    if wrong:
        problems.append(f"{path}: malformed BIDS file name: {'; '.join(wrong)}")
        return None
    if file.suffix != "T1w" or file.extension.lower() not in T1_EXTENSIONS:
        return None
    return BidsScan(path, subject, session, entities.get("ce", ""))
