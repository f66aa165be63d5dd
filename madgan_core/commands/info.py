"""``madgan info``: the card of a model file (architecture, training, calibration, domain)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="show a model's card: architecture, training, calibration, training domain",
        description="Print what a model file records about itself: its architecture, how it "
        "was trained (and from which model, if fine-tuned), its calibration and the scans it "
        "was trained on; for a bundled model also its intended use. Reading the file never "
        "runs code from it.",
    )
    p.add_argument(
        "model", type=Path, help="model file (model.pt), or a bundled model's name (phantom-demo)"
    )
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from madgan_core.model.bundled import resolve_model
    from madgan_core.model.card import format_card, model_card

    card = model_card(resolve_model(args.model))
    print(json.dumps(card, indent=2) if args.json else format_card(card))
    return 0
