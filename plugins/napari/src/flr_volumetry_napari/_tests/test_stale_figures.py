"""Figures shown must be those of the masks, timepoints and plan the user has now."""

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import flr_volumetry as flr

from flr_volumetry_napari._reader import read_path
from flr_volumetry_napari._widgets import (
    ExportWidget,
    HypertrophyWidget,
    LiverWidget,
    RemnantWidget,
    VolumetryWidget,
)

from .conftest import add_layers


def _layer(viewer, tp, role):
    return next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == role
                and lay.metadata.get("flr_timepoint", "").endswith(tp))


def _whole(data, layer):
    img = sitk.GetImageFromArray(np.ascontiguousarray(data))
    img.SetSpacing(layer.metadata["flr_geometry"]["display"]["spacing"])
    return img


def test_table_counts_paint_made_while_another_timepoint_was_shown(make_napari_viewer, qtbot,
                                                                   study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)
    liver, tumor, flr_layer = (_layer(viewer, "baseline", r) for r in ("liver", "tumor", "flr"))
    w.liver.set_layer(liver)
    assert w.recompute() is not None, w.status.text()
    w.liver.set_layer(_layer(viewer, "post_pve", "liver"))
    assert w.recompute() is not None, w.status.text()
    # The baseline is corrected with the brush, beyond its extent, while the table shows the
    # follow-up; then the user goes back to the baseline.
    for layer in (liver, flr_layer):
        layer.brush_size = 3
        layer.paint((1, 3, 3), 1)
    w.liver.set_layer(liver)
    assert w.flr.layer() is flr_layer
    m = w.recompute()
    ref = flr.measure(_whole(liver.data, liver), tumor=_whole(tumor.data, liver),
                      flr=_whole(flr_layer.data, liver))
    assert m.total_liver_ml == pytest.approx(ref.total_liver_ml)
    assert m.flr_ml == pytest.approx(ref.flr_ml)


def test_growth_table_of_another_pair_or_date_is_not_shown(make_napari_viewer, qtbot,
                                                           study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    assert w.compute() is not None, w.status.text()
    assert w.table.rowCount()
    w.followup.setCurrentIndex(0)  # another pair: the KGR shown was the last pair's
    assert w.table.rowCount() == 0 and w.result is None
    assert "Compute growth" in w.status.text()
    w.followup.setCurrentIndex(1)
    assert w.compute() is not None
    w.procedure_date.setText("2024-02-28")  # another interval
    assert w.table.rowCount() == 0 and w.result is None


def test_growth_baseline_is_the_last_scan_before_the_procedure_as_in_the_export(
        make_napari_viewer, qtbot, study_dir, tmp_path):
    p = study_dir / "P001"
    # A diagnostic scan (baseline, 2024-02-26) and a planning scan (pre2, 2024-03-01)
    # before the PVE (2024-03-04), with another FLR.
    shutil.copytree(p / "baseline", p / "pre2")
    (p / "pre2" / "timepoint.json").write_text(json.dumps({"scan_date": "2024-03-01"}))
    img = sitk.ReadImage(str(p / "pre2" / "flr.nii.gz"))
    liver = sitk.GetArrayFromImage(sitk.ReadImage(str(p / "pre2" / "liver.nii.gz")))
    arr = np.zeros_like(liver)
    arr[:, :, :18] = liver[:, :, :18]
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    sitk.WriteImage(out, str(p / "pre2" / "flr.nii.gz"))
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(p)))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    assert w.baseline.currentText().startswith("P001 pre2")
    h = w.compute()
    results = _exported(viewer, qtbot, tmp_path / "out")
    summary = results["patients"][0]["summary"]
    assert summary["baseline_timepoint"] == "pre2"
    assert h.gr_pct_per_week == pytest.approx(summary["gr_pct_per_week"])
    assert h.kgr_pct_per_week == pytest.approx(summary["kgr_pct_per_week"])
    # The earlier scan chosen by hand: said, since the export's figures differ.
    w.baseline.setCurrentIndex(0)
    assert w.compute() is not None
    assert "pre2 (2024-03-01) is a later scan before the procedure" in w.status.text()


