"""MADGAN core: scan I/O, preprocessing, models, training, scoring and evaluation.

This package never imports napari or Qt.
"""

__version__ = "0.1.0"
