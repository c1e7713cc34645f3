"""The widgets driven end to end in a real (virtual-display) napari viewer."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import flr_volumetry as flr

from flr_volumetry_napari._geometry import to_display
from flr_volumetry_napari._reader import read_path
from flr_volumetry_napari._widgets import (
    ExportWidget,
    HypertrophyWidget,
    LiverWidget,
    RemnantWidget,
    VolumetryWidget,
)
from flr_volumetry_napari._widgets._remnant import _remnant_module

from .conftest import add_layers


def open_case(viewer, paths, roles=("ct", "liver", "tumor", "flr", "segments")):
    return {role: add_layers(viewer, read_path(str(paths[role])))[0] for role in roles}


def _mm(text):
    return float(text.split()[0])


def test_volumetry_table_updates_when_the_flr_is_painted(make_napari_viewer, qtbot, case_files):
    paths, arrays = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths)
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)
    assert w.liver.layer() is layers["liver"] and w.flr.layer() is layers["flr"]
    w.patient_form.height_cm.setValue(170)
    w.patient_form.weight_kg.setValue(70)
    qtbot.waitUntil(lambda: w.table.value("sFLR") not in (None, "–"), timeout=3000)
    # The numbers are the core's on the files.
    ref = flr.measure_files(str(paths["ct"]), liver=str(paths["liver"]),
                            tumor=str(paths["tumor"]), flr=str(paths["flr"]),
                            patient=flr.Patient(170, 70))
    assert _mm(w.table.value("TLV")) == pytest.approx(ref.total_liver_ml, abs=0.05)
    assert _mm(w.table.value("FLR")) == pytest.approx(ref.flr_ml, abs=0.05)
    assert _mm(w.table.value("sFLR")) == pytest.approx(ref.sflr_pct, abs=0.005)
    before = w.last_measurement.flr_ml

    # Paint the FLR inside the liver but outside the FLR's bounding box.
    flr_layer = layers["flr"]
    flr_layer.brush_size = 5
    flr_layer.paint((10, 16, 28), 1)
    qtbot.waitUntil(lambda: w.last_measurement is not None
                    and w.last_measurement.flr_ml > before, timeout=3000)
    # Exactly what measure() says on the whole painted arrays.
    geo = flr_layer.metadata["flr_geometry"]["display"]

    def whole(a):
        img = sitk.GetImageFromArray(np.ascontiguousarray(a))
        img.SetSpacing(geo["spacing"])
        return img
    full = flr.measure(whole(layers["liver"].data), tumor=whole(layers["tumor"].data),
                       flr=whole(flr_layer.data), patient=flr.Patient(170, 70))
    assert w.last_measurement.flr_ml == pytest.approx(full.flr_ml)
    assert _mm(w.table.value("FLR")) == pytest.approx(full.flr_ml, abs=0.05)
    assert w.table.check("Adequacy")  # the threshold source is shown

    # Undo (Ctrl+Z) brings the table back to the numbers before the stroke.
    flr_layer.undo()
    qtbot.waitUntil(lambda: w.last_measurement is not None
                    and w.last_measurement.flr_ml == pytest.approx(before), timeout=3000)

    # Height without weight: said in words, not computed.
    w.patient_form.weight_kg.setValue(0)
    qtbot.waitUntil(lambda: "both height and weight" in w.status.text(), timeout=3000)


def _erase_lowest_slices(layer, n=3):
    """Erase the mask's lowest ``n`` slices in one undo step, as one brush stroke does."""
    lo = int(np.argwhere(layer.data).min(0)[0])
    with layer.block_history():
        for z in range(lo, lo + n):
            idx = np.nonzero(layer.data[z])
            layer.data_setitem((np.full(idx[0].shape, z), idx[0], idx[1]), 0)


