"""Which training checkpoints are written and which are kept."""

from __future__ import annotations

import logging
from pathlib import Path

from madgan_core.config import TrainConfig
from madgan_core.model import checkpoint as ckpt

log = logging.getLogger(__name__)


class CheckpointFiles:
    """``checkpoints/ckpt_{step:08d}.pt`` every ``checkpoint_every`` steps, at milestones,
    at the end and on a stop; the newest ``keep_last`` and the milestones are kept.
    ``model.pt`` holds the final weights.
    """

    def __init__(self, out_dir: Path, train: TrainConfig):
        self.directory = out_dir / "checkpoints"
        self.model_path = out_dir / "model.pt"
        self.every = train.checkpoint_every
        self.keep_last = train.keep_last
        self.milestones = tuple(train.milestones)
        self.last_step = train.steps
        self.last: Path | None = None

    def due(self, step: int, stopping: bool) -> bool:
        return (
            step % self.every == 0 or step in self.milestones or step == self.last_step or stopping
        )

    def path(self, step: int) -> Path:
        return ckpt.checkpoint_path(self.directory, step)

    def save(self, record: dict, step: int) -> Path:
        """Write the checkpoint of ``step``, then delete the ones no longer kept."""
        path = ckpt.save_checkpoint(record, self.path(step))
        ckpt.prune_checkpoints(self.directory, self.keep_last, self.milestones)
        self.last = path
        log.debug("checkpoint %s", path)
        return path

    def save_model(self, record: dict) -> Path:
        return ckpt.save_checkpoint(record, self.model_path)
