"""The MADGAN training dialog: run ``madgan train`` and follow it live."""

from napari_madgan.training._widget import TrainingWidget

__all__ = ["TrainingWidget"]
