"""The command line: exact outputs, exit codes, and one-line errors without tracebacks."""

import json
import os
import subprocess
import sys

import pytest
import SimpleITK as sitk

from flr_volumetry.cli import main

from _phantom_boxes import box_case

MEASURE_KEYS = {"total_liver_ml", "tumor_ml", "functional_liver_ml", "flr_ml", "resected_ml",
                "bsa_m2", "telv_ml", "sflr_pct", "measured_flr_pct", "flr_bw_ratio_pct",
                "flr_bw_adequate", "warnings", "methods", "scan_date"}


@pytest.fixture
def case(tmp_path):
    im, n, v = box_case()
    for name, img in im.items():
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    return tmp_path, n, v


def _measure(folder, out, *extra):
    return main(["measure", str(folder / "ct.nii.gz"), "--liver", str(folder / "liver.nii.gz"),
                 "--tumor", str(folder / "tumor.nii.gz"), "--flr", str(folder / "flr.nii.gz"),
                 "--json", str(out), *extra])


def test_measure_writes_the_documented_json(case, capsys):
    folder, n, v = case
    assert _measure(folder, folder / "m.json", "--height-cm", "170", "--weight-kg", "70",
                    "--scan-date", "2024-01-02") == 0
    d = json.loads((folder / "m.json").read_text())
    assert MEASURE_KEYS <= set(d)
    assert d["total_liver_ml"] == pytest.approx(n["liver"] * v)
    assert d["flr_ml"] == pytest.approx((n["flr"] - n["tumor"]) * v)
    assert d["scan_date"] == "2024-01-02"
    assert d["methods"]["bsa_formula"] == "mosteller"
    assert "sFLR" in capsys.readouterr().out


def test_measure_then_hypertrophy(case):
    folder, n, v = case
    _measure(folder, folder / "pre.json", "--height-cm", "170", "--weight-kg", "70",
             "--scan-date", "2024-01-02")
    _measure(folder, folder / "post.json", "--height-cm", "170", "--weight-kg", "70",
             "--scan-date", "2024-02-06")
    rc = main(["hypertrophy", "--pre", str(folder / "pre.json"), "--post", str(folder / "post.json"),
               "--procedure-date", "2024-01-09", "--json", str(folder / "h.json")])
    assert rc == 0
    h = json.loads((folder / "h.json").read_text())
    assert h["interval_days"] == 28
    assert h["dh_pct_points"] == pytest.approx(0.0)
    assert h["kgr_meets_2pct"] is False
    for key in ("kgr_pct_per_week", "measured_dh_pct_points", "gr_pct_per_week",
                "gr_meets_2_66pct", "flr_growth_ml", "flr_growth_pct"):
        assert key in h


def test_hypertrophy_summary_judges_only_figures_it_has_and_prints_warnings(case, capsys):
    folder, _, _ = case
    # No height and weight: no KGR, which had been printed "KGR n/a (below 2 %/week)".
    _measure(folder, folder / "pre.json")
    _measure(folder, folder / "post.json", "--scan-date", "2024-02-06")
    capsys.readouterr()
    # An undated baseline: its warning had stayed inside the JSON.
    assert main(["hypertrophy", "--pre", str(folder / "pre.json"), "--post",
                 str(folder / "post.json"), "--procedure-date", "2024-01-09",
                 "--json", str(folder / "h.json")]) == 0
    out, err = capsys.readouterr()
    assert "KGR n/a," in out and "below" not in out
    warnings = json.loads((folder / "h.json").read_text())["warnings"]
    assert warnings and all(f"warning: {w}" in err for w in warnings)


def test_measure_with_a_weight_alone_gives_flr_per_body_weight(case, capsys):
    folder, _, _ = case
    assert _measure(folder, folder / "m.json", "--weight-kg", "70") == 0
    m = json.loads((folder / "m.json").read_text())
    assert m["flr_bw_ratio_pct"] == pytest.approx(100 * m["flr_ml"] / 70000)
    assert m["sflr_pct"] is None and m["weight_kg"] == 70 and m["height_cm"] is None


@pytest.mark.parametrize("argv_tail, message", [
    (["--height-cm", "1.7", "--weight-kg", "70"], "implausible"),
    (["--height-cm", "1.7"], "implausible"),  # (a height alone is kept for the header)
])
def test_measure_bad_patient(case, capsys, argv_tail, message):
    folder, _, _ = case
    assert _measure(folder, folder / "m.json", *argv_tail) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (folder / "m.json").exists()


