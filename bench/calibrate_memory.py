"""Peak resident memory of calibration against the number of healthy controls.

Calibration scores every control, then scores each control again against z-statistics
without it; the controls' ℓ2 maps wait in a temporary folder in between, so peak memory
should not grow with the number of controls. Each count runs in a fresh subprocess on
copies of one 1 mm phantom at the paper's 256 x 176, whole-brain band, with an
8-channel random-weight generator (map sizes do not depend on the network's width).
The JSON gives the peak RSS per count, the growth per added control, and what keeping
every control's maps in memory (float16 maps and a boolean mask) would add instead.

    python bench/calibrate_memory.py [--controls 8 32] [--device auto] [--out f.json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import base_parser, emit, machine, phantom_file, resolve, rounded
from bench.memory import _maxrss_mib, argparse_hidden


def child(device_name: str, path: Path, controls: int) -> dict:
    """Runs in the subprocess: calibrate on ``controls`` copies of the scan, report RSS."""
    from types import SimpleNamespace

    import torch

    from madgan_core.config import paper_preset
    from madgan_core.model.checkpoint import LoadedModel
    from madgan_core.model.networks import build_generator
    from madgan_core.prep.slab import preprocess
    from madgan_core.runtime.device import to_channels_last
    from madgan_core.scans.files import load_scan
    from madgan_core.scoring.calibrate import build_reference

    device = resolve(device_name)
    cfg = paper_preset()
    cfg.model.base_channels = 8
    cfg.preprocess.band = (0.0, 1.0)
    torch.manual_seed(0)
    generator = to_channels_last(build_generator(cfg.model).to(device)).eval()
    model = LoadedModel(generator, cfg, 0, Path("random.pt"), None, device)
    slices = preprocess(load_scan(path), cfg.preprocess).n_slices
    rows = [SimpleNamespace(path=path, sequence="T1") for _ in range(controls)]
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    build_reference(model, rows)
    return {
        "controls": controls,
        "slices_per_control": slices,
        "seconds": rounded(time.perf_counter() - t0),
        "rss_before_mib": rounded(baseline),
        "peak_rss_mib": rounded(_maxrss_mib()),
        # what the leave-one-out pass would hold in memory without the temporary folder
        "maps_per_control_mib": rounded(
            slices * cfg.preprocess.height * cfg.preprocess.width * 3 / 2**20
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--controls", type=int, nargs=2, default=[8, 32], metavar=("FEW", "MANY"))
    parser.add_argument("--child", type=Path, help=argparse_hidden())
    parser.add_argument("--count", type=int, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.device, args.child, args.count)))
        return {}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = phantom_file(Path(tmp))
        for count in args.controls:
            cmd = [sys.executable, __file__, "--child", str(path), "--count", str(count)]
            proc = subprocess.run(cmd + ["--device", args.device], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(proc.returncode)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    few, many = runs
    added = many["controls"] - few["controls"]
    result = {
        "bench": "calibrate_memory",
        "machine": machine(resolve(args.device)),
        "runs": runs,
        "peak_growth_per_control_mib": rounded(
            (many["peak_rss_mib"] - few["peak_rss_mib"]) / added
        ),
        "in_memory_maps_per_control_mib": many["maps_per_control_mib"],
    }
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
