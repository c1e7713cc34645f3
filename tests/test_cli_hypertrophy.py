"""`flr-volumetry hypertrophy`: --procedure-date and --from-baseline-date are one choice."""

import json

import pytest

from flr_volumetry.cli import main
from flr_volumetry.hypertrophy import hypertrophy


def _jsons(folder):
    for name, date, flr in (("pre", "2024-01-02", 400.0), ("post", "2024-02-06", 500.0)):
        (folder / f"{name}.json").write_text(json.dumps({
            "flr_ml": flr, "total_liver_ml": 1500.0, "tumor_ml": 0.0,
            "functional_liver_ml": 1500.0, "telv_ml": 1600.0, "sflr_pct": flr / 16.0,
            "scan_date": date}))
    return ["--pre", str(folder / "pre.json"), "--post", str(folder / "post.json")]


def test_both_procedure_date_and_from_baseline_date_is_a_usage_error(tmp_path, capsys):
    # Had been accepted silently, the procedure date winning.
    with pytest.raises(SystemExit) as exc:
        main(["hypertrophy", *_jsons(tmp_path), "--procedure-date", "2024-01-09",
              "--from-baseline-date"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with" in err and "Traceback" not in err


def test_neither_procedure_date_nor_from_baseline_date_is_a_usage_error(tmp_path, capsys):
    # Had exited 1, while usage errors exit 2.
    with pytest.raises(SystemExit) as exc:
        main(["hypertrophy", *_jsons(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--procedure-date" in err and "--from-baseline-date" in err
    assert "required" in err and "Traceback" not in err


@pytest.mark.parametrize("choice, days", [(["--procedure-date", "2024-01-09"], 28),
                                          (["--from-baseline-date"], 35)])
def test_either_choice_alone_works(tmp_path, choice, days):
    out = tmp_path / "h.json"
    assert main(["hypertrophy", *_jsons(tmp_path), *choice, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["interval_days"] == days


def test_python_api_still_explains_a_missing_procedure_date():
    pre = {"flr_ml": 400.0, "scan_date": "2024-01-02"}
    post = {"flr_ml": 500.0, "scan_date": "2024-02-06"}
    with pytest.raises(Exception, match="procedure date is unknown"):
        hypertrophy(pre, post)
    assert hypertrophy(pre, post, from_baseline_date=True).interval_days == 35


def test_a_key_given_twice_or_a_byte_order_mark(tmp_path, capsys):
    args = _jsons(tmp_path)
    pre = tmp_path / "pre.json"
    text = pre.read_text()
    # A byte-order mark (Windows editors) is read, as in a study folder.
    pre.write_text("\ufeff" + text, encoding="utf-8")
    assert main(["hypertrophy", *args, "--procedure-date", "2024-01-09"]) == 0
    capsys.readouterr()
    # sflr_pct given twice had been read as the last one, without a word.
    pre.write_text(text[:-1] + ', "sflr_pct": 5.0}')
    assert main(["hypertrophy", *args, "--procedure-date", "2024-01-09"]) == 1
    err = capsys.readouterr().err
    assert "'sflr_pct' is given twice" in err and len(err.strip().splitlines()) == 1


def test_summary_lines_never_round_a_figure_across_its_cut_off(tmp_path, capsys):
    # KGR 1.996 had been printed "KGR 2.00 %/week (below 2 %/week)", GR 2.6649
    # "GR 2.66 %/week (above 2.66 %/week)"
    pre = {"flr_ml": 400.0, "telv_ml": 2000.0, "sflr_pct": 20.0, "measured_flr_pct": 20.0,
           "scan_date": "2024-01-01"}
    post = {"flr_ml": 400.0 + 20 * 7.984, "telv_ml": 2000.0, "sflr_pct": 20.0 + 7.984,
            "measured_flr_pct": 20.0 + 4 * 2.6649, "scan_date": "2024-01-29"}
    for name, d in (("pre", pre), ("post", post)):
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    assert main(["hypertrophy", "--pre", str(tmp_path / "pre.json"), "--post",
                 str(tmp_path / "post.json"), "--procedure-date", "2024-01-01",
                 "--json", str(tmp_path / "h.json")]) == 0
    out = capsys.readouterr().out
    assert "KGR 1.996 %/week (below 2 %/week)" in out
    assert "GR 2.665 %/week (above 2.66 %/week)" in out


def test_measure_summary_shows_an_sflr_just_under_its_threshold_as_under(tmp_path, capsys):
    import numpy as np
    import SimpleITK as sitk

    from flr_volumetry import clinical

    # sFLR 19.96 % had been printed "sFLR 20.0 % (threshold 20 %)" beside sflr_adequate false
    liver = np.zeros((20, 50, 50), np.uint8)
    liver[:, :, :] = 1
    img = sitk.GetImageFromArray(liver)
    img.SetSpacing((2.0, 2.0, 2.0))  # 400 mL
    telv = clinical.telv_ml(height_cm=170, weight_kg=70)
    flr = liver.copy()
    keep = int(round(0.1996 * telv / 0.008))  # voxels of 8 uL
    flat = flr.reshape(-1)
    flat[keep:] = 0
    flr_img = sitk.GetImageFromArray(flr)
    flr_img.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "liver.nii.gz"))
    sitk.WriteImage(flr_img, str(tmp_path / "flr.nii.gz"))
    assert main(["measure", str(tmp_path / "liver.nii.gz"), "--liver", str(tmp_path / "liver.nii.gz"),
                 "--flr", str(tmp_path / "flr.nii.gz"), "--height-cm", "170", "--weight-kg", "70",
                 "--json", str(tmp_path / "m.json")]) == 0
    d = json.loads((tmp_path / "m.json").read_text())
    assert d["sflr_adequate"] is False and 19.9 < d["sflr_pct"] < 20.0
    assert f"sFLR {d['sflr_pct']:.2f} % (threshold 20 %)" in capsys.readouterr().out


def test_hbs_option_judges_the_alpps_criterion_and_a_bad_value_is_a_usage_error(
        tmp_path, capsys):
    args = ["hypertrophy", *_jsons(tmp_path), "--procedure-date", "2024-01-09"]
    out = tmp_path / "h.json"
    # FLR +25 % in 28 days: 0.89 %/day, at most 4.1; HBS 2.2 at most 2.7.
    assert main([*args, "--hbs-pct-per-min-m2", "2.2", "--json", str(out)]) == 0
    h = json.loads(out.read_text())
    assert h["hbs_pct_per_min_m2"] == 2.2 and h["alpps_high_phlf_risk"] is True
    assert "high risk of liver failure (ALPPS registry)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([*args, "--hbs-pct-per-min-m2", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "must be a positive number of %/min/m^2" in err and "Traceback" not in err
