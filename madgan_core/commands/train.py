"""``madgan train``: train MADGAN on the healthy training scans of a manifest (or a folder)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from madgan_core.commands._common import add_device_options, add_progress_option, add_set_option
from madgan_core.config import PRESETS, VARIANTS, MadganConfig, nest, parse_overrides, preset

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a MADGAN model on healthy scans",
        description="Train the MADGAN generator and critic on the healthy 'train' scans of a manifest "
        "(T1 and T1c together), or on every scan in a folder. Writes metrics.jsonl, previews/, "
        "checkpoints/ and finally model.pt to --out. SIGINT/SIGTERM save a checkpoint and stop; "
        "--resume continues from the newest checkpoint. Runs under torchrun for several processes.",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        required=True,
        help="cohort manifest CSV, or a folder of healthy scans",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder of the run")
    p.add_argument("--config", type=Path, help="JSON config file (applied over the preset)")
    p.add_argument(
        "--preset", choices=tuple(PRESETS), default=None, help="base settings (default: paper)"
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
}


def build_config(args: argparse.Namespace) -> MadganConfig:
    """Preset, then --config file, then the named options, then --set; checked against a resumed run."""
    config_json = args.out / "config.json"
    if args.resume and args.config is None and args.preset is None and config_json.exists():
        cfg = MadganConfig.load_json(config_json)
    else:
        cfg = preset(args.preset or "paper", args.config)
    named = {key: getattr(args, dest) for dest, key in OPTION_KEYS.items()}
    cfg = cfg.updated(nest({k: v for k, v in named.items() if v is not None}))
    return cfg.updated(parse_overrides(args.set), source="")


def load_rows(source: Path):
    from madgan_core.scans.manifest import manifest_from_folder, read_manifest

    return manifest_from_folder(source) if source.is_dir() else read_manifest(source)


def run(args: argparse.Namespace) -> int:
    import torch

    from madgan_core.model.train import eta_text, prepare_training
    from madgan_core.prep.training_set import training_rows
    from madgan_core.runtime.device import describe
    from madgan_core.runtime.distributed import cleanup, env_info, unwrap

    cfg = build_config(args)
    rows = load_rows(args.manifest)
    train_rows = training_rows(rows)
    main = env_info().is_main
    if main:
        args.out.mkdir(parents=True, exist_ok=True)
        cfg.save_json(args.out / "config.json")
    log.info("%d healthy training scans from %s", len(train_rows), args.manifest)

    bar = None
    show_bar = main and not args.no_progress
    scan_bar = None
    if show_bar:
        from tqdm import tqdm

        scan_bar = tqdm(total=len(train_rows), desc="preprocessing", unit="scan")

    def scan_progress(done: int, total: int, name: str) -> None:
        if scan_bar is not None:
            scan_bar.update(1)
            scan_bar.set_postfix_str(name)

    def progress(info: dict) -> None:
        nonlocal bar
        if not show_bar:
            if info.get("kind") == "metrics":
                log.info(
                    "step %d/%d  critic %.4f  adv %.4f  l1 %.4f  %.1f samples/s  eta %s",
                    info["step"], info["steps"], info["loss_critic"], info["loss_gen_adv"],
                    info["loss_l1"], info["samples_per_s"], eta_text(info["eta_s"]),
                )  # fmt: skip
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(
                total=info.get("steps", cfg.train.steps),
                initial=info.get("step", 1) - 1,
                desc="training",
                unit="step",
            )
        if info["kind"] in ("step", "metrics"):
            bar.update(info["step"] - bar.n)
        if info["kind"] == "metrics":
            bar.set_postfix(
                l1=f"{info['loss_l1']:.4f}",
                W=f"{info['wasserstein']:.3f}",
                sps=f"{info['samples_per_s']:.1f}",
                eta=eta_text(info["eta_s"]),
            )

    try:
        trainer = prepare_training(
            cfg,
            train_rows,
            args.out,
            resume=args.resume,
            progress=progress,
            scan_progress=scan_progress,
            tensorboard=args.tensorboard,
            flip=args.flip,
        )
        if scan_bar is not None:
            scan_bar.close()
        learned = trainer.cfg != cfg  # intensity landmarks, learned or resumed
        cfg = trainer.cfg
        if main and learned:
            cfg.save_json(args.out / "config.json")
        log.info("training on %s", describe(trainer.device, trainer.precision))
        result = trainer.fit()
        if args.dump_rank_state is not None:
            args.dump_rank_state.mkdir(parents=True, exist_ok=True)
            state = {k: v.cpu() for k, v in unwrap(trainer.generator).state_dict().items()}
            torch.save(state, args.dump_rank_state / f"rank{trainer.dist.rank}.pt")
    finally:
        if bar is not None:
            bar.close()
        cleanup(env_info())
    if result.stopped:
        log.info("stopped at step %d; checkpoint %s", result.step, result.last_checkpoint)
        return 0
    if main and result.model_path is not None:
        log.info("model written to %s", result.model_path)
        _after_training(result.model_path, rows, cfg)
    return 0


def _after_training(model_path: Path, manifest_rows: Sequence, cfg) -> None:
    """Calibrate the new model on the manifest's healthy ``calib`` scans, when it has some."""
    from madgan_core.scoring.calibrate import calibrate_model, calibration_rows

    calib = calibration_rows(manifest_rows)
    if not calib:
        log.info("no healthy 'calib' scans in the manifest; run `madgan calibrate` later")
        return
    log.info("calibrating on %d healthy 'calib' scans", len(calib))
    calibrate_model(model_path, manifest_rows, device=cfg.train.device)
