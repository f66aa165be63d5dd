"""Pack a trained model into a bundled model file (fp16 weights, no optimizer or RNG
states, with its recipe), e.g.::

    python3 scripts/pack_bundled_model.py madgan_demo/run/model.pt --name phantom-demo \\
        --recipe-json recipe.json

writes ``madgan_core/model/bundled_models/phantom-demo.pt``. Options given beside
``--recipe-json`` replace its keys. Exits 2, writing nothing, where the file would be
larger than 10 MB or the model is unreadable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from madgan_core.errors import MadganError
from madgan_core.model.bundled import bundled_entry, bundled_folder, bundled_names
from madgan_core.model.pack import pack_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="the trained model file (model.pt)")
    p.add_argument("--name", required=True, choices=bundled_names(), help="bundled model name")
    p.add_argument(
        "--out", type=Path, default=None, help="where to write (default: the package's file)"
    )
    p.add_argument("--recipe-json", type=Path, help="JSON file of the recipe (a dict)")
    p.add_argument("--preset", help="training preset (e.g. demo)")
    p.add_argument("--command", help="the command that made the cohort and the model")
    p.add_argument("--cohort-seed", type=int, help="the phantom cohort's seed")
    p.add_argument("--anatomies", nargs="+", help="the anatomies the cohort was made from")
    p.add_argument("--voxel-mm", type=float, help="the phantoms' voxel size (mm)")
    p.add_argument(
        "--count",
        action="append",
        default=[],
        metavar="KIND=N",
        help="subjects of a kind, e.g. healthy=160 (repeat)",
    )
    p.add_argument("--steps", type=int, help="training steps (default: the model's)")
    p.add_argument("--device", help="training device (default: the model's setting)")
    p.add_argument("--precision", help="training precision (default: the model's setting)")
    p.add_argument("--commit", help="source commit (default: git rev-parse HEAD, if any)")
    p.add_argument("--trained-at", help="when it was trained (default: the file's time)")
    return p.parse_args(argv)


def recipe_of(args: argparse.Namespace) -> dict:
    """The recipe file's dict with the options given over it."""
    recipe: dict = {}
    if args.recipe_json is not None:
        try:
            recipe = json.loads(args.recipe_json.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MadganError(f"not a readable JSON recipe ({exc})", args.recipe_json) from None
        if not isinstance(recipe, dict):
            raise MadganError("the recipe must be a JSON object", args.recipe_json)
    cohort = dict(recipe.get("cohort") or {})
    for key, value in (
        ("command", args.command),
        ("seed", args.cohort_seed),
        ("anatomies", args.anatomies),
        ("voxel_mm", args.voxel_mm),
    ):
        if value is not None:
            cohort[key] = value
    if args.count:
        counts = dict(cohort.get("counts") or {})
        for item in args.count:
            kind, _, n = item.partition("=")
            if not kind or not n.isdigit():
                raise MadganError(f"--count {item!r}: expected KIND=N, e.g. healthy=160")
            counts[kind] = int(n)
        cohort["counts"] = counts
    recipe["cohort"] = cohort
    for key in ("preset", "steps", "device", "precision", "commit", "trained_at"):
        value = getattr(args, key)
        if value is not None:
            recipe[key] = value
    if recipe.get("commit") is None:
        recipe["commit"] = git_commit()
    return recipe


def git_commit() -> str | None:
    """The checked-out commit of the source tree, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or bundled_folder() / bundled_entry(args.name).filename
    try:
        recipe = recipe_of(args)
        packed = pack_model(args.model, out, recipe)
    except MadganError as exc:
        print(f"pack_bundled_model: error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {packed.path} ({packed.size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
