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

from .conftest import add_layers


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


@pytest.mark.parametrize("date, said", [
    (None, "the procedure date is unknown"),
    ("2024-05-01", "correct the procedure date"),  # after the follow-up (2024-04-01)
])
def test_an_export_whose_growth_the_procedure_date_cannot_give_is_refused_unwritten(
        make_napari_viewer, study_dir, tmp_path, date, said):
    # It had overwritten a good export with a failed patient, said on the status line only
    # and in the command line's words (patient.json, --from-baseline-date).
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    out = tmp_path / "export"
    patient = flr.Patient(172, 80)
    export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), "2024-03-04")
    written = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(flr.InputError, match=said) as exc:
        export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(), date)
    assert "nothing was written" in str(exc.value) and "patient.json" not in str(exc.value)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == written
    # Counting from the baseline scan, asked for, exports.
    results = export_review(list(viewer.layers), out, patient, flr.VolumetryOptions(),
                            from_baseline_date=True, hbs_pct_per_min_m2=2.4)
    summary = results["patients"][0]["summary"]
    assert results["patients"][0]["status"] == "ok" and summary["hbs_pct_per_min_m2"] == 2.4
    # P001's procedure is a PVE: the ALPPS registry criterion is not judged, and said.
    assert summary["alpps_high_phlf_risk"] is None
    assert any("is not used" in w for w in results["patients"][0]["followups"][0]
               ["hypertrophy"]["warnings"])


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


# --- scans on their own, procedure dates, chosen layers and export folders ------------------

def _dicom_scan_with_masks(viewer, folder, patient_id, size, date):
    """A DICOM series written with ``patient_id`` and ``size`` (cm, kg) in its header, opened
    on its own as from PACS, with its liver and FLR masks added: (scan, liver) layers."""
    from flr_volumetry.io import write_dicom_series

    from .conftest import _image, make_case

    arrays = make_case()
    ct = _image(arrays["ct"])
    write_dicom_series(ct, folder, study_date=date, patient_id=patient_id,
                       patient_height_cm=size[0], patient_weight_kg=size[1])
    (scan,) = add_layers(viewer, read_path(str(folder)))
    layers = []
    for role in ("liver", "flr"):
        mask = _image(arrays[role])
        layers.append(add_mask_layer(viewer, scan, mask, role, f"{scan.name} {role}", "test"))
    return scan, layers[0]


def test_scans_opened_on_their_own_are_each_their_own_patient(make_napari_viewer, qtbot,
                                                              tmp_path):
    from flr_volumetry_napari._model import find_patients, patient_of

    viewer = make_napari_viewer()
    vol, hyp = VolumetryWidget(viewer), HypertrophyWidget(viewer)
    for widget in (vol, hyp):
        qtbot.addWidget(widget)
    # Two people's series, each in a folder named 'image', and a follow-up of the first.
    _, liver_a = _dicom_scan_with_masks(viewer, tmp_path / "a" / "image", "PA", (181, 90),
                                        "2024-01-02")
    _, liver_b = _dicom_scan_with_masks(viewer, tmp_path / "b" / "image", "PB", (158, 52),
                                        "2024-01-03")
    _, liver_a2 = _dicom_scan_with_masks(viewer, tmp_path / "a2" / "image", "PA", (181, 92),
                                         "2024-02-20")
    patients = find_patients(viewer.layers)
    pa, pb = "DICOM PatientID PA", "DICOM PatientID PB"
    assert sorted(patients) == [pa, pb] and len(patients[pa]) == 2
    assert patient_of(viewer.layers, liver_b) == pb
    # Each patient's own header size, never the other's.
    vol.liver.set_layer(liver_b)
    assert (vol.patient_form.height_cm.value(), vol.patient_form.weight_kg.value()) == (158, 52)
    vol.liver.set_layer(liver_a)
    assert (vol.patient_form.height_cm.value(), vol.patient_form.weight_kg.value()) == (181, 90)
    # Growth from one person to another: refused in words.
    assert len(hyp._timepoints()) == 3
    b_key = liver_b.metadata["flr_timepoint"]
    hyp.baseline.setCurrentIndex(hyp.baseline.findData(liver_a.metadata["flr_timepoint"]))
    hyp.followup.setCurrentIndex(hyp.followup.findData(b_key))
    hyp.from_baseline.setChecked(True)
    assert hyp.compute() is None and "two timepoints of one patient" in hyp.status.text()
    hyp.followup.setCurrentIndex(hyp.followup.findData(liver_a2.metadata["flr_timepoint"]))
    assert hyp.compute() is not None, hyp.status.text()
    # Two scans without any patient ID (NIfTI files in two folders) are two patients.
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        _write_scan(tmp_path / name, "ct", (20, 40, 40), (2.0, 2.0, 5.0), (0.0, 0.0, 0.0))
        add_layers(viewer, read_path(str(tmp_path / name / "ct.nii.gz")))
    scans = [lay for lay in viewer.layers if lay.name.startswith("ct")]
    assert len({patient_of(viewer.layers, s) for s in scans}) == 2


