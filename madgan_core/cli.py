"""The ``madgan`` command: thin subcommands over the core.

Every subcommand lives in :mod:`madgan_core.commands` and defines
``add_parser(subparsers)``. Errors the user can act on exit with code 2 and one
message, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from madgan_core import __version__
from madgan_core.errors import MadganError

COMMANDS = (
    "phantom",
    "manifest",
    "train",
    "calibrate",
    "score",
    "evaluate",
    "series",
    "demo",
    "info",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``madgan`` parser with every subcommand, or only ``command``'s.

    Building one subcommand's parser imports only that command's module, so a command
    starts without the imports of the others (the phantom simulator's, for one).
    """
    parser = argparse.ArgumentParser(
        prog="madgan",
        description="MADGAN: unsupervised anomaly detection on brain MRI by multiple adjacent slice reconstruction.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in (command,) if command in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"madgan_core.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"madgan_core.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` runs, when only ``-v``/``--verbose`` come before it; else None.

    None (any other option first, such as ``--help``, or no command) means every
    subcommand's parser is built, since the top-level help and errors list them all.
    """
    for arg in argv:
        if arg in ("-v", "--verbose"):
            continue
        return arg if arg in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from madgan_core.commands._common import progress_bars

    # Under torchrun only rank 0 draws bars; the others' would interleave with its.
    bars = not getattr(args, "no_progress", False) and os.environ.get("RANK", "0") == "0"
    try:
        with progress_bars(bars):
            return int(args.func(args) or 0)
    except MadganError as exc:
        print(f"madgan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"madgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
