"""Batch volumetry of study folders: exact volumes, growth, broken patients, resume, parallel runs."""

import csv
import json
import os
import re

import numpy as np
import pytest

import flr_volumetry
from flr_volumetry import BatchOptions, hypertrophy, measure_files, run_batch
from flr_volumetry.cli import main
from flr_volumetry.study import StudyLayoutError
from flr_volumetry.errors import InputError
from flr_volumetry.volumetry import Patient, VolumetryOptions

import _tiny_study as tiny

FAST = BatchOptions(progress=False, figures=False)
PVE = {"height_cm": 170, "weight_kg": 70, "procedure": "PVE", "procedure_date": "2024-01-08"}


def two_scans():
    """A baseline and a follow-up 35 days later (28 days after the PVE), the FLR growing."""
    return {"pre": dict(scan_date="2024-01-01", flr_width=4),
            "post": dict(scan_date="2024-02-05", flr_width=7)}


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def _num(text):
    return None if text == "" else float(text)


def _assert_no_name(out):
    """The name "Doe^Jane" planted in the inputs appears in no output."""
    for name in ("timepoints.csv", "patients.csv", "results.json", "report.html", "batch.log"):
        with open(os.path.join(out, name), encoding="utf-8") as fh:
            # Embedded PNGs are base64 and may spell anything: look at the text only.
            text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", fh.read())
        assert "Doe" not in text and "Jane" not in text, name


def _no_temp_files(folder):
    return [os.path.join(root, f) for root, _, files in os.walk(folder) for f in files
            if f.startswith(".tmp")]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    study = tiny.good_study(str(tmp_path_factory.mktemp("study")))
    out = str(tmp_path_factory.mktemp("out"))
    code = main(["batch", study, "-o", out, "--no-progress"])
    return study, out, code


def test_all_ok_exact_volumes_and_order(good):
    study, out, code = good
    assert code == 0
    rows = _rows(os.path.join(out, "timepoints.csv"))
    assert list(rows[0])[:11] == ["patient_id", "timepoint", "scan_date", "status", "error",
                                 "total_liver_ml", "tumor_ml", "functional_liver_ml", "flr_ml",
                                 "sflr_pct", "measured_flr_pct"]
    assert len(rows) == 7 and all(r["status"] == "ok" and r["error"] == "" for r in rows)
    # P002's folders are named against date order: the table follows the scan dates.
    assert [r["timepoint"] for r in rows if r["patient_id"] == "P002"] == \
        ["b_first", "c_middle", "a_late"]
    t = _by(rows, "patient_id", "timepoint")
    assert t[("P001", "baseline")]["is_baseline"] == "True"
    assert t[("P002", "a_late")]["is_baseline"] == "False"
    for (pid, tp), width in {("P001", "baseline"): 4, ("P001", "post_pve"): 7,
                             ("P002", "b_first"): 5, ("P002", "a_late"): 8,
                             ("P003", "pre"): 3, ("P003", "stage2"): 6}.items():
        r = t[(pid, tp)]
        assert float(r["total_liver_ml"]) == tiny.LIVER_VOXELS * tiny.VOXEL_ML
        assert float(r["flr_ml"]) == tiny.flr_voxels(width) * tiny.VOXEL_ML
    assert float(t[("P003", "pre")]["tumor_ml"]) == 8.0
    assert float(t[("P003", "pre")]["functional_liver_ml"]) == tiny.LIVER_VOXELS - 8.0
    assert t[("P001", "baseline")]["tumor_ml"] == ""
    assert t[("P001", "baseline")]["flr_method"] == "file flr.nii.gz"
    assert t[("P001", "baseline")]["date_source"] == "timepoint.json"
    judged = [r for r in rows if r["flr_bw_ratio_pct"]]
    assert judged and all(r["flr_bw_adequate"] == str(float(r["flr_bw_ratio_pct"]) > 0.5)
                          for r in judged)


def test_growth_matches_hypertrophy_of_direct_measurements(good):
    study, out, _ = good
    patients = _by(_rows(os.path.join(out, "patients.csv")), "patient_id")
    assert list(next(iter(patients.values())))[:14] == [
        "patient_id", "status", "error", "procedure", "procedure_date", "interval_days",
        "sflr_baseline_pct", "sflr_followup_pct", "dh_pct_points", "kgr_pct_per_week",
        "kgr_meets_2pct", "gr_pct_per_week", "gr_meets_2_66pct", "sflr_adequate"]
    cases = {"P001": (Patient(170, 70), "baseline", "post_pve", "2024-01-08"),
             "P002": (Patient(180, 90, "chemotherapy"), "b_first", "a_late", "2024-03-04"),
             "P003": (Patient(160, 60), "pre", "stage2", "2024-05-02")}
    for pid, (patient, pre_tp, post_tp, proc) in cases.items():
        def m(tp):
            d = os.path.join(study, pid, tp)
            tumor = os.path.join(d, "tumor.nii.gz")
            with open(os.path.join(d, "timepoint.json")) as fh:
                date = json.load(fh)["scan_date"]
            return measure_files(os.path.join(d, "image.nii.gz"),
                                 liver=os.path.join(d, "liver.nii.gz"),
                                 flr=os.path.join(d, "flr.nii.gz"),
                                 tumor=tumor if os.path.exists(tumor) else None,
                                 patient=patient, scan_date=date)
        pre, post = m(pre_tp), m(post_tp)
        h = hypertrophy(pre, post, procedure_date=proc)
        row = patients[pid]
        assert row["status"] == "ok" and row["error"] == ""
        assert int(row["interval_days"]) == h.interval_days
        assert float(row["sflr_baseline_pct"]) == pre.sflr_pct
        assert float(row["sflr_followup_pct"]) == post.sflr_pct
        assert float(row["dh_pct_points"]) == h.dh_pct_points
        assert float(row["kgr_pct_per_week"]) == h.kgr_pct_per_week
        assert row["kgr_meets_2pct"] == str(h.kgr_meets_2pct)
        assert float(row["gr_pct_per_week"]) == h.gr_pct_per_week
        assert row["gr_meets_2_66pct"] == str(h.gr_meets_2_66pct)
        assert row["sflr_adequate"] == str(post.sflr_adequate)
    # The cohort has both verdicts, so the columns are not constant.
    assert {patients[p]["kgr_meets_2pct"] for p in patients} == {"True", "False"}


def test_results_json_has_every_measurement_and_followup(good):
    _, out, _ = good
    with open(os.path.join(out, "results.json")) as fh:
        res = json.load(fh)
    assert res["schema"] == "flr-volumetry/batch-results" and res["schema_version"] == "1.4"
    p2 = next(p for p in res["patients"] if p["patient_id"] == "P002")
    assert [f["timepoint"] for f in p2["followups"]] == ["c_middle", "a_late"]
    assert all(f["status"] == "ok" and f["hypertrophy"]["kgr_pct_per_week"] is not None
               for f in p2["followups"])
    tp = p2["timepoints"][0]
    assert tp["measurement"]["methods"]["telv_formula"] == "vauthey"
    assert tp["measurement"]["flr_ml"] == tiny.flr_voxels(5)
    # The masks used are saved for review and are exactly what was measured.
    import SimpleITK as sitk
    import numpy as np
    flr = sitk.ReadImage(os.path.join(out, tp["masks"]["flr"]))
    assert int(np.count_nonzero(sitk.GetArrayFromImage(flr))) == tiny.flr_voxels(5)
    assert os.path.isfile(os.path.join(out, tp["masks"]["liver"]))
    assert _no_temp_files(out) == []


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    study = str(tmp_path_factory.mktemp("broken"))
    tiny.write_patient(study, "P001", {**PVE, "name": "Doe^Jane"}, two_scans())
    tiny.write_patient(study, "P002", PVE, two_scans())
    with open(os.path.join(study, "P002", "post", "image.nii.gz"), "wb") as fh:
        fh.write(b"\x1f\x8b this is not a NIfTI file")
    tiny.write_patient(study, "P003", PVE,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4,
                                    flr_origin=(5000.0, 5000.0, 5000.0)),
                        "post": dict(scan_date="2024-02-05", flr_width=7)})
    tiny.write_patient(study, "P004", PVE,
                       {"pre": dict(scan_date="2024-01-01", flr_width=4),
                        "post": dict(scan_date=None, flr_width=7, write_date=False)})
    no_date = {k: v for k, v in PVE.items() if k != "procedure_date"}
    tiny.write_patient(study, "P005", no_date, two_scans())
    tiny.write_patient(study, "P006", {**PVE, "liver_condition": "fatty"}, two_scans())
    out = str(tmp_path_factory.mktemp("broken_out"))
    return study, out


