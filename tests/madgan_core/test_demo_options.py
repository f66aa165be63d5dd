"""``madgan demo``'s options: every bundled brain by default, the step curve on request."""

from __future__ import annotations

from madgan_core.cli import build_parser


def test_the_demo_learns_every_bundled_brain_and_skips_the_step_curve_by_default():
    args = build_parser().parse_args(["demo"])
    assert args.anatomy == ["all"] and args.curve is False
    args = build_parser().parse_args(["demo", "--curve", "--anatomy", "mni", "colin27"])
    assert args.curve is True and args.anatomy == ["mni", "colin27"]
