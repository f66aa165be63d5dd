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