def test_broken_patients_are_recorded_and_never_stop_the_others(broken, capsys):
    study, out = broken
    code = main(["batch", study, "-o", out, "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    summary = [line for line in err.splitlines() if "patients:" in line]
    assert len(summary) == 1 and "1 ok, 5 failed" in summary[0]
    assert "P002" in summary[0] and "P001" not in summary[0].split("failed:")[1]
    patients = _by(_rows(os.path.join(out, "patients.csv")), "patient_id")
    assert patients["P001"]["status"] == "ok" and patients["P001"]["kgr_pct_per_week"] != ""
    assert [patients[p]["status"] for p in ("P002", "P003", "P004", "P005", "P006")] == \
        ["failed"] * 5
    assert "unknown liver condition 'fatty'" in patients["P006"]["error"]
    assert "cannot read" in patients["P002"]["error"]
    assert "flr mask flr.nii.gz is on another grid" in patients["P003"]["error"]
    assert "no scan date" in patients["P004"]["error"]
    assert "timepoint.json" in patients["P004"]["error"]
    assert "no procedure date" in patients["P005"]["error"]
    tps = _by(_rows(os.path.join(out, "timepoints.csv")), "patient_id", "timepoint")
    assert tps[("P002", "post")]["status"] == "failed"
    assert tps[("P002", "pre")]["status"] == "ok"
    assert float(tps[("P002", "pre")]["flr_ml"]) == tiny.flr_voxels(4)
    assert "cannot read" in tps[("P002", "post")]["error"]
    assert tps[("P006", "pre")]["status"] == "failed"
    assert tps[("P006", "pre")]["error"].startswith("patient not measured: unknown liver")
    # P005's volumes are measured although its growth cannot be dated.
    assert float(tps[("P005", "post")]["flr_ml"]) == tiny.flr_voxels(7)
    assert patients["P005"]["sflr_followup_pct"] != ""
    with open(os.path.join(out, "batch.log")) as fh:
        log = fh.read()
    assert "P002/post: failed: cannot read" in log
    # No patient name anywhere, though one was written in P001's patient.json.
    _assert_no_name(out)


def test_from_baseline_date_rescues_missing_procedure_date(broken):
    study, out = broken
    r = run_batch(study, out + "_fb", BatchOptions(progress=False, figures=False,
                                                   from_baseline_date=True))
    p5 = next(p for p in r.results["patients"] if p["patient_id"] == "P005")
    assert p5["status"] == "ok"
    h = p5["followups"][0]["hypertrophy"]
    assert h["interval_start"] == "2024-01-01" and h["interval_days"] == 35
    assert any("baseline scan date" in w for w in h["warnings"])


def test_atomic_outputs_survive_a_kill_while_writing(tmp_path, monkeypatch, capsys):
    study = tiny.good_study(str(tmp_path / "study"))
    out = str(tmp_path / "out")
    run_batch(study, out, FAST)
    before = {n: open(os.path.join(out, n), "rb").read()
              for n in ("timepoints.csv", "patients.csv", "report.html")}
    # Change an input, then "kill" the run while the report is being written.
    tiny.write_timepoint(os.path.join(study, "P001", "post_pve"), scan_date="2024-02-05",
                         flr_width=9)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(flr_volumetry.batch, "render_report_html", killed)
    with pytest.raises(KeyboardInterrupt):
        run_batch(study, out, FAST)
    assert _no_temp_files(out) == []
    # Every output whole and of one run: the kill came before any was replaced (the tables
    # had been the new run's beside the old report).
    for name, content in before.items():
        with open(os.path.join(out, name), "rb") as fh:
            assert fh.read() == content, name
    rows = _rows(os.path.join(out, "timepoints.csv"))
    assert len(rows) == 7 and all(r["status"] == "ok" for r in rows)
    # The command line says what the tables and masks/ hold now, and how to join them.
    assert main(["batch", study, "-o", out, "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; the tables in" in err and "run again with --resume" in err
    with open(os.path.join(out, "batch.log"), encoding="utf-8") as fh:
        assert "masks/ may hold this run's finished timepoints" in fh.read()


def test_temp_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    study = tiny.good_study(str(tmp_path / "study"))
    out = tmp_path / "out"
    (out / "cache" / "P001").mkdir(parents=True)
    (out / ".tmp-abc-timepoints.csv").write_text("patient_id,timepo")
    (out / "cache" / "P001" / ".tmp-x.json").write_text("{")
    (out / "notes.txt").write_text("mine")
    (out / "own").mkdir()
    (out / "own" / ".tmp-keep").write_text("not the batch's")
    run_batch(study, str(out), FAST)
    assert _no_temp_files(str(out)) == [str(out / "own" / ".tmp-keep")]
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_skips_unchanged_and_recomputes_changed(tmp_path):
    study = tiny.good_study(str(tmp_path / "study"))
    out = str(tmp_path / "out")
    first = run_batch(study, out, FAST)
    again = run_batch(study, out, BatchOptions(progress=False, figures=False, resume=True))
    assert again.results["summary"]["timepoints_resumed"] == 7
    with open(first.timepoints_csv) as a, open(again.timepoints_csv) as b:
        assert a.read() == b.read()
    # A changed mask and a changed patient file: only those timepoints are measured again.
    tiny.write_timepoint(os.path.join(study, "P001", "post_pve"), scan_date="2024-02-05",
                         flr_width=9)
    with open(os.path.join(study, "P003", "patient.json")) as fh:
        facts = json.load(fh)
    facts["weight_kg"] = 65
    with open(os.path.join(study, "P003", "patient.json"), "w") as fh:
        json.dump(facts, fh)
    third = run_batch(study, out, BatchOptions(progress=False, figures=False, resume=True))
    recs = {(t["patient_id"], t["timepoint"]): t
            for p in third.results["patients"] for t in p["timepoints"]}
    recomputed = {k for k, t in recs.items() if not t["resumed"]}
    assert recomputed == {("P001", "post_pve"), ("P003", "pre"), ("P003", "stage2")}
    assert recs[("P001", "post_pve")]["measurement"]["flr_ml"] == tiny.flr_voxels(9)
    assert recs[("P003", "pre")]["measurement"]["weight_kg"] == 65
    # Without --resume everything is measured.
    fourth = run_batch(study, out, FAST)
    assert fourth.results["summary"]["timepoints_resumed"] == 0


def _tables(out):
    return [open(os.path.join(out, n)).read() for n in ("timepoints.csv", "patients.csv")]


def test_workers_are_as_quiet_about_old_dicom_syntax_as_the_main_process(tmp_path):
    # Workers, forked from the fork server, had printed pydicom's "Invalid value for VR UI"
    # lines (a UID with a leading zero) that the command line keeps for --debug.
    import subprocess
    import sys

    import pydicom
    import SimpleITK as sitk

    from flr_volumetry.io import write_dicom_series

    study = str(tmp_path / "study")
    tiny.good_study(study)
    for tp in ("baseline", "post_pve"):
        folder = os.path.join(study, "P001", tp)
        image = sitk.ReadImage(os.path.join(folder, "image.nii.gz"))
        os.remove(os.path.join(folder, "image.nii.gz"))
        for f in write_dicom_series(image, os.path.join(folder, "image")):
            ds = pydicom.dcmread(f)
            ds.SeriesInstanceUID = "1.2.840.113619.2.05." + ("1" if tp == "baseline" else "2")
            ds.save_as(f)
    run = subprocess.run([sys.executable, "-m", "flr_volumetry", "batch", study, "-o",
                          str(tmp_path / "out"), "--workers", "2", "--no-progress",
                          "--no-figures"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Invalid value" not in run.stderr


def test_two_workers_give_the_same_results_as_one(tmp_path, good):
    study, out1, _ = good
    out2 = str(tmp_path / "out2")
    r = run_batch(study, out2, BatchOptions(workers=2, progress=False, figures=False))
    assert r.ok
    assert r.results["options"]["workers"] == 2
    assert _tables(out2) == _tables(out1)


def test_a_dead_worker_fails_no_timepoint_it_did_not_kill(tmp_path, good, monkeypatch):
    # A worker killed for memory breaks its pool: every queued timepoint had failed with
    # "the worker process failed (BrokenProcessPool)". They are measured again one by one;
    # only one that kills its worker when alone fails.
    import concurrent.futures
    from concurrent.futures.process import BrokenProcessPool

    study, out1, _ = good
    pools = []

    class Pool:  # the first pool breaks; each later one runs its one timepoint
        def __init__(self, max_workers, **kwargs):
            pools.append(max_workers)
            self.broken = len(pools) == 1

        def submit(self, fn, task):
            fut = concurrent.futures.Future()
            if self.broken or len(pools) == 2:  # (the first timepoint retried dies again)
                fut.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            else:
                fut.set_result(fn(task))
            return fut

        def shutdown(self, wait=True):
            pass

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    r = run_batch(study, str(tmp_path / "out"), BatchOptions(workers=2, progress=False,
                                                            figures=False))
    failed = [t for p in r.results["patients"] for t in p["timepoints"] if t["status"] != "ok"]
    n = sum(len(p["timepoints"]) for p in r.results["patients"])
    assert pools[0] == 2 and pools[1:] == [1] * n  # then each timepoint alone
    assert len(failed) == 1 and "measuring it alone died" in failed[0]["error"]


def test_dask_local_cluster_gives_the_same_results(tmp_path, good):
    import distributed
    study, out1, _ = good
    out2 = str(tmp_path / "dask")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  host="127.0.0.1", protocol="tcp://",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        # Two threads draw figures at once: matplotlib is used without pyplot, per figure.
        r = run_batch(study, out2, BatchOptions(scheduler=cluster.scheduler_address,
                                                progress=False))
    assert r.ok
    assert _tables(out2) == _tables(out1)
    assert all(os.path.isfile(os.path.join(out2, t["overlay"]))
               for p in r.results["patients"] for t in p["timepoints"])


def test_unreachable_scheduler_is_a_usage_error(tmp_path, good):
    study, _, _ = good
    with pytest.raises(StudyLayoutError, match="Dask scheduler"):
        run_batch(study, str(tmp_path / "o"), BatchOptions(
            scheduler="tcp://127.0.0.1:1", scheduler_timeout_s=1.0, progress=False,
            figures=False))


def test_report_has_cohort_table_and_embedded_figures(good):
    _, out, _ = good
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert 'id="cohort"' in page
    assert page.count("data:image/png;base64,") == 3 + 7  # growth charts + overlays
    assert "src=\"http" not in page and "<link" not in page  # self-contained
    for pid in ("P001", "P002", "P003"):
        assert f'id="patient-{pid}"' in page
    assert "2 %/week" in page and "2.66 %/week" in page


def test_no_figures_gives_the_same_tables_and_a_report_without_images(tmp_path, good):
    study, out1, _ = good
    out2 = str(tmp_path / "nofig")
    assert main(["batch", study, "-o", out2, "--no-progress", "--no-figures"]) == 0
    assert _tables(out2) == _tables(out1)
    with open(os.path.join(out2, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert 'id="cohort"' in page and "data:image/png" not in page
    assert not any(f.endswith(".png") for _, _, files in os.walk(out2) for f in files)


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "absent"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    assert main(["batch", str(empty), "-o", str(tmp_path / "o")]) == 2
    assert "no patient found" in capsys.readouterr().err
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exc:
            main(["batch", str(empty), "-o", str(tmp_path / "o"), "--workers", bad])
        assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(empty)])  # no -o
    assert exc.value.code == 2
    with pytest.raises(StudyLayoutError):
        BatchOptions(workers=0)


def test_the_last_scan_before_the_procedure_is_the_baseline(tmp_path):
    # A diagnostic scan, a planning scan, the PVE on 2024-01-08, the post-PVE scan.
    tiny.write_patient(str(tmp_path), "P001", PVE,
                       {"diagnostic": dict(scan_date="2023-12-01", flr_width=3),
                        "planning": dict(scan_date="2024-01-01", flr_width=4),
                        "post": dict(scan_date="2024-02-05", flr_width=7)})
    r = run_batch(str(tmp_path), str(tmp_path / "out"), FAST)
    assert r.ok
    (p,) = r.results["patients"]
    assert p["baseline"] == "planning" and p["status"] == "ok"
    assert [f["timepoint"] for f in p["followups"]] == ["post"]
    assert p["summary"]["interval_days"] == 28
    assert any("2 scans precede the procedure" in w and "diagnostic measured, not compared"
               in w for w in p["warnings"])
    # The growth is that of planning -> post, as hypertrophy() gives it.
    tps = {t["timepoint"]: t["measurement"] for t in p["timepoints"]}
    h = hypertrophy(tps["planning"], tps["post"], procedure_date="2024-01-08")
    assert p["summary"]["kgr_pct_per_week"] == h.kgr_pct_per_week


def test_output_folder_that_would_mix_with_the_data_is_refused(tmp_path, capsys):
    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    before = sorted(str(p) for p in study.rglob("*"))
    for out in (study, study / "P001", study / "P001" / "pre", study / "P001" / "new"):
        assert main(["batch", str(study), "-o", str(out), "--no-progress"]) == 2
        assert "output folder" in capsys.readouterr().err
    assert main(["batch", str(study), "-o", "", "--no-progress"]) == 2
    assert "output folder name is empty" in capsys.readouterr().err
    assert sorted(str(p) for p in study.rglob("*")) == before  # nothing written
    # A folder of its own inside the study stays allowed, and can be run again.
    for _ in range(2):
        assert main(["batch", str(study), "-o", str(study / "results"), "--no-progress",
                     "--no-figures"]) == 0


def _segments_map(folder):
    """Couinaud labels 1-8 in column blocks over the liver box; returns voxels per label."""
    import numpy as np
    import SimpleITK as sitk

    seg = np.zeros(tiny.SHAPE, np.uint8)
    edges = [2, 4, 7, 9, 12, 14, 17, 19, 22]  # 8 blocks over liver columns 2..21
    for label in range(1, 9):
        seg[tiny.LIVER_BOX[0], tiny.LIVER_BOX[1], edges[label - 1]:edges[label]] = label
    img = sitk.GetImageFromArray(seg)
    img.SetSpacing(tiny.SPACING_MM)
    sitk.WriteImage(img, os.path.join(folder, "segments.nii.gz"))
    return {label: 8 * 12 * (edges[label] - edges[label - 1]) for label in range(1, 9)}


def test_flr_follows_the_patients_plan_at_every_timepoint(tmp_path):
    study = str(tmp_path / "study")
    one_scan = {"pre": dict(scan_date="2024-01-01", flr_width=4)}
    tiny.write_patient(study, "P001", {**PVE, "resection": "right_hepatectomy"}, two_scans())
    tiny.write_patient(study, "P002", {**PVE, "remnant_segments": [2, 3]}, one_scan)
    tiny.write_patient(study, "P003", PVE, one_scan)
    tiny.write_patient(study, "P004", {**PVE, "resection": "right_hepatectomy",
                                       "resect_caudate": True}, one_scan)
    tiny.write_patient(study, "P005", {**PVE, "plan": {"schema_version": "1.0",
                                                       "remnant_segments": [2, 3, 4]}},
                       one_scan)
    counts = {}
    for pid, tp in (("P001", "pre"), ("P001", "post"), ("P002", "pre"), ("P003", "pre"),
                    ("P004", "pre"), ("P005", "pre")):
        folder = os.path.join(study, pid, tp)
        os.remove(os.path.join(folder, "flr.nii.gz"))
        counts = _segments_map(folder)
    r = run_batch(study, str(tmp_path / "out"), FAST)
    recs = {(t["patient_id"], t["timepoint"]): t
            for p in r.results["patients"] for t in p["timepoints"]}
    for tp in ("pre", "post"):
        t = recs[("P001", tp)]
        assert t["status"] == "ok", t["error"]
        assert t["measurement"]["flr_ml"] == sum(counts[s] for s in (1, 2, 3, 4))
        assert t["flr_method"] == "resection right_hepatectomy"
        assert os.path.isfile(os.path.join(r.out_dir, t["masks"]["flr"]))
    assert recs[("P002", "pre")]["measurement"]["flr_ml"] == counts[2] + counts[3]
    assert recs[("P002", "pre")]["flr_method"] == "segments 2,3"
    assert recs[("P004", "pre")]["measurement"]["flr_ml"] == sum(counts[s] for s in (2, 3, 4))
    assert recs[("P004", "pre")]["flr_method"] == "resection right_hepatectomy, caudate resected"
    assert recs[("P005", "pre")]["measurement"]["flr_ml"] == sum(counts[s] for s in (2, 3, 4))
    assert recs[("P005", "pre")]["flr_method"] == "plan in patient.json"
    # No mask and no plan: the timepoint says what is missing.
    assert recs[("P003", "pre")]["status"] == "failed"
    assert recs[("P003", "pre")]["error"].startswith("no FLR:")


def _moved_follow_up_study(study, shift_voxels):
    """P001: a textured baseline and the same scan moved ``shift_voxels`` along x."""
    from scipy import ndimage
    import numpy as np
    import SimpleITK as sitk

    tiny.write_patient(study, "P001", PVE, {"baseline": dict(scan_date="2024-01-01",
                                                            flr_width=4),
                                            "post": dict(scan_date="2024-02-05", flr_width=4)})
    # Texture gives the registration something to lock on to (a flat box does not).
    texture = ndimage.gaussian_filter(np.random.default_rng(0).normal(0, 1, tiny.SHAPE), 1.5)
    for tp, shift in (("baseline", 0), ("post", shift_voxels)):
        folder = os.path.join(study, "P001", tp)
        os.remove(os.path.join(folder, "flr.nii.gz"))
        for name in ("image", "liver"):
            path = os.path.join(folder, f"{name}.nii.gz")
            img = sitk.ReadImage(path)
            a = sitk.GetArrayFromImage(img)
            if name == "image":
                a = a + (texture / texture.std() * 40).astype(a.dtype)
            out = sitk.GetImageFromArray(np.roll(a, shift, axis=2))
            out.CopyInformation(img)
            sitk.WriteImage(out, path)


def test_a_plan_placed_on_the_baseline_is_carried_to_the_follow_up(tmp_path):
    study = str(tmp_path / "study")
    _moved_follow_up_study(study, shift_voxels=2)
    # A plane at x = 55 mm keeps the liver's first 4 columns (x = 20..50 mm) at baseline.
    x = 55.0
    plan = {"schema_version": "1.0", "surface_points": [[x, 0, 0], [x, 100, 0], [x, 0, 100]],
            "keep_point": [30.0, 100.0, 50.0]}
    plan_path = os.path.join(study, "P001", "baseline", "plan.json")
    with open(plan_path, "w") as fh:
        json.dump(plan, fh)
    out = str(tmp_path / "out")
    r = run_batch(study, out, FAST)
    recs = {t["timepoint"]: t for t in r.results["patients"][0]["timepoints"]}
    assert recs["baseline"]["measurement"]["flr_ml"] == tiny.flr_voxels(4)
    post = recs["post"]
    assert post["status"] == "ok", post["error"]
    assert post["flr_method"] == "plan plan.json (baseline), carried from baseline by registration"
    # The same 4 columns on the moved liver; the plane used as is would keep only 2.
    assert post["measurement"]["flr_ml"] == tiny.flr_voxels(4)
    assert post["measurement"]["methods"]["registration"]["dice"] > 0.95
    # The follow-up depends on the baseline's plan: changing it re-measures the follow-up.
    plan["surface_points"] = [[x + 10, *p[1:]] for p in plan["surface_points"]]
    with open(plan_path, "w") as fh:
        json.dump(plan, fh)
    r = run_batch(study, out, BatchOptions(progress=False, figures=False, resume=True))
    recs = {t["timepoint"]: t for t in r.results["patients"][0]["timepoints"]}
    assert not recs["post"]["resumed"]
    assert recs["post"]["measurement"]["flr_ml"] == tiny.flr_voxels(5)


def test_a_plan_in_patient_json_is_applied_on_the_scan_its_placed_on_names(tmp_path):
    # Placed on the follow-up, it had been taken as the earliest scan's: used as it is on
    # the baseline, then moved a second time onto the follow-up (FLR +102 % and +52 % on
    # a real-size phantom, status ok).
    import SimpleITK as sitk

    from flr_volumetry.remnant._plan import placed_on_scan

    study = str(tmp_path / "study")
    _moved_follow_up_study(study, shift_voxels=2)
    post_image = sitk.ReadImage(os.path.join(study, "P001", "post", "image.nii.gz"))
    x = 75.0  # keeps the moved liver's first 4 columns (x = 40..70 mm) on the follow-up
    plan = {"schema_version": "1.1", "surface_points": [[x, 0, 0], [x, 100, 0], [x, 0, 100]],
            "keep_point": [50.0, 100.0, 50.0], "placed_on": placed_on_scan(post_image)}
    with open(os.path.join(study, "P001", "patient.json"), "w") as fh:
        json.dump({**PVE, "plan": plan}, fh)
    r = run_batch(study, str(tmp_path / "out"), FAST)
    recs = {t["timepoint"]: t for t in r.results["patients"][0]["timepoints"]}
    assert recs["post"]["flr_method"] == "plan in patient.json"
    assert recs["baseline"]["flr_method"] == ("plan in patient.json, carried from post by "
                                              "registration")
    for tp in ("baseline", "post"):
        assert recs[tp]["measurement"]["flr_ml"] == tiny.flr_voxels(4), tp
        assert not [w for w in recs[tp]["measurement"]["warnings"] if "another scan" in w]


def test_a_segment_plan_in_the_baseline_folder_applies_to_every_timepoint(tmp_path):
    study = str(tmp_path / "study")
    tiny.write_patient(study, "P001", PVE, two_scans())
    counts = {}
    for tp in ("pre", "post"):
        folder = os.path.join(study, "P001", tp)
        os.remove(os.path.join(folder, "flr.nii.gz"))
        counts = _segments_map(folder)
    with open(os.path.join(study, "P001", "pre", "plan.json"), "w") as fh:
        json.dump({"schema_version": "1.0", "remnant_segments": [2, 3]}, fh)
    r = run_batch(study, str(tmp_path / "out"), FAST)
    for t in r.results["patients"][0]["timepoints"]:
        assert t["status"] == "ok", t["error"]
        assert t["measurement"]["flr_ml"] == counts[2] + counts[3]
        # Segments need no registration: each scan's own map is used.
        assert t["flr_method"] == "plan plan.json (pre)"
        assert "registration" not in t["measurement"]["methods"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    from flr_volumetry import phantoms

    study = phantoms.sample_study()
    out = str(tmp_path_factory.mktemp("sample_out"))
    return study, run_batch(study, out, BatchOptions(progress=False))


def test_sample_study_matches_its_truth(sample_run):
    study, r = sample_run
    assert r.ok, r.summary_line()
    patients = _by(_rows(r.patients_csv), "patient_id")
    tps = _by(_rows(r.timepoints_csv), "patient_id", "timepoint")
    assert sorted(patients) == ["P001", "P002", "P003"]
    for pid, row in patients.items():
        with open(os.path.join(study, pid, "truth.json")) as fh:
            truth = json.load(fh)
        for key, expected in truth["expected"].items():
            if isinstance(expected, bool):
                assert row[key] == str(expected), (pid, key)
            else:
                assert float(row[key]) == pytest.approx(expected, rel=1e-9), (pid, key)
        for t in truth["timepoints"]:
            got = tps[(pid, t["timepoint"])]
            assert got["scan_date"] == t["scan_date"]
            for key in ("total_liver_ml", "tumor_ml", "flr_ml", "sflr_pct"):
                assert float(got[key]) == pytest.approx(t[key], rel=1e-9), (pid, key)
    # ALPPS, adequate and inadequate PVE: both verdicts appear.
    assert {patients[p]["kgr_meets_2pct"] for p in patients} == {"True", "False"}
    with open(r.report_html, encoding="utf-8") as fh:
        assert fh.read().count("data:image/png;base64,") == 3 + 6


def test_a_failed_timepoint_says_how_its_scan_was_read(tmp_path):
    # A longer series beside the masks' one is read by default: the liver mask is then on
    # another grid, and the error had blamed the mask alone, silent about the series read.
    import SimpleITK as sitk
    from flr_volumetry.io import write_dicom_series

    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"procedure": "PVE"},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    folder = study / "P001" / "pre"
    ct = sitk.ReadImage(str(folder / "image.nii.gz"))
    os.remove(folder / "image.nii.gz")
    write_dicom_series(ct, folder / "image", series_description="portal")
    other = sitk.Image([24, 20, 30], sitk.sitkInt16) - 1000
    other.SetSpacing(tiny.SPACING_MM)
    write_dicom_series(other, folder / "image", series_description="delayed")
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    (tp,) = r.results["patients"][0]["timepoints"]
    assert tp["status"] == "failed"
    assert "another grid" in tp["error"]
    assert "Reading the scan:" in tp["error"] and "holds 2 series" in tp["error"]
    assert "'delayed', 30 slices" in tp["error"]


def test_dicom_timepoints_give_date_height_weight_and_no_name(tmp_path):
    import numpy as np
    import pydicom
    import SimpleITK as sitk
    from flr_volumetry.io import write_dicom_series

    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"procedure": "PVE",
                                            "procedure_date": "2024-01-08"},
                       {"pre": dict(scan_date="2023-12-31", flr_width=4),
                        "post": dict(scan_date=None, flr_width=7, write_date=False)})
    uid = "1.2.826.0.1.3680043.8.498.4242"
    for tp, date in (("pre", "2024-01-01"), ("post", "2024-02-05")):
        folder = study / "P001" / tp
        ct = sitk.ReadImage(str(folder / "image.nii.gz"))
        os.remove(folder / "image.nii.gz")
        files = write_dicom_series(ct, folder / "image", study_date=date, patient_id="P001",
                                   patient_height_cm=170, patient_weight_kg=70,
                                   series_instance_uid=uid if tp == "post" else None)
        if tp == "post":
            # A longer series in the same folder, which is read by default: timepoint.json
            # names the one the masks belong to.
            other = sitk.Image([24, 20, 30], sitk.sitkInt16) - 1000
            other.SetSpacing(tiny.SPACING_MM)
            files += write_dicom_series(other, folder / "image", study_date=date,
                                        patient_id="P001")
            with open(folder / "timepoint.json", "w") as fh:
                json.dump({"series_uid": uid}, fh)
        for f in files:
            ds = pydicom.dcmread(f)
            ds.PatientName = "Doe^Jane"
            ds.save_as(f)
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    assert r.ok, r.summary_line()
    (p,) = r.results["patients"]
    pre, post = p["timepoints"]
    assert (pre["scan_date"], pre["date_source"]) == ("2024-01-01", "dicom")
    assert any("differs from timepoint.json" in w for w in pre["measurement"]["warnings"])
    assert (post["scan_date"], post["date_source"]) == ("2024-02-05", "dicom")
    assert post["measurement"]["height_cm"] == 170 and post["measurement"]["weight_kg"] == 70
    assert post["measurement"]["flr_ml"] == tiny.flr_voxels(7)
    assert p["summary"]["interval_days"] == 28
    liver = sitk.ReadImage(os.path.join(r.out_dir, post["masks"]["liver"]))
    assert int(np.count_nonzero(sitk.GetArrayFromImage(liver))) == tiny.LIVER_VOXELS
    _assert_no_name(r.out_dir)


def test_a_patient_folder_mixing_two_patients_scans_is_refused(tmp_path):
    # A follow-up exported into the wrong patient's folder: the growth between two
    # patients' livers had been computed and judged as if it were one patient's.
    import SimpleITK as sitk
    from flr_volumetry.io import write_dicom_series

    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"procedure": "PVE",
                                            "procedure_date": "2024-01-08"},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4),
                        "post": dict(scan_date="2024-02-05", flr_width=7)})
    for tp, dicom_id in (("pre", "MRN-123456"), ("post", "MRN-654321")):
        folder = study / "P001" / tp
        ct = sitk.ReadImage(str(folder / "image.nii.gz"))
        os.remove(folder / "image.nii.gz")
        write_dicom_series(ct, folder / "image", study_date=None, patient_id=dicom_id)
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    assert not r.ok
    (p,) = r.results["patients"]
    assert p["status"] == "failed"
    assert "different patients" in p["error"] and "pre" in p["error"] and "post" in p["error"]
    assert all(t["status"] == "failed" for t in p["timepoints"])
    assert not p["followups"]
    # The DICOM PatientIDs themselves appear nowhere in the outputs.
    for root, _, files in os.walk(r.out_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert b"MRN-" not in fh.read()


def test_demo_prints_the_report_path(tmp_path, capsys, sample_run):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == str(out / "report.html") and os.path.isfile(last)


def test_missing_liver_mask_is_segmented_and_saved_for_review(tmp_path, sample_run):
    import shutil
    import numpy as np
    import SimpleITK as sitk

    sample, _ = sample_run
    study = tmp_path / "study"
    shutil.copytree(os.path.join(sample, "P001"), study / "P001",
                    ignore=shutil.ignore_patterns("truth*"))
    tp_name = sorted(d.name for d in (study / "P001").iterdir() if d.is_dir())[-1]
    os.remove(study / "P001" / tp_name / "liver.nii.gz")
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    assert r.ok, r.summary_line()
    rec = next(t for t in r.results["patients"][0]["timepoints"] if t["timepoint"] == tp_name)
    assert rec["liver_method"] == "automatic segmentation"
    seg = rec["measurement"]["methods"]["segmentation"]
    assert seg["backend"] == "classic" and "automatic" in seg["algorithm"]
    assert rec["masks"]["liver"] == f"masks/P001/{tp_name}/liver.nii.gz"
    liver = sitk.ReadImage(os.path.join(r.out_dir, rec["masks"]["liver"]))
    image = sitk.ReadImage(str(study / "P001" / tp_name / "image.nii.gz"))
    assert liver.GetSize() == image.GetSize()
    n = int(np.count_nonzero(sitk.GetArrayFromImage(liver)))
    # Total liver = this mask united with the tumour mask.
    assert 0 < n * flr_volumetry.voxel_volume_ml(liver) <= \
        rec["measurement"]["total_liver_ml"] + 1e-9


def test_a_procedure_date_after_every_scan_fails_the_patient_in_words(tmp_path):
    # The resection date typed instead of the PVE date: no scan follows it.
    tiny.write_patient(str(tmp_path), "P001", dict(PVE, procedure_date="2025-10-20"),
                       two_scans())
    r = run_batch(str(tmp_path), str(tmp_path / "out"), FAST)
    (p,) = r.results["patients"]
    assert not r.ok and p["status"] == "failed"
    assert "on or before the procedure date" in p["error"]


def test_output_folders_of_their_own_inside_the_study_are_allowed(tmp_path):
    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    for out in (study / "_runs" / "2024-11-27", study / "results" / "v2"):
        assert run_batch(str(study), str(out), FAST).ok


def test_patients_csv_follow_up_sflr_is_the_one_dh_used():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    # The follow-up's weight (from its DICOM header) gave another TELV: DH uses the
    # baseline TELV for both scans, and the row shows that follow-up sFLR.
    def record(tp, date, flr_ml, telv_ml):
        m = {"flr_ml": flr_ml, "telv_ml": telv_ml, "sflr_pct": 100 * flr_ml / telv_ml,
             "measured_flr_pct": 20.0, "scan_date": date}
        return {"timepoint": tp, "scan_date": date, "status": "ok", "error": None,
                "measurement": m}
    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-08")
    entry = analyse_patient(patient, [record("pre", "2024-01-01", 300.0, 1600.0),
                                      record("post", "2024-02-05", 400.0, 1400.0)])
    s = entry["summary"]
    assert s["sflr_followup_pct"] == pytest.approx(25.0)  # 400 / 1600, not 400 / 1400
    assert s["dh_pct_points"] == pytest.approx(s["sflr_followup_pct"] - s["sflr_baseline_pct"])
    # The recomputation is said in the row, not only inside results.json.
    assert "estimate the total liver volume differently" in s["warnings"]


def test_a_borrowed_baseline_sflr_is_the_one_shown_and_charted():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.report import _sflr_by_timepoint, _timepoint_table
    from flr_volumetry.study import StudyPatient

    # No height or weight at baseline: DH used the baseline sFLR from the follow-up's TELV,
    # but the row had shown it empty beside DH 12.9, and the chart had started the
    # 2 %/week line at the follow-up's point.
    pre = {"flr_ml": 300.0, "telv_ml": None, "sflr_pct": None, "measured_flr_pct": 20.0,
           "scan_date": "2024-01-01"}
    post = {"flr_ml": 400.0, "telv_ml": 1400.0, "sflr_pct": 100 * 400.0 / 1400.0,
            "measured_flr_pct": 25.0, "scan_date": "2024-02-05"}
    records = [{"timepoint": tp, "scan_date": m["scan_date"], "status": "ok", "error": None,
                "measurement": m} for tp, m in (("pre", pre), ("post", post))]
    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-08")
    entry = analyse_patient(patient, records)
    s = entry["summary"]
    assert s["sflr_baseline_pct"] == pytest.approx(100 * 300.0 / 1400.0)
    assert s["dh_pct_points"] == pytest.approx(s["sflr_followup_pct"] - s["sflr_baseline_pct"])
    assert _sflr_by_timepoint(entry)["pre"] == pytest.approx(s["sflr_baseline_pct"])
    table = _timepoint_table(entry, 20.0)
    assert "n/a</span> (21.4 in the growth analysis, with the other scan's TELV)" in table
    assert table.count("in the growth analysis") == 1  # the follow-up's own sFLR was used


def test_the_summary_row_compares_the_last_scan_before_the_resection():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    # Baseline, 3 and 5 weeks after PVE, then a CT after the hepatectomy (FLR = liver):
    # the row had judged growth on the last scan (KGR "fail" beside GR "pass").
    def record(tp, date, flr_ml, flv_ml):
        m = {"flr_ml": flr_ml, "telv_ml": 1600.0, "sflr_pct": 100 * flr_ml / 1600.0,
             "functional_liver_ml": flv_ml, "measured_flr_pct": 100 * flr_ml / flv_ml,
             "scan_date": date}
        return {"timepoint": tp, "scan_date": date, "status": "ok", "error": None,
                "measurement": m}
    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-08")
    entry = analyse_patient(patient, [record("pre", "2024-01-01", 400.0, 1800.0),
                                      record("w3", "2024-01-29", 500.0, 1850.0),
                                      record("w5", "2024-02-12", 560.0, 1900.0),
                                      record("resected", "2024-03-11", 700.0, 700.0)])
    s = entry["summary"]
    assert s["followup_timepoint"] == "w5" and s["status"] == "ok"
    assert s["sflr_followup_pct"] == pytest.approx(35.0)
    assert "resected" in s["warnings"] and "after the resection" in s["warnings"]
    assert [f["timepoint"] for f in entry["followups"]] == ["w3", "w5", "resected"]
    # The only follow-up after the resection: no row figures at all (KGR 2.08 and GR 8.64
    # had both read "pass").
    only = analyse_patient(patient, [record("pre", "2024-01-01", 400.0, 1800.0),
                                     record("resected", "2024-03-11", 700.0, 700.0)])
    s = only["summary"]
    assert s["followup_timepoint"] is None and s["kgr_pct_per_week"] is None
    assert s["gr_pct_per_week"] is None and "resected" in s["warnings"]


def test_a_remnant_defined_two_ways_at_the_compared_scans_is_said():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    # A plan at baseline (segments 1-4), a hand-drawn flr.nii.gz at follow-up (2-4): GR
    # 2.33 instead of 2.85 had flipped its verdict, unsaid.
    records = [dict(_growth_record("pre", "2024-01-01", 400.0),
                    flr_method="plan plan.json (pre)"),
               dict(_growth_record("post", "2024-02-05", 500.0), flr_method="file flr.nii.gz")]
    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-08")
    s = analyse_patient(patient, records)["summary"]
    assert "the FLR of pre comes from plan plan.json (pre) and that of post from file " \
           "flr.nii.gz" in s["warnings"]
    for r in records:
        r["flr_method"] = "file flr.nii.gz"
    s = analyse_patient(patient, records)["summary"]
    assert "comes from" not in (s["warnings"] or "")


def _growth_record(tp, date, flr_ml, status="ok"):
    m = {"flr_ml": flr_ml, "telv_ml": 1600.0, "sflr_pct": 100 * flr_ml / 1600.0,
         "measured_flr_pct": 20.0, "scan_date": date}
    return {"timepoint": tp, "scan_date": date, "status": status,
            "error": None if status == "ok" else "no scan date: add it",
            "measurement": m if status == "ok" else None}


def _growth_columns_empty(summary):
    return all(summary[k] is None for k in ("baseline_timepoint", "dh_pct_points",
                                            "kgr_pct_per_week", "kgr_meets_2pct",
                                            "sflr_baseline_pct", "sflr_followup_pct"))


def test_undated_timepoint_leaves_growth_uncomputed():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    # The baseline's date was forgotten: post1 had been taken for the baseline, and a DH of
    # 0 over the 56 days since PVE published as "KGR 0.0, below 2 %/week".
    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-16")
    entry = analyse_patient(patient, [_growth_record("baseline", None, 300.0, "failed"),
                                      _growth_record("post1", "2024-02-13", 480.0),
                                      _growth_record("post2", "2024-03-12", 480.0)])
    assert entry["status"] == "failed" and _growth_columns_empty(entry["summary"])
    assert "baseline has no scan date" in entry["error"]
    assert not any(r["is_baseline"] for r in entry["timepoints"]) and not entry["followups"]


def test_no_scan_before_the_procedure_is_no_baseline():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           procedure_date="2024-01-16")
    entry = analyse_patient(patient, [_growth_record("post1", "2024-02-13", 420.0),
                                      _growth_record("post2", "2024-03-12", 480.0)])
    assert entry["status"] == "failed" and _growth_columns_empty(entry["summary"])
    assert "no scan precedes the procedure (2024-01-16)" in entry["error"]
    # One scan on the procedure day is a baseline, as before.
    entry = analyse_patient(patient, [_growth_record("pre", "2024-01-16", 300.0),
                                      _growth_record("post", "2024-02-13", 420.0)])
    assert entry["status"] == "ok" and entry["summary"]["kgr_pct_per_week"] == pytest.approx(
        (420.0 - 300.0) / 16.0 / 4.0)


