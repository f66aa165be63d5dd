"""Training windows cut on the device from slabs kept in its memory: no data loader.

A cohort's training slabs are small next to a GPU's memory (1,133 scans of about 60
slices of 256 x 176 in 16 bits take about 6 GB), so they are copied there once and each
batch is gathered from them with one indexing kernel. The batches are exactly those of
:class:`~madgan_core.prep.training_set.BatchStream` with the same seed: the same epoch
order (its sampler), the same resume point and the same left-right flips.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

from madgan_core.prep.training_set import BatchStream, WindowDataset, flip_mask

log = logging.getLogger(__name__)


class ResidentBatchStream(BatchStream):
    """:class:`BatchStream`'s batches, gathered on ``device`` from slabs held there.

    Args:
        dataset: the windows; its cached slabs (float16) are copied to ``device`` as they are.
        batch_size, seed, rank, world_size, flip, start_batch: as for :class:`BatchStream`.
        device: where the slabs live and the batches are cut.

    Yields ``(input, target)`` float32 tensors on ``device``.
    """

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        flip: bool = False,
        start_batch: int = 0,
    ):
        super().__init__(
            dataset, batch_size, seed, 0, rank, world_size, False, flip, start_batch
        )  # fmt: skip
        self.device = torch.device(device)
        m = dataset.model_cfg
        starts = np.cumsum([0] + [len(s) for s in dataset.slabs[:-1]])
        self.slices = torch.from_numpy(np.concatenate(dataset.slabs)).to(self.device)
        # the first slice of each window, as a row of ``self.slices``
        self.first = torch.from_numpy(starts[dataset.index[:, 0]] + dataset.index[:, 1]).to(
            self.device
        )
        offset = m.in_slices + m.gap
        self.input_rows = torch.arange(m.in_slices, device=self.device)
        self.target_rows = torch.arange(offset, offset + m.out_slices, device=self.device)
        log.info(
            "%d training slices on %s (%.1f MB)",
            len(self.slices),
            self.device,
            self.slices.numel() * self.slices.element_size() / 1e6,
        )

    @property
    def nbytes(self) -> int:
        return self.slices.numel() * self.slices.element_size()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            epoch, within = divmod(self.batch_index, self.batches_per_epoch)
            self.sampler.set_epoch(epoch, skip=within * self.batch_size)
            order = torch.tensor(list(self.sampler), dtype=torch.int64, device=self.device)
            usable = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
            for start in range(0, usable, self.batch_size):
                first = self.first[order[start : start + self.batch_size]].unsqueeze(1)
                x = self.slices[first + self.input_rows].float()
                y = self.slices[first + self.target_rows].float()
                if self.flip:
                    x, y = self._flip_on_device(x, y)
                self.batch_index += 1
                yield x, y

    def _flip_on_device(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = flip_mask(self.seed, self.batch_index, x.shape[0]).to(self.device)
        mask = mask.view(-1, 1, 1, 1)
        return torch.where(mask, x.flip(-1), x), torch.where(mask, y.flip(-1), y)
