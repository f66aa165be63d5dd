"""Results written back as DICOM: new series of the source's study, on its frame of reference."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pydicom
import pytest

from madgan_core.errors import MadganError, ScanError
from madgan_core.outputs.dicom.export import export_dicom, overlay_rgb, region_edges
from madgan_core.scans.dicom import load_series
from madgan_core.scans.files import load_scan
from madgan_core.scans.scan import Scan
from madgan_core.scoring.findings import label_regions
from madgan_core.scoring.reconstruct import copy_predictor
from madgan_core.scoring.scorer import score_scan
from madgan_testing.brains import synthetic_brain
from madgan_testing.dicom_series import write_series
from tests.madgan_core.dicom_cases import AXIAL, OBLIQUE, SAGITTAL
from tests.madgan_core.test_score import fake_model, small_config

PDF = b"%PDF-1.4\n% a stand-in report\n%%EOF\n"


def scored(scan: Scan):
    """A quick score with maps (the copy-slice predictor), plus a made-up z-map and its
    findings (regions above a made-up threshold)."""
    result = score_scan(fake_model(small_config()), scan, predictor=copy_predictor(3), maps=True)
    zmap = np.where(result.foreground, np.nan_to_num(result.heatmap) * 40.0, np.nan)
    threshold = float(np.nanpercentile(zmap, 97))
    findings, labels = label_regions(zmap, scan.affine, threshold, min_volume_ml=0.0)
    assert len(findings) >= 2
    return dataclasses.replace(
        result,
        zmap=zmap.astype(np.float32),
        findings=findings,
        finding_labels=labels.astype(np.uint8),
    )


@pytest.fixture(scope="module", params=["axial", "oblique", "sagittal-multiframe"])
def case(request, tmp_path_factory):
    """A phantom series read from DICOM, and its score (once per orientation)."""
    affine = {"axial": AXIAL, "oblique": OBLIQUE, "sagittal-multiframe": SAGITTAL}[request.param]
    folder = tmp_path_factory.mktemp("study")
    write_series(
        synthetic_brain((36, 40, 32)),
        affine,
        folder,
        multiframe=request.param.endswith("multiframe"),
    )
    scan = load_scan(folder)
    result = scored(scan)
    return scan, result, export_dicom(result, scan, tmp_path_factory.mktemp("out"), report_pdf=PDF)


@pytest.fixture
def source(case) -> Scan:
    return case[0]


@pytest.fixture
def result(case):
    return case[1]


@pytest.fixture
def written(case):
    return case[2]


def test_maps_overlay_and_report_are_new_series_of_the_study(source, result, written):
    assert written.folder.name == source.name
    assert set(written.series) == {"heatmap", "zmap", "overlay", "findings", "report"}
    n = source.native_shape[2]
    assert [len(written.series[k]) for k in ("heatmap", "zmap", "overlay")] == [n, n, n]
    src = source.dicom
    series_uids, sop_uids = set(), set()
    for path in written.files:
        if path.suffix == ".pdf":
            assert path.read_bytes() == PDF
            continue
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == src.study_uid
        assert ds.PatientID == src.headers[0].PatientID  # filed with the patient's study
        assert ds.SeriesInstanceUID != src.series_uid
        series_uids.add(ds.SeriesInstanceUID)
        sop_uids.add(ds.SOPInstanceUID)
        if "PixelData" in ds:
            assert ds.FrameOfReferenceUID == src.frame_of_reference_uid
    assert len(series_uids) == 5 and len(sop_uids) == len(written.files) - 1


def test_the_overlay_series_outlines_the_findings(source, result, written):
    # one file per source slice, in order; pixels are (rows, columns) = (j, i)
    frames = [pydicom.dcmread(path).pixel_array for path in written.series["overlay"]]
    white = np.stack([f.transpose(1, 0, 2) for f in frames], axis=2).min(axis=-1) == 255
    native = source.to_native(result.finding_labels)
    on_edge = region_edges(native)  # within each source slice, whatever its plane
    inside = (native > 0) & ~on_edge
    assert on_edge.any()
    assert white[on_edge].all() and not white[inside].any()


def test_findings_are_a_segmentation_of_the_source_frames(source, result, written):
    import highdicom as hd

    [path] = written.series["findings"]
    seg = hd.seg.segread(path)
    src = source.dicom
    assert seg.StudyInstanceUID == src.study_uid
    assert seg.FrameOfReferenceUID == src.frame_of_reference_uid
    assert seg.PatientID == src.headers[0].PatientID
    assert seg.SeriesNumber == 9905 and seg.SeriesInstanceUID != src.series_uid
    numbers = seg.get_segment_numbers()
    assert numbers == [f.rank for f in result.findings]
    labels = [seg.get_segment_description(n).SegmentLabel for n in numbers]
    assert labels[0].startswith(f"Finding 1: {result.findings[0].volume_ml:.1f} mL")
    # each source frame's mask is the label volume's slice there
    native = source.to_native(result.finding_labels)
    options = {"combine_segments": True, "assert_missing_frames_are_empty": True}
    for k, ref in enumerate(src.slices):
        if ref.frame is None:
            pixels = seg.get_pixels_by_source_instance([ref.sop_instance_uid], **options)
        else:
            pixels = seg.get_pixels_by_source_frame(ref.sop_instance_uid, [ref.frame], **options)
        np.testing.assert_array_equal(pixels[0], native[:, :, k].T)


def test_the_segmentation_is_no_scan_to_score(written):
    with pytest.raises(ScanError, match="is a Segmentation Storage object .* not a scan"):
        load_scan(written.series["findings"][0])


def test_a_source_without_patient_attributes_still_gets_its_segmentation(source, result, tmp_path):
    import highdicom as hd

    anonymised = []
    for header in source.dicom.headers:
        header = copy.deepcopy(header)
        for keyword in ("PatientName", "PatientID", "StudyID", "AccessionNumber", "StudyDate"):
            if keyword in header:
                delattr(header, keyword)
        anonymised.append(header)
    scan = dataclasses.replace(
        source, dicom=dataclasses.replace(source.dicom, headers=tuple(anonymised))
    )
    [path] = export_dicom(result, scan, tmp_path).series["findings"]
    seg = hd.seg.segread(path)
    assert seg.PatientID == "" and seg.get_segment_numbers() == [f.rank for f in result.findings]
    assert "PatientID" not in scan.dicom.headers[0]  # the source's headers are left alone


def test_a_refused_segmentation_leaves_the_other_series(
    source, result, tmp_path, monkeypatch, caplog
):
    import madgan_core.outputs.dicom.export as export

    patient = str(source.dicom.headers[0].PatientID)

    def refuse(*args, **kwargs):
        raise ValueError(f"bad value {patient!r}")

    monkeypatch.setattr(export, "write_findings_seg", refuse)
    written = export_dicom(result, source, tmp_path, report_pdf=PDF)
    assert set(written.series) == {"heatmap", "zmap", "overlay", "report"}
    assert "not written as a DICOM Segmentation (ValueError" in caplog.text
    assert patient not in caplog.text  # the reason quoted the header: withheld


def test_no_finding_writes_no_segmentation(source, result, tmp_path):
    none = dataclasses.replace(
        result, findings=[], finding_labels=np.zeros_like(result.finding_labels)
    )
    written = export_dicom(none, source, tmp_path)
    assert "findings" not in written.series and not (written.folder / "findings.dcm").exists()


def test_map_series_reads_back_on_the_source_grid(source, result, written):
    for kind, volume in (("heatmap", result.heatmap), ("zmap", result.zmap)):
        back = load_series(written.folder / kind)  # our reader, through the files' geometry
        np.testing.assert_allclose(back.affine, source.affine, atol=1e-4)
        expected = np.nan_to_num(volume)
        tolerance = np.abs(expected).max() / 32000.0  # one step of the 16-bit storage
        np.testing.assert_allclose(back.data, expected, atol=tolerance)
        assert back.dicom.frame_of_reference_uid == source.dicom.frame_of_reference_uid


def test_outputs_read_back_with_simpleitk_on_the_source_frame(source, result, written):
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    heat = reader.GetGDCMSeriesFileNames(str(written.folder / "heatmap"))
    reader.SetFileNames(heat)
    image = reader.Execute()
    native = source.native_affine
    for index in [(0, 0, 0), (35, 39, 31), (3, 20, 9)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose((native @ [*index, 1.0])[:3], lps * [-1, -1, 1], atol=1e-3)
    values = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    expected = source.to_native(np.nan_to_num(result.heatmap))
    np.testing.assert_allclose(values, expected, atol=np.abs(expected).max() / 32000.0)
    k = 7
    overlay = sitk.ReadImage(str(written.series["overlay"][k]))
    assert overlay.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_allclose(
        overlay.GetOrigin(), (native @ [0, 0, k, 1.0])[:3] * [-1, -1, 1], atol=1e-3
    )
    rgb = pydicom.dcmread(written.series["overlay"][k]).pixel_array
    assert rgb.shape == (source.native_shape[1], source.native_shape[0], 3)


def test_each_slice_references_its_source_image(source, result, written):
    by_uid = {}
    for path, header in zip(source.dicom.files, source.dicom.headers, strict=True):
        by_uid[header.SOPInstanceUID] = path
    for path in written.series["heatmap"][::5]:
        ds = pydicom.dcmread(path)
        [ref] = ds.SourceImageSequence
        src = pydicom.dcmread(by_uid[ref.ReferencedSOPInstanceUID])
        if "ReferencedFrameNumber" in ref:  # a frame of the enhanced source
            frame = src.PerFrameFunctionalGroupsSequence[ref.ReferencedFrameNumber - 1]
            position = frame.PlanePositionSequence[0].ImagePositionPatient
        else:
            position = src.ImagePositionPatient
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], [float(v) for v in position], atol=1e-3
        )


def test_report_is_encapsulated_pdf(source, result, written):
    dcm, pdf = written.series["report"]
    ds = pydicom.dcmread(dcm)
    assert ds.SOPClassUID.name == "Encapsulated PDF Storage"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(ds.EncapsulatedDocument)[: len(PDF)] == PDF
    assert pdf.name == "report.pdf" and not list(written.folder.rglob(".*"))


def test_overlay_blends_jet_only_where_there_is_a_value():
    scan = np.linspace(0, 100, 4 * 4 * 2).reshape(4, 4, 2)
    heat = np.full(scan.shape, np.nan)
    heat[1, 1, 0] = 6.0
    rgb = overlay_rgb(scan, heat, (0.0, 6.0))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 2, 3)
    gray = rgb[0, 0, 0]
    assert gray[0] == gray[1] == gray[2]
    hot = rgb[1, 1, 0].astype(int)
    assert hot[0] > hot[2]  # top of jet is red


def test_region_edges_are_taken_within_each_slice():
    labels = np.zeros((9, 9, 3), np.uint8)
    labels[2:7, 2:7, :] = 1  # a 5 x 5 square through every slice
    labels[5:7, 5:7, 1] = 2  # a second finding against it, on the middle slice
    edges = region_edges(labels)
    for k in (0, 2):  # whole squares: only their rim, though the region ends there
        assert edges[..., k].sum() == 16 and not edges[3:6, 3:6, k].any()
    assert edges[2, 2:7, 1].all() and edges[2:7, 2, 1].all()  # the first one's edge
    assert edges[4, 4, 1]  # and where it meets the second
    assert not edges[3, 3, 1] and not edges[0, 0, 1]
    assert edges[5:7, 5:7, 1].all()


def test_only_dicom_scans_can_be_written_back(tmp_path):
    scan = Scan.from_array(synthetic_brain((20, 24, 18)))
    with pytest.raises(MadganError, match="only for a scan read from a DICOM series"):
        export_dicom(scored(scan), scan, tmp_path)
