"""A whole training run: train on a manifest's healthy ``train`` scans, then calibrate.

:func:`train_run` is what ``madgan train`` and ``madgan demo`` do. Under torchrun every
rank takes part in both: the ranks train together, and after rank 0 has written the
model they share its calibration on the manifest's healthy ``calib`` scans in the same
process group (:func:`madgan_core.scoring.calibrate.calibrate_model`); rank 0 stores
the reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from madgan_core.config import MadganConfig

if TYPE_CHECKING:
    from madgan_core.model.reference import HealthyReference
    from madgan_core.model.train import Trainer, TrainResult
    from madgan_core.scans.manifest import ManifestRow

log = logging.getLogger(__name__)

RunProgress = Callable[[dict[str, Any]], None]
"""``progress(info)``: the trainer's events (``info["kind"]``: ``step``, ``metrics``,
``checkpoint``, ``preview``, ``stopped``, ``done``), ``scan`` as each training scan is
preprocessed (``done``, ``total``, ``name``) and ``calibrate`` as controls are scored
(``done``, ``total``). Called on rank 0 only."""


@dataclass(frozen=True)
class TrainRun:
    """What :func:`train_run` did.

    Attributes:
        result: the training's result (``model_path`` is None on ranks other than 0).
        config: the configuration trained with (intensity landmarks learned, if any).
        reference: the healthy reference stored with the model; None where the run was
            stopped, the manifest has no healthy ``calib`` scans, or on ranks other than 0.
        trainer: this rank's trainer, with its networks.
    """

    result: TrainResult
    config: MadganConfig
    reference: HealthyReference | None
    trainer: Trainer


def train_run(
    config: MadganConfig,
    rows: Sequence[ManifestRow],
    out: str | Path,
    progress: RunProgress | None = None,
    *,
    resume: bool = False,
    tensorboard: bool = False,
    flip: bool = False,
    init: str | Path | None = None,
) -> TrainRun:
    """Train on the healthy ``train`` rows of ``rows`` into ``out``, then calibrate.

    Writes ``out/config.json`` (again once intensity landmarks are learned), the
    training's files and ``out/model.pt``; when ``rows`` hold healthy ``calib`` scans,
    their reference is stored in ``model.pt``. A run stopped by SIGINT/SIGTERM is not
    calibrated. Under torchrun this joins the process group, and leaves it at the end
    unless the caller had joined it.

    Args:
        config: the run's configuration (not changed).
        rows: the manifest's rows.
        out: the run's output folder.
        progress: see :data:`RunProgress`.
        resume: continue from the newest checkpoint in ``out``.
        tensorboard: also log to ``out/tensorboard``.
        flip: random left-right flip augmentation.
        init: a trained model (``model.pt`` or any checkpoint) to start from: its
            generator and critic weights, fresh optimizers, step 0 (fine-tuning). Its
            architecture and slice size must match ``config``, and ``config`` keeps its
            intensity landmarks where it has none (build ``config`` over
            :func:`madgan_core.model.train.init_config` to keep all its preprocessing).
            A run resumed from its own checkpoint does not apply it again.

    Raises:
        CheckpointError: ``init`` is missing, not a model, or does not match ``config``.
    """
    import torch.distributed as dist

    from madgan_core.model.train import prepare_training
    from madgan_core.prep.training_set import training_rows
    from madgan_core.runtime.device import describe
    from madgan_core.runtime.distributed import barrier, cleanup, env_info

    out = Path(out)
    main = env_info().is_main
    emit = progress if main and progress is not None else None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        config.save_json(out / "config.json")

    def scan_progress(done: int, total: int, name: str) -> None:
        if emit is not None:
            emit({"kind": "scan", "done": done, "total": total, "name": name})

    joined = dist.is_available() and dist.is_initialized()
    try:
        trainer = prepare_training(
            config,
            training_rows(rows),
            out,
            resume=resume,
            progress=emit,
            scan_progress=scan_progress,
            tensorboard=tensorboard,
            flip=flip,
            init=init,
        )
        cfg = trainer.cfg
        if main and cfg != config:  # intensity landmarks, learned or resumed
            cfg.save_json(out / "config.json")
        log.info("training on %s", describe(trainer.device, trainer.precision))
        result = trainer.fit()
        reference = None
        if result.stopped:
            log.info("stopped at step %d; checkpoint %s", result.step, result.last_checkpoint)
        else:
            barrier(trainer.dist, trainer.device)  # model.pt is written before any rank reads it
            if main:
                log.info("model written to %s", trainer.model_path)
            reference = calibrate_trained(trainer.model_path, rows, cfg, emit)
    finally:
        if not joined:
            cleanup(env_info())
    return TrainRun(result, cfg, reference, trainer)


def calibrate_trained(
    model_path: Path,
    rows: Sequence[ManifestRow],
    cfg: MadganConfig,
    progress: RunProgress | None = None,
) -> HealthyReference | None:
    """Calibrate a freshly trained model on the healthy ``calib`` rows, when there are some.

    Every rank calls this; under torchrun they share the controls in the group that
    trained, and rank 0 stores the reference (the others get None).
    """
    from madgan_core.runtime.distributed import env_info
    from madgan_core.scoring.calibrate import calibrate_model, calibration_rows

    calib = calibration_rows(rows)
    main = env_info().is_main
    if not calib:
        if main:
            log.info("no healthy 'calib' scans in the manifest; run `madgan calibrate` later")
        return None
    if main:
        log.info("calibrating on %d healthy 'calib' scans", len(calib))

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress({"kind": "calibrate", "done": done, "total": total})

    return calibrate_model(model_path, rows, device=cfg.train.device, progress=tick)
