"""Regenerate docs/images/*.png: real napari windows with the MADGAN widgets.

Usage::

    python scripts/screenshots.py --model OUT/model.pt [--out docs/images]

Without a display it re-runs itself under ``xvfb-run``. It makes:

* ``review.png``: a metastasis phantom (2 mm) opened from File → Open Sample and scored
  from Plugins → MADGAN review: the anomaly headline, the z-map overlay, the findings
  table with its first row clicked, and the per-slice plot (needs a calibrated model);
* ``review_ad.png``: the AD stage-3 phantom the same way;
* ``review_mean.png``: the metastasis phantom with the paper's mean ℓ2 headline and
  the ℓ2 heatmap;
* ``training.png``: the training dialog in the middle of a tiny run (two healthy
  phantoms, a tiny config), with live curves and the latest preview;
* ``dicom_review.png`` and ``dicom_series_dialog.png``: a metastasis phantom written
  as a DICOM study (with a localizer and a second series), the series dialog, and
  the series opened through the reader and reviewed.
* ``real_head.png``: pydeface's average head (1 mm, skull and face on), opened as a
  file and reviewed: the brain extracted and outlined, the domain guard's reading;
* ``real_head_lesion.png``: a metastasis phantom wrapped in that head (skull on);
* ``real_mni_thick.png``: the MNI152 template with a 1 cm mass, acquired as 5 mm
  axial slices (``--only real`` makes these three);
* ``review_bundled.png`` (``--only bundled``; no ``--model``): the metastasis phantom
  reviewed with no model chosen, so the bundled model scores;
* ``real_colin27.png`` (``--only individual``): Colin27, one real person's healthy T1
  with skull and face on (Debian's ``mricron-data``), opened as a file and reviewed
  with a model that never saw that brain (give it with ``--model``).
* ``review_adjusted.png`` (``--only adjusted --scan FILE --age YEARS --sex F|M
  [--headline MODE]``): a
  scan opened as a file and reviewed with its person's age and sex entered, so the
  percentile is against controls of that age and sex (a model calibrated on controls
  with ages, e.g. ``studies/age_confound.py``'s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The DICOM fixtures (madgan_testing) live at the repository root and are not installed.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WINDOW = (1600, 1000)
TINY_TRAIN = {
    "preprocess": {"height": 64, "width": 64, "pixel_mm": 3.0},
    "model": {"base_channels": 8, "critic_channels": 8},
    "train": {"log_every": 1, "preview_every": 2, "checkpoint_every": 1000, "num_workers": 0},
}


def wait_for(condition, timeout: float, what: str) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.05)


def settle(seconds: float = 0.5) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


SAMPLES = {"mets": "phantom metastasis", "ad": "phantom AD stage 3"}


def review_shot(
    model: Path | None,
    out: Path,
    mode: str = "auto",
    name: str = "review.png",
    sample: str = "mets",
) -> Path:
    """The user's path: File → Open Sample, Plugins → MADGAN review, Run; then the first
    finding (or the most anomalous slice) is clicked. ``model`` None: no model is chosen,
    so the bundled one scores."""
    import napari

    viewer = napari.Viewer(title="napari-madgan: review")
    viewer.window.resize(*WINDOW)
    viewer.open_sample("napari-madgan", sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-madgan", "MADGAN review")
    widget.reader_offer.setVisible(False)  # the one-time offer is not part of the review
    widget.set_scan_layer(SAMPLES[sample])
    if model is not None:
        widget.set_model_path(model, remember=False)
    widget.set_score_mode(mode)
    return run_and_shoot(viewer, widget, out / name)


def run_and_shoot(viewer, widget, path: Path, timeout: float = 600) -> Path:
    """Run, then click the first finding (under a z-map headline) or go to the most
    anomalous slice, and save the window."""
    widget.form.run_button.native.click()
    wait_for(lambda: not widget.controller.running, timeout, "scoring")
    if widget.result is None:
        raise RuntimeError(f"scoring failed: {widget.status_text}")
    viewer.reset_view()
    if widget.results.findings_table.rowCount() and widget.headline() != "mean":
        widget.results.findings_table.cellClicked.emit(0, 0)
    elif widget.results.top_list.count():
        widget.go_to_slice(int(widget.results.top_list.item(0).data(0x0100)))
    settle(1.0)
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    viewer.close()
    return path


def file_shot(
    model: Path,
    scan_path: Path,
    out: Path,
    name: str,
    sequence: str,
    covariates: tuple[float, str | None] | None = None,
    mode: str | None = None,
) -> Path:
    """The user's path for a file: File → Open (our reader), Plugins → MADGAN review, Run;
    then the first finding (or the most anomalous slice) is clicked. ``covariates``: the
    person's age and sex, entered in the widget; ``mode``: the headline."""
    import napari

    viewer = napari.Viewer(title="napari-madgan: review")
    viewer.window.resize(*WINDOW)
    viewer.open(str(scan_path), plugin="napari-madgan")
    _, widget = viewer.window.add_plugin_dock_widget("napari-madgan", "MADGAN review")
    widget.reader_offer.setVisible(False)
    widget.set_scan_layer(viewer.layers[0].name)
    widget.set_model_path(model, remember=False)
    widget.set_sequence(sequence)
    if covariates is not None:
        widget.set_covariates(*covariates)
    if mode is not None:
        widget.set_score_mode(mode)
    return run_and_shoot(viewer, widget, out / name)