def test_an_undo_restoring_voxels_outside_the_tables_box_is_counted(make_napari_viewer, qtbot,
                                                                      case_files):
    # The table opened after an erase tracks the erased mask's box; the undo restores
    # voxels beyond it and sends no paint event: the table (and Recompute) had shown the
    # erased volume.
    paths, _ = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths)
    liver = layers["liver"]
    whole_ml = flr.mask_volume_ml(flr.load_mask(str(paths["liver"])).image)
    _erase_lowest_slices(liver)
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.last_measurement is not None, timeout=3000)
    erased_ml = w.last_measurement.total_liver_ml
    assert erased_ml < whole_ml
    liver.undo()
    qtbot.waitUntil(lambda: w.last_measurement.total_liver_ml == pytest.approx(whole_ml),
                    timeout=3000)
    # Undone while hidden (napari then refreshes nothing): counted all the same.
    liver.visible = False
    liver.redo()
    qtbot.waitUntil(lambda: w.last_measurement.total_liver_ml == pytest.approx(erased_ml),
                    timeout=3000)
    liver.undo()
    qtbot.waitUntil(lambda: w.last_measurement.total_liver_ml == pytest.approx(whole_ml),
                    timeout=3000)
    # The Recompute button counts every mask afresh.
    w.live.box(liver).reset(np.zeros_like(liver.data))  # a box gone wrong, however
    w.recompute_button.click()
    assert w.last_measurement.total_liver_ml == pytest.approx(whole_ml)


