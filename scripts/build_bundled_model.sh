#!/usr/bin/env bash
# Rebuild the bundled model (madgan_core/model/bundled_models/phantom-demo.pt) from the code:
# `madgan demo` (a phantom cohort of every bundled brain installed, the demo preset,
# calibration on T1 and T1c controls, evaluation), then packing with its recipe.
#   bash scripts/build_bundled_model.sh [OUT]     (default OUT: madgan_bundled)
set -euo pipefail
OUT=${1:-madgan_bundled}
HERE=$(cd "$(dirname "$0")" && pwd)

madgan demo --out "$OUT" --no-view --no-progress

anatomies=$(python3 -c "import csv, sys; print(' '.join(sorted({r['anatomy'] for r in csv.DictReader(open(sys.argv[1]))})))" "$OUT/cohort/manifest.csv")
hardware=$(python3 -c "
from madgan_core.runtime.device import describe, resolve_device, resolve_precision
d = resolve_device('auto'); print(describe(d, resolve_precision('auto', d)))")

# shellcheck disable=SC2086  # the anatomies are separate arguments
python3 "$HERE/pack_bundled_model.py" "$OUT/run/model.pt" --name phantom-demo \
    --preset demo --command "madgan demo --out $OUT" --cohort-seed 0 \
    --anatomies $anatomies --voxel-mm 2 \
    --count healthy=160 --count ad=60 --count mets=40 --count various=40 \
    --device "$hardware"
