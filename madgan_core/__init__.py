"""MADGAN core: scan I/O, preprocessing, models, training, scoring and evaluation.

This package never imports napari or Qt. Its subpackages are layered: each may import
from its own layer and the layers before it in :data:`LAYERS`, never from a later one
(``tests/madgan_core/test_layers.py`` holds this; docs/architecture.md draws it).
"""

__version__ = "0.1.0"

# The layers, bottom to top: (name, the top-level modules and packages it holds, its role).
LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("basics", ("errors", "modes"), "errors that name the file; the score-mode registry"),
    ("scans", ("scans",), "the Scan type, readers, DICOM series, manifests, atomic writes"),
    ("config", ("config",), "the one configuration object, by section, and its presets"),
    ("runtime", ("runtime",), "devices and precision, torchrun groups, shared cohort passes"),
    ("prep", ("prep",), "brain, bias and grid steps, slabs, windows, the cohort loader"),
    ("model", ("model",), "networks, losses, the healthy reference, model files, training"),
    ("scoring", ("scoring",), "one scan scored: reconstruction, maps, findings, guard"),
    ("outputs", ("outputs",), "what a reader or a PACS receives: wording, report, DICOM"),
    ("cohort", ("cohort",), "many scans: bulk scoring, training runs, phantoms, evaluation"),
    ("entry points", ("commands", "cli"), "the madgan command line"),
)
