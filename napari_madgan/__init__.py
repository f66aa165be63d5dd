"""napari-madgan: review MADGAN anomaly heatmaps and train models from napari.

Importing this package is cheap: torch and the model code load only when a
widget runs a model or a training process starts.
"""

from madgan_core import __version__

__all__ = ["__version__"]
