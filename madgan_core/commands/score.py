"""``madgan score``: score scans with a trained model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from madgan_core.commands._common import (
    add_device_options,
    add_loader_options,
    add_progress_option,
    add_set_option,
    add_window_batch_option,
    loader_from,
    score_overrides,
    tqdm_callback,
)
from madgan_core.config import SEQUENCES
from madgan_core.errors import ConfigError, MadganError
from madgan_core.model.bundled import (
    bundled_entry_of,
    looks_like_model,
    model_label,
    require_default_model,
    resolve_model,
)
from madgan_core.modes import AUTO, mode_names, score_mode
from madgan_core.scans.covariates import Covariates

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="score scans: anomaly score, percentile against healthy controls, per-slice losses",
        description="Score each scan with a trained model. Writes scores.csv and scores.jsonl "
        "(one row per scan, with its findings) into --out, and on request (--maps) the ℓ2 heatmap, "
        "reconstruction, z-map and findings' outlines as NIfTI in each input's native space. Under torchrun the processes share the scans; a stopped "
        "run continues when run again (docs/cluster.md).",
    )
    p.add_argument(
        "model",
        type=Path,
        nargs="?",
        metavar="MODEL",
        help="model file (model.pt from `madgan train`) or a bundled model's name "
        "(phantom-demo); left out, the bundled model scores",
    )
    p.add_argument(
        "scans",
        type=Path,
        nargs="+",
        help="NIfTI/MGZ scans, or DICOM series (a folder, FOLDER::SERIES to choose one by UID "
        "or description, or .dcm files)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("madgan_scores"),
        help="output folder (default: ./madgan_scores)",
    )
    p.add_argument(
        "--maps",
        action="store_true",
        help="also write <scan>_heatmap.nii.gz, <scan>_recon.nii.gz and, with a z-map (a model "
        "calibrated for the scans' --sequence), <scan>_zmap.nii.gz and <scan>_findings.nii.gz "
        "(each finding's outline, valued by its rank)",
    )
    p.add_argument(
        "--dicom-out",
        type=Path,
        default=None,
        metavar="DIR",
        help="for DICOM series inputs: also write the heatmap, z-map and overlay (findings "
        "outlined) as new series of each scan's study, the findings as a DICOM Segmentation, "
        "and the report as PDF and encapsulated PDF, into DIR/<scan>/",
    )
    p.add_argument(
        "--brain-mask",
        type=Path,
        action="append",
        default=None,
        metavar="MASK",
        help="a brain mask on the scan's grid, used instead of the model's brain step; "
        "repeat once per scan, in the scans' order",
    )
    p.add_argument(
        "--age",
        type=float,
        action="append",
        default=None,
        metavar="YEARS",
        help="the person's age: percentiles are then made against healthy controls of that "
        "age (and sex, with --sex) where the model's controls have ages (docs/user-guide.md, "
        "'Age- and sex-adjusted percentiles'); once for all scans, or once per scan in their "
        "order (default: a DICOM series' Patient's Age)",
    )
    p.add_argument(
        "--sex",
        choices=("F", "M"),
        action="append",
        default=None,
        help="the person's sex, as --age (default: a DICOM series' Patient's Sex)",
    )
    p.add_argument(
        "--sequence",
        choices=SEQUENCES,
        default=None,
        help="the scans' sequence: ranks them against healthy controls of the same sequence "
        "and adds the z-map score (default: all controls)",
    )
    p.add_argument(
        "--mode",
        choices=(AUTO, *mode_names()),
        default=None,
        help="headline score printed per scan and recorded as 'headline' in scores.jsonl "
        "(default: the model's; 'auto' leads with the calibrated 'anomaly' score where the "
        "model has controls of the scan's sequence and with the paper's 'mean' elsewhere); "
        "the files always hold every mode",
    )
    add_device_options(p)
    add_window_batch_option(p, old_spelling=True)
    add_set_option(p, sections=("score",))
    add_loader_options(p)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that read and preprocess scans, --prefetch scans ahead each, while "
        "the network scores (0: none, worker threads as --prefetch says; default: min(8, "
        "cores - 1) for 16 scans or more, else 0); the scores are the same either way",
    )
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.cohort.score_files import score_files
    from madgan_core.model.checkpoint import load_model
    from madgan_core.outputs.wording import summary_line
    from madgan_core.runtime.distributed import cohort_group

    overrides = score_overrides(args)  # checked before the model is read
    if args.mode is not None:  # the files record the headline the lines print
        overrides.setdefault("score", {})["mode"] = args.mode
    model_path, scans = model_and_scans(args.model, args.scans)
    if args.brain_mask is not None and len(args.brain_mask) != len(scans):
        raise ConfigError(
            f"--brain-mask was given {len(args.brain_mask)} times for {len(scans)} scans; "
            "give one mask per scan, in the scans' order"
        )
    covariates = covariates_from(args, len(scans))
    loader = _loader(args, len(scans))
    with cohort_group(args.device) as (info, device):
        model = load_model(model_path, device=device).with_score(overrides.get("score"))
        mode = model.config.score.mode
        _require_mode(model, mode, args.sequence, model_path)
        if info.is_main and bundled_entry_of(model_path) is not None:
            _print_line(f"Model: {model_label(model_path)}")
        if args.dicom_out is not None:
            from madgan_core.outputs.dicom.results import require_dicom_inputs

            require_dicom_inputs(scans)
        with tqdm(desc="scoring", unit="scan") as bar:
            rows = score_files(
                model,
                scans,
                args.out,
                maps=args.maps,
                dicom_out=args.dicom_out,
                sequence=args.sequence,
                precision=args.precision,
                batch_size=args.window_batch,
                loader=loader,
                info=info,
                progress=tqdm_callback(bar),
                on_result=lambda result: _print_line(summary_line(result, mode)),
                brain_masks=args.brain_mask,
                covariates=covariates,
            )
    if rows is not None:
        print(f"Wrote {args.out / 'scores.csv'} and {args.out / 'scores.jsonl'}")
    return 0


def _loader(args: argparse.Namespace, n_scans: int):
    """The loader of the loader options, with ``--workers`` (or the default for ``n_scans``)."""
    import dataclasses

    from madgan_core.prep.loader import default_workers

    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 or more worker processes")
    workers = default_workers(n_scans) if args.workers is None else args.workers
    return dataclasses.replace(loader_from(args), workers=workers)


def covariates_from(args: argparse.Namespace, n_scans: int) -> list[Covariates] | None:
    """One :class:`Covariates` per scan from ``--age`` and ``--sex`` (each given once for
    all scans, or once per scan); None when neither was given."""
    if args.age is None and args.sex is None:
        return None
    per_scan = {}
    for flag, values in (("--age", args.age), ("--sex", args.sex)):
        if values is None:
            per_scan[flag] = [None] * n_scans
        elif len(values) in (1, n_scans):
            per_scan[flag] = values * n_scans if len(values) == 1 else values
        else:
            raise ConfigError(
                f"{flag} was given {len(values)} times for {n_scans} scans; give it once for "
                "all scans, or once per scan in their order"
            )
    for age in args.age or ():
        if not 0 <= age <= 130:
            raise ConfigError(f"--age {age:g} is not an age in years")
    return [
        Covariates(age=age, sex=sex)
        for age, sex in zip(per_scan["--age"], per_scan["--sex"], strict=True)
    ]


def model_and_scans(model: Path | None, scans: list[Path]) -> tuple[Path, list[Path]]:
    """The model file and the scans of the positional arguments: a first argument that is a
    scan (not a model file or a bundled name) leaves the model to the bundled one.

    Raises:
        CheckpointError: no model was given and none is bundled, or a bundled name is not
            installed.
        ConfigError: a model was given without scans.
    """
    if model is not None and looks_like_model(model):
        return resolve_model(model), list(scans)
    given = ([] if model is None else [model]) + list(scans)
    if len(given) == 1 and looks_like_model(given[0]):
        raise ConfigError(f"no scans to score: give the scans after the model ({given[0]})")
    return require_default_model(), given


def _require_mode(model, mode: str, sequence: str | None, path: Path) -> None:
    """Refuse, before any scan is read, a headline mode the model cannot compute."""
    if mode == AUTO or not score_mode(mode).needs_calibration:
        return
    reference = model.reference
    stats = None if reference is None else reference.zstats_for(sequence)
    if stats is None:
        have = sorted(reference.zstats) if reference is not None else []
        hint = (
            f"give --sequence (the model has z-statistics for {', '.join(have)})"
            if have
            else "calibrate the model (`madgan calibrate`) and give --sequence"
        )
        raise MadganError(
            f"score mode {mode!r} needs z-statistics for the scans' sequence: {hint}", path
        )
    if score_mode(mode).noise_adjusted and mode not in stats.noise_fits:
        raise MadganError(
            f"score mode {mode!r} needs a noise fit, which this model's calibration predates "
            f"or had too few controls for: re-run `madgan calibrate`",
            path,
        )


def _print_line(text: str) -> None:
    """One write per scan, so the lines of torchrun ranks sharing a console never interleave."""
    with tqdm.external_write_mode():
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
