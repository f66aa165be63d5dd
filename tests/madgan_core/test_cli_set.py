"""``--set section.key=value`` on every command that uses a section's settings."""

from __future__ import annotations

import argparse
import csv

import pytest

from madgan_core.cli import build_parser, main
from madgan_core.model.checkpoint import load_model
from tests.madgan_core.test_interrupted import tiny_cohort

# The sections each command takes with --set; None: any section.
TAKES_SET = {"train": None, "score": ("score",), "calibrate": ("score",), "evaluate": ("score",)}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_set_is_on_the_commands_that_use_settings_and_only_those():
    takes = {
        name
        for name, sub in _subparsers().items()
        if any("--set" in a.option_strings for a in sub._actions)
    }
    assert takes == set(TAKES_SET)


@pytest.mark.parametrize("command", ["score", "calibrate", "evaluate"])
def test_scoring_commands_refuse_other_sections(command, capsys):
    argv = [command, "m.pt", *(["s.nii"] if command == "score" else ["--manifest", "m.csv"])]
    assert main([*argv, "--set", "train.steps=5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"madgan {command}: error: ") and "only score.* settings" in err


def _top10(out) -> list[str]:
    with open(out / "scores.csv", newline="") as handle:
        return [row["madgan:top10"] for row in csv.DictReader(handle)]


def test_evaluate_scores_with_set_and_names_a_bad_key(tmp_path, tiny_model_file, capsys):
    manifest = tiny_cohort(tmp_path / "data")
    model = tiny_model_file(tmp_path / "model.pt")
    before = model.read_bytes()
    out = tmp_path / "eval"
    argv = ["evaluate", str(model), "--manifest", str(manifest), "--out", str(out)]
    argv += ["--device", "cpu", "--precision", "fp32", "--no-progress"]

    assert main(argv) == 0
    default = _top10(out)
    # The same folder again: the table of other score settings is not reused.
    assert main([*argv, "--set", "score.top_windows=1"]) == 0
    one = _top10(out)
    assert len(one) == len(default) and one != default
    assert main([*argv, "--set", "score.top_windows=10"]) == 0
    assert _top10(out) == default  # 10 is the model's own value
    assert model.read_bytes() == before  # evaluate leaves the model file alone
    assert load_model(model, "cpu").config.score.top_windows == 10
    capsys.readouterr()

    assert main([*argv, "--set", "score.top_windowz=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("error") == 1 and err.startswith("madgan evaluate: error: ")
    assert "unknown key 'top_windowz' in score" in err