def _viewer_with_a_planned_flr(make_napari_viewer, qtbot, study_dir):
    """P001 opened, its baseline FLR made by the Remnant widget (right hepatectomy)."""
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    rw = RemnantWidget(viewer)
    qtbot.addWidget(rw)
    rw.liver.set_layer(_layer(viewer, "baseline", "liver"))
    rw.segments.set_layer(_layer(viewer, "baseline", "segments"))
    rw.resection.setCurrentText("right_hepatectomy")
    rw.flr_from_segments()
    qtbot.waitUntil(lambda: "updated" in rw.status.text(), timeout=10000)
    return viewer


def _exported(viewer, qtbot, out_dir):
    """The results.json of an export of the open patient to ``out_dir``."""
    e = ExportWidget(viewer)
    qtbot.addWidget(e)
    e.folder.setText(str(out_dir))
    worker = e.export()
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    return e.results


def test_an_imported_flr_is_not_exported_as_the_plan_it_replaced(make_napari_viewer, qtbot,
                                                                 study_dir, tmp_path):
    viewer = _viewer_with_a_planned_flr(make_napari_viewer, qtbot, study_dir)
    assert _layer(viewer, "baseline", "flr").metadata["flr_plan"]["resection"]
    lw = LiverWidget(viewer)
    qtbot.addWidget(lw)
    lw.scan.set_layer(_layer(viewer, "baseline", "scan"))
    lw.import_role.setCurrentText("flr")
    imported = lw.import_mask(str(study_dir / "P001" / "baseline" / "flr.nii.gz"))
    assert imported is _layer(viewer, "baseline", "flr")  # the plan's layer, replaced
    assert imported.metadata.get("flr_plan") is None
    results = _exported(viewer, qtbot, tmp_path / "out")
    tp = next(t for t in results["patients"][0]["timepoints"] if t["timepoint"] == "baseline")
    assert tp["flr_method"] != "plan"
    assert not (tmp_path / "out" / "masks" / "P001" / "baseline" / "plan.json").exists()


def test_masks_corrected_with_the_brush_are_exported_as_edited(make_napari_viewer, qtbot,
                                                               study_dir, tmp_path):
    # An FLR made from a plan (or a liver read from a file) and then corrected with the brush
    # had been recorded as made by the plan (or the file) alone.
    viewer = _viewer_with_a_planned_flr(make_napari_viewer, qtbot, study_dir)
    for role in ("flr", "liver"):
        layer = _layer(viewer, "baseline", role)
        layer.brush_size = 3
        layer.paint((1, 3, 3), 1)
    results = _exported(viewer, qtbot, tmp_path / "out")
    tps = {t["timepoint"]: t for t in results["patients"][0]["timepoints"]}
    assert tps["baseline"]["flr_method"] == "plan, edited in napari"
    assert tps["baseline"]["liver_method"].endswith(", edited in napari")
    # The plan the correction started from is kept beside the mask.
    assert (tmp_path / "out" / "masks" / "P001" / "baseline" / "plan.json").exists()
    # Untouched masks are recorded as they were made.
    assert not tps["post_pve"]["liver_method"].endswith("edited in napari")


def test_a_remnant_run_finished_after_a_later_one_is_not_applied(make_napari_viewer, qtbot):
    # The buttons stay enabled while a run works (a registration takes seconds): a slow
    # first run finishing last had overwritten the FLR of the run clicked after it.
    import threading

    w = RemnantWidget(make_napari_viewer())
    qtbot.addWidget(w)
    release, applied = threading.Event(), []
    first = w._run("carry plan", lambda: release.wait(10) and "first", applied.append, [])
    second = w._run("FLR from segments", lambda: "second", applied.append, [])
    qtbot.waitUntil(lambda: applied == ["second"], timeout=10000)
    assert second is not first
    with qtbot.waitSignal(first.finished, timeout=10000):
        release.set()
    qtbot.wait(50)
    assert applied == ["second"]


def test_masks_cannot_be_painted_while_they_are_exported(make_napari_viewer, qtbot, study_dir,
                                                         tmp_path):
    # The export measures and writes the layers in a worker thread: a stroke made meanwhile
    # could land in the written mask and not in the measured one (or the reverse).
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    masks = [lay for lay in viewer.layers if lay.metadata.get("flr_role") in
             ("liver", "tumor", "flr", "segments")]
    assert masks and all(lay.editable for lay in masks)
    e = ExportWidget(viewer)
    qtbot.addWidget(e)
    e.folder.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(e.export().finished, timeout=60000):
        assert not any(lay.editable for lay in masks)
    qtbot.waitUntil(lambda: all(lay.editable for lay in masks), timeout=5000)


