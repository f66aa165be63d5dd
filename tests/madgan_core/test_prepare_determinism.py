"""The prepare stage gives the same answer for the same scan (run twice, or stored in another
axis order), and registers clinical thick-slice heads."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from madgan_core.cohort.phantom import make_subject
from madgan_core.cohort.phantom.acquisition import crop_field_of_view, thick_slices, tilt
from madgan_core.cohort.phantom.head import wrap_in_head
from madgan_core.config import PreprocessConfig
from madgan_core.errors import ScanError
from madgan_core.prep.anatomy import register
from madgan_core.prep.slab import preprocess
from madgan_core.prep.stages import prepare_scan
from madgan_core.scans.scan import Scan

VOXEL = 3.0
# A moderate forward tilt: the fit converges in a few steps (the properties here hold at any
# angle; a 15 degree tilt makes each fit take several times longer).
TILT_DEGREES = 8.0
CFG = PreprocessConfig(height=64, width=64, pixel_mm=VOXEL, band=(0.1, 0.9), bias="n4")


@pytest.fixture(scope="module")
def head():
    """A contrast T1 head (skull on), its brain mask carried along: volume, affine, brain."""
    volume, _, info = make_subject("mets", 1, "T1c", seed=5, voxel_mm=VOXEL)
    head, affine, brain, _ = wrap_in_head(volume, {}, VOXEL, info["scanner"]["noise_sigma"], seed=5)
    return head, affine, brain


@pytest.fixture(scope="module")
def tilted_thick(head):
    volume, affine, brain = head
    acquired = tilt(volume, affine, {"brain": brain}, TILT_DEGREES, "x")
    return thick_slices(*acquired, mm=5.0)


def _stored(volume: np.ndarray, affine: np.ndarray, codes: str) -> Scan:
    """The same voxels stored in axis order ``codes`` (as a file would hold them), loaded."""
    image = nib.as_closest_canonical(nib.Nifti1Image(volume.astype(np.float32), affine))
    start = nib.orientations.io_orientation(image.affine)
    order = nib.orientations.ornt_transform(start, nib.orientations.axcodes2ornt(tuple(codes)))
    image = image.as_reoriented(order)
    return Scan.from_array(np.asarray(image.dataobj), image.affine)


@pytest.fixture(scope="module")
def ras_slab(tilted_thick):
    """The tilted thick head prepared once, as stored (RAS)."""
    volume, affine, _ = tilted_thick
    return preprocess(_stored(volume, affine, "RAS"), CFG)


def test_the_same_scan_twice_gives_the_same_mask_fit_and_slab(tilted_thick, ras_slab):
    volume, affine, _ = tilted_thick
    first = ras_slab
    second = preprocess(_stored(volume, affine, "RAS"), CFG)
    one, two = first.prepared, second.prepared
    assert one.skull is True and one.brain_mask is not None
    np.testing.assert_array_equal(one.brain_mask, two.brain_mask)
    np.testing.assert_array_equal(one.alignment.matrix, two.alignment.matrix)
    np.testing.assert_array_equal(one.scan.data, two.scan.data)  # N4 too
    np.testing.assert_array_equal(first.slices, second.slices)


def test_another_axis_order_gives_the_same_slab(tilted_thick, ras_slab):
    volume, affine, _ = tilted_thick
    slabs = {codes: preprocess(_stored(volume, affine, codes), CFG) for codes in ("LPI", "ASR")}
    slabs["RAS"] = ras_slab
    for codes in ("LPI", "ASR"):
        np.testing.assert_array_equal(
            slabs[codes].prepared.alignment.matrix, slabs["RAS"].prepared.alignment.matrix
        )
        np.testing.assert_array_equal(slabs[codes].slices, slabs["RAS"].slices)


def _squashed_affine(fixed, moving, moving_mask, rigid):
    """A diverged affine fit: the template squashed along the slice axis, as thick slices
    let it be."""
    import SimpleITK as sitk

    transform = sitk.AffineTransform(3)
    transform.SetCenter(rigid.GetCenter())
    matrix = np.array(rigid.GetMatrix()).reshape(3, 3) @ np.diag([1.1, 1.16, 1.5])
    transform.SetMatrix(matrix.ravel().tolist())
    transform.SetTranslation(rigid.GetTranslation())
    return transform, -0.5


def test_a_thick_slice_head_whose_affine_fit_diverges_is_fitted_with_one_scale(head, monkeypatch):
    volume, affine, brain = head
    cropped = crop_field_of_view(volume, affine, {"brain": brain}, bottom_mm=50.0)
    volume, affine, masks = thick_slices(*cropped, mm=6.5)
    assert volume.shape[2] < 30  # a clinical stack: few thick axial slices
    monkeypatch.setattr(register, "refine_affine", _squashed_affine)
    prepared = prepare_scan(Scan.from_array(volume, affine), CFG)
    scales = prepared.alignment.scales()
    assert prepared.skull is True and np.ptp(scales) < 1e-6  # one scale for all axes
    brain = masks["brain"]
    dice = 2 * (prepared.brain_mask & brain).sum() / (prepared.brain_mask.sum() + brain.sum())
    assert dice > 0.85


def test_a_thin_slice_head_whose_affine_fit_diverges_is_still_refused(head, monkeypatch):
    volume, affine, _ = head
    monkeypatch.setattr(register, "refine_affine", _squashed_affine)
    with pytest.raises(ScanError, match="diverged"):
        prepare_scan(Scan.from_array(volume, affine), CFG)


def test_overlapping_itk_thread_blocks_hold_one_thread_and_restore_the_default():
    import threading

    import SimpleITK as sitk

    from madgan_core.prep.anatomy.fit import FIT_THREADS, itk_threads

    default = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with itk_threads():
            first_in.set()
            second_in.wait(10)
            seen.append(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
        first_out.set()  # the first block leaves while the second is still inside

    def second():
        first_in.wait(10)
        with itk_threads():
            second_in.set()
            first_out.wait(10)
            seen.append(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == [FIT_THREADS, FIT_THREADS]
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == default
