"""Training windows from healthy scans: cached slabs, resumable sampling, infinite batches."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from madgan_core.config import MadganConfig
from madgan_core.errors import ConfigError
from madgan_core.prep.slab import preprocess
from madgan_core.scans.files import load_scan

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def training_rows(rows: Sequence) -> list:
    """Healthy scans of the ``train`` split (T1 and T1c together)."""
    return [r for r in rows if r.split == "train" and r.group == "healthy"]


class WindowDataset(Dataset):
    """Every 3 -> 3 window of a set of scans, preprocessed once and kept in memory.

    Args:
        scans: manifest rows (anything with a ``.path``) or scan paths.
        cfg: the configuration (preprocessing and window geometry).
        cache_dtype: dtype of the cached slabs (float16 halves memory; values are in [-1, 1]).
        progress: called as ``progress(done, total, name)`` after each scan.

    ``dataset[i]`` is ``(input (in, H, W), target (out, H, W))`` as float32 tensors.
    """

    def __init__(
        self,
        scans: Sequence,
        cfg: MadganConfig,
        cache_dtype: np.dtype | type = np.float16,
        progress: Progress | None = None,
    ):
        self.model_cfg = cfg.model
        paths = [Path(getattr(s, "path", s)) for s in scans]
        if not paths:
            raise ConfigError("no healthy training scans (split=train, group=healthy) to train on")
        self.slabs: list[np.ndarray] = []
        self.names: list[str] = []
        self.profiles: list = []  # each scan's DomainProfile, stored with the model
        index: list[tuple[int, int]] = []
        span = cfg.model.window_span
        for i, path in enumerate(paths):
            slab = preprocess(load_scan(path), cfg.preprocess)
            if slab.profile is not None:
                self.profiles.append(slab.profile)
            slices = slab.slices.astype(cache_dtype)
            n_windows = max(0, len(slices) - span + 1)
            if n_windows == 0:
                log.warning(
                    "%s: %d slices give no %d-slice window; skipped", path, len(slices), span
                )
            else:
                index.extend((len(self.slabs), start) for start in range(n_windows))
                self.slabs.append(slices)
                self.names.append(path.name)
            if progress is not None:
                progress(i + 1, len(paths), path.name)
        if not index:
            raise ConfigError("the training scans give no windows; check the slice band settings")
        self.index = np.asarray(index, dtype=np.int64)

    @classmethod
    def from_slabs(cls, slabs: Sequence[np.ndarray], cfg: MadganConfig) -> WindowDataset:
        """The windows of slabs already preprocessed (``(slices, H, W)`` arrays in [-1, 1])."""
        dataset = cls.__new__(cls)
        dataset.model_cfg = cfg.model
        dataset.slabs = [np.asarray(s, dtype=np.float16) for s in slabs]
        dataset.names = [f"slab_{i}" for i in range(len(slabs))]
        dataset.profiles = []
        span = cfg.model.window_span
        dataset.index = np.asarray(
            [(i, start) for i, s in enumerate(dataset.slabs) for start in range(len(s) - span + 1)],
            dtype=np.int64,
        )
        return dataset

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        scan, start = self.index[i]
        m = self.model_cfg
        window = self.slabs[scan][start : start + m.window_span].astype(np.float32)
        offset = m.in_slices + m.gap
        return (
            torch.from_numpy(np.ascontiguousarray(window[: m.in_slices])),
            torch.from_numpy(np.ascontiguousarray(window[offset : offset + m.out_slices])),
        )

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.slabs)


class ResumableSampler(DistributedSampler):
    """:class:`DistributedSampler` (one replica when not distributed) that can start mid-epoch.

    ``set_epoch(epoch, skip)`` reshuffles with seed ``seed + epoch`` and drops the first
    ``skip`` indices of this rank's share, so a resumed run draws exactly the batches an
    uninterrupted run would.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip


class BatchStream:
    """An endless, resumable stream of ``(input, target)`` batches.

    Batch ``k`` of the stream (counting from 0 over the whole run) is always the same for
    a given seed, whatever the number of workers and wherever the run was resumed:
    epochs reshuffle with ``seed + epoch``, worker seeds come from a generator seeded by
    the epoch (never from the global RNG), and the optional left-right flip of a batch
    is drawn from a generator seeded by ``(seed, k)``.

    Args:
        dataset: the windows.
        batch_size: per-process batch size.
        seed: run seed.
        num_workers: DataLoader workers (0: load in the main process).
        rank, world_size: this process's share under DDP.
        pin_memory: pin host memory (for CUDA).
        flip: randomly mirror samples left-right (off by default: the brain is not symmetric).
        start_batch: index of the first batch to yield (for resuming).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int = 0,
        num_workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
        flip: bool = False,
        start_batch: int = 0,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.flip = flip
        self.sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, seed=seed)
        per_rank = self.sampler.num_samples
        self.drop_last = per_rank >= batch_size
        if not self.drop_last:
            log.warning(
                "only %d windows per process, fewer than a batch of %d; batches will be smaller",
                per_rank,
                batch_size,
            )
        self.batches_per_epoch = per_rank // batch_size if self.drop_last else 1
        self.batch_index = start_batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            epoch, within = divmod(self.batch_index, self.batches_per_epoch)
            self.sampler.set_epoch(epoch, skip=within * self.batch_size)
            loader = DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                sampler=self.sampler,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                drop_last=self.drop_last,
                generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch),
                persistent_workers=False,
            )
            for x, y in loader:
                if self.flip:
                    x, y = self._flip(x, y)
                self.batch_index += 1
                yield x, y

    def _flip(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = flip_mask(self.seed, self.batch_index, x.shape[0])
        x, y = x.clone(), y.clone()
        x[mask] = x[mask].flip(-1)
        y[mask] = y[mask].flip(-1)
        return x, y


def flip_mask(seed: int, batch_index: int, n: int) -> torch.Tensor:
    """Which of batch ``batch_index``'s ``n`` samples are mirrored: drawn from ``(seed, batch_index)``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + batch_index)
    return torch.rand(n, generator=g) < 0.5
