"""docs/configuration.md documents every configuration key, and its example is valid."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from madgan_core.config import MadganConfig, preset

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _sections() -> dict[str, set[str]]:
    text = DOC.read_text()
    parts = re.split(r"^## `(\w+)`$", text, flags=re.M)
    return {
        name: set(re.findall(r"^\| `(\w+)` \|", body, flags=re.M))
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.mark.parametrize("section", ["preprocess", "model", "train", "score"])
def test_every_key_is_documented(section):
    fields = {f.name for f in dataclasses.fields(getattr(MadganConfig(), section))}
    assert _sections()[section] == fields


def test_the_example_config_is_valid():
    example = re.search(r"```json\n(.*?)```", DOC.read_text(), flags=re.S).group(1)
    cfg = preset("demo").updated(json.loads(example))
    assert cfg.model.variant == "sa3" and cfg.train.steps == 20000


def _documented_defaults(section: str) -> dict[str, tuple[str, str]]:
    """``key: (paper, demo)`` cells of the section's table, as written."""
    body = re.split(r"^## `(\w+)`$", DOC.read_text(), flags=re.M)
    text = dict(zip(body[1::2], body[2::2], strict=True))[section]
    cells = re.findall(r"^\| `(\w+)` \|.*\| `?([^|`]*)`? \| `?([^|`]*)`? \|$", text, flags=re.M)
    return {key: (paper.strip(), demo.strip()) for key, paper, demo in cells}


@pytest.mark.parametrize("section", ["score"])
def test_documented_defaults_are_the_code_defaults(section):
    """The score section's defaults are the same in both presets; the table says them."""
    paper = dataclasses.asdict(getattr(preset("paper"), section))
    demo = dataclasses.asdict(getattr(preset("demo"), section))
    documented = _documented_defaults(section)
    assert set(documented) == set(paper)
    for key, (paper_cell, demo_cell) in documented.items():
        assert json.loads(paper_cell) == paper[key], key
        assert (json.loads(demo_cell) if demo_cell != "same" else paper[key]) == demo[key], key