def test_missing_files_and_bad_json(case, capsys):
    folder, _, _ = case
    assert main(["measure", str(folder / "nope.nii.gz"), "--liver", "x"]) == 1
    assert "does not exist" in capsys.readouterr().err
    (folder / "bad.json").write_text("{not json")
    assert main(["hypertrophy", "--pre", str(folder / "bad.json"), "--post",
                 str(folder / "bad.json"), "--procedure-date", "2024-01-01"]) == 1
    assert "not a readable JSON" in capsys.readouterr().err


def test_followup_before_procedure_is_refused(case, capsys):
    folder, _, _ = case
    for name, date in (("pre", "2024-01-02"), ("post", "2024-02-06")):
        _measure(folder, folder / f"{name}.json", "--scan-date", date)
    assert main(["hypertrophy", "--pre", str(folder / "pre.json"), "--post",
                 str(folder / "post.json"), "--procedure-date", "2024-03-01"]) == 1
    assert "on or before" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["measure"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["measure", "x", "--bsa-formula", "nonsense"])
    assert exc.value.code == 2


def test_console_script_runs_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "flr_volumetry.cli", "measure",
                        str(tmp_path / "missing.nii.gz"), "--liver", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "does not exist" in r.stderr


@pytest.mark.parametrize("command", ["measure", "hypertrophy", "segment", "batch", "demo",
                                     "phantom"])
