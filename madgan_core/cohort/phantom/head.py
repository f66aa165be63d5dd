"""pydeface's average head (skull, scalp, face, neck) around a phantom brain."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from madgan_core.cohort.phantom.template import load_template

HEAD_PACKAGE = "pydeface"
HEAD_FILE = "mean_reg2mean.nii.gz"
INSTALL_COMMAND = "pip install --no-deps pydeface==2.1.0"


def head_source():
    """The installed average-head file (an importlib resource); nothing is read.

    Raises:
        ModuleNotFoundError: pydeface is not installed (the message gives the install command).
    """
    from importlib.resources import files

    try:
        source = files(HEAD_PACKAGE) / "data" / HEAD_FILE
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the phantom head needs the {HEAD_PACKAGE!r} package's data; "
            f"install it with `{INSTALL_COMMAND}`",
            name=HEAD_PACKAGE,
        ) from None
    if not source.is_file():
        raise ModuleNotFoundError(
            f"{HEAD_PACKAGE!r} is installed but lacks data/{HEAD_FILE}; "
            f"reinstall it with `{INSTALL_COMMAND}`",
            name=HEAD_PACKAGE,
        )
    return source


@functools.lru_cache(maxsize=1)
def average_head() -> tuple[np.ndarray, np.ndarray]:
    """pydeface's average T1 head: ``(volume, affine)``, float32, RAS world mm (about 1 mm voxels).

    Read from the installed ``pydeface`` package's data; nothing is downloaded.

    Raises:
        ModuleNotFoundError: pydeface is not installed (the message gives the install command).
    """
    from importlib.resources import as_file

    source = head_source()
    with as_file(source) as path:
        img = nib.as_closest_canonical(nib.load(str(path)))
        volume = np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32)
        return volume, np.asarray(img.affine, dtype=float)


# MNI152 mm -> average-head world mm (RAS). Obtained with studies/fit_head_affine.py:
# SimpleITK affine registration (Mattes MI, levels 8/4/2 mm) of nilearn's skull-stripped
# MNI152 T1 to the average head, the template's brain plus a 5 mm rim as the metric mask,
# best of three starts. Its mean scale is ~0.8: the average head's header millimetres are
# about 0.8 of an adult's, so the head is placed in MNI space (scaled up), never the brain down.
MNI_TO_HEAD = np.array(
    [
        [0.82579, 0.05562, 0.01027, -4.41244],
        [-0.06865, 0.83369, -0.10575, 13.52843],
        [-0.01132, 0.10401, 0.74757, -2.35934],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
GAP_MM = 2.0  # dark CSF between the phantom brain and the head's inner skull
HEAD_FLOOR = 0.02  # head voxels below this fraction of the head's maximum count as air
# Percentile of brain voxels taken as the white-matter level (the brightest tissue on T1).
WM_PERCENTILE = 90.0
CSF_FRACTION = 0.25  # CSF intensity as a fraction of white matter on T1


@dataclass(frozen=True, eq=False)
class HeadGrid:
    """The average head on a padded phantom grid.

    The phantom grid (MNI mm, ``voxel_mm``) is padded to cover the whole head, so a
    phantom brain is copied in without resampling: ``brain_slices`` index where it goes.

    Attributes:
        head: head intensities resampled onto the padded grid (0 in air).
        brain_region: the template brain mask on the padded grid (the head's brain).
        affine: voxel-to-MNI-mm affine of the padded grid.
        brain_slices: where the phantom grid sits in the padded grid.
        wm_level: the head's white-matter intensity (``WM_PERCENTILE`` of ``brain_region``).
    """

    head: np.ndarray
    brain_region: np.ndarray
    affine: np.ndarray
    brain_slices: tuple[slice, slice, slice]
    wm_level: float

    def pad(self, volume: np.ndarray) -> np.ndarray:
        """A phantom-grid array placed on the padded grid (zeros around it)."""
        out = np.zeros(self.head.shape, dtype=volume.dtype)
        out[self.brain_slices] = volume
        return out


@functools.lru_cache(maxsize=4)
def head_grid(voxel_mm: float) -> HeadGrid:
    """The average head on the phantom grid at ``voxel_mm``, padded to the head (cached)."""
    template = load_template(float(voxel_mm))
    head, head_affine = average_head()
    head_to_mni = np.linalg.inv(MNI_TO_HEAD) @ head_affine
    fg = np.argwhere(head > HEAD_FLOOR * float(head.max()))
    lo_idx, hi_idx = fg.min(axis=0), fg.max(axis=0)
    corners = [[(lo_idx, hi_idx)[b][a] for a, b in enumerate(bits)] for bits in np.ndindex(2, 2, 2)]
    mm = np.asarray(corners, dtype=float) @ head_to_mni[:3, :3].T + head_to_mni[:3, 3]
    to_template = np.linalg.inv(template.affine)
    vox = mm @ to_template[:3, :3].T + to_template[:3, 3]
    start = np.minimum(np.floor(vox.min(axis=0)).astype(int), 0)
    stop = np.maximum(np.ceil(vox.max(axis=0)).astype(int) + 1, template.shape)
    shape = tuple(int(s) for s in stop - start)
    affine = template.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    # Padded voxel -> MNI mm -> head voxel, one affine; smooth first when coarser than the head.
    pull = np.linalg.inv(head_to_mni) @ affine
    sigma = max(0.0, 0.42 * (voxel_mm - 1.0))
    src = ndimage.gaussian_filter(head, sigma) if sigma > 0 else head
    on_grid = ndimage.affine_transform(src, pull[:3, :3], pull[:3, 3], shape, order=1, cval=0.0)
    on_grid = np.clip(on_grid, 0.0, None).astype(np.float32)
    slices = tuple(slice(-int(s), -int(s) + n) for s, n in zip(start, template.shape, strict=True))
    region = np.zeros(shape, dtype=bool)
    region[slices] = template.mask
    wm = float(np.percentile(on_grid[region], WM_PERCENTILE))
    return HeadGrid(on_grid, region, affine, slices, wm)


def wrap_in_head(
    volume: np.ndarray,
    masks: dict[str, np.ndarray],
    voxel_mm: float,
    noise_sigma: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Put a phantom brain (on the phantom grid at ``voxel_mm``) inside the average head.

    The head's tissue is kept outside the brain and its template brain region
    (both dilated by ``GAP_MM``); between them and the brain lies dark CSF; the
    brain is copied in unchanged. The head is scaled so its white matter matches
    the phantom brain's (``WM_PERCENTILE`` of each brain). Outside the brain, Rician
    noise of ``noise_sigma`` (relative to the white matter) is added, air included.

    Returns:
        ``(volume, affine, brain_mask, masks)`` on the padded grid (:func:`head_grid`):
        the brain mask is exactly the phantom brain's non-zero voxels; ``masks`` are padded alike.
    """
    grid = head_grid(float(voxel_mm))
    brain = grid.pad(volume > 0)
    wm = float(np.percentile(volume[volume > 0], WM_PERCENTILE)) if brain.any() else 1.0
    iterations = max(1, int(round(GAP_MM / voxel_mm)))
    inner = ndimage.binary_dilation(brain | grid.brain_region, iterations=iterations)
    out = np.where(inner, CSF_FRACTION * wm, grid.head * (wm / grid.wm_level))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    sigma = noise_sigma * wm
    n1 = rng.standard_normal(out.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(out.shape, dtype=np.float32) * sigma
    out = np.sqrt((out + n1) ** 2 + n2**2).astype(np.float32)
    out[brain] = grid.pad(volume)[brain]
    return (
        out,
        grid.affine.copy(),
        brain,
        {k: grid.pad(np.asarray(m, bool)) for k, m in masks.items()},
    )


@functools.lru_cache(maxsize=4)
def head_template(voxel_mm: float):
    """A :class:`~madgan_core.cohort.phantom.template.Template` whose T1 is the average head's own brain.

    The head's intensities inside the MNI152 brain mask (the head skull-stripped by the
    registered template mask) replace the template's T1, histogram-matched to it so the
    tissue levels agree; the tissue and region maps stay the MNI152's, placed by the
    registration (:data:`MNI_TO_HEAD`).
    """
    template = load_template(float(voxel_mm))
    grid = head_grid(float(voxel_mm))
    own = grid.head[grid.brain_slices]
    inside = template.mask
    q = np.linspace(0.5, 99.5, 100)
    matched = np.interp(own, np.percentile(own[inside], q), np.percentile(template.t1[inside], q))
    t1 = np.where(inside, matched, 0.0).astype(np.float32)
    return dataclasses.replace(template, t1=t1)
