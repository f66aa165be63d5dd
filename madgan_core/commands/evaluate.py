"""``madgan evaluate``: AUC tables, ROC curves and score distributions on a cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from madgan_core.commands._common import (
    add_device_options,
    add_loader_options,
    add_progress_option,
    add_set_option,
    loader_from,
    score_overrides,
    tqdm_callback,
)

if TYPE_CHECKING:
    from madgan_core.cohort.evaluation.run import Evaluation

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on a cohort: AUC tables, ROC curves, score distributions",
        description="Score the manifest's test scans with MADGAN and the baselines (copy-last-slice, "
        "and the single-slice autoencoder when given) and write report.md with the paper's AUC tables, "
        "ROC curves, score distributions and, with --checkpoints, AUC against training step. "
        "Under torchrun the processes share the scans; a stopped run continues when run again.",
    )
    p.add_argument(
        "model", type=Path, help="model file (model.pt), or a bundled model's name (phantom-demo)"
    )
    p.add_argument("--manifest", type=Path, required=True, help="cohort manifest CSV")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report folder (default: <model folder>/evaluation; for a bundled model "
        "./madgan_evaluation)",
    )
    p.add_argument(
        "--checkpoints", type=Path, default=None, help="folder of checkpoints for AUC against step"
    )
    p.add_argument(
        "--autoencoder", type=Path, default=None, help="single-slice autoencoder baseline file"
    )
    add_device_options(p)
    add_set_option(p, sections=("score",))
    add_loader_options(p)
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.cohort.evaluation.stats import format_table
    from madgan_core.model.bundled import bundled_entry_of, resolve_model

    score = score_overrides(args).get("score")  # checked before the model is read
    model = resolve_model(args.model)
    out = args.out
    if out is None and bundled_entry_of(model) is not None:  # never into the package
        out = Path("madgan_evaluation")
    result = evaluate_with_progress(
        model,
        args.manifest,
        out,
        args.checkpoints,
        args.autoencoder,
        args.device,
        args.precision,
        loader=loader_from(args),
        score=score,
    )
    if result is None:  # another rank under torchrun: rank 0 writes the report
        return 0
    print(format_table(result.table, result.columns, markdown=False))
    print(f"\nReport: {result.report}")
    return 0


def evaluate_with_progress(*args, **kwargs) -> Evaluation | None:
    """:func:`madgan_core.cohort.evaluation.run.evaluate` (same arguments) with a bar per stage."""
    from madgan_core.cohort.evaluation.run import evaluate

    with _StageBars() as bars:
        return evaluate(*args, progress=bars.update, **kwargs)


class _StageBars:
    """One tqdm bar at a time: a new stage closes the bar of the one before."""

    UNITS = {"evaluating": "scan", "checkpoints": "ckpt", "regions": "scan"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None
        self.update_bar = None

    def update(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(desc=stage, unit=self.UNITS.get(stage, "it"))
            self.update_bar = tqdm_callback(self.bar)
        self.update_bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None

    def __enter__(self) -> _StageBars:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