def test_liver_widget_imports_and_segments_from_a_seed(make_napari_viewer, qtbot, case_files):
    paths, arrays = case_files
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(paths["ct"])))
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    # Import: a labelled file, selecting label 5 (the "segments" file has 1-8).
    w.import_role.setCurrentText("tumor")
    w.import_labels.setText("5")
    layer = w.import_mask(str(paths["segments"]))
    expected = read_path(str(paths["segments"]))[0][0] == 5
    assert np.array_equal(layer.data != 0, expected)
    assert layer.metadata["flr_role"] == "tumor"
    # Import of something that does not exist: plain words in the status.
    assert w.import_mask(str(paths["ct"].parent / "nope.nii.gz")) is None
    assert "does not exist" in w.status.text()

    assert w.segment_button.isEnabled()
    # A 405 mL box liver in a body (the classic pipeline refuses livers < 50 mL).
    a = np.full((40, 60, 60), -1000, np.int16)
    a[5:35, 5:55, 5:55] = 40
    a[10:30, 15:45, 10:35] = 110
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    img.SetDirection((1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    sitk.WriteImage(img, str(paths["ct"].parent / "big.nii.gz"))
    scan = add_layers(viewer, read_path(str(paths["ct"].parent / "big.nii.gz")))[0]
    w.scan.set_layer(scan)
    seeds = w.add_points_layer("seeds")
    # A click in the middle of the liver, in world coordinates.
    seeds.add(scan.data_to_world((20, 30, 22)))
    w.modality.setCurrentText("ct")
    assert w.segment() is not None  # runs in a worker thread; the viewer stays usable
    name = f"{scan.metadata['flr_label']} liver"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: w.segment_button.isEnabled(), timeout=5000)
    seg = viewer.layers[name].data != 0
    truth = np.zeros(a.shape, bool)
    truth[10:30, 15:45, 10:35] = True
    truth = truth[:, ::-1, :]  # displayed in LPS: the flipped y axis is turned back
    dice = 2 * np.count_nonzero(seg & truth) / (seg.sum() + truth.sum())
    assert dice > 0.9, w.status.text()


def test_import_never_overwrites_another_patients_mask_of_the_same_name(
        make_napari_viewer, qtbot, study_dir, tmp_path):
    import shutil

    # P002's baseline folder: the same label "baseline", another patient, a smaller liver.
    other = tmp_path / "OTHER" / "P002" / "baseline"
    shutil.copytree(study_dir / "P001" / "baseline", other)
    liver2 = sitk.ReadImage(str(other / "liver.nii.gz"))
    a = sitk.GetArrayFromImage(liver2)
    a[:, :, a.shape[2] // 2:] = 0
    smaller = sitk.GetImageFromArray(a)
    smaller.CopyInformation(liver2)
    sitk.WriteImage(smaller, str(other / "liver.nii.gz"))
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001" / "baseline")))
    p1_liver = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "liver")
    before = p1_liver.data.copy()
    scan2 = add_layers(viewer, read_path(str(other / "image.nii.gz")))[0]
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    w.scan.set_layer(scan2)
    w.import_role.setCurrentText("liver")
    imported = w.import_mask(str(other / "liver.nii.gz"))
    assert imported is not None and imported is not p1_liver, w.status.text()
    assert np.array_equal(p1_liver.data, before)
    assert np.count_nonzero(imported.data) == np.count_nonzero(a)


def test_liver_widget_grows_a_lesion_from_a_tumour_seed(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    a = np.full((40, 60, 60), -1000, np.int16)
    a[5:35, 5:55, 5:55] = 40
    a[10:30, 15:45, 10:35] = 110
    z, y, x = np.ogrid[:40, :60, :60]
    lesion = (z - 20) ** 2 + (y - 30) ** 2 + (x - 22) ** 2 <= 16  # 4 voxels = 12 mm
    a[lesion] = 30
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    sitk.WriteImage(img, str(tmp_path / "scan.nii.gz"))
    scan = add_layers(viewer, read_path(str(tmp_path / "scan.nii.gz")))[0]
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    w.scan.set_layer(scan)
    w.modality.setCurrentText("ct")
    w.tumors.setChecked(False)  # only the seeded lesion
    w.add_points_layer("seeds").add(scan.data_to_world((20, 30, 30)))
    tumour_seeds = w.add_points_layer("tumor_seeds")
    assert w.tumor_seeds.layer() is tumour_seeds and w.seeds.layer() is not tumour_seeds
    tumour_seeds.add(scan.data_to_world((20, 30, 22)))
    assert w.segment() is not None
    name = f"{scan.metadata['flr_label']} tumor"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: w.segment_button.isEnabled(), timeout=5000)
    grown = viewer.layers[name].data != 0
    dice = 2 * np.count_nonzero(grown & lesion) / (grown.sum() + lesion.sum())
    assert dice > 0.8, w.status.text()
    assert "1 tumour seed" in w.status.text()


def test_remnant_widget_paint_and_segments(make_napari_viewer, qtbot, case_files):
    paths, arrays = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths)
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    painted = w.new_flr_layer(copy_liver=True)
    assert painted.metadata["flr_role"] == "flr" and painted.mode == "erase"
    assert np.array_equal(painted.data != 0, layers["liver"].data != 0)
    assert painted.metadata["flr_geometry"] == layers["liver"].metadata["flr_geometry"]
    assert _remnant_module() is not None and w.segments_button.isEnabled()
    # Right hepatectomy: the remnant is segments 1-4 of the liver, tumour excluded.
    w.resection.setCurrentText("right_hepatectomy")
    assert [i for i, cb in w.keep.items() if cb.isChecked()] == [1, 2, 3, 4]
    w.segments.set_layer(layers["segments"])
    assert w.flr_from_segments() is not None  # runs in a worker thread
    qtbot.waitUntil(lambda: "updated" in w.status.text(), timeout=30000)
    flr_layer = viewer.layers[w.status.text().split("'")[1]]
    # The mask keeps tumour voxels (measure() excludes them from the volume).
    expected = np.isin(layers["segments"].data, (1, 2, 3, 4)) & (layers["liver"].data != 0)
    assert np.array_equal(flr_layer.data != 0, expected)
    assert flr_layer.metadata["flr_plan"]["resection"] == "right_hepatectomy"


