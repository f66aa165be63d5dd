"""Reconstruction: predict every window of a slab and keep its ℓ2 bookkeeping.

A :data:`Predictor` maps a batch of windows' input slices to predicted target slices:
the generator, or a baseline scored in the same harness. :func:`slab_errors` streams
a slab's windows through it in batches, so memory stays flat on long scans.
:mod:`madgan_core.scoring.scorer` turns the bookkeeping into scores and maps.

This is the inferer of the scoring chain, in the roles of MONAI's inferers: the
splitter is :mod:`madgan_core.prep.windows`, the merger :mod:`madgan_core.prep.native_maps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from madgan_core.errors import MadganError
from madgan_core.prep.device_ops import ops_device
from madgan_core.prep.windows import (
    iter_window_batches,
    target_coverage,
    target_offset,
    window_count,
)

if TYPE_CHECKING:
    import torch

    from madgan_core.config import ModelConfig
    from madgan_core.prep.slab import Slab


class ScoringCancelled(MadganError):
    """Scoring was stopped by the caller."""


@dataclass
class SlabErrors:
    """ℓ2 bookkeeping of one slab, in model space."""

    window_losses: np.ndarray
    copy_losses: np.ndarray
    slice_loss_sum: np.ndarray  # (n,) sum over windows of each target slice's mean ℓ2
    slice_error_sum: np.ndarray | None  # (n, H, W) sum of squared errors over windows
    slice_prediction_sum: np.ndarray | None  # (n, H, W) sum of predictions over windows
    coverage: np.ndarray  # (n,)

    def slice_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-slice mean ℓ2 map and mean prediction; NaN for slices never predicted."""
        with np.errstate(invalid="ignore", divide="ignore"):
            div = self.coverage[:, None, None].astype(np.float32)
            err = self.slice_error_sum / div
            pred = self.slice_prediction_sum / div
        return err, pred


Predictor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
"""Maps a batch of (inputs, targets) to predicted targets; baselines may look at the targets."""


def generator_predictor(generator: torch.nn.Module) -> Predictor:
    """The generator as a predictor: it sees only the input slices."""
    return lambda inputs, _targets: generator(inputs)


def copy_predictor(out_slices: int) -> Predictor:
    """Baseline: the next slices predicted as copies of the last input slice."""
    return lambda inputs, _targets: inputs[:, -1:].expand(-1, out_slices, -1, -1)