def test_a_bad_patient_fact_is_not_blamed_on_the_baseline_scan():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.study import StudyPatient

    patient = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                           error="procedure date '2024-13-01' is not a date")
    records = [dict(_growth_record("pre", "2024-01-01", 300.0), status="failed",
                    error="procedure date '2024-13-01' is not a date"),
               dict(_growth_record("post", "2024-02-13", 420.0), status="failed",
                    error="procedure date '2024-13-01' is not a date")]
    entry = analyse_patient(patient, records)
    assert "failed: no growth" not in entry["error"]
    assert "is not a date" in entry["error"]


def test_a_bad_plan_fails_its_patient_only_and_a_remnant_defined_twice_is_refused(tmp_path):
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    for pid in ("P001", "P002", "P003"):
        tiny.write_patient(study, pid, PVE, two_scans())
    for pid in ("P002", "P003"):
        for tp in ("pre", "post"):
            os.remove(os.path.join(study, pid, tp, "flr.nii.gz"))
    # P002: a landmark that is no point (a TypeError had stopped the whole batch).
    bad_plan = {"schema_version": "1.0", "resection": "right_hepatectomy",
                "landmarks": {"ivc": 5}}
    with open(os.path.join(study, "P002", "patient.json"), "w") as fh:
        json.dump({**PVE, "plan": bad_plan}, fh)
    # P003: a plan file beside a resection in patient.json (the plan file had won silently).
    with open(os.path.join(study, "P003", "patient.json"), "w") as fh:
        json.dump({**PVE, "resection": "right_hepatectomy"}, fh)
    with open(os.path.join(study, "P003", "pre", "plan.json"), "w") as fh:
        json.dump({"schema_version": "1.0", "remnant_segments": [2, 3]}, fh)
    assert main(["batch", study, "-o", out, "--no-progress", "--no-figures"]) == 1
    tps = _by(_rows(os.path.join(out, "timepoints.csv")), "patient_id", "timepoint")
    assert tps[("P001", "post")]["status"] == "ok"
    assert "the landmark 'ivc' is 5, not a point" in tps[("P002", "pre")]["error"]
    assert tps[("P003", "post")]["error"] == (
        "the remnant is defined twice: by plan.json in pre and by resection in patient.json; "
        "keep one.")


