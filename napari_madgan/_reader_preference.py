"""Make this plugin napari's reader for NIfTI, MGZ and DICOM files, with the user's consent.

The file name patterns are those of madgan_core's reader registry (``napari.yaml`` lists the same).

napari's built-in reader also claims ``*.nii``, ``*.nii.gz`` and ``*.dcm`` (through imageio),
then fails on most scans. When several readers match a file and none is preferred,
napari asks which one to use each time. napari's sanctioned answer is a reader
preference, ``settings.plugins.extension2reader``: the same setting its reader
dialog writes when the user ticks "Remember this choice", and that its
Preferences → Plugins page edits. The review widget offers to set it once.
"""

from __future__ import annotations

from madgan_core.scans.readers import filename_patterns

PLUGIN_NAME = "napari-madgan"
SCAN_PATTERNS = tuple(filename_patterns())
# Folders (DICOM studies) are left out: a preference for every folder would take zarr
# stores and image folders from their readers too. napari asks once for a folder.


def _extension2reader() -> dict[str, str]:
    from napari.settings import get_settings

    return dict(get_settings().plugins.extension2reader)


def patterns_read_elsewhere() -> list[str]:
    """The scan patterns whose preferred reader is not this plugin (unset or another one)."""
    preferences = _extension2reader()
    return [p for p in SCAN_PATTERNS if preferences.get(p) != PLUGIN_NAME]


def is_preferred_reader() -> bool:
    """True when napari opens every scan pattern with this plugin without asking."""
    return not patterns_read_elsewhere()


def prefer_this_reader() -> dict[str, str]:
    """Set this plugin as napari's reader for every scan pattern (saved in napari's settings)."""
    from napari.settings import get_settings

    preferences = _extension2reader()
    preferences.update(dict.fromkeys(SCAN_PATTERNS, PLUGIN_NAME))
    get_settings().plugins.extension2reader = preferences
    return preferences
