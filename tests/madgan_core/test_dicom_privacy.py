"""Patient identifiers stay out of every output of ``madgan score`` on a DICOM series.

The series carries distinctive made-up identifiers; after scoring with every
output switched on (CSV, JSON lines, NIfTI maps, DICOM results, the report) the
test searches the captured console and log, every file name and every file's
content for them. DICOM results must carry them in the patient module (so a PACS
files them with the patient) and nowhere else.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from pathlib import Path

import numpy as np
import pydicom

from madgan_core.cli import main
from madgan_core.scans.dicom import find_series
from madgan_core.scans.dicom.naming import PATIENT_KEYWORDS
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import Patient, write_series
from tests.conftest import reference_with_zstats

PATIENT = Patient(
    name="ZQXFAMILY^ZQXGIVEN",
    id="ZQXID7731",
    birth_date="19010203",
    accession="ZQXACC9988",
)
IDENTIFIERS = ("ZQXFAMILY", "ZQXGIVEN", "ZQXID7731", "19010203", "ZQXACC9988")


def pdf_text(data: bytes) -> str:
    """The text strings drawn in a PDF's content streams (matplotlib kerns them char by char).

    Each stream is inflated from its ``stream`` keyword to the end of its zlib data, so
    binary image and font streams cannot run into the next one.
    """
    text = b""
    for start in re.finditer(rb"(?<!end)stream\r?\n", data):
        inflate = zlib.decompressobj()
        try:
            stream = inflate.decompress(data[start.end() :])
        except zlib.error:  # an uncompressed stream, up to its end
            stream = data[start.end() : data.find(b"endstream", start.end())]
        text += b"".join(re.findall(rb"\(((?:\\.|[^\\)])*)\)", stream))
    return text.decode("latin-1")


def readable_text(path: Path) -> str:
    """What a file says, as far as identifiers could hide in it."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("latin-1")
    if path.suffix == ".pdf":
        text += pdf_text(data)
    return text


def identifying_elements(path: Path) -> set[str]:
    """Keywords of the DICOM elements whose values hold an identifier (sequences included)."""
    found = set()
    for element in pydicom.dcmread(path).iterall():
        if element.VR in ("OB", "OW", "OF", "UN", "SQ"):
            continue
        if any(s in str(element.value) for s in IDENTIFIERS):
            found.add(element.keyword)
    return found


def test_score_with_every_output_keeps_identifiers_out(
    tmp_path, capsys, caplog, tiny_model_file, tiny_config
):
    study = tmp_path / "study"
    affine = np.diag([-4.0, -4.0, 4.0, 1.0])
    write_series(synthetic_brain((40, 48, 36)), affine, study / "s1", patient=PATIENT)
    size = tiny_config().preprocess
    # calibrated (flat z-statistics), so the z-map, its findings and their SEG are written
    reference = reference_with_zstats(size.height, size.width)
    model = tiny_model_file(tmp_path / "model.pt", reference=reference)
    out, dicom_out = tmp_path / "scores", tmp_path / "dicom"
    caplog.set_level(logging.DEBUG)
    argv = ["-v", "score", str(model), str(study), "--out", str(out), "--maps", "--sequence", "T1"]
    code = main([*argv, "--dicom-out", str(dicom_out), "--device", "cpu"])
    console = capsys.readouterr()
    assert code == 0, console.err
    [series] = find_series(study)
    assert series.name in console.out  # scans are named by the opaque key

    said = console.out + console.err + caplog.text
    assert not [s for s in IDENTIFIERS if s in said], said
    files = sorted(p for p in tmp_path.joinpath("scores").rglob("*") if p.is_file())
    dicom_files = sorted(p for p in dicom_out.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"scores.csv", "scores.jsonl"}
    # maps (heatmap, reconstruction, z-map, outlines), overlay, findings SEG, report
    assert len(files) == 6 and len(dicom_files) > 70
    assert any(p.name == "findings.dcm" for p in dicom_files)
    for path in files + dicom_files:
        relative = str(path.relative_to(tmp_path))
        assert not [s for s in IDENTIFIERS if s in relative], relative
        if path.suffix == ".dcm":
            assert identifying_elements(path) <= set(PATIENT_KEYWORDS), path
        else:
            text = readable_text(path)
            assert not [s for s in IDENTIFIERS if s in text], path
    report = next(p for p in dicom_files if p.name == "report.pdf")
    # the check can see drawn text (the series name itself may be set with ligatures)
    assert "MADGAN report: T1" in pdf_text(report.read_bytes())
    assert identifying_elements(dicom_files[0]) == set(PATIENT_KEYWORDS)  # filed with the patient


def test_a_description_holding_the_patient_name_is_dropped(tmp_path):
    write_series(
        synthetic_brain((20, 24, 18)),
        np.diag([2.0, 2.0, 2.0, 1.0]),
        tmp_path,
        description="T1 zqxfamily research",
        patient=PATIENT,
    )
    [series] = find_series(tmp_path)
    assert series.description == "" and series.name.startswith("series-")
    assert not [s for s in IDENTIFIERS if s.lower() in series.summary().lower()]


def test_dicom_out_refuses_nifti_inputs_before_scoring(tmp_path, capsys, tiny_model_file):
    from tests.madgan_core.test_bad_inputs import brain_scan

    model = tiny_model_file(tmp_path / "model.pt")
    scan = brain_scan(tmp_path / "scan.nii.gz")
    code = main(["score", str(model), str(scan), "--out", str(tmp_path / "o"), "--dicom-out", "x"])
    assert code == 2
    assert "--dicom-out writes results into the study of a DICOM series" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_malformed_identifiers_are_not_quoted_in_warnings(tmp_path, caplog):
    """pydicom quotes malformed values in its warnings; reading and writing back must not."""
    import warnings

    from madgan_core.outputs.dicom.export import export_dicom
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.reconstruct import copy_predictor
    from madgan_core.scoring.scorer import score_scan
    from tests.madgan_core.test_score import fake_model, small_config

    odd = Patient(name="ZQXODD^NAME", id="ZQXODDID", birth_date="19ZQXODD", accession="ZQXACC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing the malformed date warns here, in the set-up
        write_series(
            synthetic_brain((36, 40, 32)),
            np.diag([-4.0, -4.0, 4.0, 1.0]),
            tmp_path / "s",
            patient=odd,
        )
    caplog.set_level(logging.DEBUG)
    caplog.clear()  # pydicom logged the malformed date while the set-up wrote it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = load_scan(tmp_path / "s")
        result = score_scan(fake_model(small_config()), scan, predictor=copy_predictor(3))
        export_dicom(result, scan, tmp_path / "out")
    said = caplog.text + "".join(str(w.message) for w in caught)
    assert "ZQX" not in said, said
    assert find_series(tmp_path / "out")  # written, with the date as it was