def test_patient_plan_with_resect_caudate_is_refused(tmp_path):
    from flr_volumetry.study import discover_study

    study = str(tmp_path / "study")
    tiny.write_patient(study, "P001", {**PVE, "plan": "plan.json", "resect_caudate": True},
                       two_scans())
    patient = discover_study(study).patients[0]
    assert "resect_caudate in" in patient.error and "does not apply to a plan" in patient.error


def _shift_origin(path, voxels):
    import SimpleITK as sitk

    mask = sitk.ReadImage(path)
    mask.SetOrigin(tuple(o + voxels * s for o, s in zip(mask.GetOrigin(), mask.GetSpacing())))
    sitk.WriteImage(mask, path)


def test_a_given_mask_on_another_grid_fails_its_timepoint_unless_resampling_is_asked(tmp_path):
    # Issue 6 names a mask on another grid as a broken input. It was resampled and measured
    # 'ok': a mask whose spacing alone was wrong (2, 2, 3 mm) gave a 4342 mL liver (2031).
    import SimpleITK as sitk

    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    tiny.write_patient(study, "P002", PVE, two_scans())
    path = os.path.join(study, "P001", "pre", "liver.nii.gz")
    _shift_origin(path, 0.1)
    assert main(["batch", study, "-o", out, "--no-progress", "--no-figures"]) == 1
    rows = {(r["patient_id"], r["timepoint"]): r for r in _rows(os.path.join(out, "timepoints.csv"))}
    failed = rows[("P001", "pre")]
    assert failed["status"] == "failed"
    assert "liver.nii.gz" in failed["error"] and "another grid" in failed["error"]
    assert "--resample-masks" in failed["error"]
    assert rows[("P002", "pre")]["status"] == "ok"  # the others go on

    # Asked for, the resampling is done and said; what was measured is saved for review.
    out2 = str(tmp_path / "out2")
    assert main(["batch", study, "-o", out2, "--no-progress", "--no-figures",
                 "--resample-masks"]) == 0
    with open(os.path.join(out2, "results.json")) as fh:
        tps = {tp["timepoint"]: tp for tp in json.load(fh)["patients"][0]["timepoints"]}
    assert any("resampled" in w for w in tps["pre"]["measurement"]["warnings"])
    assert tps["pre"]["masks_resampled"] == ["liver"] and tps["post"]["masks_resampled"] == []
    assert tps["pre"]["masks"]["liver"] == "masks/P001/pre/liver.nii.gz"
    saved = sitk.ReadImage(os.path.join(out2, "masks", "P001", "pre", "liver.nii.gz"))
    scan = sitk.ReadImage(os.path.join(study, "P001", "pre", "image.nii.gz"))
    assert saved.GetOrigin() == scan.GetOrigin()
    # A mask on the scan's grid is referenced, not copied.
    assert tps["post"]["masks"]["liver"].endswith(os.path.join("P001", "post", "liver.nii.gz"))
    assert not os.path.exists(os.path.join(out2, "masks", "P001", "post", "liver.nii.gz"))


