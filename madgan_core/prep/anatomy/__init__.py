"""Anatomy of raw scans: registration to the MNI152 template, brain extraction, bias correction."""

from madgan_core.prep.anatomy.bias import correct_bias
from madgan_core.prep.anatomy.brain import extract_brain, looks_skull_stripped
from madgan_core.prep.anatomy.register import Alignment, register_to_template

__all__ = [
    "Alignment",
    "correct_bias",
    "extract_brain",
    "looks_skull_stripped",
    "register_to_template",
]
