"""Phantom ages and healthy ageing, parallel simulation, and the cohort as a BIDS dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from madgan_core.cli import main
from madgan_core.cohort.phantom import generate_cohort, make_subject
from madgan_core.cohort.phantom import subject as subject_module
from madgan_core.cohort.phantom.ageing import (
    AGE_DISTRIBUTION,
    HEAD_SCALE,
    ageing_load,
    apply_ageing,
    draw_person,
    wmh_probability,
)
from madgan_core.cohort.phantom.bids_cohort import bids_label, generate_bids_cohort
from madgan_core.cohort.phantom.cohort import SUBJECTS_FILE, plan_cohort, to_image
from madgan_core.cohort.phantom.diseases import AD_STAGE_EFFECT
from madgan_core.cohort.phantom.healthy import draw_anatomy
from madgan_core.errors import ManifestError
from madgan_core.scans.bids_manifest import manifest_from_bids
from madgan_core.scans.files import save_nifti
from madgan_core.scans.manifest import read_manifest
from tests.madgan_core.test_phantom import _central_csf

VOX = 4.0
TINY = dict(healthy=2, ad=2, mets=1, various=1, seed=3, voxel_mm=VOX)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_without_ageing_no_person_reaches_the_anatomy(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ageing applied to a subject without age or sex")

    monkeypatch.setattr(subject_module, "apply_ageing", refuse)
    monkeypatch.setattr(subject_module, "paint_ageing_wmh", refuse)
    _, _, info = make_subject("ad", 2, "T1", seed=4, voxel_mm=VOX)
    assert not {"age", "sex", "ageing"} & set(info)
    plain = plan_cohort(3, 3, 1, 1, seed=2)
    assert all(p.age is None and p.sex == "" for p in plain)
    aged = plan_cohort(3, 3, 1, 1, seed=2, ageing=True)
    # Ages come from their own stream: everything else of the plan is unchanged.
    for a, b in zip(plain, aged, strict=True):
        assert (a.subject, a.seed, a.stage, a.split, a.subtype) == (
            b.subject,
            b.seed,
            b.stage,
            b.split,
            b.subtype,
        )
        assert (a.ornt is None and b.ornt is None) or np.array_equal(a.ornt, b.ornt)
        assert b.age is not None and b.sex in ("F", "M")


def test_a_cohort_without_ageing_is_the_subjects_as_before(tmp_path):
    manifest = generate_cohort(tmp_path / "c", healthy=1, ad=1, various=1, mets=0, seed=1,
                               voxel_mm=VOX, workers=1)  # fmt: skip
    header = manifest.read_text().splitlines()[0].split(",")
    assert "age" not in header and "sex" not in header
    records = [json.loads(x) for x in (tmp_path / "c" / SUBJECTS_FILE).read_text().splitlines()]
    assert all("age" not in r and "ageing" not in r for r in records)
    plan = {p.subject: p for p in plan_cohort(1, 1, 0, 1, seed=1)}
    for row in read_manifest(manifest):
        p = plan[row.subject]
        # make_subject called exactly as the cohort called it before ages existed
        volume, affine, _ = make_subject(p.group, p.stage, row.sequence, p.seed, VOX,
                                         p.subtype or None, "mni")  # fmt: skip
        expected = save_nifti(to_image(volume, affine, p.ornt), tmp_path / "e.nii.gz")
        assert row.path.read_bytes() == expected.read_bytes(), row.path.name


def test_age_and_sex_distributions():
    for group, (mean, sd, low, high) in AGE_DISTRIBUTION.items():
        people = [draw_person(group, s) for s in range(1500)]
        ages = np.array([p.age for p in people])
        assert ages.min() >= low and ages.max() <= high
        assert abs(ages.mean() - mean) < 1.0 and abs(ages.std() - sd) < 1.5
        female = np.mean([p.sex == "F" for p in people])
        assert 0.45 < female < 0.62
    assert draw_person("ad", 7) == draw_person("ad", 7)


def test_ageing_effects_grow_with_age_and_an_85_year_old_is_like_stage_2():
    assert ageing_load(68) == pytest.approx(0.0) and ageing_load(85) == pytest.approx(1.0)
    assert ageing_load(50) < -0.4 < 0 < ageing_load(75) < ageing_load(95)
    assert wmh_probability(45) == 0 < wmh_probability(70) < wmh_probability(90)
    base = draw_anatomy(np.random.default_rng(0))
    old, effects = apply_ageing(draw_anatomy(np.random.default_rng(0)), 85.0, "M",
                                np.random.default_rng(1))  # fmt: skip
    stage2 = AD_STAGE_EFFECT[2]
    pace = effects["pace"]
    grown = old.ventricle_mm - base.ventricle_mm
    shrunk = old.hippocampus_mm - base.hippocampus_mm
    assert grown == pytest.approx(stage2["ventricle_mm"] * pace, rel=1e-3)
    assert shrunk == pytest.approx(stage2["hippocampus_mm"] * pace, rel=1e-3)
    assert np.allclose(old.scale, base.scale * HEAD_SCALE["M"])
    young, _ = apply_ageing(draw_anatomy(np.random.default_rng(0)), 45.0, "F",
                            np.random.default_rng(1))  # fmt: skip
    assert young.ventricle_mm < base.ventricle_mm and young.cortical_atrophy >= 0
    assert np.allclose(young.scale, base.scale * HEAD_SCALE["F"])


def test_older_healthy_brains_look_older():
    def csf(seed: int, **kwargs) -> int:
        return _central_csf(*make_subject(seed=seed, voxel_mm=VOX, **kwargs)[:2])

    seeds = range(3)
    young = np.mean([csf(s, group="healthy", age=48.0, sex="F") for s in seeds])
    default = np.mean([csf(s, group="healthy") for s in seeds])
    old = np.mean([csf(s, group="healthy", age=85.0, sex="F") for s in seeds])
    stage2 = np.mean([csf(s, group="ad", stage=2) for s in seeds])
    assert young < default < old and old > 1.3 * young
    assert 0.7 * stage2 < old < 1.3 * stage2  # an 85-year-old is about AD stage 2


def test_white_matter_lesions_of_ageing_are_recorded_not_masked():
    for seed in range(20):
        _, _, info = make_subject("healthy", 0, "T1c", seed, VOX, age=94.0, sex="M")
        if info["ageing"]["wm_hyperintensities"]:
            break
    else:
        pytest.fail("no 94-year-old of 20 has white-matter lesions")
    assert not info["lesion_mask"].any() and info["lesions"] == []
    t1 = make_subject("healthy", 0, "T1", seed, VOX, age=94.0, sex="M")[2]
    assert t1["ageing"] == info["ageing"] and t1["anatomy"] == info["anatomy"]


def test_ageing_cohort_in_parallel_is_the_serial_cohort(tmp_path):
    ticks: list[tuple[int, int]] = []
    serial = generate_cohort(tmp_path / "serial", ageing=True, workers=1, **TINY)
    parallel = generate_cohort(tmp_path / "parallel", ageing=True, workers=2,
                               progress=lambda d, t: ticks.append((d, t)), **TINY)  # fmt: skip
    assert _files(serial.parent) == _files(parallel.parent)
    total = len(read_manifest(serial))
    assert ticks[0] == (0, total) and ticks[-1] == (total, total) and len(ticks) == total + 1
    rows = read_manifest(serial)
    assert all(r.age is not None and r.sex in ("F", "M") for r in rows)
    for r in rows:
        low, high = AGE_DISTRIBUTION[r.group][2:]
        assert low <= r.age <= high
    assert all(r.mask is None for r in rows if r.group == "healthy")
    records = [json.loads(x) for x in (serial.parent / SUBJECTS_FILE).read_text().splitlines()]
    by_scan = {r["scan"]: r for r in records}
    assert {"age", "sex", "ageing"} <= set(records[0])
    assert by_scan["healthy-000_T1"]["ageing"] == by_scan["healthy-000_T1c"]["ageing"]


def test_bids_round_trip(tmp_path, capsys):
    flat = generate_cohort(tmp_path / "flat", ageing=True, workers=1, **TINY)
    out = tmp_path / "bids"
    args = ["phantom", str(out), "--bids", "--ageing", "--workers", "2", "--no-progress"]
    args += ["--healthy", "2", "--ad", "2", "--mets", "1", "--various", "1"]
    assert main([*args, "--seed", "3", "--voxel-mm", "4"]) == 0
    assert "BIDS dataset" in capsys.readouterr().out
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]
    derived = json.loads((out / "derivatives/phantom/dataset_description.json").read_text())
    assert derived["DatasetType"] == "derivative"
    participants = json.loads((out / "participants.json").read_text())
    assert {"age", "sex", "diagnosis", "stage", "anatomy"} <= set(participants)
    assert not list(tmp_path.glob(".bids.*"))  # no staging folder left
    m = tmp_path / "m.csv"
    grouping = ["--group-column", "diagnosis", "--healthy", "healthy"]
    grouping += ["--map", "ad=ad,mets=mets,various=various", "--stage-column", "stage"]
    assert main(["manifest", str(out), "--out", str(m), *grouping, "--no-progress"]) == 0
    back = {(r.subject, r.sequence): r for r in read_manifest(m)}
    original = read_manifest(flat)
    assert len(back) == len(original)
    for r in original:
        b = back[(f"sub-{bids_label(r.subject)}", r.sequence)]
        assert (b.group, b.stage, b.age, b.sex) == (r.group, r.stage, r.age, r.sex)
        assert b.path.read_bytes() == r.path.read_bytes()
        if r.mask is not None:
            ce = "_ce-gadolinium" if r.sequence == "T1c" else ""
            label = bids_label(r.subject)
            mask = (
                out
                / f"derivatives/phantom/sub-{label}/anat/sub-{label}{ce}_desc-lesion_mask.nii.gz"
            )
            assert mask.read_bytes() == r.mask.read_bytes()
    assert sorted({r.stage for r in back.values() if r.group == "ad"}) == [1, 2]
    lines = (out / "derivatives/phantom" / SUBJECTS_FILE).read_text().splitlines()
    assert all((out / json.loads(x)["file"]).is_file() for x in lines)


def test_bids_needs_a_new_folder_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        generate_bids_cohort(taken, healthy=1, voxel_mm=VOX)
    assert main(["phantom", str(taken), "--bids", "--healthy", "1", "--no-progress"]) == 2

    from madgan_core.cohort.phantom import bids_cohort

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bids_cohort, "_write_dataset", broken)
    with pytest.raises(RuntimeError):
        generate_bids_cohort(tmp_path / "new", healthy=1, ad=0, mets=0, various=0, voxel_mm=VOX)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def _stage_dataset(root: Path, stage: str) -> Path:
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9"}))
    rows = ["participant_id\tdx\tcdr_stage", "sub-a\tCN\tn/a", f"sub-b\tAD\t{stage}"]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    for sub in ("sub-a", "sub-b"):
        (root / sub / "anat").mkdir(parents=True)
        (root / sub / "anat" / f"{sub}_T1w.nii.gz").write_bytes(b"")
    return root


def test_stage_column_integers_and_errors(tmp_path):
    options = dict(group_column="dx", healthy=("CN",), value_map={"AD": "ad"})
    rows = manifest_from_bids(_stage_dataset(tmp_path / "ok", "2"), stage_column="cdr_stage",
                              **options).rows  # fmt: skip
    assert {r.subject: r.stage for r in rows} == {"sub-a": 0, "sub-b": 2}
    plain = manifest_from_bids(tmp_path / "ok", **options).rows
    assert {r.subject: r.stage for r in plain} == {"sub-a": 0, "sub-b": 1}
    bad = _stage_dataset(tmp_path / "bad", "0.5")
    with pytest.raises(ManifestError) as err:
        manifest_from_bids(bad, stage_column="cdr_stage", **options)
    text = str(err.value)
    assert "participants.tsv" in text and "line 3" in text and "sub-b" in text and "0.5" in text
    with pytest.raises(ManifestError, match="no column 'cdr'"):
        manifest_from_bids(bad, stage_column="cdr", **options)
    out = tmp_path / "m.csv"
    args = ["manifest", str(bad), "--out", str(out), "--group-column", "dx", "--healthy", "CN"]
    assert main([*args, "--map", "AD=ad", "--stage-column", "cdr_stage", "--no-progress"]) != 0
    assert not out.exists()


def test_phantom_help_explains_the_new_options(capsys):
    with pytest.raises(SystemExit):
        main(["phantom", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--ageing" in text and "healthy ageing" in text and "68 +- 9" in text
    assert "--bids" in text and "instead of scans/" in text and "--workers" in text
