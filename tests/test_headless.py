"""The core and the ``madgan`` CLI work without napari, magicgui, qtpy or a Qt binding.

``pip install napari-madgan`` installs no GUI package (they come with the ``all`` extra).
Each check runs in a fresh interpreter where those packages cannot be imported: their
names are set to ``None`` in ``sys.modules`` before anything else is imported, so an
``import napari`` raises ImportError and ``importlib.util.find_spec`` finds nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = ("napari", "magicgui", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "npe2")
BLOCK = f"import sys\nfor name in {GUI!r}:\n    sys.modules[name] = None\n"

IMPORT_EVERY_CORE_MODULE = """
import importlib
import pkgutil

import madgan_core

names = sorted(m.name for m in pkgutil.walk_packages(madgan_core.__path__, "madgan_core."))
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
print(len(names), "modules")
"""


def run_headless(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_blocker_makes_the_gui_packages_unimportable():
    result = run_headless("import napari")
    assert result.returncode != 0 and "import of napari halted" in result.stderr


def test_every_core_module_imports_without_a_gui():
    result = run_headless(IMPORT_EVERY_CORE_MODULE)
    assert result.returncode == 0, result.stderr
    assert "modules" in result.stdout


def test_the_cli_runs_without_a_gui():
    code = "import runpy\nrunpy.run_module('madgan_core.cli', run_name='__main__')\n"
    result = run_headless(code, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: madgan" in result.stdout
    for command in ("phantom", "train", "calibrate", "score", "evaluate", "demo", "info"):
        assert command in result.stdout


def test_the_demo_says_which_extra_brings_the_viewer():
    code = (
        "from madgan_core.commands.demo import NO_VIEWER, napari_installed\n"
        "assert not napari_installed()\n"
        "print(NO_VIEWER)\n"
    )
    result = run_headless(code)
    assert result.returncode == 0, result.stderr
    assert "install napari-madgan[all]" in result.stdout


def test_napari_counts_as_installed_where_it_is():
    from madgan_core.commands.demo import napari_installed

    assert napari_installed()