def test_table_figures_are_never_rounded_across_their_cut_off():
    # sFLR 19.996 % had been shown "20.00 %" beside "FAIL (< 20 %)", KGR 1.9996 "2.00 %/week"
    # beside "FAIL (< 2 %/week)", GR 2.6649 "2.66 %/week" beside "pass (> 2.66 %/week)"
    from flr_volumetry_napari._model import hypertrophy_rows, measurement_rows

    a = np.ones((20, 200, 100), np.uint8)
    liver = sitk.GetImageFromArray(a)  # 400 mL
    telv = flr.clinical.telv_ml(height_cm=170, weight_kg=70)
    f = a.reshape(-1).copy()
    f[int(round(0.19996 * telv * 1000)):] = 0
    flr_img = sitk.GetImageFromArray(f.reshape(a.shape))
    flr_img.CopyInformation(liver)
    liver.SetSpacing((1.0, 1.0, 1.0))
    flr_img.SetSpacing((1.0, 1.0, 1.0))
    m = flr.measure(liver, flr=flr_img, patient=flr.Patient(170, 70))
    assert m.sflr_adequate is False and 19.99 < m.sflr_pct < 20.0
    sflr_row = [r for r in measurement_rows(m) if r[0] == "sFLR"][0]
    assert sflr_row[1] == f"{m.sflr_pct:.3f} %" and sflr_row[2].startswith("FAIL")
    h = flr.hypertrophy({"flr_ml": 400.0, "sflr_pct": 20.0, "measured_flr_pct": 20.0},
                        {"flr_ml": 500.0, "sflr_pct": 27.9984, "measured_flr_pct": 30.6596},
                        procedure_date="2024-01-01", post_date="2024-01-29")
    rows = {r[0]: r for r in hypertrophy_rows(h)}
    assert rows["KGR (Shindoh)"][1] == "1.9996 %/week" and rows["KGR (Shindoh)"][2].startswith("FAIL")
    assert rows["GR (Leung)"][1] == "2.665 %/week" and rows["GR (Leung)"][2].startswith("pass")


def test_growth_table_is_cleared_when_a_measured_mask_changes(make_napari_viewer, qtbot,
                                                              study_dir):
    # The growth was computed, then the follow-up's FLR was changed (a plan run again
    # replaces the layer's data, a brush stroke, its undo) or closed: the DH and KGR of the
    # old FLR stayed on screen as if they were the new one's.
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    post_flr = _layer(viewer, "post_pve", "flr")

    def computed():
        assert w.compute() is not None, w.status.text()
        assert w.table.rowCount()

    def cleared():
        return w.table.rowCount() == 0 and w.result is None and "Compute growth" in \
            w.status.text()

    computed()
    new = np.zeros_like(post_flr.data)
    new[:, :, :8] = _layer(viewer, "post_pve", "liver").data[:, :, :8]
    post_flr.data = new
    assert cleared()
    computed()
    post_flr.brush_size = 3
    post_flr.paint((10, 16, 20), 1)
    assert cleared()
    computed()
    post_flr.undo()
    assert cleared()
    computed()
    viewer.layers.remove(_layer(viewer, "baseline", "tumor"))
    assert cleared()
    # Other layers' changes leave it shown.
    computed()
    other = viewer.add_labels(np.zeros((2, 2, 2), np.uint8))
    other.data = np.ones((2, 2, 2), np.uint8)
    assert w.table.rowCount() and w.result is not None, w.status.text()


