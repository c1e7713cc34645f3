"""Each scan, timepoint and patient keeps its own masks, points, settings and files."""

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
from flr_volumetry_napari._widgets._common import add_mask_layer, labels_like, scan_image
from flr_volumetry_napari._widgets._export import export_review


def add_layers(viewer, tuples):
    return [getattr(viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in tuples]


def by_name(viewer, name):
    return viewer.layers[name]


def two_patient_study(study_dir):
    """P001 of the fixture plus a P002 (another size, condition and procedure date)."""
    shutil.copytree(study_dir / "P001", study_dir / "P002")
    (study_dir / "P002" / "patient.json").write_text(json.dumps({
        "height_cm": 160, "weight_kg": 55, "liver_condition": "chemotherapy",
        "procedure": "PVE", "procedure_date": "2024-03-11"}))
    return study_dir


def _write_scan(folder, name, shape, spacing, origin):
    ct = np.full(shape, -1000, np.int16)
    ct[2:-2, 4:-4, 4:-4] = 40
    mask = np.zeros(shape, np.uint8)
    mask[4:-4, 8:-8, 8:-8] = 1
    ct[mask == 1] = 110
    for arr, fname in ((ct, f"{name}.nii.gz"), (mask, f"{name}_mask.nii.gz")):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(spacing)
        img.SetOrigin(origin)
        sitk.WriteImage(img, str(folder / fname))


def test_two_scans_of_one_folder_keep_their_own_livers_in_place(make_napari_viewer, qtbot,
                                                                 tmp_path):
    _write_scan(tmp_path, "a", (20, 40, 40), (2.0, 2.0, 5.0), (0.0, 0.0, 0.0))
    _write_scan(tmp_path, "b", (30, 50, 50), (1.0, 1.0, 2.0), (-100.0, -50.0, 300.0))
    viewer = make_napari_viewer()
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    livers = {}
    for name in ("a", "b"):
        (scan,) = add_layers(viewer, read_path(str(tmp_path / f"{name}.nii.gz")))
        w.scan.set_layer(scan)
        livers[name] = w.import_mask(str(tmp_path / f"{name}_mask.nii.gz"))
        assert livers[name] is not None, w.status.text()
        assert np.allclose(livers[name].scale, scan.scale)
        assert np.allclose(livers[name].translate, scan.translate)
    # Scan b's liver is a layer of its own: scan a's stays as it was.
    assert livers["a"] is not livers["b"]
    assert livers["a"].data.shape == (20, 40, 40) and livers["b"].data.shape == (30, 50, 50)
    # A mask named after its scan opens with that scan, not the other one of the folder.
    (mask_b,) = add_layers(viewer, read_path(str(tmp_path / "b_mask.nii.gz")))
    assert mask_b.metadata["flr_timepoint"] == livers["b"].metadata["flr_timepoint"]


def test_a_replaced_mask_takes_its_scans_placement(make_napari_viewer, case_files):
    paths, _ = case_files
    viewer = make_napari_viewer()
    (scan,) = add_layers(viewer, read_path(str(paths["ct"])))
    data, kwargs = labels_like(scan, "liver", "ct liver")
    kwargs.update(scale=(9.0, 9.0, 9.0), translate=(1.0, 2.0, 3.0))  # placed elsewhere
    old = viewer.add_labels(data, **kwargs)
    image = flr.load_mask(str(paths["liver"]), scan_image(scan)).image
    layer = add_mask_layer(viewer, scan, image, "liver", "ct liver", "test")
    assert layer is old
    assert np.allclose(layer.scale, scan.scale) and np.allclose(layer.translate, scan.translate)


def test_remnant_uses_only_the_chosen_livers_timepoint(make_napari_viewer, qtbot, study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    w.liver.set_layer(by_name(viewer, "P001 baseline liver"))
    assert w.segments.layer() is by_name(viewer, "P001 baseline segments")
    assert w.tumor.layer() is by_name(viewer, "P001 baseline tumor")
    # Another timepoint's Couinaud map chosen by hand: refused in words, nothing computed.
    w.segments.set_layer(by_name(viewer, "P001 post_pve segments"))
    assert w.flr_from_segments() is None
    assert "another timepoint" in w.status.text()
    w.segments.set_layer(by_name(viewer, "P001 baseline segments"))
    w.tumor.set_layer(by_name(viewer, "P001 post_pve tumor"))
    assert w.flr_from_segments() is None
    assert "another timepoint" in w.status.text()


def test_points_belong_to_the_scan_they_were_placed_on(make_napari_viewer, qtbot, study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = RemnantWidget(viewer)
    qtbot.addWidget(w)
    base, post = (by_name(viewer, f"P001 {t} liver") for t in ("baseline", "post_pve"))
    w.liver.set_layer(base)
    w.add_points_layer("landmark", "ivc").add(base.data_to_world((10, 22, 17)))
    w.add_points_layer("keep").add(base.data_to_world((10, 16, 10)))
    w.liver.set_layer(post)
    ivc = w.add_points_layer("landmark", "ivc")
    assert len(ivc.data) == 0  # a new layer for this scan, not the baseline's
    ivc.add(post.data_to_world((9, 20, 18)))
    (point,) = w._landmarks()["ivc"]
    assert np.allclose(point, np.asarray(post.data_to_world((9, 20, 18)))[::-1])
    # The baseline's keep point does not count on the follow-up.
    assert w.split() is None and "there are 0" in w.status.text()
    # Back on the baseline, its own points are found again.
    w.liver.set_layer(base)
    assert len(w._landmarks()["ivc"]) == 1 and w.add_points_layer("landmark", "ivc") is not ivc


def test_liver_widget_seeds_belong_to_the_scan_they_were_placed_on(make_napari_viewer, qtbot,
                                                                  study_dir):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    base, post = (by_name(viewer, f"P001 {t} scan") for t in ("baseline", "post_pve"))
    w.scan.set_layer(base)
    seeds = w.add_points_layer("seeds")
    seeds.add(base.data_to_world((10, 16, 20)))
    exclude = w.add_points_layer("exclude")
    assert seeds.metadata["flr_timepoint"] == base.metadata["flr_timepoint"]
    assert seeds.name.startswith("P001 baseline")
    # Another scan chosen: the baseline's points are no longer offered, nor used.
    w.scan.set_layer(post)
    assert (w.seeds.layer(), w.exclude.layer(), w.tumor_seeds.layer()) == (None, None, None)
    w.modality.setCurrentText("mr")
    assert w.segment() is None and "needs at least one seed" in w.status.text()
    own = w.add_points_layer("seeds")
    assert own is not seeds and own.metadata["flr_timepoint"] == post.metadata["flr_timepoint"]
    # Back on the baseline, its own points are chosen again.
    w.scan.set_layer(base)
    assert (w.seeds.layer(), w.exclude.layer()) == (seeds, exclude)
    # The baseline's seeds picked by hand for the follow-up: refused in words, nothing run.
    w.scan.set_layer(post)
    w.seeds.set_layer(seeds)
    assert w.segment() is None and w.worker is None
    assert "placed on another scan" in w.status.text()


def test_another_patients_scan_does_not_inherit_the_size(make_napari_viewer, qtbot, study_dir,
                                                         case_files):
    paths, _ = case_files
    viewer = make_napari_viewer()
    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    add_layers(viewer, read_path(str(study_dir / "P001")))
    form = vol.patient_form
    assert (form.height_cm.value(), form.weight_kg.value()) == (172, 80)
    form.condition.setCurrentText("cirrhosis")  # corrected by the user
    loose = add_layers(viewer, read_path(str(paths["ct"])) + read_path(str(paths["liver"])))
    vol.liver.set_layer(loose[1])
    assert (form.height_cm.value(), form.weight_kg.value()) == (0, 0)
    assert form.condition.currentText() == "normal" and "unknown" in form.source.text()
    assert vol.recompute().telv_ml is None
    # Back to P001: its values, with the user's correction.
    vol.liver.set_layer(by_name(viewer, "P001 baseline liver"))
    assert (form.height_cm.value(), form.weight_kg.value()) == (172, 80)
    assert form.condition.currentText() == "cirrhosis"


def test_export_writes_the_chosen_patient_only(make_napari_viewer, qtbot, study_dir, tmp_path):
    two_patient_study(study_dir)
    viewer = make_napari_viewer()
    for pid in ("P001", "P002"):
        add_layers(viewer, read_path(str(study_dir / pid)))
    out = tmp_path / "export"
    with pytest.raises(flr.InputError, match="2 patients are open"):
        export_review(list(viewer.layers), out, flr.Patient(), flr.VolumetryOptions())
    assert not out.exists()
    w = ExportWidget(viewer)
    qtbot.addWidget(w)
    viewer.layers.selection.active = by_name(viewer, "P001 baseline liver")
    assert w.patient_pick.currentText() == "P001"
    assert (w.patient_form.height_cm.value(), w.procedure_date.text()) == (172, "2024-03-04")
    viewer.layers.selection.active = by_name(viewer, "P002 post_pve liver")
    assert w.patient_pick.currentText() == "P002"
    assert (w.patient_form.height_cm.value(), w.procedure_date.text()) == (160, "2024-03-11")
    w.folder.setText(str(out))
    assert w.export() is not None
    qtbot.waitUntil(lambda: w.export_button.isEnabled() and w.results is not None, timeout=30000)
    (entry,) = w.results["patients"]
    assert entry["patient_id"] == "P002"
    assert [t["timepoint"] for t in entry["timepoints"]] == ["baseline", "post_pve"]
    assert all(t["measurement"]["weight_kg"] == 55 for t in entry["timepoints"])
    assert not (out / "masks" / "P001").exists()


def test_the_widgets_share_the_patient_settings(make_napari_viewer, qtbot, study_dir, tmp_path):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    vol, exp, hyp = VolumetryWidget(viewer), ExportWidget(viewer), HypertrophyWidget(viewer)
    for widget in (vol, exp, hyp):
        qtbot.addWidget(widget)
    vol.patient_form.weight_kg.setValue(95)
    vol.patient_form.condition.setCurrentText("cirrhosis")
    vol.patient_form.telv.setCurrentText("urata")
    for form in (exp.patient_form, hyp.patient_form):
        assert form.weight_kg.value() == 95 and form.condition.currentText() == "cirrhosis"
        assert form.telv.currentText() == "urata"
    table = vol.recompute()
    exp.folder.setText(str(tmp_path / "export"))
    assert exp.export() is not None
    qtbot.waitUntil(lambda: exp.export_button.isEnabled() and exp.results is not None,
                    timeout=30000)
    tp = vol.liver.layer().metadata["flr_label"].split(" ", 1)[1]
    saved = json.loads((tmp_path / "export" / "masks" / "P001" / tp / "measurement.json")
                       .read_text())
    assert (saved["weight_kg"], saved["liver_condition"]) == (95, "cirrhosis")
    assert saved["sflr_pct"] == pytest.approx(table.sflr_pct)
    assert saved["telv_ml"] == pytest.approx(table.telv_ml)
    # Edited in the export widget: the volumetry table's form shows it too.
    exp.patient_form.height_cm.setValue(181)
    assert vol.patient_form.height_cm.value() == 181


def test_export_again_removes_its_own_files_not_written_now(make_napari_viewer, qtbot,
                                                             study_dir, tmp_path):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    out = tmp_path / "export"
    patient = flr.Patient(172, 80)
    flr_layer = by_name(viewer, "P001 baseline flr")
    flr_layer.metadata["flr_plan"] = {"resection": "right_hepatectomy"}
    export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    folder = out / "masks" / "P001" / "baseline"
    assert (folder / "flr.nii.gz").exists() and (folder / "plan.json").exists()
    (folder / "notes.txt").write_text("the user's")
    viewer.layers.remove(flr_layer)  # the remnant is to be redone
    export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    assert not (folder / "flr.nii.gz").exists() and not (folder / "plan.json").exists()
    assert json.loads((folder / "measurement.json").read_text())["flr_ml"] is None
    assert (folder / "liver.nii.gz").exists() and (folder / "notes.txt").read_text() == "the user's"


def test_modality_chosen_by_the_user_stays_until_another_scan(make_napari_viewer, qtbot,
                                                              case_files):
    paths, _ = case_files
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(paths["ct"])))
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    w.modality.setCurrentText("mr")
    w.add_points_layer("seeds")
    viewer.add_points(ndim=3, name="anything")
    assert w.modality.currentText() == "mr"
    # Another scan chosen: its header decides again (CT here: the NIfTI has no modality).
    (second,) = add_layers(viewer, read_path(str(paths["ct"])))
    assert w.modality.currentText() == "mr"
    w.scan.set_layer(second)
    assert w.modality.currentText() == "ct"


def test_growth_widget_docked_before_the_patient_opens_on_its_follow_up(
        make_napari_viewer, qtbot, study_dir):
    viewer = make_napari_viewer()
    hyp = HypertrophyWidget(viewer)
    qtbot.addWidget(hyp)
    add_layers(viewer, read_path(str(study_dir / "P001")))
    assert hyp.baseline.currentText().startswith("P001 baseline")
    assert hyp.followup.currentText().startswith("P001 post_pve")
    assert hyp.compute() is not None, hyp.status.text()


def test_growth_between_two_patients_is_refused(make_napari_viewer, qtbot, study_dir):
    two_patient_study(study_dir)
    viewer = make_napari_viewer()
    for pid in ("P001", "P002"):
        add_layers(viewer, read_path(str(study_dir / pid)))
    hyp = HypertrophyWidget(viewer)
    qtbot.addWidget(hyp)
    hyp.baseline.setCurrentIndex(0)
    hyp.followup.setCurrentIndex(hyp.followup.count() - 1)
    assert hyp.baseline.currentText().startswith("P001")
    assert hyp.followup.currentText().startswith("P002")
    assert hyp.compute() is None and "two timepoints of one patient" in hyp.status.text()
    # The form and the procedure date follow the baseline's patient.
    assert (hyp.patient_form.height_cm.value(), hyp.procedure_date.text()) == (172, "2024-03-04")
    hyp.baseline.setCurrentIndex(hyp.baseline.findData(
        next(t.key for t in hyp._timepoints() if t.label == "P002 baseline")))
    assert (hyp.patient_form.height_cm.value(), hyp.procedure_date.text()) == (160, "2024-03-11")
    assert hyp.compute() is not None, hyp.status.text()
