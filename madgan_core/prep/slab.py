"""Scan -> slab of model-ready axial slices, and the map back to the scan's voxels.

Model space is a stack of axial slices of ``height x width`` pixels at
``pixel_mm`` spacing, centred on the brain. Rows run anterior (top) to
posterior, columns left to right (the patient's right on the right).

The slices are cut from the prepared scan (:mod:`madgan_core.prep.stages`: brain, bias and
grid steps); the slab keeps the geometry back, so :meth:`Slab.to_volume` (through the
merger, :mod:`madgan_core.prep.native_maps`) and :meth:`Slab.sample` speak the original
scan's RAS+ grid whatever the steps did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from madgan_core.config import LANDMARK_PERCENTILES, PreprocessConfig
from madgan_core.errors import ConfigError, ScanError
from madgan_core.prep import device_ops
from madgan_core.prep.domain_profile import DomainProfile, scan_profile
from madgan_core.prep.native_maps import to_volumes
from madgan_core.prep.stages import GridMap, prepare_scan
from madgan_core.scans.scan import Scan

if TYPE_CHECKING:
    import torch

MIN_SLICES = 6
# A brain narrower than this many model pixels cannot be scored (its voxel size is wrong,
# e.g. a header in metres); resampling it would also blur with an enormous kernel.
MIN_BRAIN_PIXELS = 4


@dataclass
class Slab:
    """Preprocessed axial slices plus the geometry that maps them back to the scan.

    Attributes:
        slices: ``(n, height, width)`` float32 in [-1, 1]; -1 is background.
        slice_indices: axial voxel index of each slice on the working grid (the scan's
            own RAS+ grid unless the grid step resampled it; see ``native_slice_indices``).
        center: in-plane (x, y) working-grid voxel coordinates of the model-space centre.
        voxels_per_pixel: (x, y) working-grid voxel steps per model pixel.
        volume_shape: shape of the scan's RAS+ volume, which :meth:`to_volume` returns
            and :meth:`sample` takes.
        intensity_range: the (low, high) intensities mapped to -1 and 1.
        landmarks: with landmark normalisation, ``(scan's, standard)`` decile positions
            in linear model units; model values are the scan's mapped onto the standard.
        grid: the map between the scan's RAS+ grid and the working grid, when they differ.
        steps: what the prepare stage did to the scan, in words.
        profile: the scan's domain profile (:mod:`madgan_core.prep.domain_profile`).
        prepared: the prepared scan (kept in memory only; a cached slab has none).
    """

    slices: np.ndarray
    slice_indices: np.ndarray
    center: np.ndarray
    voxels_per_pixel: np.ndarray
    volume_shape: tuple[int, int, int]
    intensity_range: tuple[float, float]
    landmarks: tuple[np.ndarray, np.ndarray] | None = None
    grid: GridMap | None = None
    steps: tuple[str, ...] = ()
    profile: DomainProfile | None = None
    # The prepared scan, kept in memory only (not a field: a cached slab has none).
    prepared = None

    @property
    def working_shape(self) -> tuple[int, int, int]:
        """Shape of the grid the slices were cut from."""
        return self.volume_shape if self.grid is None else self.grid.working_shape

    @property
    def native_slice_indices(self) -> np.ndarray:
        """The scan's own RAS+ axial voxel index nearest to each slice (for display)."""
        if self.grid is None:
            return self.slice_indices
        return self.grid.native_slices(self.slice_indices, self.center)

    def to_intensity(self, values: np.ndarray) -> np.ndarray:
        """Model-space values back in the scan's intensity units (undoes the normalisation)."""
        values = np.asarray(values, dtype=np.float32)
        if self.landmarks is not None:
            scan_marks, standard = self.landmarks
            values = np.interp(values, _with_ends(standard), _with_ends(scan_marks))
        low, high = self.intensity_range
        return ((values + 1.0) * 0.5 * (high - low) + low).astype(np.float32)

    @property
    def n_slices(self) -> int:
        return int(len(self.slice_indices))

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.slices.shape[1]), int(self.slices.shape[2])

    def _model_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Voxel (x, y) coordinates of every model pixel, each ``(height, width)``."""
        height, width = self.shape
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
        x = self.center[0] + (cols - (width - 1) / 2.0) * self.voxels_per_pixel[0]
        y = self.center[1] + ((height - 1) / 2.0 - rows) * self.voxels_per_pixel[1]
        return x, y

    def sample(
        self,
        volume: np.ndarray,
        order: int = 1,
        cval: float = 0.0,
        *,
        device: torch.device | None = None,
    ) -> np.ndarray:
        """Resample a RAS+ volume on this slab's grid into model space ``(n, height, width)``.

        ``device``: resample the slab's slices there in torch
        (:mod:`madgan_core.prep.device_ops`; linear only); None: numpy/scipy.
        """
        if volume.shape != self.volume_shape:
            raise ValueError(
                f"volume shape {volume.shape} does not match slab source {self.volume_shape}"
            )
        if self.grid is not None:
            volume = self.grid.from_native(volume, order=order, cval=cval)
        return self._sample_band(volume[:, :, self.slice_indices], order, cval, device)

    def _sample_band(
        self, band: np.ndarray, order: int, cval: float, device: torch.device | None = None
    ) -> np.ndarray:
        """Resample the slab's own axial slices ``band`` (``(nx, ny, n)``) into model space
        (in torch on ``device`` when given and ``order`` is 1)."""
        x, y = self._model_grid()
        if order == 1 and device is not None:
            return device_ops.sample_band(band, x, y, self.voxels_per_pixel, cval, device)
        if order == 1:
            # One bilinear stencil serves every slice: four gathers over the whole band
            # instead of one map_coordinates call per slice (about 15x faster).
            planes = np.moveaxis(np.asarray(band, dtype=np.float32), 2, 0)
            if np.any(_antialias_sigma(self.voxels_per_pixel) >= 0.25):
                planes = np.stack([_antialias(p, self.voxels_per_pixel, order) for p in planes])
            return _bilinear(planes, x, y, cval)
        out = np.empty((self.n_slices, *self.shape), dtype=np.float32)
        for k in range(self.n_slices):
            plane = _antialias(
                np.asarray(band[:, :, k], dtype=np.float32), self.voxels_per_pixel, order
            )
            out[k] = ndimage.map_coordinates(plane, [x, y], order=order, cval=cval, mode="constant")
        return out

    def to_volume(self, maps: np.ndarray) -> np.ndarray:
        """Map per-slice model-space maps back onto the scan's RAS+ voxel grid.

        One stack through the merger (:func:`madgan_core.prep.native_maps.to_volumes`);
        several stacks of one slab are faster through it at once.

        Args:
            maps: ``(n, height, width)``; a slice that is all NaN has no prediction.

        Returns:
            float32 volume of ``volume_shape``. Voxels with no prediction (outside
            the slab, outside the field of view, unpredicted slices) are NaN.
            With ``slice_step > 1`` each voxel slice takes its nearest slab slice.
        """
        return to_volumes(self, maps)[0]


def _antialias_sigma(voxels_per_pixel: np.ndarray) -> np.ndarray:
    return np.maximum((np.asarray(voxels_per_pixel, dtype=float) - 1.0) / 2.0, 0.0)


def _antialias(plane: np.ndarray, voxels_per_pixel: np.ndarray, order: int) -> np.ndarray:
    """Gaussian pre-filter before downsampling, so small structures do not alias."""
    if order == 0:
        return plane
    sigma = _antialias_sigma(voxels_per_pixel)
    if np.all(sigma < 0.25):
        return plane
    return ndimage.gaussian_filter(plane, sigma=sigma, mode="nearest")


def _bilinear(planes: np.ndarray, x: np.ndarray, y: np.ndarray, cval: float) -> np.ndarray:
    """``map_coordinates(plane, [x, y], order=1, mode="constant")`` for a stack of planes.

    Points outside ``[0, size - 1]`` on either axis take ``cval``, as in scipy's
    ``constant`` mode (no interpolation beyond the edges).
    """
    n, nx, ny = planes.shape
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    x0 = np.clip(np.floor(x), 0, max(nx - 2, 0)).astype(np.intp)
    y0 = np.clip(np.floor(y), 0, max(ny - 2, 0)).astype(np.intp)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    x1 = np.minimum(x0 + 1, nx - 1)
    y1 = np.minimum(y0 + 1, ny - 1)
    flat = planes.reshape(n, nx * ny)
    i00, i01, i10, i11 = x0 * ny + y0, x0 * ny + y1, x1 * ny + y0, x1 * ny + y1
    out = flat[:, i00] * ((1 - fx) * (1 - fy))
    out += flat[:, i01] * ((1 - fx) * fy)
    out += flat[:, i10] * (fx * (1 - fy))
    out += flat[:, i11] * (fx * fy)
    out[:, ~inside] = cval
    return out


def foreground_mask(data: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Voxels brighter than a fraction of the 99th intensity percentile."""
    threshold = cfg.foreground_fraction * float(np.percentile(data, 99.0))
    lowest = float(data.min())
    return data > max(threshold, lowest)


