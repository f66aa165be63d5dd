"""Phantom cohorts from the MNI152 template or real brains (:mod:`.anatomies`): healthy
variation, AD-like atrophy, metastases, other lesions.

Example:
    >>> from madgan_core.cohort.phantom import make_subject
    >>> volume, affine, info = make_subject("mets", sequence="T1c", seed=3, voxel_mm=2.0)
"""

from madgan_core.cohort.phantom.cohort import generate_cohort
from madgan_core.cohort.phantom.diseases import SUBTYPES
from madgan_core.cohort.phantom.preview import preview_groups
from madgan_core.cohort.phantom.subject import GROUP_SEQUENCES, GROUPS, SEQUENCES, make_subject

__all__ = [
    "GROUPS",
    "GROUP_SEQUENCES",
    "SEQUENCES",
    "SUBTYPES",
    "generate_cohort",
    "make_subject",
    "preview_groups",
]
