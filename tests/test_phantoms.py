"""Synthetic phantoms: truth consistency, growth model, determinism, DICOM, CLI, cache."""

import csv
import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry import phantoms
from flr_volumetry.cli import main
from flr_volumetry.errors import InputError
from flr_volumetry.phantoms import _study

SMALL = phantoms.grid_preset("small")


def _read(path):
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three small CT patients (adequate PVE, inadequate PVE, ALPPS) with truth."""
    out = tmp_path_factory.mktemp("phantom_study")
    truths = phantoms.write_study(out, n_patients=3, seed=0, size="small")
    return out, {t["patient_id"]: t for t in truths}


def _timepoints(out, truths):
    for pid, t in truths.items():
        for tp in t["timepoints"]:
            yield pid, t, tp, out / pid / tp["timepoint"]


def test_layout_and_patient_files(study):
    out, truths = study
    assert sorted(truths) == ["P001", "P002", "P003"]
    assert [truths[p]["procedure"] for p in ("P001", "P002", "P003")] == ["PVE", "PVE", "ALPPS"]
    for pid, t, tp, folder in _timepoints(out, truths):
        for name in ("image.nii.gz", "liver.nii.gz", "tumor.nii.gz", "segments.nii.gz"):
            assert (folder / name).is_file(), folder / name
        assert json.loads((folder / "timepoint.json").read_text()) == {
            "scan_date": tp["scan_date"]}
        for name in phantoms.TRUTH_MASKS:
            assert (folder / "truth" / f"{name}.nii.gz").is_file()
        pj = json.loads((out / pid / "patient.json").read_text())
        assert pj["resection"] == "right_hepatectomy"
        assert set(pj) == {"height_cm", "weight_kg", "liver_condition", "procedure",
                           "procedure_date", "resection"}
    # The study-folder discovery of the batch finds the inputs, never the truth.
    from flr_volumetry.study import discover_study

    s = discover_study(out)
    assert [p.patient_id for p in s.patients] == ["P001", "P002", "P003"]
    for p in s.patients:
        assert len(p.timepoints) == 2
        for tp in p.timepoints:
            assert tp.error is None
            assert "truth" not in tp.liver and "truth" not in tp.segments


def test_masks_are_consistent_and_truth_counts_them(study):
    out, truths = study
    for pid, t, tp, folder in _timepoints(out, truths):
        img, _ = _read(folder / "image.nii.gz")
        m = {k: _read(folder / "truth" / f"{k}.nii.gz")[1] for k in phantoms.TRUTH_MASKS}
        liver, seg, tum, ves, flr_ = (m["liver"] != 0, m["segments"], m["tumor"] != 0,
                                      m["vessels"] != 0, m["flr"] != 0)
        # Segments tile the liver exactly, with labels 1-8 only, every one present.
        assert np.array_equal(seg > 0, liver)
        assert set(np.unique(seg)) == set(range(9))
        assert not np.any(tum & ~liver) and not np.any(ves & ~liver) and not np.any(ves & tum)
        # FLR = segments 1-4 (right hepatectomy, caudate kept) minus tumour.
        assert np.array_equal(flr_, np.isin(seg, (1, 2, 3, 4)) & ~tum)
        v = float(np.prod(img.GetSpacing())) / 1000.0
        assert tp["voxel_volume_ml"] == pytest.approx(v, rel=1e-12)
        assert tp["total_liver_ml"] == np.count_nonzero(liver) * v
        assert tp["tumor_ml"] == np.count_nonzero(tum) * v
        assert tp["flr_ml"] == np.count_nonzero(flr_) * v
        # Resected: the liver outside the remnant; tumour the remnant keeps stays.
        assert tp["resected_ml"] == np.count_nonzero(liver & ~np.isin(seg, (1, 2, 3, 4))) * v
        assert tp["vessels_ml"] == np.count_nonzero(ves) * v
        for s in range(1, 9):
            assert tp["segments_ml"][str(s)] == np.count_nonzero(seg == s) * v
        # The input masks shipped next to the image are the truth masks.
        for k in ("liver", "tumor", "segments"):
            assert np.array_equal(_read(folder / f"{k}.nii.gz")[1], m[k])
        # Masks and image share one grid, and the liver fits in the field of view.
        assert flr.io.same_grid(_read(folder / "truth" / "liver.nii.gz")[0], img)
        assert tp["warnings"] == []
        assert tum.any() and ves.any()


def test_measure_files_reproduces_truth(study):
    out, truths = study
    for pid, t, tp, folder in _timepoints(out, truths):
        patient = flr.Patient(t["height_cm"], t["weight_kg"], t["liver_condition"])
        m = flr.measure_files(str(folder / "image.nii.gz"), liver=str(folder / "liver.nii.gz"),
                              tumor=str(folder / "tumor.nii.gz"),
                              flr=str(folder / "truth" / "flr.nii.gz"), patient=patient)
        assert m.total_liver_ml == pytest.approx(tp["total_liver_ml"], rel=1e-12)
        assert m.flr_ml == pytest.approx(tp["flr_ml"], rel=1e-12)
        assert m.sflr_pct == pytest.approx(tp["sflr_pct"], rel=1e-12)
        # From the plan (the remnant keeps its tumour voxels), as batch measures the study.
        planned = flr.measure_files(str(folder / "image.nii.gz"),
                                    liver=str(folder / "liver.nii.gz"),
                                    tumor=str(folder / "tumor.nii.gz"),
                                    segments=str(folder / "segments.nii.gz"),
                                    plan=flr.RemnantPlan(resection=t["resection"]))
        assert planned.flr_ml == pytest.approx(tp["flr_ml"], rel=1e-12)
        assert planned.resected_ml == pytest.approx(tp["resected_ml"], rel=1e-12)
        # ... and the clinical formulas by hand (Mosteller + Vauthey).
        telv = -794.41 + 1267.28 * np.sqrt(t["height_cm"] * t["weight_kg"] / 3600.0)
        assert tp["sflr_pct"] == pytest.approx(100 * tp["flr_ml"] / telv, rel=1e-9)


def test_growth_follows_the_model(study):
    out, truths = study
    for pid, t in truths.items():
        e, g = t["expected"], t["growth_model"]
        base, post = t["timepoints"]
        # Realised KGR (from counted masks) close to the model's; the model's own
        # arithmetic: DH = KGR x weeks.
        assert e["kgr_pct_per_week"] == pytest.approx(g["kgr_pct_per_week"], abs=0.35)
        weeks = e["interval_days"] / 7.0
        assert e["dh_pct_points"] == pytest.approx(post["sflr_pct"] - base["sflr_pct"])
        assert e["kgr_pct_per_week"] == pytest.approx(e["dh_pct_points"] / weeks)
        for tp in (base, post):
            assert tp["flr_ml"] == pytest.approx(tp["target_flr_ml"], rel=0.04)
        # Remnant segments grow, resected segments shrink.
        seg_pre, seg_post = base["segments_ml"], post["segments_ml"]
        assert sum(seg_post[s] for s in "1234") > sum(seg_pre[s] for s in "1234")
        assert sum(seg_post[s] for s in "5678") < sum(seg_pre[s] for s in "5678")
    adequate, inadequate, alpps = truths["P001"], truths["P002"], truths["P003"]
    assert adequate["expected"]["kgr_meets_2pct"] and adequate["expected"]["sflr_adequate"]
    assert inadequate["expected"]["kgr_pct_per_week"] < 2.0
    assert not inadequate["expected"]["sflr_adequate"]
    assert alpps["expected"]["interval_days"] <= 14
    assert alpps["expected"]["kgr_pct_per_week"] > adequate["expected"]["kgr_pct_per_week"]


def test_growth_model_arithmetic():
    g = phantoms.GrowthModel(kgr_pct_per_week=2.5, reference_days=28, tau_days=20.0,
                             resected_change_pct=-10.0)
    assert g.sflr_gain_pct_points(28) == pytest.approx(10.0)
    assert g.resected_factor(28) == pytest.approx(0.9)
    gains = [g.sflr_gain_pct_points(d) for d in (0, 7, 14, 28, 56)]
    assert gains[0] == 0 and all(b > a for a, b in zip(gains, gains[1:]))
    # Saturating: the second fortnight adds less than the first.
    assert gains[2] - gains[1] < gains[1] - gains[0]


def test_alpps_transection_is_visible_only_after_stage_one():
    p = phantoms.make_patient(2)
    assert p.procedure == "ALPPS"
    pre = phantoms.render_timepoint(p, 0, SMALL)
    post = phantoms.render_timepoint(p, 1, SMALL)
    gap = phantoms.TISSUE["transection"]
    assert not np.any(pre["labels"] == gap)
    in_gap = post["labels"] == gap
    assert in_gap.sum() > 50
    assert not np.any(in_gap & (post["liver"] != 0))
    # The gap is darker than the liver around it.
    liver_core = (post["labels"] == phantoms.TISSUE["liver"])
    assert post["image"][in_gap].mean() < post["image"][liver_core].mean() - 40


def test_anatomy_and_ct_values():
    p = phantoms.make_patient(0)
    r = phantoms.render_timepoint(p, 0, SMALL)
    seg, img, lab = r["segments"], r["image"].astype(float), r["labels"]
    x = phantoms.grid_preset("small").axis_mm(0)[None, None, :]
    xs = np.broadcast_to(x, seg.shape)
    mean_x = {s: xs[seg == s].mean() for s in range(1, 9)}
    # LPS: x grows to the patient's left. Right liver (5-8) < segment 4 < left lateral (2, 3).
    assert max(mean_x[s] for s in (5, 6, 7, 8)) < mean_x[4] < min(mean_x[2], mean_x[3])
    # The right liver dominates a liver that needs PVE.
    vol = np.bincount(seg.ravel(), minlength=9)
    assert vol[5:9].sum() > 2 * vol[1:5].sum()
    # Portal-venous HU, away from edges (partial volume).
    from scipy import ndimage

    def core(code):
        return ndimage.binary_erosion(lab == code, iterations=2)

    T = phantoms.TISSUE
    liver_hu = img[core(T["liver"])]
    assert 95 < np.median(liver_hu) < 115
    assert 8 < liver_hu.std() < 18                      # noise ~ 12 HU
    assert 30 < np.median(img[core(T["tumor"])]) < 70
    assert 100 < np.median(img[core(T["spleen"])]) < 130
    assert np.median(img[core(T["fat"])]) < -60
    assert np.median(img[core(T["lung"])]) < -750
    assert np.median(img[lab == T["air"]]) < -950
    assert img[lab == T["cortical_bone"]].max() > 400


def test_mr_variant_has_thick_slices_bias_and_contrast():
    g = phantoms.grid_preset("small", "mr")
    assert g.spacing_mm[2] >= 5.0
    p = phantoms.make_patient(1)
    r = phantoms.render_timepoint(p, 0, g, modality="mr")
    img, lab = r["image"].astype(float), r["labels"]
    T = phantoms.TISSUE
    assert img.min() >= 0
    assert np.median(img[lab == T["liver"]]) > np.median(img[lab == T["tumor"]]) + 150
    assert np.median(img[lab == T["fat"]]) > np.median(img[lab == T["liver"]])
    # Bias field: the same tissue is brighter in some places than in others.
    liver = img[lab == T["liver"]]
    assert np.percentile(liver, 90) / np.percentile(liver, 10) > 1.1
    with pytest.raises(ValueError):
        phantoms.render_timepoint(p, 0, g, modality="pet")


def test_deterministic_from_the_seed():
    a = phantoms.render_timepoint(phantoms.make_patient(1, seed=5), 1, SMALL)
    b = phantoms.render_timepoint(phantoms.make_patient(1, seed=5), 1, SMALL)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    c = phantoms.render_timepoint(phantoms.make_patient(1, seed=6), 1, SMALL)
    assert not np.array_equal(a["segments"], c["segments"])
    assert not np.array_equal(a["image"], c["image"])


def test_calibration_volumes_match_rendered_counts():
    p = phantoms.make_patient(0)
    for t_index, tp in enumerate(p.timepoints):
        est = phantoms.liver_volumes_ml(p.anatomy, tp.state)
        r = phantoms.render_timepoint(p, t_index, SMALL)
        v = SMALL.voxel_volume_ml
        assert r["liver"].sum() * v == pytest.approx(est["total_ml"], rel=0.05)
        assert r["flr"].sum() * v == pytest.approx(est["flr_ml"], rel=0.06)


def test_dicom_series_reads_back_with_the_same_geometry(tmp_path):
    truths = phantoms.write_study(tmp_path, n_patients=1, size="small", fmt="dicom")
    tp = truths[0]["timepoints"][0]
    folder = tmp_path / "P001" / tp["timepoint"]
    assert (folder / "image").is_dir() and not (folder / "image.nii.gz").exists()
    scan = flr.load_image(str(folder / "image"))
    liver, _ = _read(folder / "truth" / "liver.nii.gz")
    assert scan.image.GetSize() == liver.GetSize()
    np.testing.assert_allclose(scan.image.GetSpacing(), liver.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(scan.image.GetOrigin(), liver.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(scan.image.GetDirection(), liver.GetDirection(), atol=1e-6)
    assert str(scan.study_date) == tp["scan_date"]
    assert scan.patient_height_cm == pytest.approx(truths[0]["height_cm"], abs=0.01)
    assert scan.patient_weight_kg == pytest.approx(truths[0]["weight_kg"], abs=0.01)
    expected = phantoms.render_timepoint(phantoms.make_patient(0), 0, SMALL)["image"]
    assert np.array_equal(sitk.GetArrayFromImage(scan.image), expected)
    # No name anywhere: only the pseudonymous ID.
    import pydicom

    ds = pydicom.dcmread(next((folder / "image").iterdir()))
    assert ds.PatientID == "P001" and str(ds.PatientName) == ""


def test_write_study_refuses_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="at least 1"):
        phantoms.write_study(tmp_path, n_patients=0)
    with pytest.raises(InputError, match="modality"):
        phantoms.write_study(tmp_path, modality="pet")
    with pytest.raises(InputError, match="format"):
        phantoms.write_study(tmp_path, fmt="png")
    with pytest.raises(InputError, match="mask"):
        phantoms.write_study(tmp_path, input_masks=("lung",))
    with pytest.raises(InputError, match="size"):
        phantoms.grid_preset("huge")
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        phantoms.write_study(f)


def test_cli_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["phantom", str(tmp_path / "s"), "--patients", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["phantom", str(tmp_path / "s"), "--modality", "pet"])
    assert exc.value.code == 2
    f = tmp_path / "a_file"
    f.write_text("x")
    assert main(["phantom", str(f), "--patients", "1", "--size", "small"]) == 1
    err = capsys.readouterr().err
    assert "not a folder" in err and "Traceback" not in err
    assert main(["phantom", str(tmp_path / "s"), "--patients", "1", "--size", "small",
                 "--no-masks", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "P001" in out and "KGR" in out
    tp = tmp_path / "s" / "P001" / "baseline"
    assert (tp / "image.nii.gz").is_file() and not (tp / "liver.nii.gz").exists()
    assert (tp / "truth" / "liver.nii.gz").is_file()


def test_sample_study_is_cached_and_regenerated_on_version_change(tmp_path, monkeypatch):
    monkeypatch.setattr(_study, "SAMPLE_SETTINGS", dict(_study.SAMPLE_SETTINGS, n_patients=1,
                                                        size="small"))
    path = tmp_path / "study"
    assert phantoms.sample_study(path) == path
    truth = path / "P001" / "truth.json"
    stamp = truth.stat().st_mtime_ns
    os.utime(truth, ns=(stamp - 10**9, stamp - 10**9))
    stamp = truth.stat().st_mtime_ns
    phantoms.sample_study(path)
    assert truth.stat().st_mtime_ns == stamp            # cached: not rewritten
    monkeypatch.setattr(_study, "GENERATOR_VERSION", "test-next")
    phantoms.sample_study(path)
    assert truth.stat().st_mtime_ns != stamp            # new generator: regenerated
    assert json.loads((path / "truth_study.json").read_text())["generator_version"] == "test-next"
    assert not [e for e in os.listdir(tmp_path) if e.startswith(".")]   # no leftovers


def test_landmarks_rebuild_the_segment_map(study):
    from flr_volumetry import remnant

    out, truths = study
    folder = out / "P001" / "post_pve"
    lm = json.loads((folder / "truth" / "landmarks.json").read_text())
    assert set(lm) >= {"ivc", "right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein",
                       "portal_bifurcation"}
    liver, liver_arr = _read(folder / "truth" / "liver.nii.gz")
    seg = _read(folder / "truth" / "segments.nii.gz")[1]
    made = remnant.segments_from_landmarks(liver, lm)
    made = sitk.GetArrayFromImage(getattr(made, "image", made))
    # The hemi-liver split (Cantlie's plane) is exact up to the caudate model.
    left_truth, left_made = np.isin(seg, (1, 2, 3, 4)), np.isin(made, (1, 2, 3, 4))
    dice = 2 * np.sum(left_truth & left_made) / (left_truth.sum() + left_made.sum())
    assert dice > 0.95


def test_varied_patients_fit_the_field_of_view_and_follow_their_growth():
    from flr_volumetry import clinical

    for seed in (1, 2):
        for index in range(3):
            p = phantoms.make_patient(index, seed=seed)
            flr_ml = []
            for t in range(2):
                r = phantoms.render_timepoint(p, t, SMALL)
                liver = r["liver"]
                for edge in (liver[0], liver[-1], liver[:, 0], liver[:, -1], liver[:, :, 0],
                             liver[:, :, -1]):
                    assert not edge.any(), (seed, index, t)
                flr_ml.append(r["flr"].sum() * SMALL.voxel_volume_ml)
            telv = clinical.telv_ml(p.height_cm, p.weight_kg)
            days = (p.timepoints[1].scan_date - p.procedure_date).days
            kgr = (flr_ml[1] - flr_ml[0]) / telv * 100 / (days / 7)
            assert kgr == pytest.approx(p.growth.kgr_pct_per_week, abs=0.6), (seed, index)


def test_writing_again_replaces_the_previous_inputs(tmp_path):
    phantoms.write_study(tmp_path, n_patients=1, size="small")
    phantoms.write_study(tmp_path, n_patients=1, size="small", fmt="dicom", input_masks=())
    tp = tmp_path / "P001" / "baseline"
    # Without a segment map the remnant comes as a landmark plan (see the batch test below).
    assert sorted(e.name for e in tp.iterdir()) == ["image", "plan.json", "timepoint.json",
                                                    "truth"]
    # ... which must not linger beside the masks and patient.json's resection of a new run.
    phantoms.write_study(tmp_path, n_patients=1, size="small")
    assert not (tp / "plan.json").exists() and (tp / "segments.nii.gz").is_file()


def test_a_grid_too_small_for_the_liver_is_refused(tmp_path):
    tiny = phantoms.Grid((64, 64, 24), (3.0, 3.0, 5.0))
    with pytest.raises(InputError, match="does not fit"):
        phantoms.write_study(tmp_path, n_patients=1, grid=tiny)


def test_a_study_is_written_whole_over_an_earlier_one_and_never_over_other_files(tmp_path):
    out = tmp_path / "study"
    phantoms.write_study(out, n_patients=2, seed=0, size="small")
    # One patient over two: P002 of the earlier study had stayed, and batch measured it.
    phantoms.write_study(out, n_patients=1, seed=7, size="small")
    assert sorted(p.name for p in out.iterdir()) == ["P001", "study.csv", "truth_study.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    # A folder of someone's files is not written into.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="holds files that are not a phantom study"):
        phantoms.write_study(other, n_patients=1, size="small")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="seed must be a whole number of at least 0"):
        phantoms.write_study(tmp_path / "neg", seed=-1)
    assert not (tmp_path / "neg").exists()


def test_dicom_uids_tell_series_apart_and_repeat_for_the_same_series(tmp_path):
    import pydicom

    def uids(folder):
        files = sorted((folder / "P001" / "baseline" / "image").iterdir())
        ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        return ds[0].SeriesInstanceUID, [d.SOPInstanceUID for d in ds]

    phantoms.write_study(tmp_path / "a", n_patients=1, size="small", fmt="dicom")
    phantoms.write_study(tmp_path / "b", n_patients=1, size="small", fmt="dicom")
    phantoms.write_study(tmp_path / "c", n_patients=1, size="sample", fmt="dicom")
    # The same series twice: the same instances (random SOP UIDs had made two copies of
    # one series clash as 'two slices at the same z').
    assert uids(tmp_path / "a") == uids(tmp_path / "b")
    # Another grid is another series (the small and sample presets had shared their UIDs,
    # and read together one was taken for scouts).
    assert uids(tmp_path / "c")[0] != uids(tmp_path / "a")[0]


def test_a_study_is_written_into_the_current_folder_in_place(tmp_path, monkeypatch):
    # The current folder cannot be renamed away: the study is written into it, and an
    # earlier study's other patients are removed (the process had been left in a
    # deleted folder).
    monkeypatch.chdir(tmp_path)
    phantoms.write_study(".", n_patients=2, size="small")
    phantoms.write_study(".", n_patients=1, seed=3, size="small")
    assert os.getcwd() == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P001", "study.csv",
                                                           "truth_study.json"]


def test_a_study_without_masks_is_measured_by_batch_with_automatic_segmentation(tmp_path,
                                                                                capsys):
    # `phantom --no-masks` had shipped no segment map but kept "resection" in patient.json:
    # batch then failed every timepoint ("the plan selects Couinaud segments, but there is
    # neither a segment map ... nor landmarks").
    from flr_volumetry.batch import BatchOptions, run_batch

    study = tmp_path / "s"
    assert main(["phantom", str(study), "--patients", "1", "--size", "small",
                 "--no-masks", "--seed", "1"]) == 0
    tp = study / "P001" / "baseline"
    assert not any((tp / f"{k}.nii.gz").exists() for k in phantoms.INPUT_MASKS)
    capsys.readouterr()
    result = run_batch(study, tmp_path / "out", BatchOptions(figures=False, progress=False))
    rows = list(csv.DictReader((tmp_path / "out" / "timepoints.csv").open()))
    assert len(rows) == 2, rows
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    assert all(r["liver_method"] == "automatic segmentation" for r in rows), rows
    assert result.ok
    # The plan is the truth's own: the FLR measured on the automatic liver is close.
    truth = json.loads((study / "P001" / "truth.json").read_text())
    for row, t in zip(sorted(rows, key=lambda r: r["scan_date"]), truth["timepoints"]):
        assert float(row["flr_ml"]) == pytest.approx(t["flr_ml"], rel=0.15)


def test_mr_without_masks_is_refused_in_one_sentence(tmp_path, capsys):
    # batch segments an MR liver only from seeds, which a study folder cannot give.
    with pytest.raises(InputError, match="MR"):
        phantoms.write_study(tmp_path / "a", n_patients=1, size="small", modality="mr",
                             input_masks=())
    assert main(["phantom", str(tmp_path / "b"), "--patients", "1", "--size", "small",
                 "--modality", "mr", "--no-masks"]) == 2
    err = capsys.readouterr().err
    assert "--no-masks" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sample_study_given_no_folder_path_says_so():
    # sample_study(3) had raised pathlib's bare TypeError.
    with pytest.raises(InputError, match="sample_study writes the study into a folder given "
                                         "by its path"):
        flr.sample_study(3)