def test_help_shows_percent_signs_as_written(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "%%" not in out


def _bytes(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("argv_tail, message", [
    (["--json", "{folder}/ct.nii.gz"], "is one of the input files"),
    (["--json", "{folder}/liver.nii.gz"], "is one of the input files"),
    (["--json", "{folder}"], "is a folder"),
    (["--json", "{folder}/new/"], "is a folder"),
    (["--json", "{folder}/ct.nii.gz/m.json"], "is a file, not a folder"),
    (["--json", "{folder}/m.json", "--flr-out", "{folder}/m.json"], "both name"),
])
def test_measure_refuses_outputs_that_would_fail_or_overwrite_an_input(case, capsys,
                                                                        argv_tail, message):
    folder, _, _ = case
    before = _bytes(folder)
    tail = [a.format(folder=folder) for a in argv_tail]
    assert main(["measure", str(folder / "ct.nii.gz"), "--liver", str(folder / "liver.nii.gz"),
                 *tail]) == 1
    err = capsys.readouterr().err
    assert message in err and "unexpected" not in err
    assert _bytes(folder) == before  # nothing written, nothing overwritten


def test_segment_refuses_outputs_before_any_work(case, capsys):
    folder, _, _ = case
    before = _bytes(folder)
    ct = str(folder / "ct.nii.gz")
    for tail, message in (
        (["-o", ct], "is one of the input files"),
        (["-o", str(folder / "a.nii.gz"), "--tumor-out", str(folder / "a.nii.gz")], "both name"),
        # The liver would be written before the tumour mask failed: nothing is written.
        (["-o", str(folder / "a.nii.gz"), "--tumor-out", str(folder / "ct.nii.gz" / "t.nii.gz")],
         "is a file, not a folder"),
    ):
        assert main(["segment", ct, *tail]) == 1
        assert message in capsys.readouterr().err
    assert _bytes(folder) == before


def test_an_input_whose_name_holds_a_colon_is_itself_not_a_selection():
    # 'ct.nii.gz:v2.nii.gz' (an existing file) had been taken for 'ct.nii.gz' with a label
    # selection, and a new -o ct.nii.gz refused as "one of the input files".
    import tempfile

    from flr_volumetry.cli._common import check_outputs
    from flr_volumetry.errors import InputError

    with tempfile.TemporaryDirectory() as d:
        odd = os.path.join(d, "ct.nii.gz:v2.nii.gz")
        open(odd, "w").close()
        check_outputs({"-o": os.path.join(d, "ct.nii.gz")}, [odd])
        with pytest.raises(InputError, match="is one of the input files"):
            check_outputs({"-o": odd}, [odd])
        liver = os.path.join(d, "labels.nii.gz")
        open(liver, "w").close()
        with pytest.raises(InputError, match="is one of the input files"):
            check_outputs({"-o": liver}, [liver + ":1,2"])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_in_a_folder_that_takes_no_files_is_refused_before_any_work(tmp_path):
    # os.access says yes to root everywhere: -o /proc/liver.nii.gz was refused only after
    # the whole segmentation (7 s), when the result could not be written.
    from flr_volumetry.cli._common import check_outputs
    from flr_volumetry.errors import InputError

    with pytest.raises(InputError, match="cannot write -o /proc/liver.nii.gz"):
        check_outputs({"-o": "/proc/liver.nii.gz"})
    check_outputs({"-o": str(tmp_path / "new" / "liver.nii.gz")})  # a folder to be made: fine
    assert os.listdir(tmp_path) == []  # and nothing left behind by the check
    # Through a link to such a folder: refused before any work too (it had run 7 s).
    os.symlink("/proc/liver.nii.gz", tmp_path / "out.nii.gz")
    with pytest.raises(InputError, match="cannot write -o .*out.nii.gz"):
        check_outputs({"-o": str(tmp_path / "out.nii.gz")})


def test_segment_refuses_an_empty_output_path_before_any_work(case, capsys, monkeypatch):
    from flr_volumetry import segmentation

    def never(*args, **kwargs):
        raise AssertionError("segmented before the outputs were checked")

    monkeypatch.setattr(segmentation, "segment_liver", never)
    folder, _, _ = case
    before = _bytes(folder)
    ct = str(folder / "ct.nii.gz")
    # -o "" had failed after the whole segmentation, naming a temporary file
    # (".tmp-t_jqh2mr-"); --tumor-out "" had been skipped without a word, exit 0.
    for tail, option in ((["-o", ""], "-o"),
                         (["-o", str(folder / "a.nii.gz"), "--tumor-out", ""], "--tumor-out")):
        assert main(["segment", ct, *tail]) == 1
        err = capsys.readouterr().err
        assert f"{option} is an empty path" in err and err.count("\n") == 1
    # The scan given as "" had been said to be " does not exist."
    assert main(["segment", "", "-o", str(folder / "a.nii.gz")]) == 1
    assert "path given is empty" in capsys.readouterr().err
    assert _bytes(folder) == before


def test_segment_writes_both_outputs_or_neither(case, capsys, monkeypatch):
    from flr_volumetry import segmentation
    from flr_volumetry.cli import _segment
    from flr_volumetry.errors import InputError

    folder, _, _ = case
    ct = sitk.ReadImage(str(folder / "ct.nii.gz"))
    mask = sitk.Cast(ct * 0 + 1, sitk.sitkUInt8)
    monkeypatch.setattr(segmentation, "segment_liver", lambda *a, **k: segmentation.
                        SegmentationResult(liver=mask, tumor=mask, warnings=(), methods={}))
    write = _segment._write

    def tumour_fails(m, path, scan, what):
        if what != "liver":  # as a DICOM SEG of odd headers had failed, after the liver
            raise InputError("cannot write the tumour.")
        write(m, path, scan, what)
    monkeypatch.setattr(_segment, "_write", tumour_fails)
    before = _bytes(folder)
    assert main(["segment", str(folder / "ct.nii.gz"), "-o", str(folder / "new_liver.nii.gz"),
                 "--tumor-out", str(folder / "new_tumor.nii.gz")]) == 1
    assert "cannot write the tumour" in capsys.readouterr().err
    assert _bytes(folder) == before  # no liver from this run, no temporary file
    monkeypatch.setattr(_segment, "_write", write)
    assert main(["segment", str(folder / "ct.nii.gz"), "-o", str(folder / "new_liver.nii.gz"),
                 "--tumor-out", str(folder / "new_tumor.seg.nrrd")]) == 0
    assert {"new_liver.nii.gz", "new_tumor.seg.nrrd"} <= set(os.listdir(folder))
    assert not [f for f in os.listdir(folder) if f.startswith(".tmp")]


def test_unwritable_output_is_one_sentence(case, capsys):
    from flr_volumetry.errors import InputError
    from flr_volumetry.io import write_json_atomic

    folder, _, _ = case
    with pytest.raises(InputError, match="ct.nii.gz is a file, not a folder"):
        write_json_atomic({}, folder / "ct.nii.gz" / "sub" / "m.json")


def test_debug_is_accepted_after_the_subcommand(case, capsys):
    from flr_volumetry.errors import InputError

    folder, _, _ = case
    missing = str(folder / "nope.nii.gz")
    assert main(["measure", missing, "--liver", "x"]) == 1
    assert "does not exist" in capsys.readouterr().err
    for argv in (["--debug", "measure", missing, "--liver", "x"],
                 ["measure", missing, "--liver", "x", "--debug"]):
        with pytest.raises(InputError, match="does not exist"):  # the traceback is shown
            main(argv)


def test_negative_seed_gets_the_seed_message_not_a_usage_error(case, capsys):
    folder, _, _ = case
    assert main(["segment", str(folder / "ct.nii.gz"), "-o", str(folder / "o.nii.gz"),
                 "--seed", "-1,10,10"]) == 1
    assert "seed -1,10,10 lies outside the image" in capsys.readouterr().err


def test_main_leaves_a_programs_own_sigterm_handler_alone(case, monkeypatch):
    # An embedding program's SIGTERM handler had been replaced while main ran, and then
    # "restored" to the default (or to None, a TypeError, when it was set in C).
    import signal

    from flr_volumetry import cli

    folder, _, _ = case

    def own(signum, frame):
        pass
    during = []
    real_main = cli._main
    monkeypatch.setattr(cli, "_main", lambda argv: during.append(
        signal.getsignal(signal.SIGTERM)) or real_main(argv))
    previous = signal.signal(signal.SIGTERM, own)
    try:
        assert main(["measure", str(folder / "missing.nii.gz"), "--liver", "x"]) == 1
        assert during == [own] and signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert main(["measure", str(folder / "missing.nii.gz"), "--liver", "x"]) == 1
        assert during[-1] is cli._terminate_as_interrupt  # its own, where none was set
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_measure_without_json_file_says_its_warnings_on_stderr(case, capsys):
    folder, _, _ = case
    capsys.readouterr()
    # No height and weight: a warning, which had reached only the JSON on stdout.
    assert main(["measure", str(folder / "ct.nii.gz"), "--liver", str(folder / "liver.nii.gz"),
                 "--flr", str(folder / "flr.nii.gz")]) == 0
    out, err = capsys.readouterr()
    warnings = json.loads(out)["warnings"]
    assert warnings and all(f"warning: {w}" in err for w in warnings)


@pytest.mark.parametrize("command, required", [
    ("measure", ["x"]), ("segment", ["x", "-o", "y"]), ("batch", ["x", "-o", "y"]),
    ("phantom", ["x"]), ("demo", []),
    ("hypertrophy", ["--pre", "a", "--post", "b", "--procedure-date", "2024-01-02"])])
def test_an_unknown_option_is_said_with_the_subcommands_usage(command, required, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, *required, "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    # It had printed the top-level usage ('flr-volumetry [-h] [--debug] COMMAND ...').
    assert f"usage: flr-volumetry {command}" in err and "--bogus" in err
    assert "COMMAND ..." not in err


def test_python_dash_m_runs_the_command():
    # Where the console script is not on PATH (a venv not activated), `python -m` is the way.
    done = subprocess.run([sys.executable, "-m", "flr_volumetry", "measure", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: flr-volumetry measure" in done.stdout


@pytest.mark.parametrize("argv_tail, message", [
    (["--plan-baseline", "base.nii.gz"], "give both --plan-baseline and --plan-baseline-liver"),
    (["--save-plan", "p.json"], "--save-plan needs a plan"),
    (["--resection", "right_hepatectomy"], "give either --flr or a remnant plan, not both"),
])
def test_options_that_cannot_be_used_together_are_usage_errors(case, capsys, argv_tail, message):
    # They had exited 1, as bad input does; the README gives 2 for usage errors.
    folder, _, _ = case
    assert _measure(folder, folder / "m.json", *argv_tail) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("twice", [
    ["--keep-point", "1,2,3", "--keep-point", "4,5,6"],
    ["--resection", "right_hepatectomy", "--resection", "left_hepatectomy"],
    ["--json", "a.json", "--json", "b.json"],
])
def test_an_option_of_one_value_given_twice_is_a_usage_error(tmp_path, capsys, twice):
    # argparse had kept the last silently: a second keep point chose the remnant's side.
    with pytest.raises(SystemExit) as exc:
        main(["measure", str(tmp_path / "ct.nii.gz"), "--liver", str(tmp_path / "l.nii.gz"),
              *twice])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {twice[0]}: given twice; give it once." in err and "Traceback" not in err