def real_scans(folder: Path) -> dict[str, Path]:
    """pydeface's average head as installed, a metastasis phantom in that head, and the
    MNI152 template with a mass at 5 mm slices, as NIfTI files in ``folder``."""
    from importlib.resources import files

    import nibabel as nib
    import numpy as np
    from nilearn.datasets import load_mni152_template

    from madgan_core.cohort.phantom import make_subject
    from madgan_core.cohort.phantom.acquisition import thick_slices
    from madgan_core.cohort.phantom.head import HEAD_FILE, HEAD_PACKAGE, wrap_in_head

    head = folder / "average_head.nii.gz"
    shutil.copyfile(str(files(HEAD_PACKAGE) / "data" / HEAD_FILE), head)
    volume, _, info = make_subject("mets", 1, "T1c", seed=4, voxel_mm=2.0)
    wrapped, affine, _, _ = wrap_in_head(volume, {}, 2.0, info["scanner"]["noise_sigma"], seed=4)
    lesion = folder / "mets_in_head.nii.gz"
    nib.save(nib.Nifti1Image(wrapped, affine), lesion)
    template = load_mni152_template(resolution=1)
    t1 = np.asarray(template.get_fdata(), np.float32)
    ijk = np.indices(t1.shape).reshape(3, -1).T
    world = ijk @ template.affine[:3, :3].T + template.affine[:3, 3]
    mass = (np.linalg.norm(world - (30.0, -10.0, 20.0), axis=1) <= 5.0).reshape(t1.shape)
    t1[mass & (t1 > 0)] = 0.35 * float(np.percentile(t1[t1 > 0], 90))
    thick = thick_slices(t1, template.affine, {}, mm=5.0)
    mni = folder / "mni152_mass_5mm.nii.gz"
    nib.save(nib.Nifti1Image(thick.volume, thick.affine), mni)
    return {"head": head, "lesion": lesion, "mni": mni}


