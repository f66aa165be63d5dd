"""Score many scan files, as ``madgan score`` does: resumably, and shared among torchrun ranks.

Each scan's row (:meth:`ScanScore.to_row`) goes to a part file of its own in
``<out>/scores.parts/`` once its maps, if asked for, are written
(:mod:`madgan_core.runtime.sharding`). When every scan has its part, rank 0 writes
``scores.csv`` and ``scores.jsonl`` in the order the files were given and removes the
parts. Run again with the same model and settings, a stopped run continues.

The work is pipelined so that the slowest stage sets the rate: the loader reads and
prepares the next scans (in worker threads or processes), the network scores one scan,
and post-processing threads turn the scans before it into maps, files and rows.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.model.checkpoint import model_fingerprint
from madgan_core.prep.loader import LoadedSlab, SlabLoader
from madgan_core.runtime.sharding import PartFolder, SharedRun, run_share
from madgan_core.scans.atomic import atomic_write_text
from madgan_core.scans.covariates import Covariates, scan_covariates
from madgan_core.scans.files import save_like
from madgan_core.scoring.result import ScanScore
from madgan_core.scoring.scorer import inference_settings, scan_network_pass

if TYPE_CHECKING:
    import torch

    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.runtime.distributed import DistInfo

# Per-slice lists stay in scores.jsonl; scores.csv holds one value per column.
LIST_FIELDS = ("slice_indices", "slice_losses")


def score_files(
    model: LoadedModel,
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    maps: bool = False,
    dicom_out: str | Path | None = None,
    sequence: str | None = None,
    precision: str = "auto",
    batch_size: int = 0,
    loader: SlabLoader | None = None,
    info: DistInfo | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[ScanScore], None] | None = None,
    brain_masks: Sequence[str | Path] | None = None,
    covariates: Sequence[Covariates | None] | None = None,
    post_threads: int | None = None,
) -> list[dict[str, object]] | None:
    """Score each file into ``out``: rows, and on request the maps as NIfTI beside them.

    Args:
        model: the loaded model (score settings as the caller wants them).
        paths: the scan files.
        out: the output folder.
        maps: also write ``<scan>_heatmap``, ``_recon`` and (with a z-map) ``_zmap`` and
            ``_findings.nii.gz`` (each finding's outline, valued by its rank).
        dicom_out: for DICOM series inputs, also write the results as new series of each
            scan's study into ``dicom_out/<scan>/`` (:mod:`madgan_core.outputs.dicom.results`).
        sequence: the scans' sequence, for percentiles and the z-map.
        precision: inference precision.
        batch_size: windows per inference batch (0: chosen per device).
        loader: how scans are read: prefetch, worker processes and slab cache (default: one
            ahead in a thread, no cache).
        info: this rank under torchrun (default: one process).
        progress: ``progress(done, total)`` over this rank's scans.
        on_result: called with each scan's :class:`ScanScore` as it is scored.
        brain_masks: one brain-mask file per path, used instead of the brain step.
        covariates: one person's age and sex per path, for percentiles against controls
            of that age and sex (:mod:`madgan_core.model.normative`); where None, a DICOM
            series' Patient's Age and Sex are used.
        post_threads: threads that post-process scored scans (maps, files, rows) while the
            network runs the next scan (default: :func:`default_post_threads`; 0: none,
            each scan is post-processed before the next one is scored).

    Returns:
        Every file's row, in the order given; None on ranks other than 0.
    """
    from madgan_core.runtime.distributed import DistInfo

    out = Path(out)
    info = info or DistInfo()
    precision, batch = inference_settings(model, precision, batch_size)
    fingerprint = {
        **model_fingerprint(model),
        "score": dataclasses.asdict(model.config.score),
        "precision": precision,
        "window_batch": batch,
        "sequence": sequence,
        "maps": maps,
        "brain_masks": None if brain_masks is None else [str(m) for m in brain_masks],
        "dicom_out": None if dicom_out is None else str(dicom_out),
        "covariates": None
        if covariates is None
        else [None if c is None else c.to_dict() for c in covariates],
    }
    run = SharedRun(
        [str(p) for p in paths], PartFolder(out / "scores.parts", fingerprint), info, model.device
    )
    todo = run.todo()

    results: dict[int, ScanScore] = {}

    def score(i: int, prepared: LoadedSlab) -> Callable[[], dict[str, object]]:
        """The network pass of one scan; returns its post stage (maps, files, row)."""
        given = None if covariates is None else covariates[i]
        finish = scan_network_pass(
            model,
            prepared,
            slab=prepared.slab,
            maps=maps or dicom_out is not None,
            batch_size=batch,
            precision=precision,
            sequence=sequence,
            covariates=(given or Covariates()).filled_from(scan_covariates(prepared.scan)),
        )

        def post() -> dict[str, object]:
            result = finish()
            if maps:
                _save_maps(result, prepared, out)
            if dicom_out is not None:
                from madgan_core.outputs.dicom.results import write_dicom_results

                write_dicom_results(
                    result, prepared.scan, Path(dicom_out), Path(model.path).name, sequence
                )
            if on_result is not None:
                results[i] = result
            return result.to_row()

        return post

    def tick(k: int) -> None:
        """Called in order once the ``k``-th scan's part is written."""
        if on_result is not None:
            on_result(results.pop(todo[k - 1]))
        if progress is not None:
            progress(k, len(todo))

    slabs = (loader or SlabLoader()).load(
        [paths[i] for i in todo],
        model.config.preprocess,
        # the scan's header places the maps, and its affine the findings
        keep_scan=maps or dicom_out is not None or model.reference is not None,
        brain_masks=None
        if brain_masks is None
        else {str(p): Path(m) for p, m in zip(paths, brain_masks, strict=True)},
    )
    threads = post_threads if post_threads is not None else default_post_threads(model.device)
    try:
        if threads > 0:
            run_share(run, todo, slabs, score, tick, post_threads=threads)
        else:  # each scan's post stage right after its network pass
            run_share(run, todo, slabs, lambda i, prepared: score(i, prepared)(), tick)
    finally:
        slabs.close()  # stops the loader's workers now, also when a scan failed
    if not run.finish():
        return None
    rows = run.merged()
    write_rows(rows, out)
    run.parts.remove()
    return rows


def default_post_threads(device: torch.device) -> int:
    """Post-processing threads beside the network: on a GPU, whose network pass is short
    next to the post stage, a quarter of the cores (2 to 4); 1 on a CPU, where the network
    itself fills the cores."""
    if device.type != "cuda":
        return 1
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores = len(usable) if usable is not None else os.cpu_count() or 1
    return max(2, min(4, cores // 4))


def write_rows(rows: Sequence[dict[str, object]], out: Path) -> tuple[Path, Path]:
    """``scores.csv`` (one value per column) and ``scores.jsonl`` (whole rows), atomically."""
    fields = [k for k in rows[0] if k not in LIST_FIELDS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    table = atomic_write_text(out / "scores.csv", buffer.getvalue())
    lines = atomic_write_text(out / "scores.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return table, lines


def _save_maps(result: ScanScore, prepared: LoadedSlab, out: Path) -> None:
    """The scan's ℓ2 heatmap, reconstruction, z-map and findings' outlines in its native space."""
    scan = prepared.scan
    save_like(result.heatmap, scan, out / f"{scan.name}_heatmap.nii.gz")
    save_like(result.reconstruction, scan, out / f"{scan.name}_recon.nii.gz")
    if result.zmap is not None:
        save_like(result.zmap, scan, out / f"{scan.name}_zmap.nii.gz")
    if result.finding_labels is not None:
        save_like(result.finding_labels, scan, out / f"{scan.name}_findings.nii.gz", np.uint8)
    if result.brain_mask is not None:
        mask = result.brain_mask.astype(np.uint8)
        save_like(mask, scan, out / f"{scan.name}_brainmask.nii.gz", np.uint8)