def test_a_result_whose_layer_was_closed_while_it_ran_is_dropped_and_said(
        make_napari_viewer, qtbot, case_files):
    # It had been added for the closed layer, "FLR layer ... updated", without a word.
    paths, _ = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths)
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    w.resection.setCurrentText("right_hepatectomy")
    w.segments.set_layer(layers["segments"])
    worker = w.flr_from_segments()
    assert worker is not None
    n_layers = len(viewer.layers)
    viewer.layers.remove(layers["liver"])  # (its result reaches the widget after this)
    qtbot.waitUntil(lambda: "dropped" in w.status.text(), timeout=30000)
    assert "'" + layers["liver"].name + "' was closed while it ran" in w.status.text()
    assert len(viewer.layers) == n_layers - 1
    # The liver widget alike: a scan closed while its liver was segmented.
    a = np.full((40, 60, 60), -1000, np.int16)
    a[5:35, 5:55, 5:55] = 40
    a[10:30, 15:45, 10:35] = 110
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    sitk.WriteImage(img, str(paths["ct"].parent / "box.nii.gz"))
    scan = add_layers(viewer, read_path(str(paths["ct"].parent / "box.nii.gz")))[0]
    lw = LiverWidget(viewer)
    qtbot.addWidget(lw)
    lw.scan.set_layer(scan)
    lw.add_points_layer("seeds").add(scan.data_to_world((20, 30, 22)))
    lw.modality.setCurrentText("ct")
    assert lw.segment() is not None
    viewer.layers.remove(scan)
    qtbot.waitUntil(lambda: lw.segment_button.isEnabled(), timeout=60000)
    assert "Liver segmentation: '" in lw.status.text() and "dropped" in lw.status.text()
    assert not any(lay.metadata.get("flr_role") == "liver" and lay.metadata.get(
        "flr_timepoint") == scan.metadata.get("flr_timepoint") for lay in viewer.layers)


def test_hypertrophy_between_two_timepoints_of_a_study(make_napari_viewer, qtbot, study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    assert w.baseline.count() == 2 and w.followup.currentIndex() == 1
    assert w.procedure_date.text() == "2024-03-04"
    assert w.patient_form.height_cm.value() == 172
    h = w.compute()
    assert h is not None, w.status.text()
    # The same growth as the core on the files.
    pre = flr.measure_files(str(study_dir / "P001/baseline/image.nii.gz"),
                            liver=str(study_dir / "P001/baseline/liver.nii.gz"),
                            tumor=str(study_dir / "P001/baseline/tumor.nii.gz"),
                            flr=str(study_dir / "P001/baseline/flr.nii.gz"),
                            patient=flr.Patient(172, 80), scan_date="2024-02-26")
    post = flr.measure_files(str(study_dir / "P001/post_pve/image.nii.gz"),
                             liver=str(study_dir / "P001/post_pve/liver.nii.gz"),
                             tumor=str(study_dir / "P001/post_pve/tumor.nii.gz"),
                             flr=str(study_dir / "P001/post_pve/flr.nii.gz"),
                             patient=flr.Patient(172, 80), scan_date="2024-04-01")
    ref = flr.hypertrophy(pre, post, procedure_date="2024-03-04")
    assert h.kgr_pct_per_week == pytest.approx(ref.kgr_pct_per_week)
    assert h.gr_pct_per_week == pytest.approx(ref.gr_pct_per_week)
    assert w.table.value("KGR (Shindoh)") == f"{ref.kgr_pct_per_week:.2f} %/week"
    assert w.table.check("KGR (Shindoh)").startswith("pass" if ref.kgr_meets_2pct else "FAIL")
    assert not w.chart.pixmap().isNull()
    # No procedure date: refused in words unless asked to count from the baseline scan.
    w.procedure_date.setText("")
    assert w.compute() is None and "procedure date" in w.status.text()
    assert "--" not in w.status.text()  # the widget's own words, not the command line's
    w.from_baseline.setChecked(True)
    assert w.compute().interval_start == "2024-02-26"
    assert w.table.value("ALPPS registry (Tomassini)") is None  # no scintigraphy typed


def test_growth_judges_the_alpps_registry_with_the_scintigraphy_typed(make_napari_viewer, qtbot,
                                                                     study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    w.date_form.hbs.setText("2,4")  # a decimal comma, as typed in many countries
    # P001's patient.json says PVE: not judged there, and said.
    assert w.compute().alpps_high_phlf_risk is None
    assert "is not used" in w.status.text()
    assert w.table.value("ALPPS registry (Tomassini)") is None
    for layer in viewer.layers:  # the same patient after ALPPS stage 1
        if layer.metadata.get("flr_patient_facts"):
            layer.metadata["flr_patient_facts"]["procedure"] = "ALPPS"
    h = w.compute()
    assert h is not None and h.hbs_pct_per_min_m2 == 2.4, w.status.text()
    assert h.alpps_high_phlf_risk == (h.flr_growth_pct_per_day <= 4.1)
    assert w.table.value("ALPPS registry (Tomassini)").endswith("HBS 2.4 %/min/m²")
    assert w.table.check("ALPPS registry (Tomassini)").startswith(
        "HIGH RISK" if h.alpps_high_phlf_risk else "not")
    # Typing another value clears the figures; one that is no number is refused in words.
    w.date_form.hbs.setText("abc")
    assert w.result is None
    assert w.compute() is None and "scintigraphy function must be a positive" in w.status.text()


def test_growth_counts_paint_made_after_the_last_click(make_napari_viewer, qtbot, study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    first = w.compute()
    assert first is not None, w.status.text()
    # Paint the follow-up FLR at a corner far from every mask's box, then click again.
    post_flr = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "flr"
                    and lay.metadata.get("flr_timepoint", "").endswith("post_pve"))
    post_liver = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "liver"
                      and lay.metadata.get("flr_timepoint", "").endswith("post_pve"))
    post_liver.data[0:2, 0:2, 0:2] = 1
    post_flr.data[0:2, 0:2, 0:2] = 1
    second = w.compute()
    voxel_ml = float(np.prod(post_flr.metadata["flr_geometry"]["display"]["spacing"])) / 1000
    assert second.flr_post_ml == pytest.approx(first.flr_post_ml + 8 * voxel_ml)


def test_growth_figures_clear_when_a_hidden_mask_is_undone(make_napari_viewer, qtbot,
                                                          study_dir):
    # napari refreshes no hidden layer: an undo there had left the figures shown as current.
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = HypertrophyWidget(viewer)
    qtbot.addWidget(w)
    post_flr = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "flr"
                    and lay.metadata.get("flr_timepoint", "").endswith("post_pve"))
    _erase_lowest_slices(post_flr, 1)
    assert w.compute() is not None, w.status.text()
    post_flr.visible = False
    post_flr.undo()
    assert w.result is None and w.table.rowCount() == 0
    assert "changed" in w.status.text()


