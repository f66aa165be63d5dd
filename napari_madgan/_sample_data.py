"""Sample data: synthetic phantom subjects made on the fly (2 mm voxels, a few seconds)."""

from __future__ import annotations

import numpy as np

from napari_madgan._geometry import AXIS_LABELS, UNITS, ras_layer
from napari_madgan._layers import scan_layer_tuple

VOXEL_MM = 2.0


def _subject(group: str, stage: int, name: str) -> list[tuple]:
    from madgan_core.cohort.phantom import GROUP_SEQUENCES, make_subject
    from madgan_core.scans.scan import Scan

    sequence = GROUP_SEQUENCES[group][0]  # metastases and other lesions are T1c-like
    volume, affine, info = make_subject(
        group, stage=stage, sequence=sequence, seed=0, voxel_mm=VOXEL_MM
    )
    scan = Scan.from_array(volume, affine)
    info = dict(info)
    mask = info.pop("lesion_mask", None)
    layers = [scan_layer_tuple(scan, name=name, info=info)]
    if mask is not None and np.any(mask):
        # The ground truth, for comparing with the heatmap; hidden until the user wants it.
        data, geometry = ras_layer(np.asarray(mask).astype(np.uint8), scan.affine)
        kwargs = {"name": f"{name} lesions (truth)", "visible": False, "opacity": 0.5, **geometry}
        kwargs.update(axis_labels=AXIS_LABELS, units=(UNITS,) * 3)
        layers.append((data, kwargs, "labels"))
    return layers


def healthy_phantom() -> list[tuple]:
    return _subject("healthy", 0, "phantom healthy")


def ad_phantom() -> list[tuple]:
    return _subject("ad", 3, "phantom AD stage 3")


def metastasis_phantom() -> list[tuple]:
    return _subject("mets", 1, "phantom metastasis")


def various_phantom() -> list[tuple]:
    return _subject("various", 1, "phantom various")
