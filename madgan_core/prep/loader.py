"""Slabs for cohort work: read and preprocess the next scans while the model scores this one.

:class:`SlabLoader` yields each scan of a list preprocessed (:class:`LoadedSlab`), in
order. With ``prefetch=N`` up to ``N`` scans ahead are read and preprocessed in worker
threads while the caller scores the current one (nibabel's decompression and numpy
release the GIL for most of that work), so the network waits less between scans. With
``workers=N`` they are read and preprocessed in ``N`` worker processes instead, ``prefetch``
scans ahead each, so decoding and preprocessing spread over the cores; the slabs are the
same, array for array.

With a cache folder, preprocessed slabs are kept on disk (:class:`SlabCache`), keyed by
the file's content, the preprocessing settings and the package version: scoring a
cohort again, with another model that preprocesses alike, skips reading and
preprocessing. Entries are plain ``.npz`` arrays, written atomically and loaded without
pickle; an unreadable one is preprocessed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import time
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from madgan_core import __version__
from madgan_core.config import PreprocessConfig
from madgan_core.errors import ScanError
from madgan_core.prep.domain_profile import DomainProfile
from madgan_core.prep.slab import Slab, preprocess
from madgan_core.prep.stages import GridMap
from madgan_core.scans.atomic import atomic_write_with
from madgan_core.scans.files import load_scan
from madgan_core.scans.scan import Scan, scan_stem

log = logging.getLogger(__name__)

# Below this many scans a pool of loader processes costs more to start than it saves.
MIN_SCANS_FOR_WORKERS = 16
MAX_DEFAULT_WORKERS = 8

# Bump when the cached arrays or the preprocessing they come from change meaning.
CACHE_FORMAT = 3


@dataclass
class LoadedSlab:
    """One scan, preprocessed and ready for the model.

    Attributes:
        path: the scan file.
        slab: its slab in model space.
        scan: the scan itself, when asked for (writing maps needs its header).
        seconds: time spent reading and preprocessing it (or loading it from the cache).
        cached: whether the slab came from the cache.
        name: the scan's name (:attr:`Scan.name`: a DICOM series by its description and
            an opaque key, never by patient identifiers).
    """

    path: Path
    slab: Slab
    scan: Scan | None
    seconds: float
    cached: bool
    name: str = ""


class SlabCache:
    """Preprocessed slabs on disk, keyed by file content and preprocessing settings."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def key(self, path: str | Path, cfg: PreprocessConfig) -> str:
        """A hash of the file's bytes, the settings, the package version and the cache format."""
        digest = hashlib.sha256()
        settings = {
            "format": CACHE_FORMAT,
            "version": __version__,
            "preprocess": dataclasses.asdict(cfg),
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str) -> Slab | None:
        """The cached slab, or None when there is none (or it cannot be read)."""
        path = self.path(key)
        try:
            # Opened here so a broken file is closed too (np.load leaks it on a bad zip).
            with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
                return _slab_from(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable cached slab (%s); preprocessing again", path, exc)
            return None

    def save(self, key: str, slab: Slab) -> Path:
        arrays = _slab_arrays(slab)
        return atomic_write_with(self.path(key), lambda tmp: np.savez(tmp, **arrays), ".npz")


def _slab_arrays(slab: Slab) -> dict[str, np.ndarray]:
    arrays = {
        "slices": slab.slices,
        "slice_indices": slab.slice_indices,
        "center": slab.center,
        "voxels_per_pixel": slab.voxels_per_pixel,
        "volume_shape": np.asarray(slab.volume_shape, dtype=np.int64),
        "intensity_range": np.asarray(slab.intensity_range, dtype=np.float64),
    }
    if slab.landmarks is not None:
        arrays["landmarks_scan"], arrays["landmarks_standard"] = slab.landmarks
    if slab.grid is not None:
        arrays.update(slab.grid.arrays())
    arrays["steps"] = np.asarray(slab.steps, dtype=str)
    if slab.profile is not None:
        arrays["profile"] = np.asarray(json.dumps(slab.profile.to_dict()))
    return arrays


def _slab_from(data) -> Slab:
    landmarks = None
    if "landmarks_scan" in data:
        landmarks = (data["landmarks_scan"], data["landmarks_standard"])
    low, high = (float(v) for v in data["intensity_range"])
    return Slab(
        slices=data["slices"],
        slice_indices=data["slice_indices"],
        center=data["center"],
        voxels_per_pixel=data["voxels_per_pixel"],
        volume_shape=tuple(int(s) for s in data["volume_shape"]),
        intensity_range=(low, high),
        landmarks=landmarks,
        grid=GridMap.from_arrays(data),
        steps=tuple(str(s) for s in data["steps"]) if "steps" in data else (),
        profile=(
            DomainProfile.from_dict(json.loads(str(data["profile"]))) if "profile" in data else None
        ),
    )


def load_slab(
    path: str | Path,
    cfg: PreprocessConfig,
    cache: SlabCache | None = None,
    keep_scan: bool = False,
    brain_mask: str | Path | None = None,
) -> LoadedSlab:
    """Read and preprocess one scan, through the cache when there is one.

    ``brain_mask``: a mask file on the scan's grid, used instead of the brain step (a
    scan with a given mask bypasses the cache).
    """
    start = time.perf_counter()
    if brain_mask is not None:
        cache = None
    key = None if cache is None else cache.key(path, cfg)
    slab = None if key is None else cache.load(key)
    cached = slab is not None
    scan = load_scan(path) if keep_scan or slab is None else None
    if slab is None:
        slab = preprocess(scan, cfg, load_brain_mask(brain_mask, scan))
        if key is not None:
            cache.save(key, slab)
    name = scan.name if scan is not None else scan_name(path)
    return LoadedSlab(
        Path(path), slab, scan if keep_scan else None, time.perf_counter() - start, cached, name
    )


def load_brain_mask(path: str | Path | None, scan) -> np.ndarray | None:
    """A brain-mask file as a bool volume on ``scan``'s RAS+ grid (voxels above 0.5)."""
    if path is None:
        return None
    mask = load_scan(path)
    if mask.data.shape != scan.data.shape or not np.allclose(mask.affine, scan.affine, atol=1e-3):
        raise ScanError(
            f"the brain mask is not on the grid of {Path(str(scan.path)).name} "
            f"(shape {mask.data.shape} vs {scan.data.shape}, or another affine)",
            path,
        )
    return np.asarray(mask.data) > 0.5


def scan_name(path: str | Path) -> str:
    """The name :func:`load_scan` would give the scan, without reading its pixels."""
    from madgan_core.scans.dicom import is_dicom_path, series_name_of

    if is_dicom_path(path, look_inside=False):
        return series_name_of(path)
    return scan_stem(path)


def default_workers(n_scans: int) -> int:
    """Loader processes for ``n_scans`` scans: ``min(8, cores - 1)`` for a cohort of at
    least :data:`MIN_SCANS_FOR_WORKERS` scans, else 0 (threads).

    The cores are those this process may use, shared among the processes torchrun starts
    on the node (``LOCAL_WORLD_SIZE``); one is left for the network and post-processing.
    """
    if n_scans < MIN_SCANS_FOR_WORKERS:
        return 0
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores = len(usable) if usable is not None else os.cpu_count() or 1
    try:
        local_ranks = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    except ValueError:
        local_ranks = 1
    workers = min(MAX_DEFAULT_WORKERS, cores // local_ranks - 1)
    return workers if workers >= 2 else 0


def _worker_setup() -> None:
    """A loader process computes with one thread, so the processes share the cores."""
    import torch

    torch.set_num_threads(1)


@dataclass(frozen=True)
class SlabLoader:
    """How cohort work reads its scans: how far ahead, in which workers, through which cache.

    Attributes:
        prefetch: scans read and preprocessed ahead (0: none, each scan is read when the
            caller asks for it); in worker threads, or per worker process with ``workers``.
        cache_dir: a folder of preprocessed slabs (:class:`SlabCache`), or None.
        workers: processes that read and preprocess scans (0: none, threads as above).
    """

    prefetch: int = 1
    cache_dir: Path | None = None
    workers: int = 0

    def load(
        self,
        paths: Iterable[str | Path],
        cfg: PreprocessConfig,
        keep_scan: bool = False,
        brain_masks: dict[str, Path] | None = None,
    ) -> Iterator[LoadedSlab]:
        """Each of ``paths`` prepared (:func:`load_slab`), in order.

        ``brain_masks``: mask files by scan path (``str(path)``), for the scans that have one.
        An error reading or preprocessing a scan is raised when the caller reaches it.
        """
        cache = None if self.cache_dir is None else SlabCache(self.cache_dir)
        masks = brain_masks or {}
        if self.workers <= 0 and self.prefetch <= 0:
            for path in paths:
                yield load_slab(path, cfg, cache, keep_scan, masks.get(str(path)))
            return
        todo = iter(paths)
        with self._pool() as pool:
            pending: deque[Future[LoadedSlab]] = deque()

            def submit() -> None:
                for path in todo:
                    mask = masks.get(str(path))
                    pending.append(pool.submit(load_slab, path, cfg, cache, keep_scan, mask))
                    return

            try:
                for _ in range(self._ahead()):
                    submit()
                while pending:
                    item = pending.popleft().result()
                    submit()  # the next scan is read while the caller works on this one
                    yield item
            finally:
                for future in pending:
                    future.cancel()

    def _ahead(self) -> int:
        """Scans in the works at once: ``prefetch``, per worker process where there are some."""
        if self.workers <= 0:
            return self.prefetch
        return self.workers * max(self.prefetch, 1)

    def _pool(self) -> Executor:
        if self.workers <= 0:
            return ThreadPoolExecutor(self.prefetch, thread_name_prefix="madgan-prefetch")
        # Spawned, not forked: the caller may hold a CUDA context and running threads.
        return ProcessPoolExecutor(
            self.workers, multiprocessing.get_context("spawn"), initializer=_worker_setup
        )
