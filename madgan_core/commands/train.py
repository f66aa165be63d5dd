"""``madgan train``: train MADGAN on the healthy training scans of a manifest (or a folder)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from madgan_core.commands._common import add_device_options, add_progress_option, add_set_option
from madgan_core.config import (
    ENGINES,
    PRESETS,
    VARIANTS,
    MadganConfig,
    nest,
    parse_overrides,
    preset,
)
from madgan_core.errors import ConfigError

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a MADGAN model on healthy scans",
        description="Train the MADGAN generator and critic on the healthy 'train' scans of a manifest "
        "(T1 and T1c together), or on every scan in a folder. Writes metrics.jsonl, previews/, "
        "checkpoints/ and finally model.pt to --out. SIGINT/SIGTERM save a checkpoint and stop; "
        "--resume continues from the newest checkpoint. --init starts from a trained model "
        "(fine-tuning). Runs under torchrun for several processes.",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        required=True,
        help="cohort manifest CSV, or a folder of healthy scans",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder of the run")
    p.add_argument(
        "--init",
        type=Path,
        metavar="MODEL",
        help="start from a trained model's weights (fine-tuning, e.g. on a site's healthy "
        "scans), a model file or a bundled model's name (phantom-demo); its preprocessing and "
        "architecture are kept, and its stored configuration is the base of the run's; "
        "--steps counts the fine-tuning steps",
    )
    p.add_argument(
        "--config", type=Path, help="JSON config file (applied over the preset or --init model)"
    )
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="base settings (default: paper); with --init, only its training settings",
    )
    p.add_argument("--variant", choices=VARIANTS, help="self-attention modules")
    p.add_argument("--l1-weight", type=float, help="weight of the ℓ1 term (0: the paper's w/o ℓ1)")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--batch-size", type=int, help="training batch size per process")
    p.add_argument("--seed", type=int, help="random seed")
    add_device_options(p, default=None, what="train")
    p.add_argument("--workers", type=int, help="data loader workers (0: main process)")
    p.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the networks"
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        help="eager: op by op; graph: the whole step captured once in a CUDA graph and "
        "replayed (fp32/bf16, one process; eager code on a CPU)",
    )
    p.add_argument(
        "--resident",
        action="store_true",
        default=None,
        help="keep the training slabs in the device's memory and cut batches there",
    )
    add_set_option(p)
    p.add_argument("--flip", action="store_true", help="random left-right flip augmentation")
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )
    p.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard")
    add_progress_option(p)
    # testing hook: every rank saves its final generator state here
    p.add_argument("--dump-rank-state", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


# The named options and the configuration keys they set.
OPTION_KEYS = {
    "variant": "model.variant",
    "l1_weight": "train.l1_weight",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "precision": "train.precision",
    "workers": "train.num_workers",
    "compile": "train.compile",
    "engine": "train.engine",
    "resident": "train.resident",
}


def build_config(args: argparse.Namespace) -> MadganConfig:
    """Preset (or the --init model's stored configuration), then --config file, then the
    named options, then --set; checked against a resumed run."""
    config_json = args.out / "config.json"
    if args.resume and args.config is None and args.preset is None and config_json.exists():
        cfg = MadganConfig.load_json(config_json)
    elif args.init is not None:
        cfg = _over_file(init_base(init_model(args), args.preset), args.config)
    else:
        cfg = preset(args.preset or "paper", args.config)
    named = {key: getattr(args, dest) for dest, key in OPTION_KEYS.items()}
    cfg = cfg.updated(nest({k: v for k, v in named.items() if v is not None}))
    return cfg.updated(parse_overrides(args.set), source="")


def init_model(args: argparse.Namespace) -> Path | None:
    """The file of ``--init``: a model file, or a bundled model's installed file."""
    from madgan_core.model.bundled import resolve_model

    return None if args.init is None else resolve_model(args.init)


def init_base(model: Path, preset_name: str | None = None) -> MadganConfig:
    """The configuration stored in ``model`` (preprocessing, model, training, scoring), with
    the training settings of ``preset_name`` over it when one is named. Device and
    precision go back to ``auto``: the model may have been trained on other hardware.

    Raises:
        CheckpointError: the file is missing or not a model (the message names it).
    """
    from madgan_core.model.train import init_config

    # Where the model was trained says nothing of where it is fine-tuned.
    cfg = init_config(model).updated({"train": {"device": "auto", "precision": "auto"}}, source="")
    if preset_name is None:
        return cfg
    return cfg.updated({"train": preset(preset_name).to_dict()["train"]}, source="")


def _over_file(cfg: MadganConfig, path: Path | None) -> MadganConfig:
    """``cfg`` with the keys of the JSON config file at ``path`` over it (errors name the file)."""
    if path is None:
        return cfg
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not a readable JSON config ({exc})", path) from None
    try:
        return cfg.updated(data, source="")
    except ConfigError as exc:
        raise ConfigError(str(exc), path) from None


def load_rows(source: Path):
    from madgan_core.scans.manifest import manifest_from_folder, read_manifest

    return manifest_from_folder(source) if source.is_dir() else read_manifest(source)


class TrainBars:
    """A :func:`madgan_core.cohort.training.train_run` progress callback for the terminal.

    With bars: one while the training scans are preprocessed, then one of the training
    steps with its losses. Without: each metrics line is logged.
    """

    def __init__(self, scans: int, steps: int, show: bool):
        from tqdm import tqdm

        self.steps = steps
        self.show = show
        self.scan_bar = tqdm(total=scans, desc="preprocessing", unit="scan") if show else None
        self.bar = None

    def __call__(self, info: dict) -> None:
        from madgan_core.model.train import eta_text

        kind = info.get("kind")
        if kind == "scan":
            if self.scan_bar is not None:
                self.scan_bar.update(1)
                self.scan_bar.set_postfix_str(info["name"])
            return
        if kind == "calibrate":
            return
        if not self.show:
            if kind == "metrics":
                log.info(
                    "step %d/%d  critic %.4f  adv %.4f  l1 %.4f  %.1f samples/s  eta %s",
                    info["step"], info["steps"], info["loss_critic"], info["loss_gen_adv"],
                    info["loss_l1"], info["samples_per_s"], eta_text(info["eta_s"]),
                )  # fmt: skip
            return
        self._close_scans()
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=info.get("steps", self.steps),
                initial=info.get("step", 1) - 1,
                desc="training",
                unit="step",
            )
        if kind in ("step", "metrics"):
            self.bar.update(info["step"] - self.bar.n)
        if kind == "metrics":
            self.bar.set_postfix(
                l1=f"{info['loss_l1']:.4f}",
                W=f"{info['wasserstein']:.3f}",
                sps=f"{info['samples_per_s']:.1f}",
                eta=eta_text(info["eta_s"]),
            )

    def close(self) -> None:
        self._close_scans()
        if self.bar is not None:
            self.bar.close()

    def _close_scans(self) -> None:
        if self.scan_bar is not None:
            self.scan_bar.close()
            self.scan_bar = None


