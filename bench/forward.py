"""Generator forward throughput and achieved GFLOP/s, against the measured matmul peak.

For each variant (none/sa3/sa7) and precision (fp32/bf16, fp16 on CUDA): paper widths,
256 x 176 input, batch 16, inference mode, channels_last; FLOPs counted with
:class:`torch.utils.flop_counter.FlopCounterMode`. ``--compile`` adds a
``torch.compile`` run per case, with its compile time reported apart.

    python bench/forward.py --device auto [--compile] [--variants none sa7] [--out f.json]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    base_parser,
    emit,
    header,
    precisions_for,
    repeat,
    resolve,
    rounded,
    spread,
)


def count_flops(generator: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass (a multiply-add counts 2)."""
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        generator(x)
    return int(counter.get_total_flops())


def run_case(generator, x, device, precision, reps, compiled=False) -> dict:
    from madgan_core.runtime.device import inference_context

    model = generator
    compile_s = None
    if compiled:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold BatchNorm into the convs, prepack weights
        model = torch.compile(generator)
        t0 = time.perf_counter()
        with inference_context(device, precision):
            model(x)
        compile_s = time.perf_counter() - t0

    def step():
        with inference_context(device, precision):
            return model(x)

    times = spread(repeat(step, device, reps, warmup=1))
    seconds = times["best_s"]
    case = {
        "seconds_per_batch": rounded(seconds),
        "median_seconds_per_batch": times["median_s"],
        "reps": times["reps"],
        "windows_per_s": rounded(len(x) / seconds),
    }
    if compile_s is not None:
        case["compile_s"] = rounded(compile_s)
    return case


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["none", "sa3", "sa7"])
    parser.add_argument("--precisions", nargs="+", default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument(
        "--reps", type=int, default=0, help="timed batches (0: 5 on CPU, 20 on GPU)"
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args(argv)

    from bench._common import random_model

    device = resolve(args.device)
    precisions = args.precisions or precisions_for(device)
    reps = args.reps or (20 if device.type == "cuda" else 5)
    result: dict = header("forward", device, args.peak_reps)
    result.update({"batch": args.batch, "shape": [args.height, args.width], "cases": []})
    peak = {p: v["best_gflops"] for p, v in result.get("peaks", {}).items()}
    x = torch.randn(args.batch, 3, args.height, args.width, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    per_variant: dict[str, dict[str, float]] = {}
    for variant in args.variants:
        generator = random_model(variant, device).generator
        flops = count_flops(generator, x)
        for precision in precisions:
            for compiled in (False, True) if args.compile else (False,):
                case = run_case(generator, x, device, precision, reps, compiled)
                gflops = flops / case["seconds_per_batch"] / 1e9
                case = {
                    "variant": variant,
                    "precision": precision,
                    "compiled": compiled,
                    "gflop_per_window": rounded(flops / args.batch / 1e9),
                    **case,
                    "gflops": rounded(gflops),
                    "fraction_of_peak": rounded(gflops / peak[precision], 3)
                    if precision in peak
                    else None,
                }
                result["cases"].append(case)
                if not compiled:
                    per_variant.setdefault(variant, {})[precision] = case["seconds_per_batch"]
                print(case, flush=True, file=sys.stderr)
    if "none" in per_variant:
        result["time_vs_none"] = {
            v: {p: rounded(t / per_variant["none"][p], 3) for p, t in times.items()}
            for v, times in per_variant.items()
        }
    if "fp32" in precisions and "bf16" in precisions:
        result["bf16_speedup"] = {
            v: rounded(t["fp32"] / t["bf16"], 3) for v, t in per_variant.items()
        }
        if "bf16" in peak and "fp32" in peak:
            result["bf16_peak_ratio"] = rounded(peak["bf16"] / peak["fp32"], 3)
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