def test_volumetry_keeps_to_one_scan_and_follows_the_mask_being_edited(make_napari_viewer, qtbot,
                                                                     study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)

    def layer(tp, role):
        return next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == role
                    and lay.metadata.get("flr_timepoint", "").endswith(tp))
    # Choosing the baseline liver chooses the baseline's tumour and FLR too.
    w.liver.set_layer(layer("baseline", "liver"))
    assert w.tumor.layer() is layer("baseline", "tumor")
    assert w.flr.layer() is layer("baseline", "flr")
    assert w.recompute() is not None, w.status.text()
    # A mask of the other timepoint, chosen by hand, is refused in words.
    w.flr.set_layer(layer("post_pve", "flr"))
    assert w.recompute() is None and "belongs to another timepoint" in w.status.text()
    # Same timepoint and shape, but another grid (twice the voxel size): refused too.
    import copy

    base_flr = layer("baseline", "flr")
    meta = copy.deepcopy(dict(base_flr.metadata))
    meta["flr_geometry"]["display"]["spacing"] = [
        2 * v for v in meta["flr_geometry"]["display"]["spacing"]]
    other = viewer.add_labels(np.asarray(base_flr.data).copy(), name="other grid", metadata=meta)
    w.flr.set_layer(other)
    assert w.recompute() is None and "another scan's grid" in w.status.text()
    viewer.layers.remove(other)
    # "FLR = liver, then erase" makes a new FLR layer: the table follows it.
    w.flr.set_layer(layer("baseline", "flr"))
    rw = RemnantWidget(viewer)
    qtbot.addWidget(rw)
    rw.liver.set_layer(layer("baseline", "liver"))
    painted = rw.new_flr_layer(copy_liver=True)
    assert w.flr.layer() is painted


