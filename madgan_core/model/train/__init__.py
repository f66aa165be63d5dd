"""Training MADGAN.

- :mod:`~madgan_core.model.train.assemble`: a run's parts from its configuration
  (:func:`assemble`, :func:`prepare_training`), also from a trained model (``init``,
  :func:`init_config`); the configuration given is never changed.
- :mod:`~madgan_core.model.train.loop`: the :class:`Trainer` loop (critic steps, generator
  step, then the hooks that fall due).
- :mod:`~madgan_core.model.train.metrics`, :mod:`~madgan_core.model.train.preview`,
  :mod:`~madgan_core.model.train.checkpoint_files`, :mod:`~madgan_core.model.train.signals`: the hooks'
  files (metrics.jsonl and TensorBoard, preview images, checkpoints kept and pruned)
  and the stop on SIGINT/SIGTERM.
"""

from madgan_core.model.train.assemble import (
    TrainingParts,
    assemble,
    init_config,
    init_provenance,
    make_optimizers,
    prepare_training,
    seed_everything,
)
from madgan_core.model.train.loop import Batch, Progress, Trainer, TrainResult
from madgan_core.model.train.metrics import eta_text
from madgan_core.model.train.preview import write_preview

__all__ = [
    "Batch",
    "Progress",
    "TrainResult",
    "Trainer",
    "TrainingParts",
    "assemble",
    "eta_text",
    "init_config",
    "init_provenance",
    "make_optimizers",
    "prepare_training",
    "seed_everything",
    "write_preview",
]
