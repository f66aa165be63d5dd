"""Helpers shared by CLI subcommands: progress bars and device options."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tqdm import tqdm


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to run (default: auto)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="inference precision (default: auto, bf16 where the hardware is fast at it)",
    )


def tqdm_callback(bar: tqdm) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that drives a tqdm bar."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update