def test_a_mask_holding_the_scans_voxels_with_an_axis_flipped_is_measured(tmp_path):
    # dcm2niix stores a DICOM series with its y axis flipped: another origin and direction,
    # the same voxels. Refused as "on another grid", the real 3-slice series' mask failed.
    import SimpleITK as sitk

    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    path = os.path.join(study, "P001", "pre", "liver.nii.gz")
    before = sitk.ReadImage(path)
    sitk.WriteImage(sitk.Flip(before, [False, True, False]), path)
    assert sitk.ReadImage(path).GetDirection() != before.GetDirection()
    assert main(["batch", study, "-o", out, "--no-progress", "--no-figures"]) == 0
    rows = {r["timepoint"]: r for r in _rows(os.path.join(out, "timepoints.csv"))}
    assert float(rows["pre"]["total_liver_ml"]) == pytest.approx(
        np.count_nonzero(sitk.GetArrayFromImage(before)) * np.prod(before.GetSpacing()) / 1000)


def test_resume_does_not_reuse_a_result_made_with_resampling_once_it_is_not_asked(tmp_path):
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    _shift_origin(os.path.join(study, "P001", "pre", "liver.nii.gz"), 0.1)
    args = ["batch", study, "-o", out, "--no-progress", "--no-figures"]
    assert main(args + ["--resample-masks"]) == 0
    assert main(args + ["--resume"]) == 1
    rows = {r["timepoint"]: r for r in _rows(os.path.join(out, "timepoints.csv"))}
    assert rows["pre"]["status"] == "failed" and rows["post"]["status"] == "ok"
    # Asked for as the error advises, the resampling re-measures that timepoint alone (the
    # option had been hashed into every timepoint: the whole cache went stale).
    r = run_batch(study, out, BatchOptions(progress=False, figures=False, resume=True,
                                           resample_masks=True))
    assert r.results["summary"]["timepoints_resumed"] == 1
    assert {tp["timepoint"]: tp["status"] for tp in r.results["patients"][0]["timepoints"]} \
        == {"pre": "ok", "post": "ok"}


