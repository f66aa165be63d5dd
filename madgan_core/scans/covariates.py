"""A scan's covariates: the person's age and sex, and the site that scanned them.

They come from a manifest's ``age``, ``sex`` and ``site`` columns (a BIDS
``participants.tsv`` through ``madgan manifest``), from ``madgan score --age --sex``,
or from a DICOM series' Patient's Age and Sex. Calibration stores the controls'
covariates with the model, and the normative reference
(:mod:`madgan_core.model.normative`) compares a scan with controls of its age and sex.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

SEXES = ("F", "M")
_SEX_WORDS = {"f": "F", "female": "F", "w": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
_DICOM_AGE = re.compile(r"^(\d{3})([DWMY])$")
_DICOM_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def normalise_sex(value: object) -> str | None:
    """``"F"`` or ``"M"`` for the usual spellings (BIDS, DICOM, words); None otherwise."""
    if value is None:
        return None
    return _SEX_WORDS.get(str(value).strip().lower())


def dicom_age_years(value: object) -> float | None:
    """Years from a DICOM Age String (``"074Y"``, ``"018M"``); None if absent or malformed."""
    found = _DICOM_AGE.match(str(value or "").strip().upper())
    if found is None:
        return None
    return int(found.group(1)) * _DICOM_AGE_UNIT_YEARS[found.group(2)]


@dataclass(frozen=True)
class Covariates:
    """Age in years, sex (``"F"``/``"M"``) and site; None where unknown."""

    age: float | None = None
    sex: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        if self.age is not None and not (math.isfinite(self.age) and self.age >= 0):
            raise ValueError(f"age {self.age!r} is not a non-negative number of years")
        if self.sex is not None and self.sex not in SEXES:
            raise ValueError(f"sex {self.sex!r} is not one of {', '.join(SEXES)}")

    @classmethod
    def of(cls, age: object = None, sex: object = None, site: object = None) -> Covariates:
        """From loosely typed values: an empty text is unknown, sex in any usual spelling."""
        years = None if age in (None, "") else float(age)
        return cls(age=years, sex=normalise_sex(sex), site=str(site) if site else None)

    def filled_from(self, other: Covariates) -> Covariates:
        """These covariates, with what they leave unknown taken from ``other``."""
        return Covariates(
            age=self.age if self.age is not None else other.age,
            sex=self.sex if self.sex is not None else other.sex,
            site=self.site if self.site is not None else other.site,
        )

    @property
    def known(self) -> bool:
        return self.age is not None or self.sex is not None or self.site is not None

    def to_dict(self) -> dict[str, object]:
        return {"age": self.age, "sex": self.sex, "site": self.site}

    @classmethod
    def from_dict(cls, data: Mapping) -> Covariates:
        return cls.of(data.get("age"), data.get("sex"), data.get("site"))

    def describe(self) -> str:
        """E.g. ``"age 74, sex F"``; empty when nothing is known."""
        parts = []
        if self.age is not None:
            parts.append(f"age {self.age:g}")
        if self.sex is not None:
            parts.append(f"sex {self.sex}")
        if self.site is not None:
            parts.append(f"site {self.site}")
        return ", ".join(parts)


def scan_covariates(scan: object) -> Covariates:
    """Age and sex from a DICOM series' headers (Patient's Age, Patient's Sex); nothing is
    known of other files."""
    source = getattr(scan, "dicom", None)
    headers = getattr(source, "headers", ()) if source is not None else ()
    if not headers:
        return Covariates()
    first = headers[0]
    return Covariates(
        age=dicom_age_years(first.get("PatientAge")), sex=normalise_sex(first.get("PatientSex"))
    )