def test_export_gives_timepoints_of_one_label_their_own_folders(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    for name, date in (("a", "2024-01-02"), ("a2", "2024-02-20")):
        _dicom_scan_with_masks(viewer, tmp_path / name / "image", "PA", (181, 90), date)
    out = tmp_path / "export"
    results = export_review(list(viewer.layers), out, flr.Patient(181, 90),
                            flr.VolumetryOptions(), from_baseline_date=True)
    (entry,) = results["patients"]
    folders = [t["timepoint"] for t in entry["timepoints"]]
    assert folders == ["2024-01-02", "2024-02-20"]  # by scan date: folder names are no IDs
    # The DICOM PatientID (often a hospital record number) is written as a pseudonym.
    pid = entry["patient_id"]
    assert pid.startswith("dicom-") and "PA" not in pid
    assert "PA" not in (out / "results.json").read_text().replace("PATIENT", "")
    for t in entry["timepoints"]:
        saved = json.loads((out / "masks" / pid / t["timepoint"] / "measurement.json")
                           .read_text())
        assert saved["scan_date"] == t["scan_date"]
        assert t["masks"]["liver"] == f"masks/{pid}/{t['timepoint']}/liver.nii.gz"


def test_procedure_date_belongs_to_its_patient_in_every_widget(make_napari_viewer, qtbot,
                                                               study_dir, tmp_path):
    two_patient_study(study_dir)
    viewer = make_napari_viewer()
    for pid in ("P001", "P002"):
        add_layers(viewer, read_path(str(study_dir / pid)))
    hyp, exp = HypertrophyWidget(viewer), ExportWidget(viewer)
    for widget in (hyp, exp):
        qtbot.addWidget(widget)
    keys = {t.label: t.key for t in hyp._timepoints()}
    hyp.baseline.setCurrentIndex(hyp.baseline.findData(keys["P001 baseline"]))
    assert hyp.procedure_date.text() == "2024-03-04"
    hyp.procedure_date.setText("2024-03-06")  # P001's date corrected
    hyp.baseline.setCurrentIndex(hyp.baseline.findData(keys["P002 baseline"]))
    assert hyp.procedure_date.text() == "2024-03-11"  # P002's own, not P001's
    exp.patient_pick.setCurrentIndex(exp.patient_pick.findData("P001"))
    assert exp.procedure_date.text() == "2024-03-06"  # the date corrected in the other widget
    # P002 exported without a procedure date, counting from the baseline scan as asked.
    exp.patient_pick.setCurrentIndex(exp.patient_pick.findData("P002"))
    exp.procedure_date.setText("")
    exp.from_baseline.setChecked(True)
    assert hyp.procedure_date.text() == "" and hyp.from_baseline.isChecked()
    exp.folder.setText(str(tmp_path / "export"))
    assert exp.export() is not None
    qtbot.waitUntil(lambda: exp.export_button.isEnabled() and exp.results is not None,
                    timeout=30000)
    (entry,) = exp.results["patients"]
    assert entry["patient_id"] == "P002" and exp.results["options"]["from_baseline_date"]
    (followup,) = entry["followups"]
    assert followup["status"] == "ok", followup
    assert followup["hypertrophy"]["interval_start"] == "2024-02-26"
    # P001 keeps its date.
    hyp.baseline.setCurrentIndex(hyp.baseline.findData(keys["P001 baseline"]))
    assert hyp.procedure_date.text() == "2024-03-06" and not hyp.from_baseline.isChecked()


def test_a_study_timepoint_opened_again_stays_its_patients(make_napari_viewer, qtbot, study_dir):
    from flr_volumetry_napari._model import find_patients

    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    again = add_layers(viewer, read_path(str(study_dir / "P001" / "baseline")))
    assert {lay.metadata.get("flr_patient") for lay in again} == {"P001"}
    assert again[0].metadata["flr_label"] == "P001 baseline"
    # A layer of the timepoint made later without the patient's ID (a mask opened from a
    # file) does not take the timepoint from its patient.
    meta = {k: v for k, v in again[1].metadata.items() if k != "flr_patient"}
    viewer.add_labels(np.asarray(again[1].data).copy(), name="a liver", metadata=meta)
    scan_meta = {k: v for k, v in again[0].metadata.items() if k != "flr_patient"}
    viewer.add_image(np.asarray(again[0].data), name="a scan", metadata=scan_meta)
    patients = find_patients(viewer.layers)
    assert list(patients) == ["P001"] and len(patients["P001"]) == 2
    hyp = HypertrophyWidget(viewer)
    qtbot.addWidget(hyp)
    assert hyp.compute() is not None, hyp.status.text()


def test_closing_a_mask_keeps_the_volumetry_table_on_the_livers_timepoint(
        make_napari_viewer, qtbot, study_dir):
    two_patient_study(study_dir)
    viewer = make_napari_viewer()
    for pid in ("P001", "P002"):
        add_layers(viewer, read_path(str(study_dir / pid)))
    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    vol.liver.set_layer(by_name(viewer, "P001 baseline liver"))
    assert vol.recompute() is not None
    viewer.layers.remove(by_name(viewer, "P001 baseline tumor"))
    assert vol.tumor.layer() is None
    assert vol.flr.layer() is by_name(viewer, "P001 baseline flr")
    assert vol.segments.layer() is by_name(viewer, "P001 baseline segments")
    assert vol.recompute() is not None, vol.status.text()
    # Another patient opened later does not take the table's masks either.
    viewer.layers.remove(by_name(viewer, "P001 baseline flr"))
    assert vol.flr.layer() is None
    add_layers(viewer, read_path(str(study_dir / "P002")))
    assert (vol.tumor.layer(), vol.flr.layer()) == (None, None)


def test_export_and_growth_measure_the_layers_of_the_volumetry_table(
        make_napari_viewer, qtbot, study_dir, tmp_path):
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    vol, rem, exp, hyp = (VolumetryWidget(viewer), RemnantWidget(viewer), ExportWidget(viewer),
                          HypertrophyWidget(viewer))
    for widget in (vol, rem, exp, hyp):
        qtbot.addWidget(widget)
    plan_flr = by_name(viewer, "P001 baseline flr")
    for w in (vol, rem):
        w.liver.set_layer(by_name(viewer, "P001 baseline liver"))
    painted = rem.new_flr_layer(copy_liver=True)  # "FLR = liver, then erase"
    painted.data[:, :, 10:] = 0
    painted.refresh()
    # Without a choice in the table, the most recent is used and said so in one sentence.
    results = export_review(list(viewer.layers), tmp_path / "plain", flr.Patient(172, 80),
                            flr.VolumetryOptions(), "2024-03-04")
    (warning,) = results["warnings"]
    assert "2 flr layers" in warning and f"'{painted.name}' is used" in warning
    # The user goes back to the plan's FLR in the table: the export and the growth use it.
    vol.flr.set_layer(plan_flr)
    table = vol.recompute()
    exp.folder.setText(str(tmp_path / "export"))
    assert exp.export() is not None
    qtbot.waitUntil(lambda: exp.export_button.isEnabled() and exp.results is not None,
                    timeout=30000)
    base = exp.results["patients"][0]["timepoints"][0]
    assert base["measurement"]["flr_ml"] == pytest.approx(table.flr_ml)
    assert exp.results["warnings"] == []
    h = hyp.compute()
    assert h is not None and h.flr_pre_ml == pytest.approx(table.flr_ml)


def test_export_refuses_a_folder_holding_another_patients_export(make_napari_viewer,
                                                                 study_dir, tmp_path):
    two_patient_study(study_dir)
    viewer = make_napari_viewer()
    for pid in ("P001", "P002"):
        add_layers(viewer, read_path(str(study_dir / pid)))
    out = tmp_path / "export"
    args = (list(viewer.layers), out, flr.Patient(172, 80), flr.VolumetryOptions(),
            "2024-03-04")
    export_review(*args, patient_key="P001")
    with pytest.raises(flr.InputError, match="holds the export of patient P001; choose "
                                             "another folder for patient P002"):
        export_review(*args, patient_key="P002")
    assert not (out / "masks" / "P002").exists()
    saved = json.loads((out / "results.json").read_text())
    assert [p["patient_id"] for p in saved["patients"]] == ["P001"]
    # The same patient again: allowed (a corrected export replaces the last one).
    export_review(*args, patient_key="P001")


def test_export_names_mask_files_without_their_folders(make_napari_viewer, tmp_path, study_dir):
    # Hospital exports are often foldered by the patient's name: results.json and the report
    # said where each mask was read from by its whole path ("liver_method":
    # "/data/DOE^JOHN/.../liver.nii.gz"), where the batch writes "file liver.nii.gz".
    named = tmp_path / "DOE^JOHN 1957"
    shutil.copytree(study_dir, named)
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(named / "P001")))
    out = tmp_path / "out"
    results = export_review(list(viewer.layers), out, flr.Patient(172, 80),
                            flr.VolumetryOptions(), "2024-03-04")
    tps = {t["timepoint"]: t for t in results["patients"][0]["timepoints"]}
    assert tps["baseline"]["liver_method"] == "file liver.nii.gz"
    assert tps["baseline"]["flr_method"] == "file flr.nii.gz"
    for path in out.rglob("*"):
        if path.suffix in (".json", ".html"):
            assert "DOE" not in path.read_text(), path


