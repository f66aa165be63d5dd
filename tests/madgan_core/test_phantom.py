"""Phantom cohort: determinism, disease effects in the right direction, cohort layout, orientation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from madgan_core.cohort.phantom import SUBTYPES, generate_cohort, make_subject, preview_groups
from madgan_core.cohort.phantom.cohort import (
    healthy_splits,
    plan_cohort,
    random_orientation,
    to_image,
)
from madgan_core.scans.files import load_scan, save_nifti
from madgan_core.scans.manifest import read_manifest, rows_for

VOX = 4.0


def _central_csf(volume: np.ndarray, affine: np.ndarray) -> int:
    """Dark (CSF-like) voxels in the ventricle region, relative to white-matter brightness."""
    fg = volume[volume > 0]
    thr = 0.45 * np.percentile(fg, 95)
    nx, ny, nz = volume.shape
    x = affine[0, 3] + affine[0, 0] * np.arange(nx)
    y = affine[1, 3] + affine[1, 1] * np.arange(ny)
    z = affine[2, 3] + affine[2, 2] * np.arange(nz)
    box = (np.abs(x)[:, None, None] < 38) & ((y > -50) & (y < 32))[None, :, None]
    box = box & ((z > -6) & (z < 38))[None, None, :]
    return int(((volume > 0) & (volume < thr) & box).sum())


def test_same_seed_same_volume_and_different_seeds_differ():
    a, aff_a, info_a = make_subject("healthy", seed=7, voxel_mm=VOX)
    b, aff_b, _ = make_subject("healthy", seed=7, voxel_mm=VOX)
    c, _, _ = make_subject("healthy", seed=8, voxel_mm=VOX)
    assert a.dtype == np.float32 and a.shape == (50, 59, 48)
    assert np.array_equal(a, b) and np.array_equal(aff_a, aff_b)
    assert not np.array_equal(a, c)
    # Healthy subjects differ in shape, not only in noise: brain masks differ.
    assert ((a > 0) != (c > 0)).mean() > 0.005
    assert info_a["lesion_mask"].shape == a.shape and not info_a["lesion_mask"].any()


def test_t1_and_t1c_share_anatomy():
    t1, _, info1 = make_subject("healthy", sequence="T1", seed=3, voxel_mm=VOX)
    t1c, _, info2 = make_subject("healthy", sequence="T1c", seed=3, voxel_mm=VOX)
    assert info1["anatomy"] == info2["anatomy"]
    assert not np.allclose(t1, t1c)
    assert ((t1 > 0) == (t1c > 0)).mean() > 0.99


def test_ventricles_grow_with_ad_stage():
    seeds = range(3)
    csf = {
        stage: np.mean(
            [
                _central_csf(
                    *make_subject("healthy" if stage == 0 else "ad", stage, seed=s, voxel_mm=VOX)[
                        :2
                    ]
                )
                for s in seeds
            ]
        )
        for stage in (0, 1, 2, 3)
    }
    assert csf[0] < csf[2] < csf[3]
    assert csf[1] < csf[3]
    assert csf[3] > 1.5 * csf[0]


def test_metastases_have_mask_and_bright_rim():
    vol, _, info = make_subject("mets", sequence="T1c", seed=5, voxel_mm=VOX)
    mask = info["lesion_mask"]
    assert mask.any() and 1 <= len(info["lesions"]) <= 5
    brain = (vol > 0) & ~mask
    assert np.percentile(vol[mask], 95) > np.percentile(vol[brain], 99)
    for lesion in info["lesions"]:
        assert 3.0 <= lesion["radius_mm"] <= 15.0


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_various_subtypes_have_lesions(subtype):
    vol, _, info = make_subject("various", sequence="T1c", seed=1, voxel_mm=VOX, subtype=subtype)
    assert info["subtype"] == subtype and info["lesion_mask"].any()


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="group"):
        make_subject("tumour")
    with pytest.raises(ValueError, match="stage"):
        make_subject("ad", stage=4, voxel_mm=VOX)
    with pytest.raises(ValueError, match="subtype"):
        make_subject("various", subtype="glioma", voxel_mm=VOX)


def test_healthy_splits_by_fraction():
    assert healthy_splits(2, 0) == ["train", "train"]
    labels = healthy_splits(3, 0)
    assert sorted(labels) == ["calib", "test", "train"]
    labels = healthy_splits(20, 0)
    assert (labels.count("train"), labels.count("calib"), labels.count("test")) == (8, 5, 7)


def test_healthy_splits_within_each_anatomy():
    one = [p.split for p in plan_cohort(20, 0, 0, 0, seed=3) if p.group == "healthy"]
    assert one == healthy_splits(20, 3)
    plan = [p for p in plan_cohort(60, 6, 0, 0, seed=3, anatomies=3) if p.group == "healthy"]
    for a in range(3):
        own = [p.split for i, p in enumerate(plan) if i % 3 == a]
        assert (own.count("train"), own.count("calib"), own.count("test")) == (8, 5, 7)
    assert [p.split for p in plan[0::3]] != [p.split for p in plan[1::3]]
    with pytest.raises(ValueError, match="anatomies"):
        plan_cohort(3, 0, 0, 0, seed=0, anatomies=0)


def test_stages_and_subtypes_cycle_within_each_anatomy():
    single = plan_cohort(0, 6, 0, 8, seed=3)
    assert [p.stage for p in single if p.group == "ad"] == [1, 2, 3, 1, 2, 3]
    assert [p.subtype for p in single if p.group == "various"][:4] == list(SUBTYPES)
    plan = plan_cohort(0, 9, 0, 12, seed=3, anatomies=3)
    ad = [p for p in plan if p.group == "ad"]
    various = [p for p in plan if p.group == "various"]
    for a in range(3):
        assert sorted(p.stage for p in ad[a::3]) == [1, 2, 3]
        assert sorted(p.subtype for p in various[a::3]) == sorted(SUBTYPES)


def test_cohort_layout_splits_and_determinism(tmp_path):
    calls = []
    manifest = generate_cohort(
        tmp_path / "a", healthy=3, ad=3, mets=1, various=1, seed=11, voxel_mm=VOX,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    rows = read_manifest(manifest)
    assert calls[-1] == (11, 11) and len(rows) == 11
    header = manifest.read_text().splitlines()[0].split(",")
    assert header[:6] == ["path", "subject", "group", "stage", "sequence", "split"]
    healthy = rows_for(rows, group="healthy")
    assert {r.sequence for r in healthy} == {"T1", "T1c"}
    splits: dict[str, set[str]] = {}
    for r in rows:
        splits.setdefault(r.subject, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert {r.split for r in healthy} == {"train", "calib", "test"}
    assert all(r.split == "test" for r in rows if r.group != "healthy")
    assert sorted(r.stage for r in rows_for(rows, group="ad")) == [1, 2, 3]
    assert all(r.sequence == "T1" for r in rows_for(rows, group="ad"))
    assert all(
        r.sequence == "T1c" and r.mask is not None
        for r in rows_for(rows, group=("mets", "various"))
    )
    # Each scan's generation parameters, one JSON line per scan, in manifest order.
    records = [json.loads(line) for line in (manifest.parent / "subjects.jsonl").open()]
    assert [(d["subject"], d["sequence"]) for d in records] == [
        (r.subject, r.sequence) for r in rows
    ]
    for record in records:
        assert set(record["scanner"]) == {"gamma", "noise_sigma", "gain", "bias_strength"}
        assert 0.8 <= record["scanner"]["gamma"] <= 1.4
        assert {"ventricle_mm", "cortical_atrophy"} <= set(record["anatomy"])

    # Same seed -> byte-identical files, and subjects do not depend on the cohort's size.
    smaller = generate_cohort(
        tmp_path / "b", healthy=1, ad=2, mets=0, various=1, seed=11, voxel_mm=VOX
    )
    twins = read_manifest(smaller)
    assert len(twins) == 5
    for r in twins:
        original = manifest.parent / r.path.relative_to(smaller.parent)
        assert original.read_bytes() == r.path.read_bytes()

    png = preview_groups(manifest, tmp_path / "preview.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_permuted_orientation_loads_like_ras(tmp_path):
    vol, affine, _ = make_subject("healthy", seed=2, voxel_mm=VOX)
    ornt = random_orientation(np.random.default_rng(0))
    ras = save_nifti(to_image(vol, affine, None), tmp_path / "ras.nii.gz")
    other = save_nifti(to_image(vol, affine, ornt), tmp_path / "other.nii.gz")
    a, b = load_scan(ras), load_scan(other)
    assert b.native_shape != a.native_shape or not np.allclose(b.native_affine, a.native_affine)
    assert np.array_equal(a.data, b.data)
    assert np.allclose(a.affine, b.affine)
    assert np.array_equal(a.data, vol)


def test_cli_writes_cohort_and_preview(tmp_path):
    from madgan_core.cli import main

    out = tmp_path / "cohort"
    code = main(["phantom", str(out), "--healthy", "1", "--ad", "0", "--mets", "1", "--various", "0",
                 "--voxel-mm", "4", "--seed", "3", "--preview"])  # fmt: skip
    assert code == 0
    assert len(read_manifest(out / "manifest.csv")) == 3
    assert (out / "preview.png").is_file()
