"""One phantom subject: template -> disease painting -> one warp -> scanner effects."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from madgan_core.cohort.phantom.ageing import ageing_stream, apply_ageing, paint_ageing_wmh
from madgan_core.cohort.phantom.anatomies import anatomy_template
from madgan_core.cohort.phantom.deform import ControlGrid, exp_velocity, resample, resample_mask
from madgan_core.cohort.phantom.diseases import (
    SUBTYPES,
    apply_ad_stage,
    atrophy_velocity,
    cortical_atrophy,
    paint_metastases,
    paint_various,
)
from madgan_core.cohort.phantom.healthy import (
    bias_field_coarse,
    contrast_t1c,
    draw_anatomy,
    enhancement_map,
    healthy_pullback,
    scanner_effects,
)

GROUPS = ("healthy", "ad", "mets", "various")
SEQUENCES = ("T1", "T1c")
# Which sequence each group is scanned with in a cohort (healthy subjects get both).
GROUP_SEQUENCES = {"healthy": ("T1", "T1c"), "ad": ("T1",), "mets": ("T1c",), "various": ("T1c",)}


def _check(group: str, stage: int, sequence: str, subtype: str | None) -> tuple[int, str | None]:
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    if sequence not in SEQUENCES:
        raise ValueError(f"sequence must be one of {SEQUENCES}, got {sequence!r}")
    if group == "healthy":
        if stage not in (0,):
            raise ValueError(f"healthy subjects have stage 0, got {stage}")
        return 0, None
    if group == "ad":
        if stage not in (1, 2, 3):
            raise ValueError(f"AD stage must be 1, 2 or 3, got {stage}")
        return stage, None
    if group == "various":
        subtype = subtype or SUBTYPES[0]
        if subtype not in SUBTYPES:
            raise ValueError(f"subtype must be one of {SUBTYPES}, got {subtype!r}")
        return 1, subtype
    return 1, None


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=key))


def make_subject(
    group: str,
    stage: int = 0,
    sequence: str = "T1",
    seed: int = 0,
    voxel_mm: float = 1.0,
    subtype: str | None = None,
    anatomy: str | os.PathLike = "mni",
    age: float | None = None,
    sex: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Simulate one subject's scan from the MNI152 template.

    The anatomy (warp, atrophy, lesions) depends only on ``group``, ``stage``,
    ``subtype`` and ``seed``; the sequence changes contrast, bias field and noise.
    So a healthy subject's T1 and T1c share one brain.

    Args:
        group: ``healthy``, ``ad``, ``mets`` or ``various``.
        stage: 0 for healthy, 1/2/3 for AD (CDR 0.5/1/2 analogues); ignored
            (set to 1) for ``mets`` and ``various``.
        sequence: ``T1`` or ``T1c``.
        seed: the subject's seed; same seed -> identical volume.
        voxel_mm: isotropic output voxel size over the MNI152 field of view.
        subtype: for ``various``: one of ``infarct``, ``cyst``, ``haemorrhage``, ``wm_lesions``.
        anatomy: the brain the subject is built from, all on the same grid in MNI space:
            ``mni`` (the MNI152 brain), ``head`` (the average head's own brain,
            :func:`madgan_core.cohort.phantom.head.head_template`), another bundled name of
            :data:`~madgan_core.cohort.phantom.anatomies.NAMES` (e.g. ``colin27``), or a T1 file's path, fitted to the template
            by :func:`madgan_core.cohort.phantom.anatomies.anatomy_template`.
        age: the subject's age in years: healthy ageing (larger ventricles, smaller
            hippocampi, wider sulci, sometimes small white-matter lesions; see
            :mod:`madgan_core.cohort.phantom.ageing`) before any disease effect. None: no ageing.
        sex: ``F`` or ``M``: a slightly smaller or larger head. None: neither.

    Returns:
        ``(volume, affine, info)``: float32 RAS+ volume, its voxel-to-MNI-mm
        affine, and a dict with the simulation parameters (``template``: the anatomy's
        label; ``anatomy``: the drawn anatomical parameters; ``scanner``:
        ``gamma``, ``noise_sigma``, ``gain``, ``bias_strength``), ``lesions`` (list of
        dicts) and ``lesion_mask`` (bool array, empty for healthy/AD); with ``age`` or
        ``sex``, also ``age``, ``sex`` and ``ageing`` (the effects added, and
        ``wm_hyperintensities``: the lesions of ageing, which are not in the mask).

    Example:
        >>> vol, affine, info = make_subject("ad", stage=3, seed=1, voxel_mm=4.0)
        >>> vol.shape
        (50, 59, 48)
    """
    stage, subtype = _check(group, stage, sequence, subtype)
    if sex is not None and sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', got {sex!r}")
    if age is not None and not 0 <= age <= 120:
        raise ValueError(f"age must be 0-120 years, got {age!r}")
    template, template_name = anatomy_template(anatomy, float(voxel_mm))
    grid = ControlGrid(template.shape, template.voxel_mm)
    anat_rng, disease_rng = _rng(seed, 0), _rng(seed, 1)
    seq_rng = _rng(seed, 2, SEQUENCES.index(sequence))

    anatomy = draw_anatomy(anat_rng)
    ageing = None
    if age is not None or sex is not None:
        ageing_rng = ageing_stream(seed)
        anatomy, ageing = apply_ageing(anatomy, age, sex, ageing_rng)
    if group == "ad":
        anatomy = apply_ad_stage(anatomy, stage, disease_rng)
    coarse = healthy_pullback(template, grid, anatomy, anat_rng)
    atrophy = exp_velocity(grid, atrophy_velocity(template, grid, anatomy, anat_rng))
    coarse = coarse + grid.sample(atrophy, coarse)
    modulation = 0.5 + anat_rng.random(grid.coarse_shape, dtype=np.float32)
    bias_strength = seq_rng.uniform(0.05, 0.25)
    bias = bias_field_coarse(grid, seq_rng, bias_strength, template.voxel_mm)
    fields = grid.upsample(np.concatenate([coarse, bias[None], modulation[None]]))
    coords, log_bias, modulation = fields[:3], fields[3], fields[4]

    t1 = cortical_atrophy(template.t1, template, anatomy, modulation)
    if sequence == "T1c":
        t1 = contrast_t1c(t1, enhancement_map(template), seq_rng)
    if ageing is not None and age is not None:
        wmh = paint_ageing_wmh(t1, template, age, ageing_rng)
        ageing["wm_hyperintensities"] = [] if wmh is None else [x.as_dict() for x in wmh.lesions]
        t1 = t1 if wmh is None else wmh.t1
    lesions, lesion_mask_t = [], None
    if group == "mets":
        painted = paint_metastases(t1, template, disease_rng)
    elif group == "various":
        painted = paint_various(t1, template, disease_rng, subtype)
    else:
        painted = None
    if painted is not None:
        t1, lesion_mask_t, lesions = painted.t1, painted.mask, painted.lesions

    volume, scanner = scanner_effects(resample(t1, coords), log_bias, seq_rng, sequence)
    scanner["bias_strength"] = float(bias_strength)
    lesion_mask = (
        resample_mask(lesion_mask_t, coords)
        if lesion_mask_t is not None
        else np.zeros(template.shape, dtype=bool)
    )
    info = {
        "group": group,
        "stage": stage,
        "sequence": sequence,
        "subtype": subtype,
        "seed": int(seed),
        "template": template_name,
        "voxel_mm": template.voxel_mm,
        "anatomy": {
            k: (np.round(v, 4).tolist() if isinstance(v, np.ndarray) else round(float(v), 4))
            for k, v in dataclasses.asdict(anatomy).items()
        },
        "scanner": {k: round(v, 4) for k, v in scanner.items()},
        "lesions": [lesion.as_dict() for lesion in lesions],
        "lesion_mask": lesion_mask,
    }
    if ageing is not None:
        info |= {"age": age, "sex": sex, "ageing": ageing}
    return volume, template.affine.copy(), info