def real_shots(model: Path, out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        scans = real_scans(Path(tmp))
        return [
            file_shot(model, scans["head"], out, "real_head.png", "T1"),
            file_shot(model, scans["lesion"], out, "real_head_lesion.png", "T1c"),
            file_shot(model, scans["mni"], out, "real_mni_thick.png", "T1"),
        ]


COLIN27_HEAD = Path("/usr/share/mricron/templates/ch2.nii.gz")


def individual_shot(model: Path, out: Path, name: str = "real_colin27.png") -> Path:
    """Colin27 with its skull, as a user opens a scan of their own."""
    if not COLIN27_HEAD.is_file():
        raise FileNotFoundError(f"{COLIN27_HEAD}: install Debian's mricron-data package")
    return file_shot(model, COLIN27_HEAD, out, name, "T1")


def adjusted_shot(
    model: Path,
    scan_path: Path,
    out: Path,
    age: float,
    sex: str | None,
    sequence: str = "T1",
    mode: str = "auto",
) -> Path:
    """A scan reviewed with its person's age and sex entered in the widget, ``mode`` the
    headline."""
    return file_shot(model, scan_path, out, "review_adjusted.png", sequence, (age, sex), mode)


def dicom_study(folder: Path) -> Path:
    """A metastasis phantom as a DICOM study: a T1c series, a T2-like series and a localizer."""
    from madgan_core.cohort.phantom import make_subject
    from madgan_testing.dicom_series import Patient, write_series

    volume, affine, _ = make_subject("mets", voxel_mm=2.0)
    patient = Patient()
    slope = float(volume.max()) * 2 / 30000
    for number, (description, data) in enumerate(
        [
            ("localizer", volume[:, :, 40:41]),
            ("T1 post Gd", volume),
            ("T2 TSE", volume.max() - volume),
        ],
        start=1,
    ):
        write_series(
            data,
            affine,
            folder / f"series{number}",
            description=description,
            series_number=number,
            patient=patient,
            slope=slope,
        )
    return folder


def dicom_shot(model: Path, out: Path) -> list[Path]:
    import napari
    import numpy as np

    from madgan_core.scans.dicom import default_choice, find_series
    from napari_madgan import _series_dialog

    work = Path(tempfile.mkdtemp(prefix="madgan_dicom_shot_"))
    viewer = napari.Viewer(title="napari-madgan: DICOM study")  # the Qt application first
    viewer.window.resize(*WINDOW)
    try:
        study = dicom_study(work / "study")
        series = find_series(study)
        dialog = _series_dialog.SeriesDialog(series, default_choice(series))
        dialog.show()
        settle(0.5)
        dialog_path = out / "dicom_series_dialog.png"
        dialog.grab().save(str(dialog_path))
        dialog.close()
        # The reader asks the same dialog; answer it as a user would: open the T1c series.
        _series_dialog.ask_series = lambda offered, default: default
        [layer] = viewer.open(str(study), plugin="napari-madgan")
        _, widget = viewer.window.add_plugin_dock_widget("napari-madgan", "MADGAN review")
        widget.reader_offer.setVisible(False)
        widget.set_scan_layer(layer.name)
        widget.set_model_path(model, remember=False)
        widget.set_score_mode("zvolume")  # the z-map overlay (the heatmap without calibration)
        widget.form.run_button.native.click()
        wait_for(lambda: not widget.controller.running, 300, "scoring")
        if widget.result is None:
            raise RuntimeError(f"scoring failed: {widget.status_text}")
        result = widget.result
        if widget.results.top_list.count():
            widget.go_to_slice(int(widget.results.top_list.item(0).data(0x0100)))
        # The heatmap's range from this model's errors in the brain (a small demo model errs more).
        brain = result.heatmap[result.foreground & np.isfinite(result.heatmap)]
        widget.set_heatmap_range((0.0, float(np.percentile(brain, 99))))
        viewer.reset_view()
        settle(1.0)
        review_path = out / "dicom_review.png"
        viewer.screenshot(str(review_path), canvas_only=False, flash=False)
    finally:
        viewer.close()
        shutil.rmtree(work, ignore_errors=True)
    return [dialog_path, review_path]


def training_shot(out: Path) -> Path:
    import napari
    import nibabel as nib

    from madgan_core.cohort.phantom import make_subject

    work = Path(tempfile.mkdtemp(prefix="madgan_shots_"))
    scans = work / "healthy"
    scans.mkdir()
    for seed in range(2):
        volume, affine, _ = make_subject("healthy", seed=seed, voxel_mm=3.0)
        nib.save(nib.Nifti1Image(volume, affine), str(scans / f"healthy{seed}.nii.gz"))
    config = work / "tiny.json"
    config.write_text(json.dumps(TINY_TRAIN))

    viewer = napari.Viewer(title="napari-madgan: training")
    viewer.window.resize(*WINDOW)
    _, widget = viewer.window.add_plugin_dock_widget("napari-madgan", "MADGAN train")
    form = widget.form
    form.manifest.value = scans
    form.out.value = work / "run"
    form.config.value = config
    form.device.value = "cpu"
    form.steps.value = 400
    form.batch_size.value = 4
    if not widget.start():
        raise RuntimeError(f"training did not start: {widget.status_text}")
    run = widget.controller
    try:
        wait_for(
            lambda: (
                run.metrics.last is not None
                and run.metrics.last["step"] >= 12
                and run.preview is not None
            ),
            300,
            "training metrics and a preview",
        )
        settle(1.0)
        path = out / "training.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
    finally:
        widget.stop()
        wait_for(lambda: not run.running, 120, "training to stop")
        viewer.close()
        shutil.rmtree(work, ignore_errors=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="a trained MADGAN model (model.pt); not for --only bundled"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "images"
    )
    parser.add_argument("--skip-training", action="store_true", help="only the review screenshot")
    parser.add_argument(
        "--only",
        choices=("dicom", "review", "real", "individual", "bundled", "adjusted"),
        default=None,
        help="make only these screenshots",
    )
    parser.add_argument("--name", help="the file name of the --only individual screenshot")
    parser.add_argument("--scan", type=Path, help="the scan of --only adjusted")
    parser.add_argument("--age", type=float, help="its person's age (--only adjusted)")
    parser.add_argument("--sex", choices=("F", "M"), help="its person's sex (--only adjusted)")
    parser.add_argument("--headline", default="auto", help="the headline of --only adjusted")
    args = parser.parse_args(argv)
    if (
        not os.environ.get("DISPLAY")
        and sys.platform.startswith("linux")
        and shutil.which("xvfb-run")
    ):
        screen = f"-screen 0 {WINDOW[0] + 100}x{WINDOW[1] + 100}x24"
        cmd = ["xvfb-run", "-a", "-s", screen, sys.executable, __file__, *(argv or sys.argv[1:])]
        return subprocess.call(cmd)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "bundled":
        # a new user's settings: nothing remembered, so the bundled model is preselected
        os.environ["NAPARI_MADGAN_CONFIG_DIR"] = tempfile.mkdtemp(prefix="madgan-settings-")
        print(review_shot(None, args.out, name="review_bundled.png"))
        return 0
    if args.model is None or not args.model.is_file():
        parser.error(f"{args.model}: model file not found (--model is required)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "dicom":
        print(*dicom_shot(args.model.resolve(), args.out), sep="\n")
        return 0
    if args.only == "individual":
        print(individual_shot(args.model.resolve(), args.out, args.name or "real_colin27.png"))
        return 0
    if args.only == "adjusted":
        if args.scan is None or args.age is None:
            parser.error("--only adjusted needs --scan and --age (and --sex)")
        print(
            adjusted_shot(
                args.model.resolve(),
                args.scan.resolve(),
                args.out,
                args.age,
                args.sex,
                mode=args.headline,
            )  # fmt: skip
        )
        return 0
    if args.only == "real":
        print(*real_shots(args.model.resolve(), args.out), sep="\n")
        return 0
    if args.only == "review":
        print(review_shot(args.model.resolve(), args.out))
        print(review_shot(args.model.resolve(), args.out, "auto", "review_ad.png", sample="ad"))
        print(review_shot(args.model.resolve(), args.out, "mean", "review_mean.png"))
        return 0
    print(review_shot(args.model.resolve(), args.out))
    print(review_shot(args.model.resolve(), args.out, "auto", "review_ad.png", sample="ad"))
    print(review_shot(args.model.resolve(), args.out, "mean", "review_mean.png"))
    print(*dicom_shot(args.model.resolve(), args.out), sep="\n")
    print(*real_shots(args.model.resolve(), args.out), sep="\n")
    if not args.skip_training:
        print(training_shot(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
