"""The CLI's cold start: building a command's parser imports only what that command needs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from madgan_core.cli import COMMANDS, build_parser, command_of


def _imported_after(code: str) -> set[str]:
    """The ``madgan_core`` modules loaded by ``code`` in a fresh interpreter."""
    script = f"import sys\n{code}\nprint(' '.join(m for m in sys.modules if m.startswith('madgan_core')))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_command_modules_import_no_cohort():
    code = "\n".join(f"import madgan_core.commands.{name}" for name in COMMANDS)
    loaded = _imported_after(code)
    assert not {m for m in loaded if m.startswith("madgan_core.cohort")}


def test_score_parser_skips_other_commands():
    loaded = _imported_after("from madgan_core.cli import build_parser; build_parser('score')")
    assert "madgan_core.commands.score" in loaded
    assert "madgan_core.commands.phantom" not in loaded
    assert not {m for m in loaded if m.startswith("madgan_core.cohort")}


@pytest.mark.parametrize(
    "argv, command",
    [
        (["score", "m.pt"], "score"),
        (["-v", "phantom", "out"], "phantom"),
        (["--verbose", "-v", "info"], "info"),
        (["--help"], None),
        (["--version"], None),
        (["--verb", "score"], None),
        (["bogus"], None),
        ([], None),
    ],
)
def test_command_of(argv, command):
    assert command_of(argv) == command


@pytest.mark.parametrize("name", COMMANDS)
def test_one_command_parser_matches_full(name):
    def sub(parser):
        return parser._subparsers._group_actions[0].choices[name]

    full, one = sub(build_parser()), sub(build_parser(name))
    assert one.format_help() == full.format_help()
    assert importlib.import_module(f"madgan_core.commands.{name}")  # every command is importable
