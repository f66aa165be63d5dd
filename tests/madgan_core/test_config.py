from __future__ import annotations

import json

import pytest

from madgan_core.config import MadganConfig, demo_preset, paper_preset, preset
from madgan_core.errors import ConfigError


def test_round_trip_through_json(tmp_path):
    cfg = demo_preset()
    cfg.save_json(tmp_path / "c.json")
    again = MadganConfig.load_json(tmp_path / "c.json")
    assert again == cfg


def test_paper_preset_matches_the_paper():
    cfg = paper_preset()
    assert (cfg.preprocess.height, cfg.preprocess.width) == (256, 176)
    assert cfg.train.lr == 2e-4 and cfg.train.batch_size == 16 and cfg.train.steps == 1_800_000
    assert (
        cfg.train.l1_weight == 100 and cfg.train.gp_weight == 10 and cfg.train.label_swap_every == 3
    )


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": {"varient": "sa3"}}))
    with pytest.raises(ConfigError, match=r"bad\.json.*unknown key 'varient'"):
        MadganConfig.load_json(path)


def test_bad_values_are_errors():
    with pytest.raises(ConfigError, match="variant"):
        MadganConfig.from_dict({"model": {"variant": "sa5"}})
    with pytest.raises(ConfigError, match="multiples of 16"):
        MadganConfig.from_dict({"preprocess": {"height": 100}})
    with pytest.raises(ConfigError, match="expected an integer"):
        MadganConfig.from_dict({"train": {"steps": 1.5}})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_not_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"c\.json: not a readable JSON config"):
        MadganConfig.load_json(path)


def test_updated_applies_nested_overrides():
    cfg = paper_preset().updated({"train": {"steps": 7}, "model": {"variant": "sa7"}})
    assert cfg.train.steps == 7 and cfg.model.variant == "sa7"