def test_export_writes_masks_json_and_report(make_napari_viewer, qtbot, study_dir, tmp_path):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = ExportWidget(viewer)
    qtbot.addWidget(w)
    out = tmp_path / "export"
    w.folder.setText(str(out))
    assert w.export() is not None  # runs in a worker thread
    qtbot.waitUntil(lambda: w.export_button.isEnabled() and w.results is not None, timeout=30000)
    results = w.results
    assert results["patients"][0]["patient_id"] == "P001", w.status.text()
    flr_out = out / "masks/P001/post_pve/flr.nii.gz"
    back = sitk.ReadImage(str(flr_out))
    orig = sitk.ReadImage(str(study_dir / "P001/post_pve/flr.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(orig))
    assert back.GetDirection() == orig.GetDirection()
    saved = json.loads((out / "results.json").read_text())
    f = saved["patients"][0]["followups"][0]
    assert f["status"] == "ok" and f["hypertrophy"]["procedure_date"] == "2024-03-04"
    m = json.loads((out / "masks/P001/baseline/measurement.json").read_text())
    assert m["height_cm"] == 172
    html = (out / "report.html").read_text()
    assert "P001" in html and "post_pve" in html
    # No output folder, or a file in its place: said in words, nothing half-written.
    w.folder.setText("")
    assert w.export() is None and "output folder" in w.status.text()
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    w.folder.setText(str(blocker))
    w.export()
    qtbot.waitUntil(lambda: "cannot write" in w.status.text(), timeout=30000)
    assert blocker.read_text() == "x"


def test_export_refused_part_way_writes_nothing(make_napari_viewer, qtbot, study_dir, tmp_path):
    from flr_volumetry import InputError
    from flr_volumetry_napari._widgets._export import export_review

    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    patient = flr.Patient(172, 80)
    out = tmp_path / "export"
    with pytest.raises(InputError, match="procedure date 'garbage' is not a date"):
        export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "garbage")
    assert not out.exists()
    # The follow-up liver emptied: refused before the baseline's files are written.
    post_liver = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "liver"
                      and lay.metadata.get("flr_timepoint", "").endswith("post_pve"))
    post_liver.data[:] = 0
    with pytest.raises(InputError, match="is empty"):
        export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    assert not out.exists()


def test_export_of_a_mask_off_its_scans_grid_leaves_the_last_export_whole(
        make_napari_viewer, qtbot, study_dir, tmp_path):
    # A follow-up whose mask and scan grids differ (a cropped mask beside a DICOM scan) had
    # failed in its overlay with an IndexError, after the baseline's files and its own masks
    # were rewritten beside the last export's results.json and report.
    from flr_volumetry import InputError
    from flr_volumetry_napari._widgets._export import export_review

    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    patient, out = flr.Patient(172, 80), tmp_path / "export"
    export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    post_scan = next(lay for lay in viewer.layers if lay.metadata.get("flr_role") == "scan"
                     and lay.metadata.get("flr_timepoint", "").endswith("post_pve"))
    post_scan.data = np.asarray(post_scan.data)[:, :, :-2].copy()
    with pytest.raises(InputError, match="does not match its scan grid"):
        export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_remnant_cut_surface_and_landmarks(make_napari_viewer, qtbot, case_files):
    from flr_volumetry import remnant

    paths, arrays = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths, roles=("ct", "liver"))
    liver = layers["liver"]
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    # A plane between displayed columns 19 and 20, keep point on the low-x side.
    surface = w.add_points_layer("surface")
    for z, y in ((5, 8), (14, 8), (10, 24)):
        surface.add(liver.data_to_world((z, y, 19.5)))
    keep = w.add_points_layer("keep")
    keep.add(liver.data_to_world((10, 16, 10)))
    assert w.split() is not None
    qtbot.waitUntil(lambda: "updated" in w.status.text(), timeout=30000)
    flr_layer = viewer.layers[w.status.text().split("'")[1]]
    expected = np.zeros(liver.data.shape, bool)
    expected[:, :, :20] = liver.data[:, :, :20] != 0
    assert np.array_equal(flr_layer.data != 0, expected)
    assert len(flr_layer.metadata["flr_plan"]["surface_points"]) == 3
    # The cut's points belong to this scan: its grid goes with the exported plan.
    assert flr_layer.metadata["flr_plan"]["placed_on"]["size"] == list(liver.data.shape[::-1])

    # Landmarks clicked in napari give the segments the core gives for the same mm points.
    w.status.setText("")
    pts_zyx = {"ivc": (10, 22, 17), "right_hepatic_vein": (13, 18, 9),
               "middle_hepatic_vein": (13, 16, 17), "left_hepatic_vein": (13, 18, 26),
               "portal_bifurcation": (9, 16, 17)}
    for name, zyx in pts_zyx.items():
        w.landmark_name.setCurrentText(name)
        w.add_points_layer("landmark", name).add(liver.data_to_world(zyx))
    assert w.segments_from_landmarks() is not None
    qtbot.waitUntil(lambda: w.status.text() and not w.status.text().endswith("…"),
                    timeout=30000)
    seg_layer = w.segments.layer()
    assert seg_layer is not None, w.status.text()
    file_liver = sitk.ReadImage(str(paths["liver"]))
    mm = {n: [tuple(np.asarray(liver.data_to_world(z))[::-1])] for n, z in pts_zyx.items()}
    ref = remnant.segments_from_landmarks(file_liver, mm)
    shown = to_display(ref)[0]
    assert np.array_equal(seg_layer.data, shown)
    assert set(np.unique(seg_layer.data[liver.data != 0])) <= set(range(1, 9))