def test_resume_on_a_copied_study_names_the_copy_not_the_original(tmp_path):
    import shutil

    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    assert main(["batch", study, "-o", out, "--no-progress", "--no-figures"]) == 0
    copy, out_copy = str(tmp_path / "copy"), str(tmp_path / "out_copy")
    shutil.copytree(study, copy)
    shutil.copytree(out, out_copy)
    assert main(["batch", copy, "-o", out_copy, "--no-progress", "--no-figures",
                 "--resume"]) == 0
    with open(os.path.join(out_copy, "results.json")) as fh:
        text = fh.read()
    # The cached records had named the original study's masks and scans.
    assert study + os.sep not in text and copy + os.sep in text


def test_a_figure_that_cannot_be_drawn_never_fails_a_measured_timepoint(tmp_path, monkeypatch):
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    # '$...$' is matplotlib math: an ID like this had failed every timepoint after measuring.
    tiny.write_patient(study, "P$1_$", PVE, two_scans())
    assert main(["batch", study, "-o", out, "--no-progress"]) == 0
    tps = _rows(os.path.join(out, "timepoints.csv"))
    assert [t["status"] for t in tps] == ["ok", "ok"]
    # A figure that fails for another reason is a warning, and the volumes stand.
    import flr_volumetry.batch as batch_module

    def broken(*args, **kwargs):
        raise ValueError("no\nfigure\ttoday")

    monkeypatch.setattr(batch_module, "overlay_png", broken)
    out2 = str(tmp_path / "out2")
    assert main(["batch", study, "-o", out2, "--no-progress"]) == 0
    with open(os.path.join(out2, "results.json")) as fh:
        rec = json.load(fh)["patients"][0]["timepoints"][0]
    assert rec["status"] == "ok" and rec["measurement"]["flr_ml"] > 0
    assert any("overlay figure could not be drawn (ValueError: no figure today)" in w
               for w in rec["measurement"]["warnings"])


def test_an_inline_plans_unknown_keys_never_reach_the_outputs(tmp_path):
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    plan = {"schema_version": "1.1", "resection": "right_hepatectomy", "patient_name": "Roe^Jane"}
    tiny.write_patient(study, "P001", {**PVE, "plan": plan}, two_scans())
    main(["batch", study, "-o", out, "--no-progress", "--no-figures"])
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                assert "Roe" not in fh.read(), name


def test_followup_verdict_uses_the_sflr_its_row_and_growth_show(tmp_path):
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.report import render_report_html
    from flr_volumetry.study import discover_study

    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    assert main(["batch", study, "-o", out, "--no-progress", "--no-figures"]) == 0
    with open(os.path.join(out, "results.json")) as fh:
        records = json.load(fh)["patients"][0]["timepoints"]
    pre, post = (r["measurement"] for r in records)
    # Another TELV at baseline (a header weight): the follow-up sFLR is recomputed with it,
    # to 15 % (inadequate), while the follow-up's own sFLR is adequate.
    pre["telv_ml"] = post["flr_ml"] / 0.15
    pre["sflr_pct"] = 100.0 * pre["flr_ml"] / pre["telv_ml"]
    assert post["sflr_adequate"]
    patient = discover_study(study).patients[0]
    entry = analyse_patient(patient, records)
    s = entry["summary"]
    assert s["sflr_followup_pct"] == pytest.approx(15.0)
    assert s["sflr_adequate"] is False  # it had been the follow-up's own verdict: True
    with open(os.path.join(out, "results.json")) as fh:
        results = json.load(fh)
    results["patients"] = [entry]
    page = render_report_html(results, out, figures=False)
    assert ">inadequate<" in page and ">adequate<" not in page


def test_report_numbers_never_seem_to_cross_their_cut_off():
    from flr_volumetry.report import _num_vs

    assert _num_vs(29.97, 30.0) == "29.97"           # not "30.0" beside "inadequate"
    assert _num_vs(30.0, 30.0) == "30.0"
    assert _num_vs(1.996, 2.0, 2) == "1.996"
    assert _num_vs(2.6604, 2.66, 2, strictly=True) == "2.6604"
    assert _num_vs(25.04, 30.0) == "25.0"


def test_resect_caudate_in_patient_json_beside_a_plan_file_is_refused(tmp_path):
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", {**PVE, "resect_caudate": True}, two_scans())
    for tp in ("pre", "post"):
        os.remove(os.path.join(study, "P001", tp, "flr.nii.gz"))
    with open(os.path.join(study, "P001", "pre", "plan.json"), "w") as fh:
        json.dump({"schema_version": "1.1", "remnant_segments": [1, 2, 3, 4]}, fh)
    main(["batch", study, "-o", out, "--no-progress", "--no-figures"])
    tps = _by(_rows(os.path.join(out, "timepoints.csv")), "patient_id", "timepoint")
    # The plan had kept segment 1, the flag dropped without a word.
    assert tps[("P001", "pre")]["error"] == (
        "the remnant is defined twice: by plan.json in pre and by resect_caudate in "
        "patient.json; keep one.")


