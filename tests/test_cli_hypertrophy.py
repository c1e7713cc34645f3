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
    # sflr_pct given twice had been read as the last one, without a word.
    pre.write_text(text[:-1] + ', "sflr_pct": 5.0}')
    assert main(["hypertrophy", *args, "--procedure-date", "2024-01-09"]) == 1
    err = capsys.readouterr().err
    assert "'sflr_pct' is given twice" in err and len(err.strip().splitlines()) == 1
