"""Phantom brains wrapped in pydeface's average head, and the head's own brain as a second anatomy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from madgan_core.cohort.phantom import head as head_module
from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.head import average_head, head_grid, head_template, wrap_in_head
from madgan_core.cohort.phantom.template import load_template
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import read_manifest

VOXEL = 4.0


def test_average_head_is_a_whole_head():
    volume, affine = average_head()
    assert volume.shape == (176, 256, 256)
    assert np.allclose(np.linalg.norm(affine[:3, :3], axis=0), [1.0, 0.977, 0.977], atol=0.01)
    assert (volume > 0.05 * volume.max()).mean() > 0.2  # tissue far beyond a brain's share


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(head_module, "HEAD_PACKAGE", "no_such_head_package")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps pydeface==2.1.0"):
        average_head.__wrapped__()


@pytest.fixture(scope="module")
def wrapped():
    volume, affine, info = make_subject("mets", 1, "T1c", seed=5, voxel_mm=VOXEL)
    masks = {"lesion": info["lesion_mask"]}
    out = wrap_in_head(volume, masks, VOXEL, info["scanner"]["noise_sigma"], seed=5)
    return volume, affine, info, out


def test_wrapped_head_has_tissue_outside_the_brain(wrapped):
    volume, _, _, (head, _, brain, _) = wrapped
    assert head.shape != volume.shape and head.shape == brain.shape
    wm = np.percentile(volume[volume > 0], 90)
    outside = head[~brain]
    # Scalp, skull marrow, muscle and fat: several times the brain's volume in bright tissue.
    assert (outside > 0.4 * wm).sum() > 2 * brain.sum() * 0.3
    # Straight above the brain: dark CSF, then bright scalp, then air.
    x, y = np.argwhere(brain).mean(axis=0)[:2].round().astype(int)
    top = np.flatnonzero(brain[x, y])[-1]
    column = head[x, y, top + 1 :]
    assert column[:1].max() < 0.6 * wm
    assert column.max() > 0.5 * wm


def test_brain_mask_is_the_inserted_brain(wrapped):
    volume, affine, _, (head, head_affine, brain, _) = wrapped
    grid = head_grid(VOXEL)
    assert np.array_equal(brain[grid.brain_slices], volume > 0)
    assert brain.sum() == (volume > 0).sum()
    assert np.array_equal(head[grid.brain_slices][volume > 0], volume[volume > 0])
    # Same world: the phantom grid is a window of the head grid.
    start = np.array([s.start for s in grid.brain_slices], dtype=float)
    assert np.allclose(head_affine[:3, :3] @ start + head_affine[:3, 3], affine[:3, 3])
    assert np.allclose(head_affine[:3, :3], affine[:3, :3])


def test_lesion_mask_stays_on_the_lesion(wrapped):
    volume, _, info, (head, head_affine, brain, masks) = wrapped
    lesion = masks["lesion"]
    assert lesion.sum() == info["lesion_mask"].sum() > 0
    assert not (lesion & ~brain).any()
    inv = np.linalg.inv(head_affine)
    for spec in info["lesions"]:
        vox = np.round(inv[:3, :3] @ np.asarray(spec["centre_mm"]) + inv[:3, 3]).astype(int)
        near = lesion[tuple(slice(max(v - 2, 0), v + 3) for v in vox)]
        assert near.any(), spec


def test_head_template_is_another_brain_on_the_same_grid():
    mni = load_template(VOXEL)
    other = head_template(VOXEL)
    assert other.t1.shape == mni.t1.shape and np.array_equal(other.mask, mni.mask)
    a, b = mni.t1[mni.mask], other.t1[mni.mask]
    r = np.corrcoef(a, b)[0, 1]
    assert 0.3 < r < 0.95  # a brain in the same place, not the same brain
    assert abs(np.median(a) - np.median(b)) < 0.05  # tissue levels matched
    vol_mni, _, _ = make_subject("healthy", seed=2, voxel_mm=VOXEL)
    vol_head, _, info = make_subject("healthy", seed=2, voxel_mm=VOXEL, anatomy="head")
    assert info["template"] == "head" and not np.allclose(vol_mni, vol_head)
    with pytest.raises(ValueError, match="anatomy"):
        make_subject("healthy", voxel_mm=VOXEL, anatomy="mars")


def test_cli_writes_a_head_cohort_with_variants(tmp_path):
    from madgan_core.cli import main

    out = tmp_path / "heads"
    code = main(["phantom", str(out), "--healthy", "1", "--ad", "0", "--mets", "1", "--various", "0",
                 "--voxel-mm", "4", "--seed", "2", "--head", "--anatomy", "head",
                 "--variant", "thick8", "--variant", "tilt10", "--no-progress"])  # fmt: skip
    assert code == 0
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 3 and all(r.brain_mask is not None for r in rows)
    assert "brain_mask" in (out / "manifest.csv").read_text().splitlines()[0]
    mets = next(r for r in rows if r.group == "mets")
    scan, brain, lesion = (load_scan(p) for p in (mets.path, mets.brain_mask, mets.mask))
    assert np.allclose(np.linalg.norm(scan.affine[:3, :3], axis=0), [4.0, 4.0, 8.0])
    for m in (brain, lesion):
        assert m.data.shape == scan.data.shape and np.allclose(m.affine, scan.affine)
    assert lesion.data.any() and not (lesion.data > 0.5)[brain.data < 0.5].any()
    assert scan.data[brain.data < 0.5].max() > 0.5 * np.percentile(scan.data[brain.data > 0.5], 90)
    record = json.loads((out / "subjects.jsonl").read_text().splitlines()[0])
    assert record["head"] and record["template"] == "head"
    assert record["variants"] == ["thick8", "tilt10"]


def test_cli_refuses_an_unknown_variant(tmp_path, capsys):
    from madgan_core.cli import main

    with pytest.raises(SystemExit):
        main(["phantom", str(tmp_path / "x"), "--variant", "blur3"])
    assert "unknown acquisition variant" in capsys.readouterr().err
