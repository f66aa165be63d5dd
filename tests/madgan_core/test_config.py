from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from madgan_core.config import (
    MadganConfig,
    config_value,
    demo_preset,
    format_override,
    paper_preset,
    parse_override,
    parse_overrides,
    preset,
)
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


# ------------------------------------------------------------------ section.key=value


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("train.steps=500", "train.steps", 500),
        ("train.lr=1e-4", "train.lr", 1e-4),
        ("train.l1_weight=0", "train.l1_weight", 0.0),
        ("model.skip_top=false", "model.skip_top", False),
        ("train.compile=True", "train.compile", True),
        ("model.variant=sa3", "model.variant", "sa3"),
        ('model.variant="sa3"', "model.variant", "sa3"),
        ("preprocess.band=0,1", "preprocess.band", (0.0, 1.0)),
        ("preprocess.band=[0.1, 0.9]", "preprocess.band", (0.1, 0.9)),
        ("preprocess.slice_range=none", "preprocess.slice_range", None),
        ("preprocess.slice_range=4,20", "preprocess.slice_range", (4, 20)),
        ("train.milestones=", "train.milestones", ()),
        ("train.milestones=[10, 20, 30]", "train.milestones", (10, 20, 30)),
        ("sequence=T1c", "sequence", "T1c"),
    ],
)
def test_overrides_are_typed_by_the_fields(text, key, value):
    assert parse_override(text) == (key, value)
    assert type(parse_override(text)[1]) is type(value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("train.stpes=5", r"train\.stpes: unknown key 'stpes' in train \(known: steps, "),
        ("trian.steps=5", r"trian\.steps: unknown key 'trian' in the configuration"),
        ("train.steps=ten", r"train\.steps: expected an integer, got 'ten'"),
        ("train.lr=fast", r"train\.lr: expected a number, got 'fast'"),
        ("model.skip_top=maybe", r"model\.skip_top: expected true or false, got 'maybe'"),
        ("preprocess.band=0.5", r"preprocess\.band: expected 2 comma-separated values"),
        ("train=5", r"train: a section, not a key"),
        ("train.steps.x=5", r"train\.steps is not a section"),
        ("train.steps", r"expected section\.key=value"),
    ],
)
def test_bad_overrides_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_override(text)


def test_parse_overrides_nests_and_restricts_sections():
    assert parse_overrides(["train.steps=5", "model.gap=2", "train.steps=6"]) == {
        "train": {"steps": 6},
        "model": {"gap": 2},
    }
    assert parse_overrides(["score.top_windows=5"], sections=("score",)) == {
        "score": {"top_windows": 5}
    }
    with pytest.raises(ConfigError, match=r"model\.variant: only score\.\* settings apply"):
        parse_overrides(["model.variant=sa3"], sections=("score",))
    # values are typed, not range-checked: the config's validation does that
    with pytest.raises(ConfigError, match=r"train\.steps .* must be >= 1"):
        paper_preset().updated(parse_overrides(["train.steps=0"]))


@pytest.mark.parametrize("name", ["paper", "demo"])
def test_every_setting_round_trips_through_its_text(name):
    cfg = preset(name)
    cfg.preprocess.landmarks = tuple(float(v) for v in np.linspace(-0.8, 0.8, 9))
    for section in ("preprocess", "model", "train", "score"):
        for f in dataclasses.fields(getattr(cfg, section)):
            key = f"{section}.{f.name}"
            value = config_value(cfg, key)
            assert parse_override(format_override(key, value)) == (key, value), key


def test_preset_with_a_config_file(tmp_path):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"train": {"steps": 7}}))
    cfg = preset("demo", path)
    assert cfg.train.steps == 7 and cfg.preprocess.height == demo_preset().preprocess.height
    path.write_text(json.dumps({"train": {"steps": 0}}))
    with pytest.raises(ConfigError, match=rf"{path.name}: train\.steps"):
        preset("demo", path)
    with pytest.raises(ConfigError, match=r"nope\.json: config file not found"):
        preset("demo", tmp_path / "nope.json")
