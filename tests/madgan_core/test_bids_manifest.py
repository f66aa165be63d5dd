"""``madgan manifest``: BIDS datasets to cohort manifests (synthetic trees, empty NIfTI files)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from madgan_core.cli import main
from madgan_core.errors import ManifestError
from madgan_core.scans.bids import index_bids
from madgan_core.scans.bids_manifest import manifest_from_bids, parse_value_map
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest
from madgan_core.scans.splits import parse_fractions, split_subjects

DX = ("CN", "CN", "AD", "CN", "MCI")
# The diagnosis column read as groups, as the docs show it.
GROUPING = ("--group-column", "diagnosis", "--healthy", "CN", "--map", "AD=ad,MCI=mci")


def make_bids(root: Path, subjects: int = 10, extra_columns: bool = True) -> Path:
    """sub-00..: every third subject has two sessions; sub-01's scans are contrast-enhanced."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.9"}))
    header = ["participant_id", "age", "sex", "site", "diagnosis"]
    lines = ["\t".join(header if extra_columns else header[:1] + header[-1:])]
    for i in range(subjects):
        sub = f"sub-{i:02d}"
        fields = [sub, str(40 + 10 * (i % 4) + i % 3), "MF"[i % 2], f"s{i % 2}", DX[i % len(DX)]]
        lines.append("\t".join(fields if extra_columns else fields[:1] + fields[-1:]))
        sessions = ["ses-1", "ses-2"] if i % 3 == 0 else [""]
        for ses in sessions:
            anat = root / sub / ses / "anat"
            anat.mkdir(parents=True)
            ce = "_ce-gad" if i == 1 else ""
            name = f"{sub}{'_' + ses if ses else ''}{ce}_T1w.nii.gz"
            (anat / name).write_bytes(b"")
            (anat / name.replace(".nii.gz", ".json")).write_text("{}")
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return root


def build(root: Path, **kwargs):
    kwargs.setdefault("group_column", "diagnosis")
    kwargs.setdefault("healthy", ("CN",))
    kwargs.setdefault("value_map", {"AD": "ad", "MCI": "mci"})
    return manifest_from_bids(root, **kwargs)


def test_sessions_contrast_and_covariates(tmp_path):
    root = make_bids(tmp_path / "bids")
    built = build(root)
    rows = built.rows
    assert len(rows) == 14  # 10 subjects, 4 of them with two sessions
    by_subject = Counter(r.subject for r in rows)
    assert by_subject["sub-00"] == 2 and by_subject["sub-01"] == 1
    assert {r.sequence for r in rows if r.subject == "sub-01"} == {"T1c"}
    assert {r.sequence for r in rows if r.subject != "sub-01"} == {"T1"}
    r3 = next(r for r in rows if r.subject == "sub-03")
    assert (r3.age, r3.sex, r3.site) == (70.0, "F", "s1")
    assert {r.path.suffix for r in rows} == {".gz"}  # sidecars are not scans


def test_a_subject_without_t1_is_reported_not_listed(tmp_path):
    root = make_bids(tmp_path / "bids")
    (root / "sub-02" / "anat" / "sub-02_T1w.nii.gz").unlink()
    (root / "sub-02" / "anat" / "sub-02_T2w.nii.gz").write_bytes(b"")
    built = build(root)
    assert "sub-02" not in {r.subject for r in built.rows}
    assert built.without_t1 == ["sub-02"]


def test_value_map_and_unmapped_values(tmp_path):
    root = make_bids(tmp_path / "bids")
    groups = {r.subject: r.group for r in build(root).rows}
    assert groups["sub-00"] == "healthy" and groups["sub-02"] == "ad" and groups["sub-04"] == "mci"
    assert all(r.stage == (0 if r.group == "healthy" else 1) for r in build(root).rows)
    with pytest.raises(ManifestError) as err:
        build(root, value_map={"AD": "ad"})
    message = str(err.value)
    assert "participants.tsv" in message and "'MCI' (2 subject(s), e.g. sub-04)" in message
    assert "--drop-unmapped" in message
    built = build(root, value_map={"AD": "ad"}, drop_unmapped=True)
    assert "mci" not in {r.group for r in built.rows} and set(built.dropped) == {"sub-04", "sub-09"}
    with pytest.raises(ManifestError, match="lower-case disease group"):
        parse_value_map("AD=Alzheimer")


def test_no_group_column_means_all_healthy(tmp_path):
    root = make_bids(tmp_path / "bids")
    assert {r.group for r in manifest_from_bids(root).rows} == {"healthy"}
    with pytest.raises(ManifestError, match="no column 'dx'"):
        build(root, group_column="dx")


