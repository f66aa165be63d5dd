"""The config package: one public address, small section modules, a stable saved form."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

import madgan_core.config as config
from madgan_core.config import MadganConfig, preset
from madgan_core.errors import ConfigError

PACKAGE = Path(config.__file__).parent
# sha256 of each preset's saved JSON: the form stored in every model file and config.json.
SAVED = {
    "paper": "9887eb91b884081dde47fe0b1cc50c3c591a2e3d9328cfc1ac28ffd9b0a712b8",
    "demo": "d41e1d75297369e9e7bcf8a3061ca0ff8d231b231daefc6fecb5ecad8732449a",
}


@pytest.mark.parametrize("name", sorted(SAVED))
def test_saved_json_is_byte_for_byte_stable(tmp_path, name):
    path = tmp_path / "config.json"
    preset(name).save_json(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SAVED[name]
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
