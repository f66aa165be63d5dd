"""One configuration object for preprocessing, model, training and scoring.

The whole :class:`MadganConfig` is stored inside every checkpoint, so a model
knows how to preprocess scans for itself. Presets are values of the class.

Settings are changed in one way everywhere: a JSON file (:meth:`MadganConfig.load_json`)
or ``section.key=value`` texts (:func:`parse_overrides`), which the command line
(``--set``), the training dialog and the research scripts share; a trained model's
score settings through :meth:`MadganConfig.with_score_overrides`.

Every name is imported from this package. Each section lives in a module of its own,
with its key documentation beside each default and check (docs/configuration.md must
match these docstrings, tests/madgan_core/test_config_docs.py):

========================  ===============  ==================================================
section                   module           what it holds
========================  ===============  ==================================================
``preprocess``            ``_preprocess``  :class:`PreprocessConfig`, ``LANDMARK_PERCENTILES``,
                                           the intensity, brain, bias and align choices
``model``                 ``_model``       :class:`ModelConfig`, ``VARIANTS``, ``UPSAMPLING``
``train``                 ``_train``       :class:`TrainConfig`, ``DEVICES``, ``PRECISIONS``,
                                           ``ENGINES``, ``COMPILE_MODES``
``score``                 ``_score``       :class:`ScoreConfig`, ``HEATMAP_RANGE``, ``ZMAP_RANGE``
the whole (``sequence``)  ``_config``      :class:`MadganConfig` (merge, checks, JSON),
                                           ``SEQUENCES``
presets                   ``_presets``     ``PRESETS``, :func:`preset`, :func:`paper_preset`,
                                           :func:`demo_preset`
``--set`` texts           ``_overrides``   :func:`parse_overrides`, :func:`parse_override`,
                                           :func:`nest`, :func:`format_override`,
                                           :func:`config_value`
========================  ===============  ==================================================
"""

from madgan_core.config._config import SEQUENCES, MadganConfig
from madgan_core.config._model import UPSAMPLING, VARIANTS, ModelConfig
from madgan_core.config._overrides import (
    config_value,
    format_override,
    nest,
    parse_override,
    parse_overrides,
)
from madgan_core.config._preprocess import (
    ALIGN_MODES,
    BIAS_MODES,
    BRAIN_MODES,
    INTENSITY_MODES,
    LANDMARK_PERCENTILES,
    PreprocessConfig,
)
from madgan_core.config._presets import PRESETS, demo_preset, paper_preset, preset
from madgan_core.config._score import HEATMAP_RANGE, ZMAP_RANGE, ScoreConfig
from madgan_core.config._train import COMPILE_MODES, DEVICES, ENGINES, PRECISIONS, TrainConfig

__all__ = [
    "ALIGN_MODES",
    "BIAS_MODES",
    "BRAIN_MODES",
    "COMPILE_MODES",
    "DEVICES",
    "ENGINES",
    "HEATMAP_RANGE",
    "INTENSITY_MODES",
    "LANDMARK_PERCENTILES",
    "PRECISIONS",
    "PRESETS",
    "SEQUENCES",
    "UPSAMPLING",
    "VARIANTS",
    "ZMAP_RANGE",
    "MadganConfig",
    "ModelConfig",
    "PreprocessConfig",
    "ScoreConfig",
    "TrainConfig",
    "config_value",
    "demo_preset",
    "format_override",
    "nest",
    "paper_preset",
    "parse_override",
    "parse_overrides",
    "preset",
]
