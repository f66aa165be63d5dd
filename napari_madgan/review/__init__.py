"""The MADGAN review widget: score a scan layer and browse its ℓ2 heatmap."""

from napari_madgan.review._widget import ReviewWidget

__all__ = ["ReviewWidget"]
