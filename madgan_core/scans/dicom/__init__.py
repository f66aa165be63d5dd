"""DICOM in: read a scanner's series as a :class:`~madgan_core.scans.scan.Scan`.

* :mod:`.files`: find DICOM files in folders, read their headers, split ``folder::series``.
* :mod:`.series`: group files into series, describe and check each, pick one.
* :mod:`.naming`: series names without patient identifiers; sequence guessed from the header.
* :mod:`.geometry`: slice order and affine of a slice stack, or why it is no regular grid.
* :mod:`.read`: read one series as a RAS+ scan (the same as the NIfTI path gives).

Results go back as DICOM through :mod:`madgan_core.outputs.dicom`. List the series of a
folder with ``madgan series FOLDER``.
"""

from madgan_core.scans.dicom.files import has_dicom, is_dicom_file, is_dicom_path, split_selector
from madgan_core.scans.dicom.naming import series_name
from madgan_core.scans.dicom.read import (
    DicomSource,
    SliceRef,
    load_series,
    read_series,
    series_name_of,
)
from madgan_core.scans.dicom.series import SeriesInfo, default_choice, find_series, pick_series

__all__ = [
    "DicomSource",
    "SeriesInfo",
    "SliceRef",
    "default_choice",
    "find_series",
    "has_dicom",
    "is_dicom_file",
    "is_dicom_path",
    "load_series",
    "pick_series",
    "read_series",
    "series_name",
    "series_name_of",
    "split_selector",
]