def test_patient_size_prefilled_from_patient_file_then_dicom_header(qtbot):
    from flr_volumetry_napari._widgets._volumetry import PatientForm

    form = PatientForm()
    qtbot.addWidget(form)
    form.prefill({"height_cm": 181.0, "weight_kg": 77.5}, {})
    assert (form.height_cm.value(), form.weight_kg.value()) == (181.0, 77.5)
    assert "DICOM header" in form.source.text()
    form.prefill({"height_cm": 181.0, "weight_kg": 77.5},
                 {"height_cm": 172, "weight_kg": 80, "liver_condition": "cirrhosis"})
    assert form.patient() == flr.Patient(172, 80, "cirrhosis")
    form.weight_kg.setValue(0)
    with pytest.raises(flr.InputError, match="both height and weight"):
        form.patient()
    # A weight alone (many CT headers give no height) gives FLR/body weight.
    form.prefill({"weight_kg": 77.5}, {})
    assert (form.height_cm.value(), form.weight_kg.value()) == (0.0, 77.5)
    assert "height unknown" in form.source.text()
    assert form.patient() == flr.Patient(weight_kg=77.5)


def test_plan_carried_from_baseline_to_follow_up(make_napari_viewer, qtbot, study_dir):
    from flr_volumetry_napari._widgets._remnant import _registration_module

    # The plugin ships with the core package: both sections must be enabled.
    assert _remnant_module() is not None and _registration_module() is not None
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    base = viewer.layers["P001 baseline liver"]
    post = viewer.layers["P001 post_pve liver"]
    w.liver.set_layer(base)
    w.tumor.set_layer(None)
    # No plan yet at baseline: said in words.
    w.carry_target.set_layer(post)
    assert w.carry_plan() is None and "no plan yet" in w.status.text()
    # A cut plane on the baseline, then carried to the follow-up (same liver shape here).
    surface = w.add_points_layer("surface")
    for z, y in ((5, 8), (14, 8), (10, 24)):
        surface.add(base.data_to_world((z, y, 19.5)))
    w.add_points_layer("keep").add(base.data_to_world((10, 16, 10)))
    w.split()
    qtbot.waitUntil(lambda: "updated" in w.status.text(), timeout=30000)
    w.status.setText("")
    assert w.carry_plan() is not None
    qtbot.waitUntil(lambda: "Dice" in w.status.text() or "Carry plan:" in w.status.text()
                    or "could not" in w.status.text(), timeout=60000)
    assert "Dice" in w.status.text(), w.status.text()
    # The scans were open, so the registration used them (not only the outlines).
    assert "rigid" in w.status.text(), w.status.text()
    carried = viewer.layers["P001 post_pve flr"]
    assert carried.metadata["flr_plan"]["keep_point"] is not None
    expected = np.zeros(post.data.shape, bool)
    expected[:, :, :20] = post.data[:, :, :20] != 0
    agree = np.count_nonzero((carried.data != 0) == expected) / expected.size
    assert agree > 0.99


