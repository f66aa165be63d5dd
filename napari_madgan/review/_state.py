"""The review widget's state: one typed object, nothing stashed on widgets."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from madgan_core.config import HEATMAP_RANGE

if TYPE_CHECKING:
    from madgan_core.io import Scan
    from madgan_core.score import ScanScore

DEVICE_CHOICES = {"auto": "auto", "CPU": "cpu", "GPU": "cuda"}


@dataclass
class ReviewState:
    """What the review controller knows.

    Attributes:
        model_path: model file chosen by the user ("" if none).
        device: ``auto``, ``cpu`` or ``cuda``.
        sequence: ``T1`` or ``T1c``; sets the default heatmap range.
        heatmap_range: heatmap contrast limits (ℓ2).
        score_mode: the headline score mode (shown first, with its band).
        scan: the scan last scored.
        scan_layer: name of the layer it came from.
        result: the last score.
        result_layers: names of the layers made from ``result``.
        worker: the running scoring worker, if any.
        cancel: set to ask the worker to stop.
        current_slice: the axial (RAS+ z) index under the slider.
        pending: result-display steps still queued on the GUI thread.
    """

    model_path: str = ""
    device: str = "auto"
    sequence: str = "T1"
    heatmap_range: tuple[float, float] = HEATMAP_RANGE["T1"]
    score_mode: str = "mean"
    scan: Scan | None = None
    scan_layer: str = ""
    result: ScanScore | None = None
    result_layers: list[str] = field(default_factory=list)
    worker: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    current_slice: int = 0
    pending: int = 0

    @property
    def running(self) -> bool:
        """Scoring, or still showing the last result."""
        return self.worker is not None or self.pending > 0
