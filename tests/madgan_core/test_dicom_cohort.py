"""A cohort of DICOM series: manifest rows name series folders, and calibrate and evaluate read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from madgan_core.cli import main
from madgan_core.scans.manifest import ManifestRow, read_manifest, write_manifest
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import Patient, write_series

AFFINE = np.diag([-4.0, -4.0, 4.0, 1.0])


def dicom_cohort(root: Path) -> Path:
    """Four subjects as DICOM series; the last study also holds a T2 and is chosen by selector."""
    rows = []
    plan = [("healthy", "calib"), ("healthy", "calib"), ("healthy", "test"), ("ad", "test")]
    for i, (group, split) in enumerate(plan):
        study = root / f"sub{i}"
        patient = Patient(id=f"P{i}")
        write_series(synthetic_brain((40, 48, 36), seed=i), AFFINE, study / "t1", patient=patient)
        path = study
        if i == 3:
            write_series(
                synthetic_brain((40, 48, 36), seed=9),
                AFFINE,
                study / "t1c",
                patient=patient,
                description="T1 post Gd",
                series_number=2,
            )
            path = Path(f"{study}::T1 MPRAGE")
        rows.append(ManifestRow(path, f"sub{i}", group, int(group == "ad"), "T1", split))
    return write_manifest(rows, root / "manifest.csv")


def test_calibrate_and_evaluate_read_series_folders(tmp_path, capsys, tiny_model_file):
    manifest = dicom_cohort(tmp_path / "cohort")
    rows = read_manifest(manifest)
    assert rows[3].path.name == "sub3::T1 MPRAGE"
    model = tiny_model_file(tmp_path / "model.pt")
    assert main(["calibrate", str(model), "--manifest", str(manifest), "--device", "cpu"]) == 0
    out = tmp_path / "eval"
    argv = ["evaluate", str(model), "--manifest", str(manifest), "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0, capsys.readouterr().err
    lines = (out / "scores.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[2].startswith(str(rows[3].path))
    from madgan_core.model.checkpoint import load_model

    names = load_model(model, device="cpu").reference.names
    assert all(name.startswith("T1_MPRAGE-") for name in names)  # opaque series names