def test_growth_table_is_cleared_when_the_volumetry_table_chooses_another_flr(
        make_napari_viewer, qtbot, study_dir):
    # The growth measures the layers the Volumetry table chose; choosing another FLR layer
    # for the follow-up there had left the old FLR's DH and KGR on screen.
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    growth, table = HypertrophyWidget(viewer), VolumetryWidget(viewer)
    qtbot.addWidget(growth)
    qtbot.addWidget(table)
    post_flr = _layer(viewer, "post_pve", "flr")
    table.liver.set_layer(_layer(viewer, "post_pve", "liver"))
    assert table.recompute() is not None, table.status.text()
    assert growth.compute() is not None, growth.status.text()
    assert growth.table.rowCount()
    smaller = post_flr.data.copy()
    smaller[:, :, :8] = 0
    viewer.add_labels(smaller, name="post_pve flr (other plan)", scale=post_flr.scale,
                      translate=post_flr.translate, metadata=dict(post_flr.metadata))
    table.flr.set_layer(viewer.layers["post_pve flr (other plan)"])
    assert table.recompute() is not None, table.status.text()
    assert growth.table.rowCount() == 0 and growth.result is None
    assert "Compute growth" in growth.status.text()
    h = growth.compute()
    assert h is not None, growth.status.text()
    assert h.flr_post_ml == pytest.approx(table.recompute().flr_ml)  # the chosen layer's


def test_moving_through_slices_does_not_count_the_growths_masks(make_napari_viewer, qtbot,
                                                                study_dir, monkeypatch):
    # Every slice step refreshes every layer; the growth widget had counted the voxels of
    # each mask it watches (six whole arrays) on each of them, slowing the scroll.
    from flr_volumetry_napari._widgets import _hypertrophy

    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    assert w.compute() is not None, w.status.text()
    counted = []
    real = _hypertrophy._voxels
    monkeypatch.setattr(_hypertrophy, "_voxels", lambda layer: counted.append(layer)
                        or real(layer))
    for step in range(5, 12):
        viewer.dims.set_current_step(0, step)
    assert counted == [] and w.table.rowCount()
    post_flr = _layer(viewer, "post_pve", "flr")
    post_flr.brush_size = 3
    post_flr.paint((10, 16, 20), 1)
    assert w.compute() is not None, w.status.text()
    viewer.dims.set_current_step(0, 3)
    post_flr.undo()  # an undo after a move is still seen
    assert w.table.rowCount() == 0


def test_moving_through_slices_does_not_measure_the_table_again(make_napari_viewer, qtbot,
                                                                study_dir, monkeypatch):
    # A slice step refreshes every layer: the first refresh was taken as a move, each
    # following one (the same point) as an undo, and every step measured the table again.
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)
    w.liver.set_layer(_layer(viewer, "baseline", "liver"))
    assert w.recompute() is not None, w.status.text()
    scheduled = []
    monkeypatch.setattr(w, "schedule", lambda *_: scheduled.append(1))
    for step in range(5, 12):
        viewer.dims.set_current_step(0, step)
    assert scheduled == []
    flr_layer = _layer(viewer, "baseline", "flr")
    flr_layer.brush_size = 3
    flr_layer.paint((10, 16, 20), 1)
    scheduled.clear()
    flr_layer.undo()  # an undo is a refresh without a move: measured again
    assert scheduled


@pytest.mark.parametrize("missing_at_baseline", [(), ("tumor", "segments")])
def test_showing_the_other_timepoint_in_the_volumetry_table_keeps_the_growth(
        make_napari_viewer, qtbot, study_dir, missing_at_baseline):
    # Moving the Volumetry table from one timepoint to the other changes its pickers one
    # by one; the in-between choices had been taken for new ones and cleared the growth.
    # With a baseline without tumour and segments, an empty picker not yet moved had been
    # taken for the follow-up's new choice of no segments.
    for role in missing_at_baseline:
        (study_dir / "P001" / "baseline" / f"{role}.nii.gz").unlink()
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    growth, table = HypertrophyWidget(viewer), VolumetryWidget(viewer)
    qtbot.addWidget(growth)
    qtbot.addWidget(table)
    for tp in ("post_pve", "baseline"):
        table.liver.set_layer(_layer(viewer, tp, "liver"))
        assert table.recompute() is not None, table.status.text()
    assert growth.compute() is not None, growth.status.text()
    for tp in ("post_pve", "baseline", "post_pve"):
        table.liver.set_layer(_layer(viewer, tp, "liver"))
        expected = None if tp == "baseline" and missing_at_baseline else "segments"
        assert getattr(table.segments.layer(), "metadata", {}).get("flr_role") == expected
        assert table.recompute() is not None, table.status.text()
        assert growth.table.rowCount() and growth.result is not None, (tp, growth.status.text())
