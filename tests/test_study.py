"""Study-folder discovery: patients, facts, timepoints, and what is ignored."""

import json
import os

import pytest

from flr_volumetry.errors import InputError
from flr_volumetry.study import StudyLayoutError, discover_study, read_patient_file

import _tiny_study as tiny


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def test_layout_inputs_and_ignored_names(tmp_path):
    study = str(tmp_path)
    tiny.write_patient(study, "P001", {"height_cm": 170, "weight_kg": 70, "procedure": "alpps",
                                       "procedure_date": "20240301",
                                       "remnant_segments": "2,3"},
                       {"pre": dict(scan_date="2024-02-28", flr_width=4, tumor=True)})
    # Ground truth of the sample study, hidden files and notes are never inputs.
    os.makedirs(tmp_path / "P001" / "truth" / "x")
    _write(str(tmp_path / "P001" / "truth.json"), "{}")
    _write(str(tmp_path / "P001" / "pre" / "truth_flr.nii.gz"), "")
    os.makedirs(tmp_path / "P001" / "notes")
    os.makedirs(tmp_path / ".cache" / "tp")
    os.makedirs(tmp_path / "P002" / "post" / "image")  # a DICOM folder
    _write(str(tmp_path / "P002" / "post" / "image" / "1.dcm"), "x")
    _write(str(tmp_path / "P002" / "post" / "plan.json"), "{}")
    study_ = discover_study(study)
    assert [p.patient_id for p in study_.patients] == ["P001", "P002"]
    p1, p2 = study_.patients
    assert p1.procedure == "ALPPS" and p1.procedure_date == "2024-03-01"
    assert p1.remnant_segments == (2, 3)
    assert p1.remnant_spec() == {"remnant_segments": [2, 3], "resect_caudate": False}
    (tp,) = p1.timepoints
    assert tp.name == "pre" and tp.scan_date == "2024-02-28" and tp.error is None
    assert os.path.basename(tp.image) == "image.nii.gz"
    assert os.path.basename(tp.tumor) == "tumor.nii.gz" and tp.segments is None
    assert not any("truth" in f for f in tp.input_files())
    (tp2,) = p2.timepoints
    assert os.path.isdir(tp2.image) and tp2.plan.endswith("plan.json") and tp2.scan_date is None
    assert any(f.endswith("1.dcm") for f in tp2.input_files())
    # No patient.json: a warning says where height, weight and condition come from.
    assert p2.error is None and any("DICOM header" in w for w in p2.warnings)


def test_the_scintigraphic_function_is_a_patient_fact_read_with_a_decimal_comma(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", {"procedure": "ALPPS"},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"), "patient_id;hbs_pct_per_min_m2\nP001;2,4\n")
    (p,) = discover_study(str(tmp_path)).patients
    assert p.error is None and p.hbs_pct_per_min_m2 == 2.4
    assert p.facts()["hbs_pct_per_min_m2"] == 2.4


def test_study_csv_merges_with_patient_json(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", {"weight_kg": 72},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    tiny.write_patient(str(tmp_path), "P002", None,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"),
           "patient_id,height_cm,weight_kg,liver_condition,procedure,procedure_date,plan\n"
           "P001,170,70,cirrhosis,PVE,2024-01-08,\n"
           "P002,180,90,,PVL,2024-02-01,plans/p2.json\n"
           "P999,170,70,,PVE,2024-01-01,\n")
    study = discover_study(str(tmp_path))
    p1, p2 = study.patients
    assert (p1.height_cm, p1.weight_kg, p1.liver_condition) == (170.0, 72.0, "cirrhosis")
    assert any("disagree on weight_kg" in w for w in p1.warnings)
    assert p2.procedure == "PVL" and p2.liver_condition == "normal"
    assert p2.plan == os.path.join(str(tmp_path), "plans", "p2.json")
    assert any("P999" in w for w in study.warnings)


