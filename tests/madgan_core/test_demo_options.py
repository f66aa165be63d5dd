"""``madgan demo``'s options: every bundled brain by default, the step curve on request."""

from __future__ import annotations

from madgan_core.cli import build_parser


def test_the_demo_learns_every_bundled_brain_and_skips_the_step_curve_by_default():
    args = build_parser().parse_args(["demo"])
    assert args.anatomy == ["all"] and args.curve is False
    args = build_parser().parse_args(["demo", "--curve", "--anatomy", "mni", "colin27"])
    assert args.curve is True and args.anatomy == ["mni", "colin27"]


def test_the_demo_reads_its_cohort_back_from_bids(tmp_path):
    from madgan_core.cohort.phantom import generate_cohort
    from madgan_core.cohort.phantom.bids_cohort import bids_label, generate_bids_cohort
    from madgan_core.commands.demo import bids_cohort_rows
    from madgan_core.scans.manifest import read_manifest

    args = build_parser().parse_args(["demo", "--bids", "--ageing"])
    assert args.bids and args.ageing
    tiny = dict(healthy=3, ad=3, mets=1, various=0, seed=5, voxel_mm=4.0, ageing=True, workers=1)
    flat = read_manifest(generate_cohort(tmp_path / "flat", **tiny))
    back = {
        (r.subject, r.sequence): r
        for r in bids_cohort_rows(generate_bids_cohort(tmp_path / "bids", **tiny), 5)
    }
    assert len(back) == len(flat)
    for r in flat:
        b = back[(f"sub-{bids_label(r.subject)}", r.sequence)]
        assert (b.group, b.stage, b.age, b.sex) == (r.group, r.stage, r.age, r.sex)
    assert {r.split for r in back.values() if r.group != "healthy"} == {"test"}
