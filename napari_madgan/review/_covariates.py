"""The age and sex fields follow the chosen scan layer.

Each layer keeps what was entered for it; a layer seen for the first time shows the age
and sex of its DICOM series' headers (:func:`madgan_core.scans.covariates.scan_covariates`),
other scans empty fields. So one person's age never carries over to another's scan.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from madgan_core.scans.covariates import Covariates, scan_covariates
from napari_madgan._layers import SCAN_KEY

if TYPE_CHECKING:
    from napari_madgan.review._form import ReviewForm


def covariates_of_layer(layer) -> Covariates:
    """Age and sex from the headers of the DICOM series behind an image layer; nothing is
    known of other layers."""
    from madgan_core.scans.scan import Scan

    scan = layer.metadata.get(SCAN_KEY)
    return scan_covariates(scan) if isinstance(scan, Scan) else Covariates()


class LayerCovariates:
    """Keeps the form's age and sex per scan layer (held weakly: a closed layer is forgotten)."""

    def __init__(self, form: ReviewForm):
        self._form = form
        self._entered: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._shown: weakref.ref | None = None  # the layer the fields now belong to

    def follow(self, layer) -> None:
        """Keep what was entered for the last layer; show what was entered for ``layer``,
        else the age and sex of its DICOM headers."""
        previous = None if self._shown is None else self._shown()
        if previous is layer:
            return
        if previous is not None:
            self._entered[previous] = self._form.covariate_texts
        self._shown = weakref.ref(layer)
        if layer in self._entered:
            self._form.covariate_texts = self._entered[layer]
        else:
            self._form.set_covariates(covariates_of_layer(layer))