@pytest.mark.parametrize("facts, phrase", [
    ({"liver_condition": "fatty"}, "unknown liver condition"),
    ({"procedure": "TACE"}, "procedure 'TACE'"),
    ({"procedure_date": "01/03/2024"}, "YYYY-MM-DD"),
    ({"height_cm": 1.7, "weight_kg": 70}, "centimetres"),
    ({"height_cm": 1.7}, "centimetres"),  # (a height alone is kept: a header may complete it)
    ({"remnant_segments": [2, 9]}, "Couinaud"),
    ({"remnant_segments": [2.7, 3]}, "Couinaud"),
    ({"height_cm": "tall", "weight_kg": 70}, "must be a number"),
    ({"resect_caudate": "maybe"}, "true or false"),
    ({"resection": "right_hepatectomy", "remnant_segments": [2, 3]},
     "defines the remnant 2 ways (resection, remnant_segments)"),
    # Unused while every timepoint has its flr.* mask, these had passed without a word.
    ({"resection": "abc"}, "unknown resection 'abc'"),
    ({"resection": 5}, "unknown resection 5"),
    ({"plan": {"a": 1}}, "no schema_version"),
    ({"plan": {"schema_version": "1.1", "a": 1}}, "unknown key(s) in the remnant plan: a"),
    ({"hbs_pct_per_min_m2": 0}, "scintigraphy function must be a positive number"),
    ({"hbs_pct_per_min_m2": "low"}, "hbs_pct_per_min_m2 in"),
])
def test_bad_patient_facts_fail_that_patient_only(tmp_path, facts, phrase):
    tiny.write_patient(str(tmp_path), "P001", facts,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    tiny.write_patient(str(tmp_path), "P002", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    p1, p2 = discover_study(str(tmp_path)).patients
    assert p1.error is not None and phrase in p1.error
    assert p2.error is None


def test_unknown_keys_warn_and_broken_json_is_an_error(tmp_path):
    _write(str(tmp_path / "patient.json"), json.dumps({"height_cm": 170, "weight_kg": 70,
                                                       "name": "Doe^Jane"}))
    facts, warnings = read_patient_file(str(tmp_path / "patient.json"))
    assert "name" not in facts and any("unknown key 'name'" in w for w in warnings)
    assert not any("Doe" in w for w in warnings)
    _write(str(tmp_path / "P001" / "patient.json"), "{not json")
    tiny.write_timepoint(str(tmp_path / "P001" / "pre"), scan_date="2024-01-01", flr_width=4)
    (p,) = discover_study(str(tmp_path)).patients
    assert "not readable JSON" in p.error


def test_timepoint_problems_are_recorded_not_raised(tmp_path):
    base = tmp_path / "P001"
    tiny.write_timepoint(str(base / "ok"), scan_date="2024-01-01", flr_width=4)
    tiny.write_timepoint(str(base / "two_images"), scan_date="2024-01-02", flr_width=4)
    _write(str(base / "two_images" / "image.nrrd"), "")
    tiny.write_timepoint(str(base / "two_livers"), scan_date="2024-01-03", flr_width=4)
    _write(str(base / "two_livers" / "liver.nrrd"), "")
    _write(str(base / "no_image" / "liver.nii.gz"), "")
    tiny.write_timepoint(str(base / "bad_date"), scan_date="March", flr_width=4)
    tiny.write_timepoint(str(base / "mr"), scan_date="2024-01-05", flr_width=4)
    _write(str(base / "mr" / "timepoint.json"),
           json.dumps({"scan_date": "2024-01-05", "modality": "MR", "series_uid": "1.2.3"}))
    tiny.write_timepoint(str(base / "typo"), scan_date="2024-01-06", flr_width=4)
    _write(str(base / "typo" / "timepoint.json"), json.dumps({"scandate": "2024-01-06"}))
    tiny.write_timepoint(str(base / "pet"), scan_date="2024-01-07", flr_width=4)
    _write(str(base / "pet" / "timepoint.json"),
           json.dumps({"scan_date": "2024-01-07", "modality": "PT"}))
    tps = {t.name: t for t in discover_study(str(tmp_path)).patients[0].timepoints}
    assert tps["ok"].error is None
    assert "several images" in tps["two_images"].error
    assert "two liver masks" in tps["two_livers"].error
    assert "no image" in tps["no_image"].error
    assert "YYYY-MM-DD" in tps["bad_date"].error
    assert (tps["mr"].modality, tps["mr"].series_uid, tps["mr"].error) == ("mr", "1.2.3", None)
    assert "unknown key(s) scandate" in tps["typo"].error
    assert "must be ct or mr" in tps["pet"].error


def test_usage_errors(tmp_path):
    with pytest.raises(StudyLayoutError, match="does not exist"):
        discover_study(str(tmp_path / "absent"))
    os.makedirs(tmp_path / "empty" / "P001" / "notes")
    with pytest.raises(StudyLayoutError, match="no patient found"):
        discover_study(str(tmp_path / "empty"))
    _write(str(tmp_path / "dup" / "study.csv"), "patient_id,height_cm\nP1,170\nP1,171\n")
    with pytest.raises(StudyLayoutError, match="twice"):
        discover_study(str(tmp_path / "dup"))


def test_output_folder_inside_the_study_is_excluded(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", {}, {"pre": dict(scan_date="2024-01-01",
                                                               flr_width=4)})
    tiny.write_timepoint(str(tmp_path / "out" / "masks"), scan_date="2024-01-01", flr_width=4)
    ids = [p.patient_id for p in discover_study(str(tmp_path)).patients]
    assert ids == ["P001", "out"]
    ids = [p.patient_id for p in discover_study(str(tmp_path),
                                                exclude=(str(tmp_path / "out"),)).patients]
    assert ids == ["P001"]