def predict_batches(
    predictor: Predictor,
    slices: np.ndarray,
    model_cfg: ModelConfig,
    device: torch.device,
    precision: str,
    batch_size: int,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(first_window, inputs, targets, predictions)`` batch by batch, as numpy float32."""
    import torch

    from madgan_core.runtime.device import inference_context

    for start, inputs, targets in iter_window_batches(slices, model_cfg, batch_size):
        x = torch.from_numpy(inputs).to(device).contiguous(memory_format=torch.channels_last)
        t = torch.from_numpy(targets).to(device)
        with inference_context(device, precision):
            y = predictor(x, t)
        yield start, inputs, targets, y.float().cpu().numpy()


def slab_errors(
    predictor: Predictor,
    slab: Slab,
    model_cfg: ModelConfig,
    device: torch.device,
    precision: str,
    batch_size: int,
    maps: bool = True,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    on_device: bool | None = None,
) -> SlabErrors:
    """Reconstruct every window of a slab and accumulate its ℓ2 bookkeeping.

    ``on_device``: keep the ℓ2 bookkeeping on ``device`` in torch (equal to float32
    rounding) rather than in numpy; None: as :func:`~madgan_core.prep.device_ops.ops_device`
    chooses (torch on CUDA).
    """
    if on_device is None:
        on_device = ops_device(device) is not None
    if on_device:
        return _slab_errors_on_device(
            predictor, slab, model_cfg, device, precision, batch_size, maps, progress, should_stop
        )
    n = slab.n_slices
    n_windows = window_count(n, model_cfg)
    if n_windows < 1:
        raise MadganError(f"a slab of {n} slices has no {model_cfg.window_span}-slice window")
    offset = target_offset(model_cfg)
    out = model_cfg.out_slices
    window_losses = np.empty(n_windows, dtype=np.float64)
    copy_losses = np.empty(n_windows, dtype=np.float64)
    slice_loss_sum = np.zeros(n, dtype=np.float64)
    error_sum = np.zeros((n, *slab.shape), dtype=np.float32) if maps else None
    prediction_sum = np.zeros((n, *slab.shape), dtype=np.float32) if maps else None
    done = 0
    for start, inputs, targets, pred in predict_batches(
        predictor, slab.slices, model_cfg, device, precision, batch_size
    ):
        if should_stop is not None and should_stop():
            raise ScoringCancelled("scoring cancelled")
        count = len(pred)
        sq = pred - targets
        np.square(sq, out=sq)
        window_losses[start : start + count] = sq.reshape(count, -1).mean(axis=1)
        per_slice = sq.reshape(count, out, -1).mean(axis=2)
        copy_sq = inputs[:, -1:] - targets
        np.square(copy_sq, out=copy_sq)
        copy_losses[start : start + count] = copy_sq.reshape(count, -1).mean(axis=1)
        # Window j's target o is slab slice start + j + offset + o: for a fixed o the
        # batch's windows hit consecutive slices, so one slice-range add per o.
        for o in range(out):
            first = start + offset + o
            slice_loss_sum[first : first + count] += per_slice[:, o]
            if maps:
                error_sum[first : first + count] += sq[:, o]
                prediction_sum[first : first + count] += pred[:, o]
        done += count
        if progress is not None:
            progress(done, n_windows)
    coverage = target_coverage(n, model_cfg)
    return SlabErrors(
        window_losses, copy_losses, slice_loss_sum, error_sum, prediction_sum, coverage
    )


def _slab_errors_on_device(
    predictor: Predictor,
    slab: Slab,
    model_cfg: ModelConfig,
    device: torch.device,
    precision: str,
    batch_size: int,
    maps: bool,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> SlabErrors:
    """:func:`slab_errors` with the ℓ2 bookkeeping in torch on ``device``; one copy back."""
    import torch

    from madgan_core.runtime.device import inference_context

    n = slab.n_slices
    n_windows = window_count(n, model_cfg)
    if n_windows < 1:
        raise MadganError(f"a slab of {n} slices has no {model_cfg.window_span}-slice window")
    offset = target_offset(model_cfg)
    out = model_cfg.out_slices
    window_losses = torch.empty(n_windows, dtype=torch.float32, device=device)
    copy_losses = torch.empty(n_windows, dtype=torch.float32, device=device)
    slice_loss_sum = torch.zeros(n, dtype=torch.float64, device=device)
    error_sum = torch.zeros((n, *slab.shape), dtype=torch.float32, device=device) if maps else None
    prediction_sum = torch.zeros_like(error_sum) if maps else None
    done = 0
    for start, inputs, targets in iter_window_batches(slab.slices, model_cfg, batch_size):
        if should_stop is not None and should_stop():
            raise ScoringCancelled("scoring cancelled")
        x = torch.from_numpy(inputs).to(device).contiguous(memory_format=torch.channels_last)
        t = torch.from_numpy(targets).to(device)
        with inference_context(device, precision):
            pred = predictor(x, t)
        pred = pred.float()
        count = len(pred)
        sq = (pred - t).square_()
        window_losses[start : start + count] = sq.reshape(count, -1).mean(dim=1)
        per_slice = sq.reshape(count, out, -1).mean(dim=2).double()
        copy_sq = (x[:, -1:] - t).square_()
        copy_losses[start : start + count] = copy_sq.reshape(count, -1).mean(dim=1)
        for o in range(out):
            first = start + offset + o
            slice_loss_sum[first : first + count] += per_slice[:, o]
            if maps:
                error_sum[first : first + count] += sq[:, o]
                prediction_sum[first : first + count] += pred[:, o]
        done += count
        if progress is not None:
            progress(done, n_windows)
    coverage = target_coverage(n, model_cfg)
    return SlabErrors(
        window_losses.double().cpu().numpy(),
        copy_losses.double().cpu().numpy(),
        slice_loss_sum.cpu().numpy(),
        None if error_sum is None else error_sum.cpu().numpy(),
        None if prediction_sum is None else prediction_sum.cpu().numpy(),
        coverage,
    )
