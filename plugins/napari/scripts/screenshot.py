"""Make ``docs/screenshot.png``: a full review of synthetic patient P001 in napari.

The follow-up CT after PVE with the liver, tumour and FLR overlays, and the
Remnant, Volumetry and Hypertrophy widgets docked with their numbers.

Run (a display is needed; on a server use a virtual one)::

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python plugins/napari/scripts/screenshot.py [OUT.png]
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def main(out=REPO / "docs" / "screenshot.png"):
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from flr_volumetry_napari._sample_data import sample_p001
    from flr_volumetry_napari._widgets import HypertrophyWidget, RemnantWidget, VolumetryWidget

    viewer = napari.Viewer(title="flr-volumetry review: P001 (synthetic)")
    for data, kwargs, kind in sample_p001():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    for layer in viewer.layers:
        # Show the follow-up; keep the baseline loaded (the growth needs it) but hidden.
        layer.visible = "post_pve" in layer.name and not layer.name.endswith("segments")
    flr = viewer.layers["P001 post_pve flr"]
    liver = viewer.layers["P001 post_pve liver"]
    liver.opacity, flr.opacity = 0.30, 0.55
    z = int(np.median(np.nonzero(flr.data)[0]))
    viewer.dims.set_point(0, flr.data_to_world((z, 0, 0))[0])
    viewer.layers.selection.active = flr

    remnant = RemnantWidget(viewer)
    volumetry = VolumetryWidget(viewer)
    growth = HypertrophyWidget(viewer)
    volumetry.liver.set_layer(liver)
    volumetry.flr.set_layer(flr)
    volumetry.tumor.set_layer(viewer.layers["P001 post_pve tumor"])
    volumetry.segments.set_layer(viewer.layers["P001 post_pve segments"])
    remnant.liver.set_layer(liver)
    remnant.segments.set_layer(viewer.layers["P001 post_pve segments"])
    viewer.window.add_dock_widget(remnant, name="2 Remnant", area="left")
    viewer.window.add_dock_widget(volumetry, name="3 Volumetry", area="right")
    viewer.window.add_dock_widget(growth, name="4 Hypertrophy", area="right")
    volumetry.recompute()
    growth.compute()
    viewer.window._qt_window.resize(1900, 1150)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(path=str(out), canvas_only=False, flash=False)
    print(f"wrote {out}; live table computed in {volumetry.last_ms:.0f} ms; "
          f"KGR {growth.result.kgr_pct_per_week:.2f} %/week")
    viewer.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
