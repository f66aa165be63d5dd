"""The repository's folders keep their roles.

The product (``madgan_core``, ``napari_madgan``) is what pip installs; the test fixtures
(``madgan_testing``) are not installed and the product never imports them; the
benchmarks never import the tests; ``scripts/`` holds user tools and ``studies/`` the
validation studies, each described in ``studies/README.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("madgan_core", "napari_madgan")
USER_TOOLS = {
    "install.sh",
    "screenshots.py",
    "head_preview.py",
    "pack_bundled_model.py",
    "build_bundled_model.sh",
}


def imports_of(folder: Path, package: str) -> list[str]:
    """``file:line`` of every ``import package`` / ``from package`` under ``folder``."""
    pattern = re.compile(rf"^\s*(from|import)\s+{package}(\.|\s|$)")
    hits = []
    for path in sorted(folder.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.match(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}")
    return hits


def packaged_include() -> list[str]:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["packages"]["find"]["include"]


def test_the_benchmarks_never_import_the_tests():
    assert imports_of(ROOT / "bench", "tests") == []


def test_the_product_never_imports_the_fixtures_or_the_tests():
    for package in PRODUCT:
        assert imports_of(ROOT / package, "madgan_testing") == []
        assert imports_of(ROOT / package, "tests") == []


def test_only_the_product_is_installed():
    packages = find_packages(str(ROOT), include=packaged_include())
    assert "madgan_testing" in find_packages(str(ROOT))
    assert {p.split(".")[0] for p in packages} == set(PRODUCT)


def test_scripts_holds_user_tools_and_every_study_is_described():
    assert {p.name for p in (ROOT / "scripts").iterdir() if p.is_file()} <= USER_TOOLS
    readme = (ROOT / "studies" / "README.md").read_text()
    studies = sorted(p.name for p in (ROOT / "studies").glob("*.py"))
    assert studies
    assert [s for s in studies if f"`{s}`" not in readme] == []
