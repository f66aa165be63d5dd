"""Test support for napari-madgan: fixtures shared by the tests, benchmarks and scripts.

Not installed (``pyproject.toml`` packages only ``madgan_core`` and ``napari_madgan``):
it is imported from a checkout of the repository, with the repository root on
``sys.path``. Fixtures may import the product; the product never imports them.

* :mod:`.brains`: small synthetic brain volumes and the path of nibabel's test files.
* :mod:`.controls`: healthy references whose controls carry ages and sexes.
* :mod:`.dicom_series`: write a volume as a DICOM MR series (made-up patient).
* :mod:`.results`: scan results made by hand, for tests of what a reader is shown.
"""