def select_slices(fg: np.ndarray, cfg: PreprocessConfig, scan: Scan | None = None) -> np.ndarray:
    """Axial indices of the slice band: automatic from the brain's extent, or explicit."""
    path = None if scan is None else scan.path
    area = fg.sum(axis=(0, 1)).astype(np.float64)
    if area.max() <= 0:
        raise ScanError("no foreground found (the volume looks empty)", path)
    nz = fg.shape[2]
    if cfg.slice_range is not None:
        start, stop = cfg.slice_range
        if stop > nz:
            raise ScanError(
                f"slice range {start}:{stop} exceeds the scan's {nz} axial slices", path
            )
        candidates = np.arange(start, stop, cfg.slice_step)
    else:
        occupied = np.flatnonzero(area > 0.02 * area.max())
        z_lo, z_hi = occupied[0], occupied[-1]
        extent = z_hi - z_lo
        start = int(round(z_lo + cfg.band[0] * extent))
        stop = int(round(z_lo + cfg.band[1] * extent)) + 1
        candidates = np.arange(start, stop, cfg.slice_step)
    usable = area[candidates] >= cfg.min_brain_fraction * area.max()
    if usable.any():
        first, last = np.flatnonzero(usable)[[0, -1]]
        candidates = candidates[first : last + 1]
    else:
        candidates = candidates[:0]
    if candidates.size < MIN_SLICES:
        raise ScanError(
            f"only {candidates.size} usable axial slices in the selected band (need at least {MIN_SLICES}); "
            "the scan may be empty, cropped or not a brain volume",
            path,
        )
    return candidates