def test_a_dicom_timepoint_that_cannot_be_read_keeps_its_header_date(tmp_path):
    import SimpleITK as sitk
    from flr_volumetry.io import write_dicom_series

    # A follow-up missing a slice (its StudyDate in every header, no timepoint.json) had been
    # called undated, and the growth between the two good scans dropped with it.
    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", PVE, {
        **two_scans(), "late": dict(scan_date=None, flr_width=8, write_date=False)})
    folder = study / "P001" / "late"
    ct = sitk.ReadImage(str(folder / "image.nii.gz"))
    os.remove(folder / "image.nii.gz")
    files = write_dicom_series(ct, folder / "image", study_date="2024-03-01")
    os.remove(sorted(files)[len(files) // 2])
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    (p,) = r.results["patients"]
    late = next(t for t in p["timepoints"] if t["timepoint"] == "late")
    assert late["status"] == "failed" and "missing" in late["error"]
    assert (late["scan_date"], late["date_source"]) == ("2024-03-01", "dicom")
    assert "no scan date" not in p["error"]
    assert p["summary"]["kgr_pct_per_week"] is not None


def test_resume_hash_covers_resect_caudate(tmp_path):
    # resect_caudate added to patient.json beside a plan.json: a fresh run refuses the
    # patient, --resume had reused its cached results as ok.
    from dataclasses import replace

    from flr_volumetry.batch import _hash_inputs, _tasks
    from flr_volumetry.study import discover_study

    study = tiny.good_study(str(tmp_path / "study"))
    task = _tasks(discover_study(study), str(tmp_path / "out"), FAST)[0]
    assert _hash_inputs(task) != _hash_inputs(replace(task, resect_caudate=not task.resect_caudate))


def test_the_four_outputs_are_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    import flr_volumetry.batch as batch_module

    study = tiny.good_study(str(tmp_path / "study"))
    out = str(tmp_path / "out")
    run_batch(study, out, FAST)
    names = ("timepoints.csv", "patients.csv", "results.json", "report.html")
    before = {n: open(os.path.join(out, n), "rb").read() for n in names}
    write = batch_module.write_text_atomic

    def disk_full_on_the_report(text, path, **kw):
        if path.endswith("report.html"):
            raise OSError(28, "No space left on device")
        return write(text, path, **kw)
    monkeypatch.setattr(batch_module, "write_text_atomic", disk_full_on_the_report)
    with pytest.raises(InputError, match="No space left on device"):
        run_batch(study, out, BatchOptions(progress=False, figures=False,
                                           volumetry=VolumetryOptions(telv_formula="urata")))
    # The tables had been replaced with urata figures beside the previous report.
    assert {n: open(os.path.join(out, n), "rb").read() for n in names} == before
    assert not [f for f in os.listdir(out) if f.startswith(".tmp")]


def test_masks_folder_holds_only_what_this_run_made(tmp_path):
    # A failed timepoint, a run without figures and a removed timepoint had left the earlier
    # run's masks and overlays in OUT/masks.
    import shutil

    study = tiny.good_study(str(tmp_path / "study"))
    out = tmp_path / "out"
    run_batch(study, str(out), BatchOptions(progress=False, figures=True))
    made = sorted(str(p.relative_to(out)) for p in (out / "masks").rglob("*") if p.is_file())
    assert "masks/P001/baseline/overlay.png" in made
    (out / "masks" / "P001" / "notes.txt").write_text("mine")
    # A folder of the user's in masks/, holding a file named as the batch names its own.
    (out / "masks" / "P001" / "baseline_edited").mkdir()
    (out / "masks" / "P001" / "baseline_edited" / "flr.nii.gz").write_bytes(b"mine")
    with open(os.path.join(study, "P001", "baseline", "image.nii.gz"), "wb") as fh:
        fh.write(b"not an image")
    shutil.rmtree(os.path.join(study, "P002", "a_late"))
    run_batch(study, str(out), FAST)  # no figures
    left = sorted(str(p.relative_to(out)) for p in (out / "masks").rglob("*") if p.is_file())
    assert not any(f.startswith("masks/P001/baseline/") for f in left)
    assert not any(f.startswith("masks/P002/a_late/") for f in left)
    assert not any(f.endswith("overlay.png") for f in left)
    assert "masks/P001/notes.txt" in left
    assert "masks/P001/baseline_edited/flr.nii.gz" in left  # no run recorded it


def _sleep(seconds):
    import time
    time.sleep(seconds)
    return seconds


def test_interrupted_workers_are_stopped_not_left_measuring():
    # Ctrl-C had let each worker go on to the next queued timepoint (exit 7-29 s later, more
    # timepoints written), and the pool's processes had been looked up after shutdown.
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from flr_volumetry.batch import _stop_workers

    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(_sleep, 60) for _ in range(4)]
    time.sleep(2.0)  # the workers are running
    pids = [p.pid for p in pool._processes.values()]
    _stop_workers(pool)

    def ended(pid):  # the pool's own thread may reap it first: ask the kernel, not Process
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    deadline = time.time() + 20
    while not all(ended(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert all(ended(pid) for pid in pids)
    # The queued timepoints are dropped, never run: cancelled by the pool's manager
    # thread, which does it after shutdown returns (or failed with the broken pool if
    # it sees the workers end first), so it is waited for.
    from concurrent.futures.process import BrokenProcessPool

    while not futures[-1].done() and time.time() < deadline:
        time.sleep(0.1)
    assert futures[-1].cancelled() or isinstance(futures[-1].exception(timeout=0),
                                                 BrokenProcessPool)


def test_a_worker_ends_with_its_main_process(tmp_path):
    # A killed main process had left its workers (children of the fork server) measuring
    # and writing into OUT for minutes.
    import subprocess
    import sys
    import time

    main_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    marker = tmp_path / "still_alive"
    worker = subprocess.Popen([sys.executable, "-c", (
        "import time, pathlib; from flr_volumetry.batch import _exit_with; "
        f"_exit_with({main_proc.pid}, poll_s=0.1); time.sleep(30); "
        f"pathlib.Path({str(marker)!r}).write_text('x')")])
    time.sleep(1.0)
    assert worker.poll() is None  # watching, alive while its main process is
    main_proc.kill()
    main_proc.wait()
    assert worker.wait(timeout=20) == 1
    assert not marker.exists()


def test_a_second_run_into_a_held_output_folder_is_refused_and_the_log_kept(tmp_path):
    # Two runs into one OUT had both gone ahead: the second replaced the first's log and
    # removed its temporary files mid-write. A killed run's lock is taken over.
    import subprocess
    import sys

    from flr_volumetry.batch import _LOCK_FILE

    study = tiny.good_study(str(tmp_path / "study"))
    out = tmp_path / "out"
    run_batch(study, str(out), FAST)
    assert not (out / _LOCK_FILE).exists()  # released
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket
        (out / _LOCK_FILE).write_text(f"{holder.pid} {socket.gethostname()}\n")
        with pytest.raises(StudyLayoutError, match=f"another batch run \\(process "
                                                   f"{holder.pid}\\) is writing into"):
            run_batch(study, str(out), FAST)
    finally:
        holder.kill()
        holder.wait()
    run_batch(study, str(out), FAST)  # its holder is gone: taken over
    # A killed run's lock naming this very process (a restarted container gives the same
    # number again) had refused the run as "another batch run".
    (out / _LOCK_FILE).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    run_batch(study, str(out), FAST)
    log = (out / "batch.log").read_text()
    assert log.count("run started") == 3  # appended, the first run's lines kept


def test_a_refused_weight_keeps_the_facts_that_could_be_read(tmp_path):
    # A weight in grams is refused; the condition, procedure and date had been lost with it
    # (normal, threshold 20, "Procedure n/a on n/a", "No follow-up scan").
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", {**PVE, "weight_kg": 61400,
                                       "liver_condition": "chemotherapy"}, two_scans())
    r = run_batch(study, out, FAST)
    (p,) = r.results["patients"]
    assert p["status"] == "failed" and "weight" in p["error"]
    assert (p["facts"]["liver_condition"], p["facts"]["procedure"],
            p["facts"]["procedure_date"]) == ("chemotherapy", "PVE", "2024-01-08")
    # Refused body size: neither measured anything, so neither is reported as used.
    assert p["facts"]["weight_kg"] is None and p["facts"]["height_cm"] is None
    assert p["sflr_threshold_pct"] == 30.0
    (row,) = _rows(r.patients_csv)
    assert (row["liver_condition"], row["sflr_threshold_pct"], row["procedure"],
            row["procedure_date"]) == ("chemotherapy", "30.0", "PVE", "2024-01-08")
    with open(r.report_html, encoding="utf-8") as fh:
        page = fh.read()
    assert "Procedure PVE on 2024-01-08; liver chemotherapy (sFLR threshold 30 %)" in page
    assert "No follow-up scan" not in page
    assert "No growth computed: pre, post failed" in page


def test_patients_csv_and_report_give_daily_rates(good):
    _, out, _ = good
    with open(os.path.join(out, "results.json")) as fh:
        results = json.load(fh)
    patients = _by(_rows(os.path.join(out, "patients.csv")), "patient_id")
    for p in results["patients"]:
        h = p["followups"][-1]["hypertrophy"]
        row = patients[p["patient_id"]]
        assert _num(row["kgr_pct_per_day"]) == h["kgr_pct_per_day"]
        assert _num(row["gr_pct_per_day"]) == h["gr_pct_per_day"]
        assert p["summary"]["kgr_pct_per_day"] == pytest.approx(
            p["summary"]["kgr_pct_per_week"] / 7)
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    assert "KGR %/day" in page and "GR %/day" in page
    p3 = next(p for p in results["patients"] if p["patient_id"] == "P003")  # the ALPPS one
    assert f"{p3['summary']['kgr_pct_per_day']:.3f}" in page


@pytest.mark.parametrize("field, value", [("resume", "false"), ("figures", "no"),
                                          ("from_baseline_date", "yes"), ("progress", None),
                                          ("scheduler_timeout_s", "30"),
                                          ("scheduler_timeout_s", -1.0)])
def test_batch_options_refuse_text_for_switches_and_numbers(field, value):
    # From a JSON or YAML file: resume="false" had resumed (a string is true).
    with pytest.raises(StudyLayoutError, match=field):
        BatchOptions(**{field: value})
    with pytest.raises(StudyLayoutError, match=field):
        run_batch("nowhere", "out", {field: value})


def test_masks_of_a_timepoint_measured_by_a_killed_run_go_when_it_is_renamed(
        tmp_path, monkeypatch):
    # A run stopped after measuring, before its tables: no results.json names its
    # timepoints, and a renamed timepoint's overlay (and masks) stayed in OUT/masks.
    import flr_volumetry.batch as batch_module

    study = tiny.good_study(str(tmp_path / "study"))
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(batch_module, "render_report_html", killed)
        with pytest.raises(KeyboardInterrupt):
            run_batch(study, str(out), BatchOptions(progress=False, figures=True))
    assert not (out / "results.json").exists()
    assert (out / "masks" / "P002" / "a_late" / "overlay.png").is_file()
    os.rename(os.path.join(study, "P002", "a_late"), os.path.join(study, "P002", "z_late"))
    run_batch(study, str(out), BatchOptions(progress=False, figures=True, resume=True))
    assert not (out / "masks" / "P002" / "a_late").exists()
    assert not (out / "cache" / "P002" / "a_late.json").exists()
    assert (out / "masks" / "P002" / "z_late" / "overlay.png").is_file()


def test_an_output_folder_that_cannot_be_written_is_said_in_a_sentence(
        tmp_path, monkeypatch, capsys):
    # A read-only OUT (as root, chmod cannot make one: the lock's os.open is made to fail)
    # had ended in "unexpected failure (PermissionError ...); report it", exit code 1.
    import flr_volumetry.batch as batch_module

    study = tiny.good_study(str(tmp_path / "study"))
    out = tmp_path / "out"
    out.mkdir()
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(batch_module.os, "open", read_only)
    with pytest.raises(StudyLayoutError, match="cannot write into the output folder"):
        run_batch(study, str(out), FAST)
    assert main(["batch", study, "-o", str(out), "--no-figures", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot write into the output folder" in err and "unexpected" not in err


def test_a_timepoint_without_its_image_keeps_the_date_of_its_timepoint_json(tmp_path):
    # Its date had been dropped with the error: the patient was said to have a scan "with no
    # scan date, so the scans cannot be put in order", and the baseline lost its place.
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, two_scans())
    os.remove(os.path.join(study, "P001", "post", "image.nii.gz"))
    r = run_batch(study, out, FAST)
    (p,) = r.results["patients"]
    post = next(t for t in p["timepoints"] if t["timepoint"] == "post")
    assert post["scan_date"] == "2024-02-05" and "no image in post/" in post["error"]
    assert "no scan date" not in p["error"] and "no image in post/" in p["error"]
    assert p["baseline"] == "pre"


def test_a_segmented_liver_is_kept_for_review_when_its_timepoint_fails_later(tmp_path,
                                                                            monkeypatch):
    # The plan failed after the liver was segmented (a landmark outside a poor mask): the
    # mask had been deleted with the failure, so the cause could not be looked at in napari.
    import SimpleITK as sitk

    import flr_volumetry.workflow as workflow

    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", {**PVE, "resection": "right_hepatectomy"},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    tp = os.path.join(study, "P001", "pre")
    liver = sitk.ReadImage(os.path.join(tp, "liver.nii.gz"))
    for name in ("liver.nii.gz", "flr.nii.gz"):
        os.remove(os.path.join(tp, name))
    monkeypatch.setattr(workflow, "_auto_liver", lambda scan, modality: (liver, [], {}))
    r = run_batch(study, out, FAST)
    (rec,) = r.results["patients"][0]["timepoints"]
    assert rec["status"] == "failed" and rec["measurement"] is None
    saved = os.path.join(out, "masks", "P001", "pre", "liver.nii.gz")
    assert os.path.isfile(saved) and rec["masks"] == {"liver": "masks/P001/pre/liver.nii.gz"}
    assert "the segmented liver is saved for review" in rec["error"]


def test_a_refused_liver_condition_is_not_reported_as_normal(tmp_path):
    # A condition the tool does not know (a typo of cirrhosis) fails the patient; its facts
    # had then shown the default, "normal" with the 20 % threshold, in every output.
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", {**PVE, "liver_condition": "cirhosis"}, two_scans())
    r = run_batch(study, out, FAST)
    (p,) = r.results["patients"]
    assert p["status"] == "failed" and "cirhosis" in p["error"]
    assert p["facts"]["liver_condition"] is None and p["sflr_threshold_pct"] is None
    assert (p["facts"]["procedure"], p["facts"]["height_cm"]) == ("PVE", PVE["height_cm"])
    (row,) = _rows(r.patients_csv)
    assert (row["liver_condition"], row["sflr_threshold_pct"]) == ("", "")
    with open(r.report_html, encoding="utf-8") as fh:
        page = fh.read()
    assert "liver <span class=\"na\">n/a</span> (sFLR threshold <span class=\"na\">n/a" in page
    assert "liver normal" not in page and "threshold 20 %" not in page


def test_follow_ups_sharing_a_date_are_said(tmp_path):
    # The summary row compared the one whose folder name sorts last, without a word.
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    tiny.write_patient(study, "P001", PVE, {**two_scans(),
                                            "post_b": dict(scan_date="2024-02-05", flr_width=8)})
    r = run_batch(study, out, FAST)
    (p,) = r.results["patients"]
    assert any("post and post_b share the scan date 2024-02-05" in w for w in p["warnings"])
    tiny.write_patient(str(tmp_path / "s2"), "P001", PVE, two_scans())
    single = run_batch(str(tmp_path / "s2"), str(tmp_path / "o2"), FAST)
    assert not any("share the scan date" in w for w in single.results["patients"][0]["warnings"])


def test_an_unreadable_patient_file_leaves_the_liver_condition_unknown(tmp_path):
    # Its condition cannot be read: it had been reported as the default, a normal liver.
    study, out = str(tmp_path / "study"), str(tmp_path / "out")
    folder = tiny.write_patient(study, "P001", PVE, two_scans())
    with open(os.path.join(folder, "patient.json"), "w") as fh:
        fh.write('{"height_cm": 170, "liver_condition": "cirrhosis",')  # cut short
    r = run_batch(study, out, FAST)
    (p,) = r.results["patients"]
    assert p["status"] == "failed" and "patient.json" in p["error"]
    assert p["facts"]["liver_condition"] is None and p["sflr_threshold_pct"] is None


def test_workers_given_as_a_numpy_integer_are_a_whole_number():
    # np.int64(2) (a count from a DataFrame) had been refused as "not a whole number".
    import numpy as np

    options = BatchOptions(workers=np.int64(2))
    assert options.workers == 2 and type(options.workers) is int
    for bad in (2.0, "2", np.bool_(True), 0):
        with pytest.raises(StudyLayoutError, match="workers must be a whole number"):
            BatchOptions(workers=bad)


def test_run_batch_given_no_folder_says_so(tmp_path):
    # None for the study or output folder had raised os.fspath's bare TypeError.
    with pytest.raises(StudyLayoutError, match="the study folder must be a path"):
        run_batch(None, tmp_path / "out")
    with pytest.raises(StudyLayoutError, match="the output folder must be a path"):
        run_batch(tmp_path, None)


def test_the_alpps_registry_criterion_is_judged_with_the_patients_scintigraphy():
    from flr_volumetry.batch import analyse_patient
    from flr_volumetry.report import PATIENT_COLUMNS
    from flr_volumetry.study import StudyPatient

    records = [_growth_record("pre", "2024-01-10", 300.0),
               _growth_record("stage2", "2024-01-20", 420.0)]  # +40 % in 10 days: 4 %/day
    for hbs, risk in ((2.4, True), (3.5, False), (None, None)):
        patient = StudyPatient(patient_id="P001", folder=".", procedure="ALPPS",
                               procedure_date="2024-01-10", hbs_pct_per_min_m2=hbs)
        summary = analyse_patient(patient, records)["summary"]
        assert summary["flr_growth_pct_per_day"] == pytest.approx(4.0)
        assert summary["hbs_pct_per_min_m2"] == hbs
        assert summary["alpps_high_phlf_risk"] is risk
    assert {"flr_growth_pct_per_day", "hbs_pct_per_min_m2",
            "alpps_high_phlf_risk"} <= set(PATIENT_COLUMNS)
    # After a PVE the criterion is not judged (the scintigraphy is said to be unused).
    pve = StudyPatient(patient_id="P001", folder=".", procedure="PVE",
                       procedure_date="2024-01-10", hbs_pct_per_min_m2=2.4)
    entry = analyse_patient(pve, records)
    assert entry["summary"]["alpps_high_phlf_risk"] is None
    assert any("is not used" in w for f in entry["followups"]
               for w in f["hypertrophy"]["warnings"])


def test_a_tumour_mask_spelt_tumour_is_read_and_other_image_names_are_said(tmp_path):
    # tumour.nii.gz had been passed over without a word: its 8 mL stayed in the liver.
    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4, tumor=True)})
    pre = study / "P001" / "pre"
    os.rename(pre / "tumor.nii.gz", pre / "tumour.nii.gz")
    (pre / "liver_mask.nii.gz").write_bytes((pre / "liver.nii.gz").read_bytes())
    r = run_batch(str(study), str(tmp_path / "out"), FAST)
    (p,) = r.results["patients"]
    (t,) = p["timepoints"]
    assert t["status"] == "ok"
    assert t["measurement"]["tumor_ml"] == 8.0
    assert any("pre/liver_mask.nii.gz is not read" in w and "liver.*" in w
               for w in p["warnings"])
    assert not any("tumour.nii.gz" in w for w in p["warnings"])


