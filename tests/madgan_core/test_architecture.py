"""The shape of madgan_core: imports run one way, the core never imports a GUI, files stay small.

The import graph is read from the source with :mod:`ast`, every ``import`` counted:
module level, inside functions and under ``TYPE_CHECKING`` alike, so a circle cannot
hide in a lazy import. docs/architecture.md describes the order these tests hold.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "madgan_core"
GUI_PACKAGES = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6")
MAX_LINES = 400
# Modules over MAX_LINES being split elsewhere: train.py (its loop, metrics and previews).
# The scoring chain of docs/architecture.md: each may import those before it, never after.
SCORING_ORDER = (
    "madgan_core.modes",
    "madgan_core.config",
    "madgan_core.model.zstats",
    "madgan_core.model.reference",
    "madgan_core.model.checkpoint",
    "madgan_core.scoring.reconstruct",
    "madgan_core.scoring.scorer",
    "madgan_core.scoring.calibrate",
    "madgan_core.cohort.evaluation.cohort",
    "madgan_core.cohort.evaluation.run",
    "madgan_core.commands.evaluate",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def imported_names(path: Path) -> set[str]:
    """Every module name an ``import`` statement of the file mentions (absolute form)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@cache
def import_graph() -> dict[str, set[str]]:
    """``graph[module]``: the madgan_core modules it imports."""
    known = modules()
    return {name: imported_names(path) & known.keys() - {name} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_is_read_from_every_core_module():
    graph = import_graph()
    assert len(graph) > 30 and "madgan_core.cohort.evaluation.run" in graph
    assert "madgan_core.model.zstats" in graph["madgan_core.model.reference"]
    assert "madgan_core.model.reference" in graph["madgan_core.model.checkpoint"]


def test_find_cycle_finds_a_circle_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_madgan_core_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("position", range(len(SCORING_ORDER)), ids=SCORING_ORDER)
def test_the_scoring_chain_imports_only_downwards(position):
    module = SCORING_ORDER[position]
    later = set(SCORING_ORDER[position + 1 :])
    assert not import_graph()[module] & later


def test_reference_depends_only_on_zmap_the_norms_and_the_basics():
    graph = import_graph()
    core = graph["madgan_core.model.reference"]
    assert core <= {
        "madgan_core.model.zstats",
        "madgan_core.model.normative",
        "madgan_core.scans.covariates",
        "madgan_core.errors",
        "madgan_core.modes",
    }
    assert graph["madgan_core.model.normative"] <= {"madgan_core.scans.covariates"}
    assert graph["madgan_core.scans.covariates"] == set()


@pytest.mark.parametrize("name", sorted(modules()))
def test_madgan_core_never_imports_a_gui(name):
    gui = {n for n in imported_names(modules()[name]) if n.split(".")[0] in GUI_PACKAGES}
    assert not gui, f"{name} imports {sorted(gui)}"


def test_no_core_file_is_over_400_lines_unless_its_docstring_says_why():
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        docstring = ast.get_docstring(ast.parse(text)) or ""
        lines = text.count("\n")
        if lines > MAX_LINES and f"past {MAX_LINES} lines" not in docstring:
            too_long.append(f"{name}: {lines} lines")
    assert too_long == []
