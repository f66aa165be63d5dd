"""``--anatomy all``: every distinct bundled brain installed, and only those."""

from __future__ import annotations

import dataclasses

import pytest

from madgan_core.cohort.phantom import anatomies
from madgan_core.commands.phantom import anatomy_argument


def test_all_is_every_distinct_installed_brain():
    found = anatomies.available()
    assert found[0] == "mni"
    assert set(found) <= set(anatomies.DISTINCT)
    assert "colin27-head" not in found  # the same person as colin27
    assert anatomies.expand(["all"]) == found
    assert anatomies.expand(["mni", "all", "mni"]) == found


def test_all_leaves_out_a_brain_whose_package_is_missing(monkeypatch, tmp_path, caplog):
    missing = dataclasses.replace(anatomies.BUNDLED["colin27"], file=tmp_path / "absent.nii.gz")
    monkeypatch.setitem(anatomies.BUNDLED, "colin27", missing)
    assert "colin27" not in anatomies.available()
    assert "mricron-data" in caplog.text


def test_all_is_accepted_on_the_command_line_and_expanded_before_use():
    assert anatomy_argument("all") == "all"
    with pytest.raises(ValueError, match="expand"):
        anatomies.resolve("all")