def test_the_users_files_under_the_output_folders_cache_are_kept(tmp_path):
    # cache/tool/settings.json had been deleted as the record of a timepoint named settings.
    study = tmp_path / "study"
    tiny.write_patient(str(study), "P001", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    own = tmp_path / "out" / "cache" / "tool" / "settings.json"
    own.parent.mkdir(parents=True)
    own.write_text('{"keep": 1}')
    for _ in range(2):
        assert run_batch(str(study), str(tmp_path / "out"), FAST).ok
    assert own.read_text() == '{"keep": 1}'


@pytest.mark.parametrize("inside", ["masks", "cache", "data"])
def test_an_output_folder_holding_the_study_is_refused(tmp_path, capsys, inside):
    # batch w/masks -o w had deleted the study's own liver and FLR masks as an earlier run's.
    study = tmp_path / "w" / inside
    tiny.write_patient(str(study), "T1", {"height_cm": 170, "weight_kg": 70},
                       {"pre": dict(scan_date="2024-01-01", flr_width=4)})
    before = sorted(str(p) for p in (tmp_path / "w").rglob("*"))
    assert main(["batch", str(study), "-o", str(tmp_path / "w"), "--no-progress"]) == 2
    assert "holds the study folder" in capsys.readouterr().err
    assert sorted(str(p) for p in (tmp_path / "w").rglob("*")) == before
