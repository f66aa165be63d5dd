"""Names for series without patient identifiers, and a series' sequence guessed from its header."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydicom import config
from pydicom.dataset import Dataset

F = TypeVar("F", bound=Callable)

PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")


def series_name(description: str, uid: str) -> str:
    """A scan name for a series: its description made file-name safe, and 8 hex digits of its UID."""
    key = hashlib.sha1(uid.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", description).strip("._-")[:48]
    return f"{slug}-{key}" if slug else f"series-{key}"


def patient_identifiers(header: Dataset) -> list[str]:
    """The identifying strings of a header's patient (name parts, ID, birth date, accession).

    Used to keep them out of names; never print the result.
    """
    values: list[str] = []
    for keyword in PATIENT_KEYWORDS:
        value = str(header.get(keyword, "") or "")
        values.extend(p for p in re.split(r"[\^=\s,]+", value) if len(p) >= 3)
        if len(value) >= 3:
            values.append(value)
    return values


def header_text(ds: Dataset, keyword: str) -> str:
    """A header value as one line of text; '' when absent or damaged."""
    try:
        return " ".join(str(ds.get(keyword, "") or "").split())
    except Exception:  # a damaged value is no description
        return ""


_CONTRAST = re.compile(r"(\bpost\b|\+c\b|\bc\+|\bgd\b|gad|contrast|\bce\b|\bkm\b|_post|post_)")

_SEQUENCES = (
    ("localizer", re.compile(r"(locali[sz]er|scout|survey|3[- ]?plane|\baahead)")),
    ("DWI", re.compile(r"(dwi|diffusion|\badc\b|trace|\bdti\b|ep2d_diff)")),
    ("FLAIR", re.compile(r"flair")),
    ("T2", re.compile(r"(t2(?!\d)|\bswi\b|\bt2\*|\bpd\b)")),
    ("T1", re.compile(r"(t1(?!\d)|mprage|mp-rage|mp2rage|spgr|bravo|\btfl|tfe|vibe|\bmpr\b)")),
)


def guess_sequence(header: Dataset, description: str) -> str:
    text = " ".join(
        [description, header_text(header, "ProtocolName"), header_text(header, "SequenceName")]
    ).lower()
    for name, pattern in _SEQUENCES:
        if pattern.search(text):
            return "T1c" if name == "T1" and _CONTRAST.search(text) else name
    contrast = header_text(header, "AcquisitionContrast").upper()  # enhanced MR says it outright
    if contrast == "T1":
        return "T1"
    return ""


@contextmanager
def unquoted_values() -> Iterator[None]:
    """Switch off pydicom's value checks for the duration.

    They warn and log malformed values with the value quoted (``Invalid value for
    VR DA: '...'``), and a malformed PatientBirthDate would reach the console that
    way. Checks are restored afterwards; the values themselves are left as they are.
    """
    settings = config.settings
    saved = settings.reading_validation_mode, settings.writing_validation_mode
    settings.reading_validation_mode = config.IGNORE
    settings.writing_validation_mode = config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = saved


def without_quoted_values(function: F) -> F:
    """Run ``function`` inside :func:`unquoted_values`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with unquoted_values():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
