"""The config package: one public address, small section modules, a stable saved form."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest

import madgan_core.config as config
from madgan_core.config import MadganConfig, preset
from madgan_core.errors import ConfigError

PACKAGE = Path(config.__file__).parent
# sha256 of each preset's saved JSON: the form stored in every model file and config.json.
SAVED = {
    "paper": "44a055efdca58452e888a815592dd3b9c96a9c3563404844cb8cb425a9c2e923",
    "demo": "e34eaab27e0227f3044059d23d0e9fe0dc8e4eb23bd31f5b1dbc4924f111f583",
}
# Keys added to the saved form since models were first saved; files without them load.
ADDED_KEYS = {"train": ("compile_mode", "engine", "resident")}


@pytest.mark.parametrize("name", sorted(SAVED))
def test_saved_json_is_byte_for_byte_stable(tmp_path, name):
    path = tmp_path / "config.json"
    preset(name).save_json(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAVED[name]
    assert MadganConfig.load_json(path) == preset(name)


@pytest.mark.parametrize("name", sorted(SAVED))
def test_a_config_saved_before_the_added_keys_loads_with_their_defaults(tmp_path, name):
    path = tmp_path / "config.json"
    preset(name).save_json(path)
    saved = json.loads(path.read_text())
    for section, keys in ADDED_KEYS.items():
        for key in keys:
            del saved[section][key]
    path.write_text(json.dumps(saved))
    assert MadganConfig.load_json(path) == preset(name)


def test_every_public_name_is_exported_once_from_the_package():
    assert sorted(config.__all__) == sorted(set(config.__all__))
    for name in config.__all__:
        assert getattr(config, name) is not None
    defined = set()
    for path in PACKAGE.glob("_*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {n for n in defined if not n.startswith("_")} - {"read_json"}
    assert public <= set(config.__all__)


def test_section_modules_stay_small():
    for path in PACKAGE.glob("*.py"):
        assert path.read_text().count("\n") <= 250, path.name


def test_score_overrides_change_a_copy_and_name_a_bad_key():
    cfg = preset("demo")
    assert cfg.with_score_overrides(None) is cfg and cfg.with_score_overrides({}) is cfg
    changed = cfg.with_score_overrides({"smooth_sigma_px": 1, "finding_extent": None})
    assert changed.score.smooth_sigma_px == 1.0 and isinstance(changed.score.smooth_sigma_px, float)
    assert cfg.score.smooth_sigma_px == 2.0 and changed.preprocess == cfg.preprocess
    with pytest.raises(ConfigError, match="unknown key 'smooth' in ScoreConfig"):
        cfg.with_score_overrides({"smooth": 1.0})
    with pytest.raises(ConfigError, match="score.top_windows must be >= 1"):
        cfg.with_score_overrides({"top_windows": 0})