def test_a_dicom_patient_id_is_written_as_a_keyed_pseudonym(tmp_path, monkeypatch):
    # The pseudonym had been a plain hash of the record number: the code is public and
    # record numbers are few, so hashing every number gave it back.
    import hashlib
    import os
    import stat

    from flr_volumetry_napari._model import DICOM_ID, patient_id, pseudonym_key_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    mrn = "12345678"
    first = patient_id(DICOM_ID + mrn)
    assert first.startswith("dicom-") and mrn not in first
    assert first[6:] != hashlib.sha256(mrn.encode()).hexdigest()[:10]
    key_file = pseudonym_key_path()
    assert key_file.startswith(str(tmp_path / "config"))
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(key_file).st_mode) & 0o077 == 0  # the user's own
    assert patient_id(DICOM_ID + mrn) == first  # one patient, one pseudonym
    assert patient_id(DICOM_ID + "12345679") != first
    monkeypatch.setenv("FLR_PSEUDONYM_KEY", "the group's secret")
    shared = patient_id(DICOM_ID + mrn)
    assert shared != first and shared == patient_id(DICOM_ID + mrn)
    monkeypatch.delenv("FLR_PSEUDONYM_KEY")
    # A drive without hard links (FAT, some network shares): the key is made in place.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "fat"))

    def no_links(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    on_fat = patient_id(DICOM_ID + mrn)
    assert on_fat.startswith("dicom-") and on_fat == patient_id(DICOM_ID + mrn)
    assert [p.name for p in (tmp_path / "fat" / "flr-volumetry").iterdir()] == ["pseudonym.key"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocked))  # no folder can be made in a file
    with pytest.raises(flr.InputError, match="cannot keep the key .* set FLR_PSEUDONYM_KEY"):
        patient_id(DICOM_ID + mrn)