def test_dicom_series_height_prefill_and_dicom_seg_export(make_napari_viewer, qtbot, case_files,
                                                          tmp_path):
    from flr_volumetry.io import read_dicom_seg, write_dicom_series

    from flr_volumetry_napari._writer import write_labels

    paths, arrays = case_files
    series = tmp_path / "dicom"
    write_dicom_series(sitk.ReadImage(str(paths["ct"])), series, study_date="2024-05-02",
                       patient_height_cm=168.0, patient_weight_kg=61.0)
    viewer = make_napari_viewer()
    (scan_t,) = read_path(str(series))
    scan = viewer.add_image(scan_t[0], **scan_t[1])
    lw = LiverWidget(viewer)
    qtbot.addWidget(lw)
    liver = lw.import_mask(str(paths["liver"]))
    assert liver is not None, lw.status.text()
    # The volumetry widget takes height and weight from the DICOM header.
    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    assert (vol.patient_form.height_cm.value(), vol.patient_form.weight_kg.value()) == (168, 61)
    assert "DICOM header" in vol.patient_form.source.text()
    assert vol.recompute().scan_date == "2024-05-02"
    # Saved as a DICOM SEG referencing the series it was drawn on.
    out = tmp_path / "liver.dcm"
    write_labels(str(out), liver.data, {"metadata": liver.metadata, "name": liver.name})
    back = read_dicom_seg(str(out), flr.load_image(str(series)), "liver")
    assert np.array_equal(sitk.GetArrayFromImage(back.image), arrays["liver"])
    assert scan.metadata["flr_scan"]["modality"] == "CT"


def test_refusals_before_any_work_are_written_in_the_status(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    liver_w, remnant_w = LiverWidget(viewer), RemnantWidget(viewer)
    qtbot.addWidget(liver_w)
    qtbot.addWidget(remnant_w)
    remnant_w.status.setText("an earlier action's message")
    assert liver_w.segment() is None and liver_w.status.text()
    assert remnant_w.new_flr_layer(copy_liver=True) is None
    assert remnant_w.status.text() not in ("", "an earlier action's message")


def test_layer_pickers_show_a_renamed_layer_by_its_new_name(make_napari_viewer, qtbot,
                                                            case_files):
    # Renamed in the layer list ("plan flr" -> "old plan"), a layer kept its old name in
    # every picker, so the table seemed to measure a layer no longer called so (or one of
    # two items of the same name after a new layer took the old one).
    paths, _ = case_files
    viewer = make_napari_viewer()
    layers = open_case(viewer, paths)
    w = VolumetryWidget(viewer)
    qtbot.addWidget(w)
    assert w.flr.layer() is layers["flr"]
    layers["flr"].name = "old plan"
    assert w.flr.currentText() == "old plan" and w.flr.layer() is layers["flr"]
    assert "old plan" in [w.flr.itemText(i) for i in range(w.flr.count())]


def test_segmentation_status_speaks_of_its_own_scans_tumours(make_napari_viewer, qtbot,
                                                            tmp_path):
    # Two scans in folders of one name ("baseline") share the label: the second scan's
    # tumour layer is named "baseline tumor [1]", and the status counted the first scan's
    # "baseline tumor" ("Tumour candidates found." for a scan without any).
    from types import SimpleNamespace

    from flr_volumetry_napari._widgets._common import scan_image

    from .conftest import _image, make_case

    viewer = make_napari_viewer()
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    scans = []
    for who in ("A", "B"):
        folder = tmp_path / who / "baseline"
        folder.mkdir(parents=True)
        sitk.WriteImage(_image(make_case()["ct"]), str(folder / "ct.nii.gz"))
        scans.append(add_layers(viewer, read_path(str(folder / "ct.nii.gz")))[0])
    arrays = make_case()
    for scan, tumor in ((scans[0], arrays["tumor"]), (scans[1], 0 * arrays["tumor"])):
        ref = scan_image(scan)
        liver, tum = (sitk.GetImageFromArray(a) for a in (arrays["liver"], tumor))
        liver.CopyInformation(ref)
        tum.CopyInformation(ref)
        w._segmented(scan, SimpleNamespace(liver=liver, tumor=tum, methods={}, warnings=[]))
    assert "No tumour candidate found." in w.status.text()
