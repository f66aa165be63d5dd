"""Cohort work shared among torchrun ranks: one part file per scan, merged in cohort order.

``madgan score``, ``calibrate`` and ``evaluate`` all run the same way, with one process
or many (``torchrun --nproc-per-node N``, on one node or several):

1. Rank 0 looks which scans already have a part file written by the same run (the same
   fingerprint: model, settings), and tells the other ranks.
2. The scans still to do are dealt round-robin in cohort order: rank ``r`` of ``W``
   takes the ``r``-th, ``r + W``-th, ... of them. The deal depends only on the cohort,
   the parts present and ``W``, so every rank computes the same one.
3. Each rank writes each scan's result to a part file of its own, atomically (a
   temporary file, then a rename), named after the scan. A rank that dies loses only
   the scan it was on; a re-run, with any number of ranks, skips every scan with a part.
4. When every rank is done, rank 0 reads the parts in cohort order, writes the merged
   result and removes the parts.

A scan's result does not depend on which rank computed it, so the merged result is the
one process's, row for row and bit for bit (see docs/cluster.md for the conditions).
The parts folder must be on a file system every rank sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from madgan_core.runtime.distributed import DistInfo, barrier, broadcast_flags
from madgan_core.scans.atomic import atomic_write_with

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def part_stem(key: str) -> str:
    """A part file's name (without suffix) for ``key``: a hash, safe on any file system."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class PartFolder:
    """One JSON part file per scan in ``folder``, each stamped with the run's fingerprint.

    A part whose fingerprint or key differs, or that cannot be read, counts as missing
    and is written again. Subclasses store other payloads (calibration's ℓ2 maps, as
    ``.npz``) by overriding :meth:`_dump` and :meth:`_load`.
    """

    suffix = ".json"

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any]):
        self.folder = Path(folder)
        # Through JSON and back, so it compares equal to what a part file holds.
        self.fingerprint = json.loads(json.dumps(fingerprint))

    def path(self, key: str) -> Path:
        return self.folder / f"{part_stem(key)}{self.suffix}"

    def write(self, key: str, record: Any) -> Path:
        """Store ``record`` as ``key``'s part, atomically."""
        return atomic_write_with(
            self.path(key), lambda tmp: self._dump(tmp, key, record), self.suffix
        )

    def read(self, key: str) -> Any | None:
        """``key``'s record, or None if it has no part written by this run."""
        stored = self._stamp(key)
        return stored.get("record") if stored is not None and self._is_ours(stored, key) else None

    def has(self, key: str) -> bool:
        stored = self._stamp(key)
        return stored is not None and self._is_ours(stored, key)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _is_ours(self, stored: dict, key: str) -> bool:
        return stored.get("key") == key and stored.get("fingerprint") == self.fingerprint

    def _stamp(self, key: str) -> dict | None:
        """What ``key``'s part file holds: its key, fingerprint and record (None if none)."""
        try:
            return self._load(self.path(key))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable part (%s); computing it again", self.path(key), exc)
            return None

    def _load(self, path: Path) -> dict:
        return json.loads(path.read_text())

    def _dump(self, tmp: Path, key: str, record: Any) -> None:
        payload = {"key": key, "fingerprint": self.fingerprint, "record": record}
        tmp.write_text(json.dumps(payload))


@dataclass
class SharedRun:
    """One cohort pass shared among the ranks: which scans this rank does, and the merge.

    Attributes:
        keys: each scan's key (its path as text), in cohort order.
        parts: where each scan's result is stored.
        info: this rank and the world size.
        device: this rank's device (collectives run on it under NCCL).
    """

    keys: Sequence[str]
    parts: PartFolder
    info: DistInfo
    device: torch.device

    def todo(self, done: Collection[str] = ()) -> list[int]:
        """Cohort positions this rank computes: those with no part yet and not in ``done``.

        Only rank 0 looks at the files (``done`` matters there only); the others take its
        answer, so all deal the same positions.
        """
        flags = [False] * len(self.keys)
        if self.info.is_main:
            flags = [k in done or self.parts.has(k) for k in self.keys]
            if any(flags):
                log.info(
                    "%s: resuming, %d of %d scans already scored",
                    self.parts.folder,
                    sum(flags),
                    len(flags),
                )
        flags = broadcast_flags(flags, self.info, self.device)
        remaining = [i for i, finished in enumerate(flags) if not finished]
        return remaining[self.info.rank :: self.info.world_size]

    def finish(self) -> bool:
        """Wait until every rank has written its parts; True on the rank that merges."""
        barrier(self.info, self.device)
        return self.info.is_main

    def merged(self, earlier: dict[str, Any] | None = None) -> list[Any]:
        """Every scan's record in cohort order: its part, or else its ``earlier`` record."""
        earlier = earlier or {}
        records = []
        for key in self.keys:
            record = self.parts.read(key)
            if record is None:
                record = earlier.get(key)
            if record is None:
                raise RuntimeError(f"{self.parts.path(key)}: no result for {key}")
            records.append(record)
        return records


def run_share(
    run: SharedRun,
    positions: Sequence[int],
    items: Iterable[Any],
    compute: Callable[[int, Any], Any],
    progress: Callable[[int], None] | None = None,
    *,
    post_threads: int = 0,
) -> None:
    """Compute and store the part of each of ``positions``, in order.

    ``items`` yields the prepared input of each position (e.g. a prefetching slab
    loader); ``compute(position, item)`` returns the record to store; ``progress(k)``
    is called after the ``k``-th part is written.

    With ``post_threads``, ``compute`` returns the post stage instead: a function of no
    arguments that gives the record. Up to ``post_threads`` post stages run (and store
    their parts) in worker threads while ``compute`` works on the next items; ``progress``
    is still called in order, and an error is raised in order too: the scans before it
    are stored first, as without threads.
    """
    if post_threads <= 0:
        for k, (i, item) in enumerate(zip(positions, items, strict=True), start=1):
            run.parts.write(run.keys[i], compute(i, item))
            if progress is not None:
                progress(k)
        return

    def store(i: int, post: Callable[[], Any]) -> None:
        run.parts.write(run.keys[i], post())

    done = 0

    def collect(future: Future[None]) -> None:
        nonlocal done
        future.result()
        done += 1
        if progress is not None:
            progress(done)

    with ThreadPoolExecutor(post_threads, thread_name_prefix="madgan-post") as pool:
        pending: deque[Future[None]] = deque()
        try:
            for i, item in zip(positions, items, strict=True):
                pending.append(pool.submit(store, i, compute(i, item)))
                while len(pending) > post_threads:  # a bounded queue: memory stays flat
                    collect(pending.popleft())
            while pending:
                collect(pending.popleft())
        except BaseException:
            # The items before the failing one are finished and stored first; an error
            # among them is the one raised, as it would come first in order.
            while pending:
                collect(pending.popleft())
            raise
