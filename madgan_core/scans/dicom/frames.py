"""The 2-D images of a DICOM file with their geometry and rescaling: one for a
single-frame file, one per frame for an enhanced multi-frame file (its per-frame and
shared functional groups)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Frame:
    """One 2-D image of a series: a single-frame file, or one frame of a multi-frame file.

    Attributes:
        file: index of its file in :attr:`SeriesInfo.files`.
        number: 1-based frame number in a multi-frame file; ``None`` for a single-frame file.
        position, orientation, spacing: ImagePositionPatient, ImageOrientationPatient and
            PixelSpacing; ``None`` where the file has none.
        slope, intercept: RescaleSlope and RescaleIntercept (1 and 0 when absent).
    """

    file: int
    number: int | None
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, ...] | None
    slope: float = 1.0
    intercept: float = 0.0


def frames_of(index: int, header: Dataset) -> list[Frame]:
    count = int(header.get("NumberOfFrames", 1) or 1)
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None and count == 1:
        return [
            Frame(
                file=index,
                number=None,
                position=_floats(header, "ImagePositionPatient", 3),
                orientation=_floats(header, "ImageOrientationPatient", 6),
                spacing=_floats(header, "PixelSpacing", 2),
                slope=_float(header, "RescaleSlope", 1.0),
                intercept=_float(header, "RescaleIntercept", 0.0),
            )
        ]
    shared = (header.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    frames = []
    for f in range(count):
        item = per_frame[f] if per_frame is not None and f < len(per_frame) else Dataset()

        def group(sequence: str, _item=item) -> Dataset:
            for source in (_item, shared):
                if sequence in source and len(source[sequence].value):
                    return source[sequence].value[0]
            return Dataset()

        rescale = group("PixelValueTransformationSequence")
        frames.append(
            Frame(
                file=index,
                number=f + 1,
                position=_floats(group("PlanePositionSequence"), "ImagePositionPatient", 3),
                orientation=_floats(
                    group("PlaneOrientationSequence"), "ImageOrientationPatient", 6
                ),
                spacing=_floats(group("PixelMeasuresSequence"), "PixelSpacing", 2),
                slope=_float(rescale, "RescaleSlope", _float(header, "RescaleSlope", 1.0)),
                intercept=_float(
                    rescale, "RescaleIntercept", _float(header, "RescaleIntercept", 0.0)
                ),
            )
        )
    return frames


def _floats(ds: Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in ds.get(keyword) or ())
    except (TypeError, ValueError):
        return None
    return values if len(values) == n and all(np.isfinite(values)) else None


def _float(ds: Dataset, keyword: str, default: float) -> float:
    try:
        value = ds.get(keyword)
        return default if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return default