def test_splits_keep_sessions_together_follow_fractions_and_the_seed(tmp_path):
    root = make_bids(tmp_path / "bids", subjects=60)
    rows = build(root, seed=3).rows
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r.subject, set()).add(r.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert all(r.split == "test" for r in rows if r.group != "healthy")
    healthy = {r.subject: r for r in rows if r.group == "healthy"}
    for band in {int(r.age // 10) for r in healthy.values()} | {None}:
        members = [r for r in healthy.values() if band is None or int(r.age // 10) == band]
        counts = Counter(r.split for r in members)
        for split, fraction in (("train", 0.40), ("calib", 0.25), ("test", 0.35)):
            assert abs(counts[split] - fraction * len(members)) <= 1, (band, counts)
    assert build(root, seed=3).rows == rows
    assert [r.split for r in build(root, seed=4).rows] != [r.split for r in rows]


def test_split_subjects_stratifies():
    strata = {f"a{i}": "young" for i in range(20)} | {f"b{i}": "old" for i in range(10)}
    splits = split_subjects(strata, {"train": 0.5, "calib": 0.0, "test": 0.5}, seed=1)
    for prefix, n in (("a", 20), ("b", 10)):
        train = sum(1 for s, v in splits.items() if s.startswith(prefix) and v == "train")
        assert abs(train - n / 2) <= 1
    assert set(splits.values()) == {"train", "test"}
    assert parse_fractions("train=0.6,calib=0.2,test=0.2") == pytest.approx(
        {"train": 0.6, "calib": 0.2, "test": 0.2}
    )
    with pytest.raises(ManifestError, match="NAME=FRACTION"):
        parse_fractions("training=1")


def test_exclusions(tmp_path):
    root = make_bids(tmp_path / "bids")
    built = build(root, exclude=["sub-03", "05", "sub-00_ses-2_T1w.nii.gz"])
    subjects = Counter(r.subject for r in built.rows)
    assert "sub-03" not in subjects and "sub-05" not in subjects and subjects["sub-00"] == 1
    with pytest.raises(ManifestError, match="'sub-77'") as err:
        build(root, exclude=["sub-77"], exclude_source=tmp_path / "qc.txt")
    assert "qc.txt" in str(err.value)


@pytest.mark.parametrize(
    "breakage, names",
    [
        (
            lambda r: (r / "dataset_description.json").unlink(),
            ["dataset_description.json", "missing"],
        ),
        (lambda r: (r / "participants.tsv").unlink(), ["participants.tsv", "missing"]),
        (
            lambda r: (r / "participants.tsv").write_text("subject\tdiagnosis\nsub-00\tCN\n"),
            ["participants.tsv", "no participant_id column"],
        ),
        (lambda r: (r / "sub-99" / "anat").mkdir(parents=True), ["sub-99", "not listed in"]),
        (
            lambda r: (r / "sub-02" / "anat" / "sub-02_T1w_extra.nii.gz").write_bytes(b""),
            ["sub-02_T1w_extra.nii.gz", "malformed BIDS file name"],
        ),
        (
            lambda r: (r / "sub-02" / "anat" / "sub-05_T1w.nii.gz").write_bytes(b""),
            ["sub-05_T1w.nii.gz", "its subject is sub-05 but its folder is sub-02"],
        ),
        (
            lambda r: (r / "sub-00" / "ses-1" / "anat" / "sub-00_T1w.nii.gz").write_bytes(b""),
            ["sub-00_T1w.nii.gz", "its session is none but its folder's is 1"],
        ),
    ],
)
def test_each_validation_error_names_the_file_and_nothing_is_written(
    tmp_path, capsys, breakage, names
):
    root = make_bids(tmp_path / "bids")
    breakage(root)
    with pytest.raises(ManifestError) as err:
        index_bids(root)
    for name in names:
        assert name in str(err.value)
    out = tmp_path / "out" / "manifest.csv"
    code = main(
        [
            "manifest",
            str(root),
            "--out",
            str(out),
            *GROUPING,
            "--no-progress",
        ]
    )
    assert code == 2 and names[-1] in capsys.readouterr().err
    assert not out.parent.exists() or not any(out.parent.iterdir())  # not even a temp file


def test_cli_end_to_end(tmp_path, capsys):
    root = make_bids(tmp_path / "bids", subjects=12)
    qc = tmp_path / "qc.txt"
    qc.write_text("# failed QC\nsub-06\n")
    out = tmp_path / "manifest.csv"
    args = [
        "manifest",
        str(root),
        "--out",
        str(out),
        *GROUPING,
        "--split",
        "train=0.6,calib=0.2,test=0.2",
        "--seed",
        "7",
        "--exclude",
        str(qc),
        "--no-progress",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "healthy:" in printed and "excluded: 1" in printed
    rows = read_manifest(out)
    assert "sub-06" not in {r.subject for r in rows}
    header = out.read_text().splitlines()[0]
    assert header == "path,subject,group,stage,sequence,split,age,sex,site"
    assert rows == sorted(rows, key=lambda r: r.path) and rows[0].age == 40.0
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first  # the seed reproduces the file


def test_old_manifests_load_and_covariates_are_written_only_when_present(tmp_path):
    scan = tmp_path / "a.nii.gz"
    scan.write_bytes(b"")
    path = tmp_path / "m.csv"
    path.write_text("path,subject,group,stage,sequence,split\na.nii.gz,a,healthy,0,T1,train\n")
    (row,) = read_manifest(path)
    assert (row.age, row.sex, row.site) == (None, "", "")
    write_manifest([row], path)
    assert path.read_text().splitlines()[0] == "path,subject,group,stage,sequence,split"
    write_manifest([ManifestRow(scan, "a", "healthy", 0, "T1", "train", age=0.0)], path)
    assert read_manifest(path)[0].age == 0.0
