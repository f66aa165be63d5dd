"""``madgan evaluate``: AUC tables, ROC curves and score distributions on a cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from madgan_core.commands._common import add_device_options, add_progress_option, tqdm_callback

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on a cohort: AUC tables, ROC curves, score distributions",
        description="Score the manifest's test scans with MADGAN and the baselines (copy-last-slice, "
        "and the single-slice autoencoder when given) and write report.md with the paper's AUC tables, "
        "ROC curves, score distributions and, with --checkpoints, AUC against training step.",
    )
    p.add_argument("model", type=Path, help="model file (model.pt)")
    p.add_argument("--manifest", type=Path, required=True, help="cohort manifest CSV")
    p.add_argument(
        "--out", type=Path, default=None, help="report folder (default: <model folder>/evaluation)"
    )
    p.add_argument(
        "--checkpoints", type=Path, default=None, help="folder of checkpoints for AUC against step"
    )
    p.add_argument(
        "--autoencoder", type=Path, default=None, help="single-slice autoencoder baseline file"
    )
    add_device_options(p)
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report, table, columns = evaluate(
        args.model,
        args.manifest,
        args.out,
        args.checkpoints,
        args.autoencoder,
        args.device,
        args.precision,
    )
    from madgan_core.evaluate import format_table

    print(format_table(table, columns, markdown=False))
    print(f"\nReport: {report}")
    return 0


def evaluate(
    model_path,
    manifest,
    out=None,
    checkpoints=None,
    autoencoder=None,
    device="auto",
    precision="auto",
    notes="",
):
    """Run the whole evaluation; return (report path, AUC table, columns).

    ``notes`` (markdown) is appended to the report.
    """
    from madgan_core.checkpoint import list_checkpoints, load_model
    from madgan_core.errors import MadganError
    from madgan_core.evaluate import (
        auc_across_checkpoints,
        calibrated_modes,
        evaluation_predictors,
        score_cohort,
        score_columns,
        write_report,
    )
    from madgan_core.manifest import read_manifest

    model = load_model(model_path, device=device)
    out = Path(out) if out is not None else Path(model_path).parent / "evaluation"
    rows = [r for r in read_manifest(manifest) if r.split == "test"]
    if not rows:
        raise MadganError("the manifest has no scans in the 'test' split", manifest)
    predictors = evaluation_predictors(model, autoencoder, model.device)
    with tqdm(desc="evaluating", unit="scan") as bar:
        records = score_cohort(
            predictors, model, rows, out / "scores.csv", tqdm_callback(bar), precision
        )
    curve = None
    if checkpoints is not None:
        found = list_checkpoints(checkpoints)
        if not found:
            raise MadganError("no checkpoints found", checkpoints)
        with tqdm(desc="checkpoints", unit="ckpt") as bar:
            curve = auc_across_checkpoints(
                found, rows, out / "checkpoints", device, tqdm_callback(bar)
            )
    columns = score_columns(list(predictors), calibrated_modes(model))
    report, table = write_report(records, columns, out, model, curve, notes)
    return report, table, columns
