"""Prepare a scan for the slab: the brain step, the bias step and the grid step.

:func:`prepare_scan` turns a loaded :class:`~madgan_core.scans.scan.Scan` (RAS+, its own grid)
into a :class:`PreparedScan`: the working scan the slab is cut from, plus the
:class:`GridMap` between the working grid and the original scan's RAS+ grid, so that
every result is shown and written on the scan as it was given (the way back is the
merger's, :mod:`madgan_core.prep.native_maps`).

The brain step (``preprocess.brain``, or a mask the caller gives): ``auto`` extracts the
brain of a scan with a skull and passes a skull-stripped one through; ``extract`` always
extracts; voxels outside the brain take the scan's minimum. The bias step
(``preprocess.bias = n4``) corrects the intensity bias inside the brain. Both come from
:mod:`madgan_core.prep.anatomy` (SimpleITK and the MNI152 template).

The grid step (``preprocess.align``):

- ``none``: the scan's own grid; axial slices are its axial voxel slices.
- ``resample``: an axis-aligned RAS+ grid whose axial slices are ``slice_mm`` apart
  (``preprocess.slice_mm``; ``None``: the scan's own axial spacing). The in-plane spacing is the scan's
  own: for an axis-aligned scan only the through-plane axis is interpolated, and the
  slab's in-plane sampling (anti-aliased, bilinear) does the rest as for any scan. An
  oblique scan is resampled onto the axis-aligned grid that covers it. Downsampling
  along an axis is preceded by a Gaussian (sigma of ``(step - 1) / 2`` voxels), as the
  slab does in-plane. A scan that is already axis-aligned with ``slice_mm`` slices is
  passed through untouched (the identical object), so its slab is bit-identical to one
  made without this step.
- ``rigid`` / ``affine``: the MNI152 template's field of view at ``slice_mm`` (else
  ``pixel_mm``), placed on the scan by a fit of that kind, so the slab's band and the
  z-map's position bins follow anatomy rather than the head's tilt or field of view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from madgan_core.config import PreprocessConfig
from madgan_core.errors import ScanError
from madgan_core.prep.anatomy import correct_bias
from madgan_core.prep.anatomy.steps import brain_step, template_working_grid
from madgan_core.scans.scan import MAX_VOXELS, Scan

# Voxel spacings equal within this many mm need no resampling.
SPACING_TOLERANCE_MM = 1e-3
# Output axial slices resampled per map_coordinates call (bounds the coordinate arrays).
CHUNK_SLICES = 16
# A working grid with fewer axial slices cannot hold a slab (preprocess.MIN_SLICES).
MIN_GRID_SLICES = 6


@dataclass(frozen=True)
class GridMap:
    """The geometry between a scan's RAS+ grid (native) and the working grid.

    Both are voxel grids in the same world (scanner mm); volumes move between them by
    interpolation: onto the working grid by :meth:`from_native`, back onto the scan's
    by the merger (:func:`madgan_core.prep.native_maps.to_scan_grid`). Plain arrays
    only, so a cached slab keeps it.

    Attributes:
        native_affine: voxel-to-world affine of the scan's RAS+ grid.
        native_shape: shape of that grid.
        working_affine: voxel-to-world affine of the working grid.
        working_shape: shape of the working grid.
    """

    native_affine: np.ndarray
    native_shape: tuple[int, int, int]
    working_affine: np.ndarray
    working_shape: tuple[int, int, int]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GridMap):
            return NotImplemented
        mine, theirs = self.arrays(), other.arrays()
        return all(np.array_equal(mine[k], theirs[k]) for k in mine)

    __hash__ = None

    def from_native(self, volume: np.ndarray, order: int = 1, cval: float = 0.0) -> np.ndarray:
        """A volume on the native grid, resampled onto the working grid (``cval`` outside)."""
        _check_shape(volume, self.native_shape, "native")
        return resample(
            volume, self.native_affine, self.working_affine, self.working_shape, order, cval
        )

    def native_slices(self, slice_indices: np.ndarray, center: np.ndarray) -> np.ndarray:
        """The native axial voxel index nearest to each working slice at the in-plane ``center``."""
        k = np.asarray(slice_indices, dtype=np.float64)
        points = np.stack(
            [np.full_like(k, center[0]), np.full_like(k, center[1]), k, np.ones_like(k)]
        )
        native = np.linalg.solve(self.native_affine, self.working_affine @ points)
        z = np.rint(native[2]).astype(np.int64)
        return np.clip(z, 0, self.native_shape[2] - 1)

    def arrays(self) -> dict[str, np.ndarray]:
        """The map as named arrays (for :mod:`madgan_core.prep.loader`' cache)."""
        return {
            "grid_native_affine": np.asarray(self.native_affine, dtype=np.float64),
            "grid_native_shape": np.asarray(self.native_shape, dtype=np.int64),
            "grid_working_affine": np.asarray(self.working_affine, dtype=np.float64),
            "grid_working_shape": np.asarray(self.working_shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, data) -> GridMap | None:
        """The map stored by :meth:`arrays`, or None when ``data`` holds none."""
        if "grid_working_affine" not in data:
            return None
        return cls(
            native_affine=np.asarray(data["grid_native_affine"], dtype=np.float64),
            native_shape=tuple(int(s) for s in data["grid_native_shape"]),
            working_affine=np.asarray(data["grid_working_affine"], dtype=np.float64),
            working_shape=tuple(int(s) for s in data["grid_working_shape"]),
        )


def _identity(volume: np.ndarray, *args, **kwargs) -> np.ndarray:
    return volume


@dataclass
class PreparedScan:
    """A scan made ready for the slab, and the grid between it and the scan as given.

    Attributes:
        scan: the working scan the slab is made from.
        brain_mask: bool mask on the ORIGINAL scan's RAS+ grid, or None when no brain
            step ran.
        from_native: original RAS+ grid volume -> working grid.
        steps: what was done, in words (e.g. ``"resampled 5 mm -> 1 mm slices"``).
        skull: True if a skull was detected on the input, False if it looked stripped,
            None if not checked.
        alignment: the registration to the template, when one ran.
        grid: the geometry behind ``from_native`` and the way back
            (:mod:`madgan_core.prep.native_maps`); None when the working grid is the
            original one.
    """

    scan: Scan
    brain_mask: np.ndarray | None
    from_native: Callable[..., np.ndarray]
    steps: list[str] = field(default_factory=list)
    skull: bool | None = None
    alignment: object | None = None
    grid: GridMap | None = None


def prepare_scan(
    scan: Scan, cfg: PreprocessConfig, brain_mask: np.ndarray | None = None
) -> PreparedScan:
    """Run the brain, bias and grid steps that ``cfg`` asks for.

    Args:
        scan: a loaded scan (RAS+).
        cfg: the model's preprocessing settings (``brain``, ``bias``, ``align``, ``slice_mm``).
        brain_mask: a brain mask on ``scan``'s grid; voxels outside it are set to the
            scan's minimum before the slab is made.

    Returns:
        The :class:`PreparedScan`; its ``scan`` is ``scan`` itself when no step changed it.
    """
    steps: list[str] = []
    working = scan
    mask = skull = alignment = None
    if brain_mask is not None:
        mask = np.asarray(brain_mask, dtype=bool)
        if mask.shape != scan.data.shape:
            raise ScanError(
                f"the brain mask's shape {mask.shape} does not match the scan's {scan.data.shape}",
                scan.path,
            )
        if not mask.any():
            raise ScanError("the brain mask is empty", scan.path)
        steps.append("brain masked (given mask)")
    elif cfg.brain != "none":
        found = brain_step(scan, cfg.brain)
        skull, alignment, mask = found.skull, found.alignment, found.mask
        if mask is not None:
            steps.append(found.step)
    if mask is not None:  # everything outside the brain takes the scan's minimum
        data = np.where(mask, scan.data, scan.data.min()).astype(np.float32)
        working = _with_data(scan, data, scan.affine)
    if cfg.bias == "n4":
        working = correct_bias(working, mask=mask)
        steps.append("bias corrected (N4)")
    grid = None
    if cfg.align in ("rigid", "affine"):
        voxel_mm = cfg.slice_mm or cfg.pixel_mm
        alignment, affine, shape = template_working_grid(
            working, cfg.align, voxel_mm, alignment, mask
        )
        grid = GridMap(working.affine, working.data.shape, affine, shape)
        data = grid.from_native(working.data, order=1, cval=float(working.data.min()))
        steps.append(f"aligned to MNI152 ({cfg.align}, {voxel_mm:g} mm grid)")
        working = _with_data(working, data, affine)
    elif cfg.align == "resample":
        target = working_grid(working, cfg.slice_mm)
        if target is not None:
            affine, shape = target
            if shape[2] < MIN_GRID_SLICES:
                extent = working.data.shape[2] * float(working.zooms[2])
                raise ScanError(
                    f"the brain spans only {extent:.3g} mm axially (the whole scan), fewer than "
                    f"{MIN_GRID_SLICES} slices of {affine[2, 2]:g} mm; check the voxel size "
                    "(pixdim, units) in the header",
                    scan.path,
                )
            grid = GridMap(working.affine, working.data.shape, affine, shape)
            data = grid.from_native(working.data, order=1, cval=float(working.data.min()))
            steps.append(_describe_grid(working, affine))
            working = _with_data(working, data, affine)
    return PreparedScan(
        scan=working,
        brain_mask=mask,
        from_native=_identity if grid is None else grid.from_native,
        steps=steps,
        skull=skull,
        alignment=alignment,
        grid=grid,
    )


def _with_data(scan: Scan, data: np.ndarray, affine: np.ndarray) -> Scan:
    return Scan(
        data=np.ascontiguousarray(data, dtype=np.float32),
        affine=np.asarray(affine, dtype=float),
        native_affine=scan.native_affine,
        native_shape=scan.native_shape,
        header=scan.header,
        path=scan.path,
        dicom=scan.dicom,
    )


def is_axis_aligned(affine: np.ndarray) -> bool:
    """Whether the voxel axes run along +x, +y, +z (no rotation, no shear)."""
    linear = np.asarray(affine, dtype=float)[:3, :3]
    off = linear - np.diag(np.diag(linear))
    return bool(np.all(np.diag(linear) > 0) and np.abs(off).max() <= 1e-6 * np.abs(linear).max())


def working_grid(
    scan: Scan, slice_mm: float | None
) -> tuple[np.ndarray, tuple[int, int, int]] | None:
    """The axis-aligned grid with ``slice_mm`` axial slices covering ``scan``; None if it is its own.

    ``slice_mm`` None keeps the scan's own axial spacing.

    An axis-aligned scan keeps its in-plane voxels; its axial extent (voxel edges) is
    covered by whole slices, centred. An oblique scan gets the bounding box of its voxel
    box at its own in-plane spacing.
    """
    zooms = scan.zooms
    shape = scan.data.shape
    if slice_mm is None:
        slice_mm = float(zooms[2])
    if is_axis_aligned(scan.affine):
        if abs(zooms[2] - slice_mm) <= SPACING_TOLERANCE_MM:
            return None
        extent = shape[2] * zooms[2]
        n = max(1, int(round(extent / slice_mm)))
        lower_edge = scan.affine[2, 3] - zooms[2] / 2.0
        affine = scan.affine.copy()
        affine[2, 2] = slice_mm
        affine[2, 3] = lower_edge + (extent - n * slice_mm) / 2.0 + slice_mm / 2.0
        return affine, (int(shape[0]), int(shape[1]), n)
    spacing = np.array([zooms[0], zooms[1], slice_mm])
    edges = np.array([[-0.5, s - 0.5] for s in shape])
    corners = np.array(np.meshgrid(*edges, indexing="ij")).reshape(3, -1)
    world = scan.affine[:3, :3] @ corners + scan.affine[:3, 3:4]
    lo, hi = world.min(axis=1), world.max(axis=1)
    n = np.maximum(np.ceil((hi - lo) / spacing - 1e-6), 1).astype(int)
    if math.prod(int(v) for v in n) > MAX_VOXELS:
        raise ScanError(
            f"an axis-aligned grid around this oblique scan would need {' x '.join(map(str, n))} "
            "voxels; check the affine (sform/qform) in the header",
            scan.path,
        )
    origin = lo + ((hi - lo) - n * spacing) / 2.0 + spacing / 2.0
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin
    return affine, (int(n[0]), int(n[1]), int(n[2]))


def _describe_grid(scan: Scan, affine: np.ndarray) -> str:
    old, new = float(scan.zooms[2]), float(affine[2, 2])
    if is_axis_aligned(scan.affine):
        return f"resampled {old:.3g} mm -> {new:.3g} mm slices"
    size = " x ".join(f"{v:.3g}" for v in np.diag(affine)[:3])
    return f"resampled an oblique scan onto an axis-aligned {size} mm grid"


def resample(
    volume: np.ndarray,
    src_affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_shape: tuple[int, int, int],
    order: int = 1,
    cval: float = 0.0,
) -> np.ndarray:
    """``volume`` (on ``src_affine``'s grid) resampled onto ``dst_affine``/``dst_shape``.

    Points outside the source's voxel box (beyond its edge voxels' half-widths) take
    ``cval``; inside, the edge voxels extend to their edges. Axes that are downsampled
    are smoothed first (unless ``order`` is 0).
    """
    src = np.asarray(volume, dtype=np.float32)
    to_src = np.linalg.solve(np.asarray(src_affine, float), np.asarray(dst_affine, float))
    linear, offset = to_src[:3, :3], to_src[:3, 3]
    if order > 0:
        step = np.abs(linear).max(axis=1)
        sigma = np.maximum((step - 1.0) / 2.0, 0.0)
        if np.any(sigma >= 0.25):
            src = ndimage.gaussian_filter(
                src, sigma=np.where(sigma >= 0.25, sigma, 0.0), mode="nearest"
            )
    same_xy = np.allclose(linear[:2], np.eye(3)[:2], atol=1e-9) and np.allclose(
        offset[:2], 0.0, atol=1e-9
    )
    if (
        same_xy
        and tuple(dst_shape[:2]) == src.shape[:2]
        and np.allclose(linear[2, :2], 0.0, atol=1e-9)
    ):
        return _resample_z(src, linear[2, 2] * np.arange(dst_shape[2]) + offset[2], order, cval)
    out = np.empty(dst_shape, dtype=np.float32)
    grid = np.mgrid[0 : dst_shape[0], 0 : dst_shape[1]].reshape(2, -1).astype(np.float64)
    for start in range(0, dst_shape[2], CHUNK_SLICES):
        ks = np.arange(start, min(start + CHUNK_SLICES, dst_shape[2]), dtype=np.float64)
        points = np.concatenate(
            [np.tile(grid, len(ks)), np.repeat(ks, grid.shape[1])[None]], axis=0
        )
        coords = linear @ points + offset[:, None]
        outside = np.zeros(coords.shape[1], dtype=bool)
        for axis in range(3):
            outside |= (coords[axis] < -0.5) | (coords[axis] > src.shape[axis] - 0.5)
            np.clip(coords[axis], 0, src.shape[axis] - 1, out=coords[axis])
        values = ndimage.map_coordinates(src, coords, order=order, mode="nearest")
        values[outside] = cval
        chunk = values.reshape(len(ks), dst_shape[0], dst_shape[1])
        out[:, :, start : start + len(ks)] = np.moveaxis(chunk, 0, 2)
    return out


def _resample_z(src: np.ndarray, z: np.ndarray, order: int, cval: float) -> np.ndarray:
    """Interpolate along the third axis only, at source positions ``z``."""
    nz = src.shape[2]
    outside = (z < -0.5) | (z > nz - 0.5)
    zc = np.clip(z, 0, nz - 1)
    if order == 0:
        out = src[:, :, np.rint(zc).astype(np.intp)]
    else:
        z0 = np.clip(np.floor(zc), 0, max(nz - 2, 0)).astype(np.intp)
        z1 = np.minimum(z0 + 1, nz - 1)
        f = (zc - z0).astype(np.float32)
        # src[..., z0] * (1 - f) + src[..., z1] * f, in place
        out = np.take(src, z0, axis=2)
        out *= 1 - f
        upper = np.take(src, z1, axis=2)
        upper *= f
        out += upper
    out = np.asarray(out, dtype=np.float32)
    out[:, :, outside] = cval
    return out


def _check_shape(volume: np.ndarray, shape: tuple[int, int, int], which: str) -> None:
    if tuple(volume.shape) != tuple(shape):
        raise ValueError(f"volume shape {volume.shape} does not match the {which} grid {shape}")
