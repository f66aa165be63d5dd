"""One configuration object for preprocessing, model, training and scoring.

The whole :class:`MadganConfig` is stored inside every checkpoint, so a model
knows how to preprocess scans for itself. Presets are values of the class.

Settings are changed in one way everywhere: a JSON file (:meth:`MadganConfig.load_json`)
or ``section.key=value`` texts (:func:`parse_overrides`), which the command line
(``--set``), the training dialog and the research scripts share.

The file runs past 400 lines on purpose: it is the one schema of every setting, each
key's documentation sits beside its default and its check (docs/configuration.md must
match these docstrings, tests/madgan_core/test_config_docs.py), and the override reader
sits beside the fields whose types it reads values as.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from madgan_core.errors import ConfigError
from madgan_core.modes import AUTO, MODE_NAMES

VARIANTS = ("none", "sa3", "sa7")
# Intensity normalisation: linear between two percentiles, or piecewise-linear onto
# standard landmarks learned from the training scans (Nyúl-Udupa style).
INTENSITY_MODES = ("linear", "landmarks")
# Foreground percentiles that serve as landmarks (the ends are the clip percentiles).
LANDMARK_PERCENTILES = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
# Decoder upsampling: the paper's transposed convolutions, or nearest-neighbour resize + conv.
UPSAMPLING = ("deconv", "resize")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
SEQUENCES = ("T1", "T1c")
# The prepare stage (madgan_core/prep/stages.py): brain step and bias step.
BRAIN_MODES = ("auto", "extract", "none")
BIAS_MODES = ("none", "n4")
# The grid step: the scan's own grid, resampled onto axis-aligned slice_mm slices, or
# the MNI152 template's field of view placed on the scan by a rigid or affine fit.
ALIGN_MODES = ("none", "resample", "rigid", "affine")

# Heatmap display range per sequence, as in the paper's figures.
HEATMAP_RANGE = {"T1": (0.0, 0.2), "T1c": (0.0, 0.06)}
# The z-map's display range (z), in napari and in the DICOM overlays alike.
ZMAP_RANGE = (0.0, 6.0)


@dataclass
class PreprocessConfig:
    """How a scan becomes a stack of model-ready axial slices.

    Attributes:
        height: Slice height in pixels (anterior-posterior axis).
        width: Slice width in pixels (left-right axis).
        pixel_mm: In-plane pixel size of model space. 1 mm with 256 x 176 gives
            the paper's 256 x 176 mm field of view.
        slice_step: Take every ``slice_step``-th axial voxel slice.
        band: Slice band as fractions of the brain's inferior-superior extent.
            The default covers hippocampus, amygdala and lateral ventricles.
        slice_range: Explicit ``[start, stop)`` axial indices in RAS+ voxel
            space; overrides ``band``.
        min_brain_fraction: A slice is usable only if this fraction of the
            brain's largest axial cross-section is foreground.
        clip_percentiles: Robust intensity percentiles inside the foreground.
        foreground_fraction: Foreground threshold as a fraction of the
            99th intensity percentile.
        intensity: ``linear`` (clip to the percentiles, scale to [-1, 1]) or
            ``landmarks``: then also map the foreground's deciles
            (:data:`LANDMARK_PERCENTILES`) piecewise-linearly onto ``landmarks``, so
            scans whose contrast curves differ (scanner, protocol) line up.
        landmarks: The standard decile positions in [-1, 1], learned by training
            from its scans (their mean); stored with the model.
        brain: The brain step: ``auto`` (a scan with a skull has its brain extracted;
            one already skull-stripped passes through untouched), ``extract`` (always
            extract) or ``none`` (the scan as given). Extraction registers the MNI152
            template and carries its brain mask (:mod:`madgan_core.prep.anatomy`).
        bias: The bias step: ``none`` (intensities as given) or ``n4`` (SimpleITK's N4
            bias-field correction inside the brain).
        align: The grid step: ``resample`` (an axis-aligned RAS+ grid with axial
            slices ``slice_mm`` apart and the scan's own in-plane spacing; a scan
            already on such a grid is passed through untouched), ``rigid`` or
            ``affine`` (the MNI152 template's field of view, at ``slice_mm``, placed on
            the scan by a fit of that kind, so slices and the band follow anatomy
            rather than the head's tilt), or ``none`` (the scan's own axial voxel
            slices, whatever their thickness). Results are always mapped back onto the
            scan's own grid.
        slice_mm: Axial slice spacing of the working grid in mm: set it to the
            training scans' (the presets: 1 mm, the paper's). ``none``: each scan's own
            axial spacing (only an oblique scan is resampled), as models saved before
            this key existed.
    """

    height: int = 256
    width: int = 176
    pixel_mm: float = 1.0
    slice_step: int = 1
    band: tuple[float, float] = (0.30, 0.68)
    slice_range: tuple[int, int] | None = None
    min_brain_fraction: float = 0.25
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    foreground_fraction: float = 0.1
    intensity: str = "linear"
    landmarks: tuple[float, ...] | None = None
    brain: str = "auto"
    bias: str = "none"
    align: str = "resample"
    slice_mm: float | None = None

    def validate(self) -> None:
        if self.height < 16 or self.width < 16 or self.height % 16 or self.width % 16:
            raise ConfigError(
                f"preprocess.height/width must be multiples of 16 and >= 16, got {self.height}x{self.width}"
            )
        if self.pixel_mm <= 0 or self.slice_step < 1:
            raise ConfigError("preprocess.pixel_mm must be > 0 and slice_step >= 1")
        lo, hi = self.band
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(f"preprocess.band must satisfy 0 <= low < high <= 1, got {self.band}")
        if self.slice_range is not None and not 0 <= self.slice_range[0] < self.slice_range[1]:
            raise ConfigError(
                f"preprocess.slice_range must be [start, stop) with start < stop, got {self.slice_range}"
            )
        p_lo, p_hi = self.clip_percentiles
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise ConfigError(
                f"preprocess.clip_percentiles must be increasing in [0, 100], got {self.clip_percentiles}"
            )
        if self.intensity not in INTENSITY_MODES:
            raise ConfigError(
                f"preprocess.intensity must be one of {INTENSITY_MODES}, got {self.intensity!r}"
            )
        for key, allowed in (("brain", BRAIN_MODES), ("bias", BIAS_MODES), ("align", ALIGN_MODES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"preprocess.{key} must be one of {allowed}, got {getattr(self, key)!r}"
                )
        if self.slice_mm is not None and not (np.isfinite(self.slice_mm) and self.slice_mm > 0):
            raise ConfigError(f"preprocess.slice_mm must be > 0 or none, got {self.slice_mm}")
        if self.landmarks is not None:
            try:
                marks = np.asarray(self.landmarks, dtype=float)
            except (TypeError, ValueError):
                marks = np.zeros(0)
            if (
                marks.shape != (len(LANDMARK_PERCENTILES),)
                or not np.all(np.diff(marks) > 0)
                or marks[0] <= -1.0
                or marks[-1] >= 1.0
            ):
                raise ConfigError(
                    f"preprocess.landmarks must be {len(LANDMARK_PERCENTILES)} increasing values "
                    f"inside (-1, 1), got {self.landmarks}"
                )


@dataclass
class ModelConfig:
    """Generator and critic architecture.

    Attributes:
        variant: ``none``, ``sa3`` or ``sa7`` self-attention modules.
        base_channels: Width of the first encoder layer (the paper's U-Net: 64).
        in_slices: Input slices (channels); the paper uses 3.
        out_slices: Predicted slices; the paper uses 3.
        gap: Slices skipped between the input and the predicted slices (0 in the paper).
        dropout: Decoder dropout probability (two layers).
        critic_channels: Width of the critic's first layer.
        skip_top: Keep the highest-resolution skip connection.
        upsample: ``deconv`` (the paper's transposed convolutions) or ``resize``
            (nearest-neighbour upsampling then a 3x3 convolution, free of checkerboard
            artefacts).
    """

    variant: str = "none"
    base_channels: int = 64
    in_slices: int = 3
    out_slices: int = 3
    gap: int = 0
    dropout: float = 0.5
    critic_channels: int = 64
    skip_top: bool = True
    upsample: str = "deconv"

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"model.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"model.upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.base_channels < 4 or self.critic_channels < 4:
            raise ConfigError("model.base_channels and critic_channels must be >= 4")
        if self.in_slices < 1 or self.out_slices < 1 or self.gap < 0:
            raise ConfigError("model.in_slices/out_slices must be >= 1 and gap >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")

    @property
    def window_span(self) -> int:
        """Slices one window touches: inputs, gap and targets."""
        return self.in_slices + self.gap + self.out_slices


@dataclass
class TrainConfig:
    """Optimisation, schedule and bookkeeping.

    Adam betas default to (0.5, 0.9), the usual WGAN-GP choice (Gulrajani et al.);
    the paper gives only the learning rate.

    Attributes:
        steps: Generator updates (the paper: 1.8 M).
        batch_size: Windows per batch (the paper: 16).
        lr: Adam learning rate of both networks (the paper: 2e-4).
        betas: Adam betas.
        l1_weight: Weight of the ℓ1 reconstruction term (the paper: 100; 0 for the
            paper's variant without it).
        adv_weight: Weight of the generator's adversarial term (0: ℓ1 only).
        gp_weight: WGAN-GP gradient-penalty weight.
        critic_steps: Critic updates per generator update.
        label_swap_every: The critic's real/synthetic labels are swapped on one step in
            this many (the paper: 3; 0 never).
        seed: Seed of weights, data order and dropout.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 where the hardware runs it natively), ``fp32``,
            ``bf16`` or ``fp16`` (CUDA only).
        compile: Wrap both networks in ``torch.compile``.
        num_workers: Data-loading worker processes.
        log_every: Steps between metric lines in ``metrics.jsonl``.
        preview_every: Steps between preview images.
        checkpoint_every: Steps between checkpoints.
        keep_last: Newest checkpoints kept (milestones are kept besides).
        milestones: Steps whose checkpoints are always kept, for AUC against step.
    """

    steps: int = 1_800_000
    batch_size: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    l1_weight: float = 100.0
    adv_weight: float = 1.0
    gp_weight: float = 10.0
    critic_steps: int = 1
    label_swap_every: int = 3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int = 2
    log_every: int = 50
    preview_every: int = 1000
    checkpoint_every: int = 10_000
    keep_last: int = 3
    milestones: tuple[int, ...] = (150_000, 300_000, 600_000, 900_000, 1_800_000)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("train.steps and train.batch_size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.l1_weight < 0 or self.gp_weight < 0 or self.adv_weight < 0:
            raise ConfigError("train.l1_weight, adv_weight and gp_weight must be >= 0")
        if self.critic_steps < 1:
            raise ConfigError("train.critic_steps must be >= 1")
        if self.label_swap_every < 0:
            raise ConfigError("train.label_swap_every must be >= 0 (0 disables the swap)")
        if self.device not in DEVICES:
            raise ConfigError(f"train.device must be one of {DEVICES}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"train.precision must be one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.checkpoint_every < 1 or self.keep_last < 1 or self.log_every < 1:
            raise ConfigError("train.checkpoint_every, keep_last and log_every must be >= 1")


@dataclass
class ScoreConfig:
    """How a scan's reconstruction error becomes a score.

    The z-map settings (``smooth_sigma_px`` to ``position_bins``) shape the healthy
    reference that ``madgan calibrate`` stores, and are read again to score against
    it: change them before calibrating, not after.

    Attributes:
        mode: the headline score that reports lead with and rank by (every mode is
            always computed): ``auto`` (``anomaly`` for a model calibrated for the
            scan's sequence, else ``mean``), or one of ``mean`` (the paper's),
            ``top10``, ``ratio``, ``ztail``, ``zvolume``, ``zmean``, ``anomaly``
            (:mod:`madgan_core.modes`).
        top_windows: window count of the ``top10`` mode.
        batch_size: windows per inference batch (0: chosen per device).
        smooth_sigma_px: Gaussian smoothing (pixels) of the ℓ2 maps before their log is
            compared with the healthy controls'.
        tail_fraction: fraction of the brain's highest z that ``ztail`` averages.
        volume_threshold: the z above which a pixel counts toward ``zvolume`` and the
            per-slice z-volume.
        position_bins: relative slice positions the healthy z-statistics are kept for.
        finding_threshold: the z above which a voxel belongs to a finding, a connected
            region of the z-map (:mod:`madgan_core.scoring.findings`).
        finding_min_ml: smaller regions (mL) are not reported as findings.
        finding_extent: the z that draws each finding's outline. Above
            ``finding_threshold`` a finding is outlined by its voxels at or above it,
            the core of its smoothed region; below, each finding grows over the
            connected voxels above it (hysteresis); ``None`` (the default): the regions
            as thresholded.
        finding_sign: trim each outline to the voxels where the scan departs from its
            prediction in the region's dominant direction (brighter or darker), which
            drops the error the model carries on past a lesion. With ``finding_extent``,
            chosen on validation cohorts (``scripts/finding_extent_validation.py``).
    """

    mode: str = "auto"
    top_windows: int = 10
    batch_size: int = 0
    smooth_sigma_px: float = 2.0
    tail_fraction: float = 0.01
    volume_threshold: float = 4.0
    position_bins: int = 24
    finding_threshold: float = 4.0
    finding_min_ml: float = 0.2
    finding_extent: float | None = None
    finding_sign: bool = True

    def validate(self) -> None:
        if self.mode not in (AUTO, *MODE_NAMES):
            raise ConfigError(f"score.mode must be one of {(AUTO, *MODE_NAMES)}, got {self.mode!r}")
        if self.top_windows < 1:
            raise ConfigError("score.top_windows must be >= 1")
        if self.batch_size < 0:
            raise ConfigError("score.batch_size must be >= 0")
        if not self.smooth_sigma_px >= 0:
            raise ConfigError(f"score.smooth_sigma_px must be >= 0, got {self.smooth_sigma_px}")
        if not 0.0 < self.tail_fraction <= 1.0:
            raise ConfigError(f"score.tail_fraction must be in (0, 1], got {self.tail_fraction}")
        if not np.isfinite(self.volume_threshold):
            raise ConfigError(
                f"score.volume_threshold must be a finite number, got {self.volume_threshold}"
            )
        if self.position_bins < 1:
            raise ConfigError("score.position_bins must be >= 1")
        if not np.isfinite(self.finding_threshold):
            raise ConfigError(
                f"score.finding_threshold must be a finite number, got {self.finding_threshold}"
            )
        if not self.finding_min_ml >= 0:
            raise ConfigError(f"score.finding_min_ml must be >= 0, got {self.finding_min_ml}")
        if self.finding_extent is not None and not np.isfinite(self.finding_extent):
            raise ConfigError(
                f"score.finding_extent must be a finite number or null, got {self.finding_extent}"
            )


@dataclass
class MadganConfig:
    """Everything a model needs, saved with it."""

    sequence: str = "T1"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)

    def validate(self) -> MadganConfig:
        if self.sequence not in SEQUENCES:
            raise ConfigError(f"sequence must be one of {SEQUENCES}, got {self.sequence!r}")
        self.preprocess.validate()
        self.model.validate()
        self.train.validate()
        self.score.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> MadganConfig:
        """Build a config from a (possibly partial) dict; unknown keys are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
        base = cls()
        return _merge(base, data, source).validate()

    def updated(self, overrides: dict[str, Any], source: str = "overrides") -> MadganConfig:
        """A copy with nested ``overrides`` applied, e.g. ``{"train": {"steps": 10}}``.

        ``source`` names the overrides in error messages (empty: name only the key).
        """
        return _merge(MadganConfig.from_dict(self.to_dict()), overrides, source).validate()

    def save_json(self, path: str | Path) -> None:
        from madgan_core.scans.files import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load_json(cls, path: str | Path) -> MadganConfig:
        return cls.from_dict(_read_json(Path(path)), source=str(path))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not a readable JSON config ({exc})", path) from None


def _merge(obj: Any, data: dict[str, Any], source: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(obj)}
    prefix = f"{source}: " if source else ""
    for key, value in data.items():
        where = f"{source}.{key}" if source else key
        if key not in names:
            raise ConfigError(
                f"{prefix}unknown key {key!r} in {type(obj).__name__} (known: {', '.join(names)})"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key!r} must be a mapping")
            _merge(current, value, where)
            continue
        setattr(obj, key, _coerce(current, value, where))
    return obj


def _coerce(current: Any, value: Any, where: str) -> Any:
    if isinstance(value, list):
        value = tuple(value)
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(current, int) and not isinstance(value, bool) and isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if (
        isinstance(current, float)
        and not isinstance(value, bool)
        and isinstance(value, int | float)
    ):
        return float(value)
    if isinstance(current, str) and isinstance(value, str):
        return value
    if isinstance(current, tuple) and isinstance(value, tuple):
        return value
    raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}")


def paper_preset() -> MadganConfig:
    """The paper's settings: 256 x 176, 64-channel U-Net, 1.8M steps of batch 16."""
    cfg = MadganConfig()
    cfg.preprocess.slice_mm = 1.0
    return cfg.validate()


def demo_preset() -> MadganConfig:
    """A CPU-sized preset: 128 x 96 at 2 mm, a 32-channel U-Net, 2,000 steps of batch 16.

    About 9 minutes of training on 2 CPU cores with bf16 (0.27 s/step); the paper's
    milestones (150k, 300k, 600k, 900k, 1.8M of 1.8M steps) are scaled to 2,000.
    It scores every slice with a substantial brain cross-section (``band`` 0-1), not
    only the paper's hippocampal band: focal lesions can lie anywhere, and on a
    validation cohort the whole-brain band detected them better at no cost on
    atrophy (docs/evaluation.md).
    """
    cfg = MadganConfig()
    cfg.preprocess = PreprocessConfig(
        height=128, width=96, pixel_mm=2.0, band=(0.0, 1.0), slice_mm=2.0
    )
    cfg.model = ModelConfig(base_channels=32, critic_channels=32)
    cfg.train = TrainConfig(
        steps=2000,
        batch_size=16,
        num_workers=0,
        log_every=25,
        preview_every=250,
        checkpoint_every=500,
        keep_last=2,
        milestones=(167, 333, 667, 1000, 2000),
    )
    return cfg.validate()


PRESETS = {"paper": paper_preset, "demo": demo_preset}


def preset(name: str, path: str | Path | None = None) -> MadganConfig:
    """A preset, with the keys of a JSON config file at ``path`` over it (errors name the file)."""
    try:
        cfg = PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    if path is None:
        return cfg
    data = _read_json(Path(path))
    try:
        return cfg.updated(data, source="")
    except ConfigError as exc:
        raise ConfigError(str(exc), path) from None


# ---------------------------------------------------------------- section.key=value overrides

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null")
_NUMBERS = {int: "an integer", float: "a number"}


def parse_override(text: str) -> tuple[str, Any]:
    """Read one ``section.key=value`` override, typed by the configuration's field.

    The value is read as the field's type: ``true``/``false`` for flags, numbers,
    plain or quoted text, ``none`` for optional fields, and comma-separated or
    bracketed lists for tuples (``preprocess.band=0,1`` or ``preprocess.band=[0, 1]``).

    Args:
        text: e.g. ``"train.steps=500"``, or ``"sequence=T1c"`` for a top-level key.

    Returns:
        The dotted key and its value, e.g. ``("train.steps", 500)``.

    Raises:
        ConfigError: naming the key, for a malformed text, an unknown key or a
            value of the wrong type.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.steps=500")
    hint = _field_type(key)
    return key, _parse_value(raw.strip(), hint, key)


def parse_overrides(
    texts: Iterable[str], sections: Collection[str] | None = None
) -> dict[str, Any]:
    """Nested overrides (``{"train": {"steps": 500}}``) from ``section.key=value`` texts.

    Later texts win over earlier ones. ``sections`` limits which sections may be set
    (a command that scores with a trained model takes only ``score``).
    """
    flat: dict[str, Any] = {}
    for text in texts:
        key, value = parse_override(text)
        section = key.rpartition(".")[0]
        if sections is not None and section not in sections:
            allowed = ", ".join(f"{s}.*" for s in sections)
            raise ConfigError(f"--set {key}: only {allowed} settings apply here")
        flat[key] = value
    return nest(flat)


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"train.steps": 5}`` as ``{"train": {"steps": 5}}``, the form :meth:`MadganConfig.updated` takes."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *sections, name = key.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return nested


def format_override(key: str, value: Any) -> str:
    """The ``section.key=value`` text that :func:`parse_override` reads back as ``value``."""
    _field_type(key)
    return f"{key}={_format_value(value)}"


def _format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(_format_value(v) for v in value) or "[]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def config_value(cfg: MadganConfig, key: str) -> Any:
    """The value of a dotted key, e.g. ``config_value(cfg, "train.steps")``."""
    _field_type(key)
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _field_type(key: str) -> Any:
    """The type hint of a dotted key's field; unknown keys are errors that list the known ones."""
    cls: Any = MadganConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        hints = typing.get_type_hints(cls)
        if part not in hints:
            where = ".".join(parts[:depth]) or "the configuration"
            known = ", ".join(hints)
            raise ConfigError(f"--set {key}: unknown key {part!r} in {where} (known: {known})")
        cls = hints[part]
        if depth < len(parts) - 1 and not dataclasses.is_dataclass(cls):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a section")
    if dataclasses.is_dataclass(cls):
        names = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"--set {key}: a section, not a key; give {key}.KEY ({names})")
    return cls


def _parse_value(raw: str, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in _NONE:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _parse_value(raw, inner, key)
    if origin is tuple:
        return _parse_tuple(raw, args, key)
    if hint is bool:
        if raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"--set {key}: expected true or false, got {raw!r}")
    if hint in _NUMBERS:
        try:
            return hint(raw)
        except ValueError:
            raise ConfigError(f"--set {key}: expected {_NUMBERS[hint]}, got {raw!r}") from None
    if hint is str:
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            return raw[1:-1]
        return raw
    raise ConfigError(f"--set {key}: cannot be set from the command line")  # pragma: no cover


def _parse_tuple(raw: str, args: tuple, key: str) -> tuple:
    text = raw.strip()
    if text[:1] in "[(" and text[-1:] in "])":
        text = text[1:-1]
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    if args and args[-1] is Ellipsis:
        types_ = [args[0]] * len(items)
    else:
        if len(items) != len(args):
            raise ConfigError(
                f"--set {key}: expected {len(args)} comma-separated values, got {raw!r}"
            )
        types_ = list(args)
    return tuple(_parse_value(item, t, key) for item, t in zip(items, types_, strict=True))
