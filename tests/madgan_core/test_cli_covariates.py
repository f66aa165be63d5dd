"""``madgan score --age/--sex``: each given once for all scans or once per scan, checked
before the model or any scan is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from madgan_core.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_model_file) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("model") / "model.pt", step=1)


def _score(model: Path, out: Path, *flags: str) -> int:
    return main(["score", str(model), "a.nii.gz", "b.nii.gz", "--out", str(out), *flags])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--age", "70", "--age", "71", "--age", "72"),
            "--age was given 3 times for 2 scans; give it once for all scans, or once per scan",
        ),
        (
            ("--sex", "F", "--sex", "M", "--sex", "F"),
            "--sex was given 3 times for 2 scans; give it once for all scans, or once per scan",
        ),
        (("--age", "-3"), "--age -3 is not an age in years"),
        (("--age", "70", "--age", "300"), "--age 300 is not an age in years"),
    ],
)
def test_wrong_counts_or_ages_give_one_clear_error(model, tmp_path, capsys, flags, message):
    assert _score(model, tmp_path / "out", *flags) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [("--age", "old"), ("--sex", "X")])
def test_unreadable_values_are_refused_by_the_parser(model, tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exit_:
        _score(model, tmp_path / "out", *flags)
    assert exit_.value.code == 2
    assert flags[0].lstrip("-") in capsys.readouterr().err.splitlines()[-1]


def test_one_value_for_all_scans_or_one_per_scan():
    import argparse

    from madgan_core.commands.score import covariates_from

    once = covariates_from(argparse.Namespace(age=[74.0], sex=None), 2)
    assert [(c.age, c.sex) for c in once] == [(74.0, None), (74.0, None)]
    each = covariates_from(argparse.Namespace(age=[60.0, 80.0], sex=["F", "M"]), 2)
    assert [(c.age, c.sex) for c in each] == [(60.0, "F"), (80.0, "M")]
    assert covariates_from(argparse.Namespace(age=None, sex=None), 2) is None