def band_intensities(
    scan: Scan, cfg: PreprocessConfig
) -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray, np.ndarray]:
    """The slice band's foreground intensities, their clip percentiles (low, high), the
    band's axial indices, its foreground mask and the whole volume's."""
    fg = foreground_mask(scan.data, cfg)
    indices = select_slices(fg, cfg, scan)
    band_fg = fg[:, :, indices]
    values = scan.data[:, :, indices][band_fg]
    low, high = (float(v) for v in np.percentile(values, cfg.clip_percentiles))
    if not high > low:
        raise ScanError("foreground intensities are constant; cannot normalise", scan.path)
    return values, low, high, indices, band_fg, fg


def preprocess(
    scan: Scan,
    cfg: PreprocessConfig,
    brain_mask: np.ndarray | None = None,
    *,
    device: torch.device | None = None,
) -> Slab:
    """Prepare the scan (:func:`~madgan_core.prep.stages.prepare_scan`), select the slice band,
    normalise intensities to [-1, 1] and resample to model space.

    ``brain_mask`` (on ``scan``'s grid) is handed to the prepare stage. ``device``:
    normalise and resample the band there in torch (:mod:`madgan_core.prep.device_ops`,
    equal to float32 rounding); None: numpy/scipy.
    """
    prepared = prepare_scan(scan, cfg, brain_mask)
    native_zooms = scan.zooms
    scan = prepared.scan
    data = scan.data
    values, low, high, indices, band_fg, fg = band_intensities(scan, cfg)
    raw_marks = np.percentile(values, LANDMARK_PERCENTILES)
    scan_marks = scan_landmarks(values, low, high, raw_marks)
    steps, skull = prepared.steps, prepared.skull
    profile = scan_profile(
        native_zooms, fg, float(scan.zooms[2]), scan_marks, steps, skull, raw_marks
    )

    xs, ys = np.nonzero(band_fg.any(axis=2))
    center = np.array([(xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0])
    zooms = scan.zooms
    voxels_per_pixel = np.array([cfg.pixel_mm / zooms[0], cfg.pixel_mm / zooms[1]])
    extent = np.array([xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=float)
    if np.any(extent / voxels_per_pixel < MIN_BRAIN_PIXELS):
        mm = extent * zooms[:2]
        px = extent / voxels_per_pixel
        raise ScanError(
            f"the brain spans only {mm[0]:.3g} x {mm[1]:.3g} mm in-plane ({px[0]:.2g} x {px[1]:.2g} "
            f"model pixels of {cfg.pixel_mm:g} mm); check the voxel size (pixdim, units) in the header",
            scan.path,
        )

    slab = Slab(
        slices=np.empty((0, cfg.height, cfg.width), dtype=np.float32),
        slice_indices=np.asarray(indices, dtype=np.int64),
        center=center,
        voxels_per_pixel=voxels_per_pixel,
        volume_shape=tuple(
            int(s) for s in (data.shape if prepared.grid is None else prepared.grid.native_shape)
        ),
        intensity_range=(low, high),
        grid=prepared.grid,
        steps=tuple(prepared.steps),
        profile=profile,
    )
    slab.prepared = prepared
    if cfg.intensity == "landmarks" and cfg.landmarks is None:
        raise ConfigError(
            "preprocess.intensity is 'landmarks' but no landmarks were learned; "
            "train the model (it learns them from its training scans) or use 'linear'"
        )
    standard = None if cfg.landmarks is None else np.asarray(cfg.landmarks, dtype=np.float64)
    landmarks = cfg.intensity == "landmarks"
    ends = (_with_ends(scan_marks), _with_ends(standard)) if landmarks else None
    band = data[:, :, slab.slice_indices]  # normalise and resample only the slab's slices
    if device is not None:
        x, y = slab._model_grid()
        vpp = slab.voxels_per_pixel
        slab.slices = device_ops.model_slices(band, x, y, vpp, (low, high), device, ends)
    else:
        slab.slices = slab._sample_band(normalise_intensity(band, low, high), order=1, cval=-1.0)
        np.clip(slab.slices, -1.0, 1.0, out=slab.slices)
        if landmarks:
            slab.slices = np.interp(slab.slices, *ends).astype(np.float32)
    if landmarks:
        slab.landmarks = (scan_marks, standard)
    return slab


def scan_landmarks(values: np.ndarray, low: float, high: float, raw=None) -> np.ndarray:
    """A scan's foreground deciles (``raw``, when known) in linear model units, strictly
    increasing inside (-1, 1)."""
    marks = np.percentile(values, LANDMARK_PERCENTILES) if raw is None else raw
    marks = np.clip((marks - low) * (2.0 / (high - low)) - 1.0, -0.999, 0.999)
    # Ties (a flat histogram) would make the piecewise map ill-defined: separate them.
    return np.maximum.accumulate(marks) + np.linspace(0.0, 1e-4, len(marks))


def _with_ends(marks: np.ndarray) -> np.ndarray:
    """Landmarks with the clip percentiles' fixed ends, -1 and 1."""
    return np.concatenate([[-1.0], np.asarray(marks, dtype=np.float64), [1.0]])


def learn_landmarks(
    scans: Sequence, cfg: PreprocessConfig, progress: Callable | None = None
) -> tuple[float, ...]:
    """Standard landmarks: the mean of the scans' own (:func:`scan_landmarks`).

    ``scans`` are paths or manifest rows; ``progress(done, total, name)`` after each.
    """
    from madgan_core.scans.files import load_scan

    marks = []
    for i, item in enumerate(scans):
        path = Path(getattr(item, "path", item))
        scan = prepare_scan(load_scan(path), cfg).scan
        values, low, high = band_intensities(scan, cfg)[:3]
        marks.append(scan_landmarks(values, low, high))
        if progress is not None:
            progress(i + 1, len(scans), path.name)
    if not marks:
        raise ScanError("no scans to learn intensity landmarks from")
    return tuple(float(v) for v in np.mean(marks, axis=0))


def normalise_intensity(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to [low, high] and scale linearly to [-1, 1]."""
    out = (np.asarray(data, dtype=np.float32) - np.float32(low)) * np.float32(
        2.0 / (high - low)
    ) - 1.0
    return np.clip(out, -1.0, 1.0, out=out)