def _dicom_like(path):
    """A file that starts like DICOM Part 10 (preamble + 'DICM'): all discovery looks at."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM" + b"\0" * 16)


def test_dicom_exports_without_an_image_name_are_found(tmp_path):
    study = str(tmp_path)
    # Files straight in the timepoint folder, beside a mask and a note.
    _dicom_like(str(tmp_path / "P001" / "pre" / "IM00001"))
    _write(str(tmp_path / "P001" / "pre" / "liver.nii.gz"), "")
    _write(str(tmp_path / "P001" / "pre" / "notes.txt"), "exported by PACS")
    # One subfolder of any name, nested as exports often are.
    _dicom_like(str(tmp_path / "P001" / "post" / "DICOM" / "SE0001" / "IM00001.dcm"))
    # Two DICOM subfolders: which one is the scan is the user's choice.
    _dicom_like(str(tmp_path / "P001" / "late" / "SE0001" / "1.dcm"))
    _dicom_like(str(tmp_path / "P001" / "late" / "SE0002" / "1.dcm"))
    # Only a non-DICOM file: not a scan.
    _write(str(tmp_path / "P001" / "other" / "SE0001" / "readme.txt"), "x")
    _write(str(tmp_path / "P001" / "other" / "timepoint.json"), '{"scan_date": "2024-01-01"}')
    (p,) = discover_study(study).patients
    tps = {tp.name: tp for tp in p.timepoints}
    assert tps["pre"].image == str(tmp_path / "P001" / "pre") and tps["pre"].error is None
    assert tps["pre"].liver == str(tmp_path / "P001" / "pre" / "liver.nii.gz")
    assert tps["post"].image == str(tmp_path / "P001" / "post" / "DICOM")
    assert tps["late"].image is None
    assert "several images in late/ (SE0001, SE0002)" in tps["late"].error
    assert tps["other"].image is None and tps["other"].error.startswith("no image in other/")


def test_dicom_beside_the_named_image_is_said_not_measured(tmp_path):
    # A timepoint with image.nii.gz and a DICOM export beside it had its DICOM passed over
    # without a word (its StudyDate never checked); the image named image is the scan.
    for tp, dicom in (("pre", "dicom_export/1.dcm"), ("post", "IM00001")):
        _write(str(tmp_path / "P001" / tp / "image.nii.gz"), "")
        _dicom_like(str(tmp_path / "P001" / tp / dicom))
    _write(str(tmp_path / "P001" / "late" / "image.nii.gz"), "")
    (p,) = discover_study(str(tmp_path)).patients
    tps = {tp.name: tp for tp in p.timepoints}
    assert all(tp.image.endswith("image.nii.gz") and tp.error is None for tp in tps.values())
    said = [w for w in p.warnings if "not measured" in w]
    assert len(said) == 2
    assert "pre/ also holds DICOM (dicom_export/), not measured: image.nii.gz is" in said[1]
    assert "post/ also holds DICOM (its own files)" in said[0]


def test_patient_json_remnant_replaces_the_study_csv_one_whole(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", {"remnant_segments": [2, 3]},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"),
           "patient_id,height_cm,weight_kg,resection\nP001,170,70,right_hepatectomy\n")
    (p,) = discover_study(str(tmp_path)).patients
    assert p.error is None
    assert p.remnant_spec() == {"remnant_segments": [2, 3], "resect_caudate": False}
    assert any("define the remnant differently" in w and "right_hepatectomy" in w
               for w in p.warnings)


def test_patient_json_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "patient.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"height_cm": 170, "weight_kg": 70}).encode())
    facts, _ = read_patient_file(str(path))
    assert facts == {"height_cm": 170.0, "weight_kg": 70.0}


def test_empty_patient_and_timepoint_folders_are_said_not_dropped_silently(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    os.makedirs(tmp_path / "P001" / "post_pve")  # the follow-up scan not copied yet
    os.makedirs(tmp_path / "P002")               # a patient not copied yet
    study = discover_study(str(tmp_path))
    (p,) = study.patients
    assert [t.name for t in p.timepoints] == ["pre"]
    assert any("post_pve/ in P001/ holds no scan" in w for w in p.warnings)
    assert any(w.startswith("P002/ holds no patient.json") for w in study.warnings)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_study_csv_saved_with_another_separator_is_read(tmp_path, sep):
    tiny.write_patient(str(tmp_path), "P001", None,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"),
           sep.join(["patient_id", "height_cm", "weight_kg"]) + "\n"
           + sep.join(["P001", "170", "70"]) + "\n")
    (p,) = discover_study(str(tmp_path)).patients
    assert p.error is None and (p.height_cm, p.weight_kg) == (170.0, 70.0)


def test_rows_of_separators_only_are_skipped_as_blank_lines(tmp_path):
    # A spreadsheet saves emptied rows as ";;;": "line 3 has no patient_id" had stopped the
    # whole study; a row with values but no patient_id is still refused.
    tiny.write_patient(str(tmp_path), "P001", None,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"),
           "patient_id;height_cm;weight_kg\r\nP001;170;70\r\n;;\r\n ; ;\r\n")
    (p,) = discover_study(str(tmp_path)).patients
    assert p.error is None and (p.height_cm, p.weight_kg) == (170.0, 70.0)
    _write(str(tmp_path / "study.csv"), "patient_id;height_cm;weight_kg\nP001;170;70\n;180;\n")
    with pytest.raises(StudyLayoutError, match="line 3 has no patient_id"):
        discover_study(str(tmp_path))


def test_decimal_commas_of_a_semicolon_csv_and_warnings_beside_a_csv_row(tmp_path):
    tiny.write_patient(str(tmp_path), "P001", None,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    os.makedirs(tmp_path / "P001" / "post_pve")
    # Segment lists keep their commas: "2,3" had become "2.3" ("got '2.3'", never typed).
    _write(str(tmp_path / "study.csv"),
           "patient_id;height_cm;weight_kg;remnant_segments\nP001;170,5;72,5;2,3\n")
    (p,) = discover_study(str(tmp_path)).patients
    assert (p.height_cm, p.weight_kg) == (170.5, 72.5)
    assert p.error is None and p.remnant_spec()["remnant_segments"] == [2, 3]
    assert any("post_pve/ in P001/ holds no scan" in w for w in p.warnings)


def test_segmentation_files_are_masks_and_a_seg_beside_a_scan_subfolder_is_no_scan(tmp_path):
    # liver.dcm (DICOM SEG) and liver.seg.nrrd had been skipped without a word, and the
    # liver segmented automatically instead; a SEG in the folder had made the folder the scan.
    folder = tmp_path / "P001" / "pre"
    _dicom_like(str(folder / "SE0001" / "IM00001"))
    _dicom_like(str(folder / "liver.dcm"))
    _write(str(folder / "tumor.seg.nrrd"), "")
    _write(str(folder / "FLR.nii.gz"), "")
    (p,) = discover_study(str(tmp_path)).patients
    (tp,) = p.timepoints
    assert tp.error is None and tp.image == str(folder / "SE0001")
    assert (tp.liver, tp.tumor, tp.flr) == (str(folder / "liver.dcm"),
                                           str(folder / "tumor.seg.nrrd"),
                                           str(folder / "FLR.nii.gz"))


def test_implicit_vr_files_without_preamble_are_found_in_a_subfolder(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    ds.Modality, ds.Rows, ds.Columns = "CT", 2, 2
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    path = tmp_path / "P001" / "pre" / "SE0001" / "1"
    os.makedirs(path.parent)
    path.write_bytes(fp.getvalue())  # ACR-NEMA style: no preamble, no file meta
    (p,) = discover_study(str(tmp_path)).patients
    assert p.timepoints[0].image == str(path.parent)


@pytest.mark.parametrize("text, message", [
    ('{"height_cm": 170, "weight_kg": 70, "height_cm": 100}', "'height_cm' is given twice"),
    ('{"height_cm": 1' + "0" * 400 + '}', "height_cm in .* must be a number"),
    ('{"procedure_date": NaN}', "procedure_date in .* is not a date"),
])
def test_patient_file_refused_in_a_sentence(tmp_path, text, message):
    # The duplicate had been read as the last value (height 100 cm: another sFLR); the
    # other two had escaped as OverflowError / AttributeError and stopped the whole batch.
    path = tmp_path / "patient.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_patient_file(str(path))


@pytest.mark.parametrize("text, message", [
    ("patient_id,height_cm,height_cm\nP1,170,100\n", "column height_cm twice"),
    ("patient_id,height_cm\nP1,170,5\n", "line 2 has more values than the header"),
])
def test_study_csv_column_twice_or_row_too_long_is_refused(tmp_path, text, message):
    # Both had been read without a word: the second height_cm (100), and 170 with the ,5
    # of a decimal comma dropped.
    from flr_volumetry.study import read_study_csv

    path = tmp_path / "study.csv"
    path.write_text(text)
    with pytest.raises(StudyLayoutError, match=message):
        read_study_csv(str(path))


def test_a_patient_folder_name_not_in_utf8_is_refused(tmp_path):
    # ITK aborted the whole batch on its scan (exit 134, no message); the name cannot be
    # written to patients.csv or batch.log either.
    tiny.write_patient(str(tmp_path), "P001", {}, {"pre": dict(scan_date="2024-01-01",
                                                               flr_width=4)})
    os.rename(tmp_path / "P001", os.path.join(os.fsencode(tmp_path), b"P\xff"))
    with pytest.raises(StudyLayoutError, match="not valid UTF-8"):
        discover_study(str(tmp_path))


@pytest.mark.parametrize("name", ["liver.nii.gz", "image.nii.gz"])
def test_a_broken_link_in_a_timepoint_is_its_error(tmp_path, name):
    # A dangling liver link had been passed over (the liver then segmented instead of the
    # user's mask, unsaid); a dangling image link was "no image in post/".
    tiny.write_timepoint(str(tmp_path / "P001" / "post"), scan_date="2024-01-01", flr_width=4)
    link = tmp_path / "P001" / "post" / name
    link.unlink()
    os.symlink(tmp_path / "moved" / name, link)
    (tp,) = discover_study(str(tmp_path)).patients[0].timepoints
    assert f"post/{name} is a symbolic link whose target" in tp.error


def test_one_folder_to_exclude_may_be_given_alone_and_no_study_folder_is_said(tmp_path):
    # exclude="OUT" had been taken letter by letter (excluding nothing); discover_study(None)
    # had raised pathlib's bare TypeError.
    for name in ("P001", "P002"):
        os.makedirs(tmp_path / name / "baseline")
        open(tmp_path / name / "baseline" / "image.nii.gz", "w").close()
    for exclude in (str(tmp_path / "P002"), tmp_path / "P002", [tmp_path / "P002"]):
        study = discover_study(tmp_path, exclude=exclude)
        assert [p.patient_id for p in study.patients] == ["P001"]
    with pytest.raises(StudyLayoutError, match="must be a path"):
        discover_study(None)


def test_a_study_csv_row_matches_its_folder_in_another_unicode_form(tmp_path):
    # macOS writes M\u00fcller decomposed (u + U+0308): the row of the same name had not matched,
    # "study.csv lists patient M\u00fcller_ID, but there is no folder M\u00fcller_ID/".
    import unicodedata

    composed = unicodedata.normalize("NFC", "M\u00fcller_ID")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    tiny.write_patient(str(tmp_path), composed, None,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    _write(str(tmp_path / "study.csv"),
           f"patient_id,height_cm,weight_kg\n{decomposed},170,70\n")
    study = discover_study(str(tmp_path))
    (p,) = study.patients
    assert (p.height_cm, p.weight_kg) == (170.0, 70.0)
    assert not any("study.csv lists patient" in w for w in study.warnings)