def train_with_bars(cfg, rows, out: Path, show: bool, source: str = "", **options):
    """:func:`~madgan_core.cohort.training.train_run` with the command line's progress bars;
    ``options`` go to it (``resume``, ``tensorboard``, ``flip``, ``init``)."""
    from madgan_core.cohort.training import train_run
    from madgan_core.prep.training_set import training_rows

    n_scans = len(training_rows(rows))
    log.info("%d healthy training scans%s", n_scans, f" from {source}" if source else "")
    bars = TrainBars(n_scans, cfg.train.steps, show)
    try:
        return train_run(cfg, rows, out, bars, **options)
    finally:
        bars.close()


def run(args: argparse.Namespace) -> int:
    import torch

    from madgan_core.runtime.distributed import env_info, unwrap

    cfg = build_config(args)
    rows = load_rows(args.manifest)
    show = env_info().is_main and not args.no_progress
    done = train_with_bars(
        cfg,
        rows,
        args.out,
        show,
        source=str(args.manifest),
        resume=args.resume,
        tensorboard=args.tensorboard,
        flip=args.flip,
        init=init_model(args),
    )
    if args.dump_rank_state is not None:
        args.dump_rank_state.mkdir(parents=True, exist_ok=True)
        trainer = done.trainer
        state = {k: v.cpu() for k, v in unwrap(trainer.generator).state_dict().items()}
        torch.save(state, args.dump_rank_state / f"rank{trainer.dist.rank}.pt")
    return 0
