"""Open napari reviewing one scan with a model: ``python -m napari_madgan.launch MODEL SCAN``.

The end of ``madgan demo`` where a display exists: the scan is opened, the
review widget is docked with the model and scoring starts at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def open_review(
    model: Path, scan: Path, sequence: str | None = None, run: bool = True, viewer=None
):
    """A napari viewer (new, or ``viewer``) with ``scan`` open and the review widget
    scoring it with ``model``."""
    import napari

    from madgan_core.scans.files import load_scan
    from napari_madgan._layers import scan_layer_tuple

    if viewer is None:
        viewer = napari.Viewer(title=f"MADGAN review: {scan.name}")
    data, kwargs, _ = scan_layer_tuple(load_scan(scan))
    layer = viewer.add_image(data, **kwargs)
    # The same path as Plugins → MADGAN review: napari builds the widget.
    _, widget = viewer.window.add_plugin_dock_widget("napari-madgan", "MADGAN review")
    widget.set_model_path(model)
    widget.set_scan_layer(layer.name)
    if sequence is not None:
        widget.set_sequence(sequence)
    if run:
        widget.run()
    return viewer, widget


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m napari_madgan.launch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", type=Path, help="model file (model.pt)")
    parser.add_argument("scan", type=Path, help="scan to review (NIfTI/MGZ)")
    parser.add_argument(
        "--sequence", choices=("T1", "T1c"), default=None, help="the scan's sequence"
    )
    args = parser.parse_args(argv)
    import napari

    from madgan_core.errors import MadganError

    try:
        open_review(args.model, args.scan, args.sequence)
    except MadganError as exc:
        print(f"napari-madgan: error: {exc}", file=sys.stderr)
        return 2
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
