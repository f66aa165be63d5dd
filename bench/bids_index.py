"""Start-up and indexing time of BIDS libraries on a synthetic 2,000-subject dataset.

Builds ``sub-NNNN/[ses-M/]anat/*_T1w.nii.gz`` (empty files; a quarter of the subjects
have two sessions, every tenth scan is contrast-enhanced) with ``participants.tsv`` and
``dataset_description.json``, then, for each candidate in a fresh interpreter, times
``import`` and the listing of every T1w file. ``madgan`` is
:func:`madgan_core.scans.bids.index_bids` (ancpbids' index plus the checks madgan adds:
participants, folder labels, strict file names). Prints one JSON object; all candidates
run in the same invocation so their ratios hold on a loaded machine. Candidates not
installed are reported with their import error (``pip install pybids bids2table`` to
compare all of them).

    python bench/bids_index.py [--subjects 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Each snippet prints {"import_s": ..., "index_s": ..., "files": N} for ROOT.
CANDIDATES = {
    "madgan": """
from madgan_core.scans.bids import index_bids
import ancpbids
t1 = time.perf_counter()
n = len(index_bids(ROOT).scans)
""",
    "pybids": """
from bids import BIDSLayout
t1 = time.perf_counter()
layout = BIDSLayout(ROOT, validate=True)
n = len(layout.get(suffix="T1w", datatype="anat", extension=[".nii", ".nii.gz"]))
""",
    "ancpbids": """
import ancpbids
t1 = time.perf_counter()
layout = ancpbids.BIDSLayout(ROOT)
n = len(layout.get(suffix="T1w", extension=".nii.gz", return_type="filename"))
""",
    "bids2table": """
import bids2table
t1 = time.perf_counter()
table = bids2table.index_dataset(ROOT)
n = sum(1 for s in table.column("suffix").to_pylist() if s == "T1w")
""",
}

TEMPLATE = """
import json, sys, time
sys.path.insert(0, {repo!r})
ROOT = {root!r}
t0 = time.perf_counter()
{body}
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "index_s": t2 - t1, "files": n}}))
"""


def make_tree(root: Path, subjects: int) -> int:
    """Write the synthetic dataset; return its number of T1w files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "synthetic", "BIDSVersion": "1.9.0"})
    )
    lines = ["participant_id\tage\tsex\tdiagnosis"]
    files = 0
    for i in range(subjects):
        sub = f"sub-{i:04d}"
        lines.append(f"{sub}\t{50 + i % 40}\t{'MF'[i % 2]}\t{('CN', 'AD', 'MCI')[i % 3]}")
        sessions = ["ses-1", "ses-2"] if i % 4 == 0 else ["ses-1"]
        for ses in sessions:
            anat = root / sub / ses / "anat"
            anat.mkdir(parents=True)
            ce = "_ce-gadolinium" if i % 10 == 0 else ""
            (anat / f"{sub}_{ses}{ce}_T1w.nii.gz").write_bytes(b"")
            files += 1
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return files


def run_candidate(name: str, root: Path) -> dict:
    code = TEMPLATE.format(repo=str(REPO), root=str(root), body=CANDIDATES[name])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bids"
        expected = make_tree(root, args.subjects)
        results: dict[str, dict] = {}
        for name in CANDIDATES:
            runs = [run_candidate(name, root) for _ in range(args.repeats)]
            errors = [r["error"] for r in runs if "error" in r]
            if errors:
                results[name] = {"error": errors[0]}
                continue
            results[name] = {
                "import_s_median": statistics.median(r["import_s"] for r in runs),
                "index_s_median": statistics.median(r["index_s"] for r in runs),
                "index_s_best": min(r["index_s"] for r in runs),
                "files": runs[0]["files"],
            }
    print(
        json.dumps(
            {
                "subjects": args.subjects,
                "t1w_files": expected,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
