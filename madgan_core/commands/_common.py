"""Options shared by the subcommands, built from the configuration's constants, and progress bars.

Each option is defined once here, so it is spelled, documented and validated alike
in every subcommand:

- ``--device`` and ``--precision`` on every command that runs the model;
- ``--no-progress`` on every long command (see :func:`progress_bars`);
- ``--window-batch``, the windows per inference batch (``--batch-size`` is the
  training batch, in ``madgan train`` only);
- ``--set section.key=value``, read by :func:`madgan_core.config.parse_overrides`;
- ``--prefetch`` and ``--cache-dir`` on every command that reads a cohort of scans.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from madgan_core.config import DEVICES, PRECISIONS

if TYPE_CHECKING:
    from madgan_core.prep.loader import SlabLoader

log = logging.getLogger(__name__)


def add_device_options(
    parser: argparse.ArgumentParser,
    default: str | None = "auto",
    what: str = "run the model",
) -> None:
    """``--device`` and ``--precision``; ``default=None`` leaves them to the configuration."""
    suffix = "the configuration's" if default is None else default
    parser.add_argument(
        "--device",
        default=default,
        choices=DEVICES,
        help=f"where to {what} (default: {suffix}; auto: CUDA when present)",
    )
    parser.add_argument(
        "--precision",
        default=default,
        choices=PRECISIONS,
        help=f"numeric precision (default: {suffix}; auto: bf16 where the hardware is fast at it)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars (for logs and child processes)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_window_batch_option(parser: argparse.ArgumentParser, old_spelling: bool = False) -> None:
    """``--window-batch``: windows per inference batch.

    ``old_spelling`` also accepts ``--batch-size``, hidden and deprecated, where a
    command once used that name for the inference batch.
    """
    parser.add_argument(
        "--window-batch",
        type=_non_negative,
        default=0,
        metavar="N",
        help="windows per inference batch (default: the model's score.batch_size, "
        "else chosen per device)",
    )
    if old_spelling:
        parser.add_argument(
            "--batch-size",
            dest="window_batch",
            type=_non_negative,
            action=_Deprecated,
            replacement="--window-batch",
            help=argparse.SUPPRESS,
        )


def add_loader_options(parser: argparse.ArgumentParser) -> None:
    """``--prefetch`` and ``--cache-dir``: how a cohort's scans are read (:func:`loader_from`)."""
    parser.add_argument(
        "--prefetch",
        type=_non_negative,
        default=1,
        metavar="N",
        help="scans read and preprocessed ahead, in worker threads, while the model scores "
        "(default: 1; 0: none)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep preprocessed scans in DIR, keyed by file content and preprocessing "
        "settings, so scoring them again (with any model that preprocesses alike) skips "
        "reading and preprocessing (default: no cache)",
    )


def loader_from(args: argparse.Namespace) -> SlabLoader:
    """The :class:`madgan_core.prep.loader.SlabLoader` that :func:`add_loader_options` describe."""
    from madgan_core.prep.loader import SlabLoader

    return SlabLoader(prefetch=args.prefetch, cache_dir=args.cache_dir)


def add_set_option(
    parser: argparse.ArgumentParser, sections: Collection[str] | None = None
) -> None:
    """``--set section.key=value`` (repeatable); ``sections`` names the sections a command takes."""
    where = "any configuration key" if sections is None else " or ".join(f"{s}.*" for s in sections)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"set a configuration value ({where}), e.g. "
        f"{'train.steps=500' if sections is None else 'score.top_windows=5'}; repeatable; "
        "see docs/configuration.md",
    )


def score_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """A scoring command's ``--set`` values: nested overrides of the model's ``score`` section."""
    from madgan_core.config import parse_overrides

    return parse_overrides(args.set, sections=("score",))


class _Deprecated(argparse.Action):
    """Stores like the option it stands for, and says which spelling to use instead."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        log.warning("%s is deprecated; use %s", option_string, self.replacement)
        setattr(namespace, self.dest, values)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """While active with ``enabled=False``, every tqdm bar is created disabled.

    tqdm has no global switch, so its constructor's ``disable`` default is replaced
    for the duration and restored afterwards.
    """
    if enabled:
        yield
        return
    original = tqdm.__init__
    tqdm.__init__ = functools.partialmethod(original, disable=True)  # type: ignore[method-assign]
    try:
        yield
    finally:
        tqdm.__init__ = original  # type: ignore[method-assign]


def tqdm_callback(bar: tqdm) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that drives a tqdm bar."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
