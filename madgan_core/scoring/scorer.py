"""Scan scoring: reconstruct every window, turn the ℓ2 error into maps and scores.

One function, :func:`score_scan`, serves the CLI and the napari plugin; evaluation and
calibration score many slabs with a :func:`slab_scorer`. Windows are streamed in
batches (:mod:`madgan_core.scoring.reconstruct`), so memory stays flat on long scans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.model.zstats import FOREGROUND_LEVEL, slice_volumes
from madgan_core.modes import WINDOWS, ScoreInputs, compute_scores, headline_mode
from madgan_core.prep.device_ops import ops_device
from madgan_core.prep.native_maps import NativeGrid, to_mask, to_volumes
from madgan_core.prep.slab import Slab, preprocess
from madgan_core.scans.covariates import Covariates
from madgan_core.scans.scan import Scan
from madgan_core.scoring.domain import guard
from madgan_core.scoring.findings import label_regions, signed_residual
from madgan_core.scoring.reconstruct import Predictor, SlabErrors, generator_predictor, slab_errors
from madgan_core.scoring.result import ScanScore, ScanSource
from madgan_core.scoring.spread import departure_spread

if TYPE_CHECKING:
    import torch

    from madgan_core.config import MadganConfig, ScoreConfig
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.model.reference import HealthyReference
    from madgan_core.model.zstats import ZStats


def scan_scores(
    window_losses: np.ndarray, copy_losses: np.ndarray, settings: ScoreConfig | None = None
) -> dict[str, float]:
    """The scores of every mode computed from per-window losses (``needs`` ``windows`` in
    :func:`madgan_core.modes.score_modes`)."""
    from madgan_core.config import ScoreConfig

    inputs = ScoreInputs(settings or ScoreConfig(), window_losses, copy_losses)
    return compute_scores(WINDOWS, inputs)


def inference_settings(
    model: LoadedModel, precision: str = "auto", batch_size: int = 0
) -> tuple[str, int]:
    """The inference precision and windows per batch to score with ``model``.

    ``precision`` ``auto`` becomes what the device runs fast; the batch size is
    ``batch_size``, else the model's ``score.batch_size``, else :func:`default_batch_size`.
    """
    from madgan_core.runtime.device import resolve_precision

    cfg = model.config
    shape = (cfg.preprocess.height, cfg.preprocess.width)
    batch = batch_size or cfg.score.batch_size or default_batch_size(model.device, shape)
    return resolve_precision(precision, model.device), batch


def default_batch_size(device: torch.device, shape: tuple[int, int]) -> int:
    """Windows per batch: larger on GPUs, memory-bounded on CPUs.

    On CPUs 32 windows of 256 x 176 run about 10% faster than 16 (oneDNN amortises
    its per-layer overhead better) and peak under 1 GiB; see docs/performance.md.
    """
    pixels = shape[0] * shape[1]
    if device.type == "cuda":
        return max(8, min(128, (256 * 176 * 64) // pixels))
    return max(4, min(64, (256 * 176 * 32) // pixels))


@dataclass(frozen=True)
class SlabScorer:
    """Scores slabs with one predictor at one precision and batch size (:func:`slab_scorer`)."""

    cfg: MadganConfig
    device: torch.device
    predictor: Predictor
    precision: str
    batch_size: int

    def __call__(
        self,
        slab: Slab,
        zstats: ZStats | None = None,
        maps: bool = False,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[SlabErrors, dict[str, float], np.ndarray | None]:
        """A slab's ℓ2 bookkeeping, its scores in every mode it supports, and its z-map.

        The z-map and its scores (the ``zmap`` modes) need ``zstats``; ℓ2 maps are
        accumulated when ``maps`` is set or a z-map is wanted.
        """
        cfg = self.cfg
        errors = slab_errors(
            self.predictor,
            slab,
            cfg.model,
            self.device,
            self.precision,
            self.batch_size,
            maps or zstats is not None,
            progress,
            should_stop,
        )
        scores = scan_scores(errors.window_losses, errors.copy_losses, cfg.score)
        z = None
        if zstats is not None:
            z = zstats.zmap(errors.slice_maps()[0], cfg.score, device=ops_device(self.device))
            scores.update(zstats.scan_scores(z, slab.slices, cfg.score))
        return errors, scores, z


def slab_scorer(
    model: LoadedModel,
    precision: str = "auto",
    batch_size: int = 0,
    predictor: Predictor | None = None,
    fold: bool = True,
) -> SlabScorer:
    """Score slabs with ``model``'s generator (or ``predictor``, a baseline in its harness).

    Precision and batch size are resolved once (:func:`inference_settings`). The
    generator runs with its BatchNorms folded (``model.inference_generator()``, where the
    model has it); ``fold`` False runs it as trained, the same scores up to rounding.
    """
    precision, batch = inference_settings(model, precision, batch_size)
    if predictor is None:
        folded = getattr(model, "inference_generator", None)  # absent on stand-in models
        generator = folded() if fold and folded is not None else model.generator
        predictor = generator_predictor(generator)
    return SlabScorer(model.config, model.device, predictor, precision, batch)


def score_scan(
    model: LoadedModel,
    scan: Scan | ScanSource,
    *,
    slab: Slab | None = None,
    maps: bool = True,
    batch_size: int = 0,
    precision: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    predictor: Predictor | None = None,
    sequence: str | None = None,
    covariates: Covariates | None = None,
) -> ScanScore:
    """Score one scan with a trained model.

    The stages, which benchmarks time one by one: :func:`preprocess`, a
    :func:`slab_scorer` pass, :func:`scan_result`.

    Args:
        model: a loaded model bundle (:func:`madgan_core.model.checkpoint.load_model`).
        scan: the scan, as loaded by :func:`madgan_core.scans.files.load_scan`; with ``slab``,
            anything with the scan's ``name`` and ``path`` (such as
            :class:`madgan_core.prep.loader.LoadedSlab`).
        slab: the scan already preprocessed with the model's settings (by a loader
            that works ahead, or from a cache); None preprocesses ``scan`` here.
        maps: also build the native-grid heatmap and reconstruction volumes.
        batch_size: windows per batch (0: chosen per device).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` inference precision.
        progress: called with ``(windows_done, windows_total)``.
        should_stop: polled between batches; returning True raises :class:`ScoringCancelled`.
        predictor: score another predictor (a baseline) in the model's harness.
        sequence: the scan's sequence (``T1``/``T1c``), to pick matching healthy controls.
        covariates: the person's age and sex, for percentiles against controls of that
            age and sex where the reference stores theirs (:mod:`madgan_core.model.normative`).

    Returns:
        The scan's :class:`ScanScore`, with percentiles when the model has a healthy reference.
    """
    return scan_network_pass(
        model, scan, slab=slab, maps=maps, batch_size=batch_size, precision=precision,
        progress=progress, should_stop=should_stop, predictor=predictor, sequence=sequence,
        covariates=covariates,
    )()  # fmt: skip


def scan_network_pass(
    model: LoadedModel,
    scan: Scan | ScanSource,
    *,
    slab: Slab | None = None,
    maps: bool = True,
    batch_size: int = 0,
    precision: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    predictor: Predictor | None = None,
    sequence: str | None = None,
    covariates: Covariates | None = None,
) -> Callable[[], ScanScore]:
    """:func:`score_scan` up to the network pass; returns the rest, the post stage.

    Calling the returned function runs :func:`scan_result` and gives the scan's
    :class:`ScanScore`, so cohort scoring can post-process one scan in another thread
    while the network runs the next. Arguments as :func:`score_scan`.
    """
    if slab is None:
        slab = preprocess(scan, model.config.preprocess, device=ops_device(model.device))
    reference = model.reference
    zstats = None
    if reference is not None and predictor is None:
        zstats = reference.zstats_for(sequence)
    score = slab_scorer(model, precision, batch_size, predictor)
    errors, scores, z = score(slab, zstats, maps, progress, should_stop)
    return partial(
        scan_result, scan, slab, errors, scores, z, model.config.score, reference, sequence,
        maps=maps, training_domain=getattr(model, "training_domain", None),
        covariates=covariates, device=ops_device(model.device),
    )  # fmt: skip


def _world_affine(scan) -> np.ndarray | None:
    """The RAS+ voxel-to-world affine of a scan, or of the scan a prepared slab kept."""
    affine = getattr(scan, "affine", None)
    if affine is None and getattr(scan, "scan", None) is not None:
        affine = scan.scan.affine
    return affine


def _source_scan(scan) -> Scan | None:
    """The scan itself, or the scan a prepared slab kept; None if neither is at hand."""
    if getattr(scan, "data", None) is not None:
        return scan
    return getattr(scan, "scan", None)


def _residual_near_regions(scan, slab, errors, zmap, reconstruction, settings, grid):
    """The findings' :func:`signed_residual` around the z-map's regions; None when there
    is no region or the scan's voxels are not at hand."""
    lowest = min(settings.finding_threshold, settings.finding_extent or np.inf)
    near = np.nan_to_num(zmap, nan=-np.inf) > lowest
    source = _source_scan(scan)
    if not near.any() or source is None or source.data.shape != zmap.shape:
        return None
    if reconstruction is None:  # scored without maps: the prediction alone, on the same grid
        (reconstruction,) = to_volumes(slab, slab.to_intensity(errors.slice_maps()[1]), grid=grid)
    return signed_residual(source.data, reconstruction, source.zooms, near=near)


def scan_result(
    scan: Scan | ScanSource,
    slab: Slab,
    errors: SlabErrors,
    scores: dict[str, float],
    z: np.ndarray | None,
    settings: ScoreConfig,
    reference: HealthyReference | None = None,
    sequence: str | None = None,
    *,
    maps: bool = True,
    training_domain: dict | None = None,
    covariates: Covariates | None = None,
    device: torch.device | None = None,
) -> ScanScore:
    """A scored slab's :class:`ScanScore`: per-slice losses, native-grid maps, percentiles.

    ``scan``'s name and path name the result, and its affine places the findings; the
    maps are placed by ``slab``'s geometry, in torch on ``device`` when given
    (:mod:`madgan_core.prep.device_ops`), else in numpy/scipy.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        slice_losses = np.where(
            errors.coverage > 0, errors.slice_loss_sum / errors.coverage, np.nan
        )
    heatmap = reconstruction = zmap = foreground = residual = None
    if maps or z is not None:  # the z-map is made without maps too: the findings need it
        # Every map through one bilinear stencil (native_maps), computed once.
        grid = NativeGrid.of(slab)
        seen = (slab.slices > FOREGROUND_LEVEL).astype(np.float32)
        foreground = to_mask(slab, seen, 0.5, grid, device=device)
        stacks = []
        if maps:
            err_maps, pred_maps = errors.slice_maps()
            stacks += [err_maps, slab.to_intensity(pred_maps)]
        if z is not None:
            stacks.append(z)
        volumes = to_volumes(slab, *stacks, grid=grid, device=device)
        if maps:
            heatmap, reconstruction = volumes[:2]
        if z is not None:
            zmap = volumes[-1]
            zmap[~foreground] = np.nan
            if settings.finding_sign:
                residual = _residual_near_regions(
                    scan, slab, errors, zmap, reconstruction, settings, grid
                )
    slice_zvolume = None if z is None else slice_volumes(z, slab.slices, settings)
    percentiles: dict[str, float] = {}
    adjustments = {}
    driver = None
    if reference is not None:
        if z is not None:  # the modes computed against the controls, and what drives them
            scores = reference.with_anomaly(scores, sequence)
            driver = reference.anomaly_driver(scores, sequence)
        percentiles, adjustments = reference.adjusted_percentiles(scores, sequence, covariates)
    findings = finding_labels = None
    spread = None if zmap is None else departure_spread(zmap, settings.finding_threshold)
    affine = _world_affine(scan)
    if zmap is not None and affine is not None:
        findings, finding_labels = label_regions(
            zmap,
            affine,
            settings.finding_threshold,
            settings.finding_min_ml,
            extent_threshold=settings.finding_extent,
            residual=residual,
        )
        alignment = getattr(slab.prepared, "alignment", None)
        if alignment is not None:
            findings = [f.in_mni(alignment.scan_to_mni) for f in findings]
    if not maps:
        zmap = foreground = residual = finding_labels = None
    elif finding_labels is not None:
        finding_labels = finding_labels.astype(np.uint8)  # at most DEFAULT_MAX_REGIONS ranks
    brain_mask = getattr(slab.prepared, "brain_mask", None) if maps else None
    domain, controls = guard(slab.profile, reference, sequence, training_domain)
    return ScanScore(
        name=scan.name,
        path=scan.path,
        scores=scores,
        window_losses=errors.window_losses,
        copy_losses=errors.copy_losses,
        slice_losses=slice_losses,
        slice_coverage=errors.coverage,
        slice_indices=slab.native_slice_indices,
        heatmap=heatmap,
        reconstruction=reconstruction,
        zmap=zmap,
        residual=residual,
        slice_zvolume=slice_zvolume,
        foreground=foreground,
        brain_mask=brain_mask,
        percentiles=percentiles,
        n_controls=0 if reference is None else reference.n_for(sequence),
        headline=headline_mode(settings.mode, scores),
        findings=findings,
        finding_labels=finding_labels,
        driver=driver,
        domain=domain,
        controls=controls,
        spread=spread,
        covariates=covariates,
        adjustments=adjustments,
    )
