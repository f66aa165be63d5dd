"""The house rules of madgan_core, read from the source with :mod:`ast`.

- Imports run one way: a module imports from its own layer of ``madgan_core.LAYERS`` or an
  earlier one, never a later one (module level, inside functions and under
  ``TYPE_CHECKING`` alike).
- Each public name has one import address: where it is defined, or the package that
  re-exports it; modules inside that package import it from the defining module.
- No product module imports another module's private (``_``) name.
- docs/architecture.md's layer table is the one declared in code.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

import madgan_core

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("madgan_core", "napari_madgan")
# Everything that imports the product: its own packages, tests, benchmarks, tools, studies.
IMPORTERS = (*PRODUCT, "tests", "bench", "scripts", "studies", "madgan_testing")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def sources() -> dict[str, Path]:
    found = {}
    for top in IMPORTERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            found[module_name(path)] = path
    return found


@cache
def tree(name: str) -> ast.Module:
    path = sources()[name]
    return ast.parse(path.read_text(), str(path))


def absolute(name: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = name if sources()[name].name == "__init__.py" else name.rpartition(".")[0]
    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*anchor, node.module] if node.module else anchor)


def product_imports(name: str) -> list[tuple[str, str | None, int]]:
    """``(module, name or None, line)`` for every import of the product in ``name``."""
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(name, node)
            found += [(base, a.name, node.lineno) for a in node.names]
    return [f for f in found if f[0].split(".")[0] in PRODUCT]


@cache
def top_level_names(module: str) -> frozenset[str]:
    """The names a module binds at its top level (defined or imported)."""
    names = set()
    for node in tree(module).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def definition(module: str, name: str, seen: frozenset = frozenset()) -> str | None:
    """The module that defines ``name`` as reached through ``module`` (None: a submodule or
    a name from outside the product)."""
    if module not in sources() or (module, name) in seen:
        return None
    for node in tree(module).body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if (a.asname or a.name) == name:
                    base = absolute(module, node)
                    if base.split(".")[0] not in PRODUCT:
                        return None
                    return definition(base, a.name, seen | {(module, name)})
    return module if name in top_level_names(module) else None


def public_address(home: str, name: str) -> str:
    """The shallowest package on the way to ``home`` that re-exports ``name``, else ``home``."""
    parts = home.split(".")
    for i in range(1, len(parts)):
        package = ".".join(parts[:i])
        in_package = package in sources() and name in top_level_names(package)
        if in_package and definition(package, name) == home:
            return package
    return home


def layer_of(module: str) -> int | None:
    if not module.startswith("madgan_core."):
        return None
    top = module.split(".")[1]
    for index, (_, members, _) in enumerate(madgan_core.LAYERS):
        if top in members:
            return index
    return None


def core_modules() -> list[str]:
    return [m for m in sources() if m.startswith("madgan_core")]


def test_every_top_level_entry_of_the_core_has_a_layer():
    entries = {p.stem for p in (ROOT / "madgan_core").iterdir() if p.name != "__pycache__"}
    entries -= {"__init__"}
    unlayered = sorted(e for e in entries if layer_of(f"madgan_core.{e}") is None)
    assert unlayered == []
    assert len(entries) <= 12, f"{len(entries)} top-level entries in madgan_core: {sorted(entries)}"


@pytest.mark.parametrize("name", core_modules())
def test_no_import_runs_up_a_layer(name):
    own = layer_of(name)
    upward = [
        f"line {line}: {module}" + (f".{imported}" if imported else "")
        for module, imported, line in product_imports(name)
        if own is not None and (layer_of(module) or 0) > own
    ]
    assert upward == [], f"{name} (layer {madgan_core.LAYERS[own][0]}) imports upward"


def test_the_layer_rule_catches_an_upward_import():
    # scoring is above prep: prep importing scoring is what the test above refuses.
    assert layer_of("madgan_core.scoring.scorer") > layer_of("madgan_core.prep.slab")
    assert layer_of("madgan_core.errors") == 0 and layer_of("madgan_core.cli") == 9


def _addresses() -> dict[tuple[str, str], dict[str, list[str]]]:
    """``{(home, name): {address: [importer:line, ...]}}`` for every product name imported."""
    found: dict = defaultdict(lambda: defaultdict(list))
    for importer in sources():
        for module, name, line in product_imports(importer):
            if name is None or module == importer:
                continue
            home = definition(module, name)
            if home is None or home == importer:
                continue
            found[(home, name)][module].append(f"{importer}:{line}")
    return found


def test_each_public_name_has_one_import_address():
    second = []
    for (home, name), addresses in sorted(_addresses().items()):
        public = public_address(home, name)
        for address, where in addresses.items():
            if address == public:
                continue
            # Inside a package that re-exports a name, its modules import the definition.
            inside = [w for w in where if w.startswith((public + ".", public + ":"))]
            outside = sorted(set(where) - set(inside))
            if outside:
                second.append(f"{name}: {address} (public address {public}) in {outside}")
    assert second == []


def test_no_product_module_imports_a_private_name_of_another():
    private = []
    for importer in sources():
        if importer.split(".")[0] not in (*PRODUCT, "bench", "scripts", "studies"):
            continue
        for module, name, line in product_imports(importer):
            if name and name.startswith("_") and name != "__version__":
                if f"{module}.{name}" in sources():
                    continue  # a package's private module, not a private name
                private.append(f"{importer}:{line} imports {module}.{name}")
    assert private == []


def test_the_architecture_doc_draws_the_layers_declared_in_code():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \| ([^|]+?) \|", doc, flags=re.MULTILINE)
    declared = [
        (str(i), name, ", ".join(f"`{m}`" for m in members))
        for i, (name, members, _) in enumerate(madgan_core.LAYERS)
    ]
    assert [(i, n.strip(), m.strip()) for i, n, m in rows] == declared


def test_no_core_module_is_named_after_a_standard_library_module():
    import sys

    shadowing = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "madgan_core").rglob("*")
        if path.stem in sys.stdlib_module_names and path.name != "__pycache__"
    )
    assert shadowing == []
