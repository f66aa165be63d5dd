"""Phantom cohorts built from real anatomies: bundled brains and T1 files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from madgan_core.cohort.phantom import anatomies, generate_cohort
from madgan_core.cohort.phantom.anatomies import anatomy_template, fit_maps, resolve
from madgan_core.cohort.phantom.template import load_template
from madgan_core.errors import ScanError
from madgan_core.scans.files import load_scan
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest

VOXEL = 4.0
COLIN27 = anatomies.BUNDLED["colin27"].file
needs_colin27 = pytest.mark.skipif(
    not COLIN27.is_file(), reason="Debian's mricron-data package (Colin27) is not installed"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(anatomies.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "anatomies"))


def _on_grid(path: Path, template) -> np.ndarray:
    """A file already in MNI space, resampled onto the phantom grid (smoothed first)."""
    img = nib.load(path)
    src = ndimage.gaussian_filter(img.get_fdata(dtype=np.float32), 0.42 * (VOXEL - 1))
    pull = np.linalg.inv(img.affine) @ template.affine
    return ndimage.affine_transform(src, pull[:3, :3], pull[:3, 3], template.shape, order=1)


@needs_colin27
def test_a_cohort_from_colin27_follows_its_anatomy(tmp_path):
    out = tmp_path / "colin"
    manifest = generate_cohort(out, 1, 0, 1, 0, seed=3, voxel_mm=VOXEL, anatomy=[str(COLIN27)])
    rows = read_manifest(manifest)
    assert {r.anatomy for r in rows} == {"ch2bet"}
    header = manifest.read_text().splitlines()[0]
    assert header.endswith(",anatomy")
    record = json.loads((out / "subjects.jsonl").read_text().splitlines()[0])
    assert record["template"] == "ch2bet" and record["anatomy_file"] == str(COLIN27)

    mni = load_template(VOXEL)
    fitted, label = anatomy_template(COLIN27, VOXEL)
    source = _on_grid(COLIN27, mni)
    healthy = load_scan(next(r.path for r in rows if r.group == "healthy" and r.sequence == "T1"))
    brain = (healthy.data > 0) & mni.mask
    r_source = np.corrcoef(healthy.data[brain], source[brain])[0, 1]
    r_mni = np.corrcoef(healthy.data[brain], mni.t1[brain])[0, 1]
    assert r_source > r_mni, (r_source, r_mni)
    # The same subject (seed, warp, scanner) built from the MNI152 resembles Colin27 less.
    from madgan_core.cohort.phantom import make_subject

    seed = json.loads((out / "subjects.jsonl").read_text().splitlines()[0])["seed"]
    from_mni = make_subject("healthy", 0, "T1", seed, VOXEL)[0]
    r_other = np.corrcoef(from_mni[brain], source[brain])[0, 1]
    assert r_source > r_other + 0.03, (r_source, r_other)

    mets = next(r for r in rows if r.group == "mets")
    lesion = load_scan(mets.mask).data > 0.5
    assert lesion.any()
    # The lesions lie in the subject's brain, i.e. Colin27's brain after a small warp.
    assert (lesion & ~load_scan(mets.path).data.astype(bool)).sum() == 0
    near = ndimage.binary_dilation(fitted.mask, iterations=1)
    assert (lesion & near).sum() >= 0.98 * lesion.sum()


@needs_colin27
def test_bundled_colin27_with_skull_is_brain_extracted():
    stripped, label = anatomy_template("colin27", VOXEL)
    head, head_label = anatomy_template("colin27-head", VOXEL)
    assert (label, head_label) == ("colin27", "colin27-head")
    both = stripped.mask & head.mask
    assert 2 * both.sum() / (stripped.mask.sum() + head.mask.sum()) > 0.9
    assert np.corrcoef(stripped.t1[both], head.t1[both])[0, 1] > 0.85
    for t in (stripped, head):  # tissue maps of a brain: white matter inside, CSF ventricles
        assert t.ventricles.sum() > 10 and t.junction.sum() > 100
        assert t.wm[t.mask].mean() > 0.2 and t.gm[t.mask].mean() > 0.2


def test_a_shifted_template_file_is_registered_back(tmp_path):
    from nilearn import datasets

    img = datasets.load_mni152_template(resolution=2)
    affine = img.affine.copy()
    affine[:3, 3] += [6.0, -8.0, 5.0]  # the same brain, elsewhere in the scanner
    path = tmp_path / "mni_moved.nii.gz"
    nib.save(nib.Nifti1Image(img.get_fdata(dtype=np.float32), affine), path)
    maps = fit_maps(path, VOXEL)
    mni = load_template(VOXEL)
    both = maps["mask"] & mni.mask
    assert 2 * both.sum() / (maps["mask"].sum() + mni.mask.sum()) > 0.95
    assert np.corrcoef(maps["t1"][both], mni.t1[both])[0, 1] > 0.95
    # Tissue labels agree with the template's priors.
    assert np.corrcoef(maps["wm"][both], mni.wm[both])[0, 1] > 0.8


def test_a_broken_or_non_brain_file_gets_one_clear_error(tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(gzip.compress(b"not a scan at all" * 100))
    with pytest.raises(ScanError, match="broken.nii.gz"):
        fit_maps(broken, VOXEL)
    x, y, z = np.ogrid[-90:90:2, -110:110:2, -90:90:2]
    ball = ((x**2 + y**2 + z**2) < 70**2).astype(np.float32) * 100.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -110, -90]
    path = tmp_path / "ball.nii.gz"
    nib.save(nib.Nifti1Image(ball, affine), path)
    with pytest.raises(ScanError, match="ball.nii.gz.*(brain|T1)"):
        fit_maps(path, VOXEL)


def test_names_files_and_missing_packages(tmp_path, monkeypatch, capsys):
    assert resolve("mni152") == ("mni", None) and resolve("head") == ("head", None)
    with pytest.raises(ValueError, match="anatomy"):
        resolve(tmp_path / "nowhere.nii.gz")
    entry = anatomies.BUNDLED["colin27"]
    missing = anatomies.BundledAnatomy("colin27", "", tmp_path / "ch2bet.nii.gz", "mricron-data")
    monkeypatch.setitem(anatomies.BUNDLED, "colin27", missing)
    with pytest.raises(FileNotFoundError, match="mricron-data"):
        resolve("colin27")
    from madgan_core.cli import main

    with pytest.raises(SystemExit):
        main(["phantom", str(tmp_path / "x"), "--anatomy", "colin27"])
    assert "mricron-data" in capsys.readouterr().err
    monkeypatch.setitem(anatomies.BUNDLED, "colin27", entry)


def test_the_default_cohort_records_no_anatomy(tmp_path):
    a = generate_cohort(tmp_path / "a", 1, 0, 0, 0, seed=1, voxel_mm=VOXEL)
    generate_cohort(tmp_path / "b", 1, 0, 0, 0, seed=1, voxel_mm=VOXEL, anatomy=["mni152"])
    assert "anatomy" not in a.read_text().splitlines()[0]
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 4  # two scans, the manifest, subjects.jsonl
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_the_manifest_keeps_the_anatomy_and_reads_old_files(tmp_path):
    scan = tmp_path / "s.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), scan)
    row = ManifestRow(scan, "s1", "healthy", 0, "T1", "train", anatomy="colin27")
    path = write_manifest([row], tmp_path / "manifest.csv")
    assert read_manifest(path)[0].anatomy == "colin27"
    old = tmp_path / "old.csv"
    old.write_text("path,subject,group,stage,sequence,split\ns.nii.gz,s1,healthy,0,T1,train\n")
    assert read_manifest(old)[0].anatomy == ""
