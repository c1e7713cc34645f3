"""Report outputs: atomic CSV, figure orientation, HTML content and escaping."""

import io
import os

import numpy as np
import pytest
import SimpleITK as sitk

from flr_volumetry import report
from flr_volumetry.errors import InputError
from flr_volumetry.report import (
    PATIENT_COLUMNS,
    TIMEPOINT_COLUMNS,
    growth_chart_png,
    overlay_png,
    render_report_html,
    write_csv_atomic,
)


def test_csv_columns_are_the_issues_names_first():
    assert TIMEPOINT_COLUMNS[:11] == (
        "patient_id", "timepoint", "scan_date", "status", "error", "total_liver_ml",
        "tumor_ml", "functional_liver_ml", "flr_ml", "sflr_pct", "measured_flr_pct")
    assert PATIENT_COLUMNS[:14] == (
        "patient_id", "status", "error", "procedure", "procedure_date", "interval_days",
        "sflr_baseline_pct", "sflr_followup_pct", "dh_pct_points", "kgr_pct_per_week",
        "kgr_meets_2pct", "gr_pct_per_week", "gr_meets_2_66pct", "sflr_adequate")
    assert len(set(TIMEPOINT_COLUMNS)) == len(TIMEPOINT_COLUMNS)


def test_csv_keeps_every_digit_and_writes_empty_for_none(tmp_path):
    p = tmp_path / "t.csv"
    write_csv_atomic([{"a": 0.1 + 0.2, "b": None, "c": True}], ("a", "b", "c"), p)
    assert p.read_text() == "a,b,c\n0.30000000000000004,,True\n"


def test_csv_write_failing_half_way_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "t.csv"
    write_csv_atomic([{"a": 1}], ("a",), p)
    real_open = open

    class HalfWriter:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise OSError(28, "No space left on device")

    # The module's own ``open`` (it shadows the builtin) writes half and fails.
    monkeypatch.setattr(report, "open", lambda *a, **k: HalfWriter(real_open(*a, **k)),
                        raising=False)
    with pytest.raises(InputError, match=r"^cannot write .*t\.csv: No space left on device\.$"):
        write_csv_atomic([{"a": i} for i in range(1000)], ("a",), p)
    assert p.read_text() == "a\n1\n"
    assert [f for f in os.listdir(tmp_path) if f != "t.csv"] == []


def _green_and_image_columns(png):
    import matplotlib.image as mpimg

    rgb = mpimg.imread(io.BytesIO(png))[..., :3]
    half = rgb[:, : rgb.shape[1] // 2]  # the axial panel
    green = (half[..., 1] - half[..., 0]) > 0.25
    dark = half.sum(axis=-1) < 0.3   # the scan's black background
    return np.argwhere(green)[:, 1].mean(), np.argwhere(dark)[:, 1].mean()


@pytest.mark.parametrize("flip_x", [False, True])
def test_overlay_shows_the_patients_right_on_the_left(flip_x):
    # The FLR lies on the patient's right (low LPS x), whatever the array order.
    shape = (10, 30, 40)
    liver = np.zeros(shape, np.uint8)
    liver[2:8, 5:25, 5:35] = 1
    flr = np.zeros(shape, np.uint8)
    flr[2:8, 5:25, 5:15] = 1
    ct = np.where(liver > 0, 60, -1000).astype(np.int16)
    images = []
    for a in (ct, liver, flr):
        if flip_x:
            a = a[:, :, ::-1].copy()
        img = sitk.GetImageFromArray(a)
        img.SetSpacing((2.0, 2.0, 5.0))
        if flip_x:
            img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
            img.SetOrigin((78.0, 0.0, 0.0))
        images.append(img)
    green_x, image_x = _green_and_image_columns(overlay_png(*images, modality="CT"))
    assert green_x < image_x - 5


# An empty panel (no measured ratio) had made matplotlib warn of a legend without entries.
@pytest.mark.filterwarnings("error::UserWarning")
def test_growth_chart_and_overlay_are_pngs_without_procedure_date():
    pts = [{"scan_date": "2024-01-01", "sflr_pct": 18.0, "measured_flr_pct": None},
           {"scan_date": "2024-02-05", "sflr_pct": 27.0, "measured_flr_pct": None}]
    assert growth_chart_png(pts).startswith(b"\x89PNG")
    assert growth_chart_png([]).startswith(b"\x89PNG")
    liver = sitk.GetImageFromArray(np.ones((4, 6, 6), np.uint8))
    # An MR-like image (no HU) and an empty FLR: still a figure.
    mr = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 900, (4, 6, 6))
                                .astype(np.float32))
    empty = sitk.GetImageFromArray(np.zeros((4, 6, 6), np.uint8))
    assert overlay_png(mr, liver, empty).startswith(b"\x89PNG")


def _results(pid, error=None):
    tp = {"patient_id": pid, "timepoint": "pre", "scan_date": "2024-01-01", "status": "ok",
          "error": None, "is_baseline": True,
          "measurement": {"total_liver_ml": 1500.0, "flr_ml": 400.0, "sflr_pct": 25.0,
                          "measured_flr_pct": 26.7, "warnings": ["a <warning>"]},
          "liver_method": "file liver.nii.gz", "flr_method": "file flr.nii.gz",
          "overlay": None}
    tp2 = dict(tp, timepoint="post", scan_date="2024-02-05", is_baseline=False,
               measurement=dict(tp["measurement"], sflr_pct=35.0, flr_ml=560.0))
    summary = {"procedure": "PVE", "interval_days": 28, "sflr_baseline_pct": 25.0,
               "sflr_followup_pct": 35.0, "dh_pct_points": 10.0, "kgr_pct_per_week": 2.5,
               "kgr_meets_2pct": True, "gr_pct_per_week": 1.0, "gr_meets_2_66pct": False,
               "sflr_adequate": True}
    return {
        "schema": report.RESULTS_SCHEMA, "schema_version": report.RESULTS_SCHEMA_VERSION,
        "software_version": "0", "created_utc": "2026-01-01T00:00:00Z",
        "options": {"bsa_formula": "mosteller", "telv_formula": "vauthey"},
        "summary": {"patients": 1, "patients_ok": 0 if error else 1,
                    "patients_failed": 1 if error else 0, "timepoints": 2, "timepoints_ok": 2,
                    "timepoints_failed": 0},
        "warnings": [],
        "patients": [{"patient_id": pid, "status": "failed" if error else "ok", "error": error,
                      "warnings": [], "facts": {"procedure": "PVE",
                                                "procedure_date": "2024-01-08",
                                                "liver_condition": "chemotherapy"},
                      "sflr_threshold_pct": 30.0, "baseline": "pre", "timepoints": [tp, tp2],
                      "followups": [{"timepoint": "post", "status": "ok", "error": None,
                                     "hypertrophy": {"interval_days": 28, "dh_pct_points": 10.0,
                                                     "kgr_pct_per_week": 2.5,
                                                     "kgr_meets_2pct": True,
                                                     "gr_pct_per_week": 1.0,
                                                     "gr_meets_2_66pct": False,
                                                     "warnings": []}}],
                      "summary": summary}],
    }


def test_report_html_verdicts_thresholds_and_escaping(tmp_path):
    page = render_report_html(_results("P<1>", error="x & <y>"), str(tmp_path))
    assert "P<1>" not in page and "P&lt;1&gt;" in page
    assert "x &amp; &lt;y&gt;" in page and "a &lt;warning&gt;" in page
    assert 'id="cohort"' in page
    cohort = page[page.index('id="cohort"'):page.index("</table>")]
    assert "x &amp; &lt;y&gt;" in cohort  # a failed patient's error shows in the cohort table
    assert "threshold 30 %" in page  # the chemotherapy threshold, not the normal one
    assert 'class="pass">pass' in page and 'class="fail">fail' in page  # KGR yes, GR no
    assert page.count("data:image/png;base64,") == 1  # growth chart; no overlay files


def test_growth_chart_starts_at_the_baseline_not_an_earlier_scan(tmp_path, monkeypatch):
    # A diagnostic scan before the planning (baseline) scan: the rate lines had started at
    # its sFLR, so a follow-up growing 3.2 %/week was drawn below the 2 %/week line.
    charts = []
    monkeypatch.setattr(report, "growth_chart_png",
                        lambda pts, **kw: charts.append((pts, kw)) or b"\x89PNG")
    results = _results("P1")
    patient = results["patients"][0]
    early = dict(patient["timepoints"][0], timepoint="diagnostic", scan_date="2023-11-01",
                 is_baseline=False, measurement=dict(patient["timepoints"][0]["measurement"],
                                                     sflr_pct=31.0))
    patient["timepoints"].insert(0, early)
    render_report_html(results, str(tmp_path))
    pts, kw = charts[-1]
    assert [p["scan_date"] for p in pts] == ["2024-01-01", "2024-02-05"] and kw["rate_lines"]
    # No baseline chosen (a failed patient): the values, without rate lines.
    patient["baseline"] = None
    render_report_html(results, str(tmp_path))
    pts, kw = charts[-1]
    assert len(pts) == 3 and not kw["rate_lines"]


def test_a_name_in_a_script_the_font_lacks_draws_without_warnings(recwarn):
    fig = report._figure(2.0, 1.0)
    fig.add_subplot().set_title("Pé 北京")  # the default font has no CJK glyphs
    assert report._png(fig).startswith(b"\x89PNG")
    assert not [w for w in recwarn if "Glyph" in str(w.message)]


def test_growth_charts_are_drawn_again_only_when_their_figures_change(tmp_path, monkeypatch):
    # A resumed run had redrawn every chart (0.2 s each: 62 of 68 s for 300 patients).
    drawn = []
    real = report.growth_chart_png
    monkeypatch.setattr(report, "growth_chart_png",
                        lambda pts, **kw: drawn.append(kw["title"]) or real(pts, **kw))
    cache = tmp_path / "charts"
    results = _results("P1")
    first = render_report_html(results, str(tmp_path), chart_cache=str(cache))
    assert drawn == ["P1: growth"] and len(list(cache.glob("*.png"))) == 1
    again = render_report_html(results, str(tmp_path), chart_cache=str(cache))
    assert drawn == ["P1: growth"] and again == first  # from the cache, the same page
    results["patients"][0]["facts"]["procedure_date"] = "2024-01-10"
    render_report_html(results, str(tmp_path), chart_cache=str(cache))
    assert drawn == ["P1: growth"] * 2
    assert len(list(cache.glob("*.png"))) == 1  # the chart no longer drawn is removed


def _timepoint_table_of(page):
    start = page.index("<th class=l>timepoint</th>")
    return page[start:page.index("</table>", start)]


def test_timepoint_sflr_never_seems_to_cross_the_verdicts_threshold(tmp_path):
    # 29.960000000000004 had been shown as "30.0" beside "sFLR vs 30 %: inadequate".
    results = _results("P1")
    patient = results["patients"][0]
    patient["timepoints"][1]["measurement"]["sflr_pct"] = 29.960000000000004
    page = render_report_html(results, str(tmp_path), figures=False)
    assert ">inadequate<" in page
    table = _timepoint_table_of(page)
    assert "<td>29.96</td>" in table and "<td>30.0</td>" not in table
    assert "<td>25.0</td>" in table  # far from the threshold: one decimal, as before


def test_cohort_baseline_sflr_and_dh_never_seem_to_cross_their_cut_offs(tmp_path):
    # A baseline sFLR of 29.996 % (threshold 30) had read "30.0" in the cohort table, and a
    # DH of 7.4996 points (Shindoh's 7.5) "7.5" there and in the follow-up table, whose
    # verdict was shown nowhere.
    results = _results("P1")
    patient = results["patients"][0]
    patient["summary"].update(sflr_baseline_pct=29.996, dh_pct_points=7.4996,
                              sflr_threshold_pct=30.0)  # (batch writes it in both places)
    patient["followups"][0]["hypertrophy"].update(dh_pct_points=7.4996,
                                                  dh_meets_7_5_pct_points=False)
    page = render_report_html(results, str(tmp_path), figures=False)
    cohort = page[page.index('id="cohort"'):]
    cohort = cohort[:cohort.index("</table>")]
    assert "<td>29.996</td>" in cohort and "<td>30.0</td>" not in cohort
    assert "<td>7.4996</td>" in cohort and "<td>7.5</td>" not in cohort
    start = page.index("<th>vs 7.5 points</th>")
    followup = page[start:page.index("</table>", start)]
    assert "<td>7.4996</td>" in followup
    assert followup.count('class="fail">fail') == 2  # DH and GR; KGR passes
    patient["followups"][0]["hypertrophy"].update(dh_pct_points=10.0,
                                                  dh_meets_7_5_pct_points=True)
    page = render_report_html(results, str(tmp_path), figures=False)
    start = page.index("<th>vs 7.5 points</th>")
    assert page[start:page.index("</table>", start)].count('class="pass">pass') == 2


def test_flr_per_body_weight_is_in_the_timepoint_table(tmp_path):
    # With a weight but no height FLR/body weight is the only ratio against a cut-off
    # (above 0.5 %), and the report had not shown it; 0.5004 (a pass) must not read as 0.50.
    results = _results("P1")
    patient = results["patients"][0]
    patient["timepoints"][0]["measurement"]["flr_bw_ratio_pct"] = 0.5004
    patient["timepoints"][1]["measurement"]["flr_bw_ratio_pct"] = 0.8
    page = render_report_html(results, str(tmp_path), figures=False)
    table = _timepoint_table_of(page)
    assert "FLR/BW %" in table
    assert "<td>0.5004</td>" in table and "<td>0.80</td>" in table


def test_a_weight_alone_from_the_dicom_header_is_shown(tmp_path):
    # The header's weight without a height gives FLR/body weight; the report had said
    # "height n/a, weight n/a" beside it.
    results = _results("P1")
    for t in results["patients"][0]["timepoints"]:
        t["measurement"].update(height_cm=None, weight_kg=88.3)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "weight 88.3 kg (from the DICOM header)" in page


def test_height_and_weight_from_the_dicom_header_are_shown(tmp_path):
    # patient.json without them: the header's were used, yet the report said "n/a".
    results = _results("P1")
    patient = results["patients"][0]
    for t in patient["timepoints"]:
        t["measurement"].update(height_cm=181.7, weight_kg=88.3)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "height 181.7 cm, weight 88.3 kg (from the DICOM header)" in page
    assert "height <span" not in page
    # Given in patient.json: shown as given, no source named.
    patient["facts"].update(height_cm=170.0, weight_kg=70.0)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "height 170 cm, weight 70 kg." in page and "DICOM header" not in page


def test_header_names_the_bsa_formula_the_telv_formula_forced(tmp_path):
    results = _results("P1")
    results["options"].update(bsa_formula="dubois", telv_formula="korean_mosteller")
    page = render_report_html(results, str(tmp_path), figures=False)
    assert ("Formulas: BSA mosteller (required by korean_mosteller; dubois asked), TELV "
            "korean_mosteller.") in page
    results["options"].update(bsa_formula="dubois", telv_formula="vauthey")
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "Formulas: BSA dubois, TELV vauthey." in page


def test_a_failed_follow_up_is_not_called_missing(tmp_path):
    results = _results("P1", error="post: cannot read image.nii.gz.")
    patient = results["patients"][0]
    patient["timepoints"][1].update(status="failed", error="cannot read image.nii.gz.",
                                    measurement=None)
    patient["followups"] = []
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "No follow-up scan" not in page
    assert "No growth computed: post failed" in page
    patient["timepoints"] = patient["timepoints"][:1]
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "No follow-up scan: no growth computed." in page


def test_follow_up_table_gives_daily_rates(tmp_path):
    results = _results("P1")
    h = results["patients"][0]["followups"][0]["hypertrophy"]
    h.update(kgr_pct_per_day=2.5 / 7, gr_pct_per_day=1.0 / 7)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "KGR %/day" in page and "GR %/day" in page
    assert "<td>0.357</td>" in page and "<td>0.143</td>" in page


def test_follow_up_table_gives_the_alpps_verdict_only_where_it_was_judged(tmp_path):
    results = _results("P1")
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "ALPPS registry" not in page  # no scintigraphy entered: no column
    h = results["patients"][0]["followups"][0]["hypertrophy"]
    h.update(alpps_high_phlf_risk=True, hbs_pct_per_min_m2=2.4)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "ALPPS registry (Tomassini)" in page
    assert '<span class="fail">high risk of liver failure</span> (HBS 2.4 %/min/m^2;' in page
    # Figures just above a cut-off are never rounded onto it beside "not high risk".
    h.update(alpps_high_phlf_risk=False, hbs_pct_per_min_m2=2.700001,
             flr_growth_pct_per_day=4.1029)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "<td>4.103</td>" in page and "(HBS 2.700001 %/min/m^2;" in page


@pytest.mark.parametrize("pid", ["P 01", "cohort"])
def test_patient_anchors_are_valid_ids_of_their_own(tmp_path, pid):
    # "P 01" had given id="P 01" (no HTML id holds a space); a patient named "cohort" took
    # the cohort table's id, so its link jumped to the table.
    import re

    page = render_report_html(_results(pid), str(tmp_path), figures=False)
    ids = re.findall(r' id="([^"]*)"', page)
    assert len(ids) == len(set(ids)) and not any(re.search(r"\s", i) for i in ids)
    (href,) = re.findall(r'<a href="#([^"]*)">' + re.escape(pid) + "</a>", page)
    assert href in ids and href != "cohort"


def test_cohort_row_names_its_follow_up_and_counts_the_patients_warnings(tmp_path):
    # The row's figures had not said which follow-up they compare, and a patient's
    # warnings (a liver cut by the field of view) showed only at the end of its section.
    results = _results("P1")
    results["patients"][0]["summary"]["followup_timepoint"] = "post"
    page = render_report_html(results, str(tmp_path), figures=False)
    cohort = page[page.index('id="cohort"'):page.index("</table>")]
    assert "<th class=l>follow-up</th>" in cohort and "<td class=l>post</td>" in cohort
    assert 'href="#warnings-P1">2</a>' in cohort  # one per scan in _results
    assert 'id="warnings-P1"' in page


def test_flr_per_body_weight_has_its_verdict(tmp_path):
    results = _results("P1")
    for t, ratio, ok in zip(results["patients"][0]["timepoints"], (0.45, 0.8), (False, True)):
        t["measurement"].update(flr_bw_ratio_pct=ratio, flr_bw_adequate=ok)
    table = _timepoint_table_of(render_report_html(results, str(tmp_path), figures=False))
    assert "FLR/BW &gt; 0.5 %" in table
    assert table.count('class="fail">no<') == 1 and table.count('class="pass">yes<') == 1


def test_a_patients_warnings_list_never_takes_another_patients_id(tmp_path):
    # "patient-P1-warnings" had been both P1's warnings list and patient P1-warnings' section.
    import re

    results = _results("P1")
    results["patients"] += _results("P1-warnings")["patients"]
    ids = re.findall(r' id="([^"]*)"', render_report_html(results, str(tmp_path), figures=False))
    assert len(ids) == len(set(ids)) == 5  # cohort, two sections, two warning lists


def test_a_carried_plan_shows_its_registration_dice(tmp_path):
    results = _results("P1")
    post = results["patients"][0]["timepoints"][1]
    post["flr_method"] = "plan plan.json (pre), carried from pre by registration"
    post["measurement"]["methods"] = {"registration": {"dice": 0.8912}}
    table = _timepoint_table_of(render_report_html(results, str(tmp_path), figures=False))
    assert "carried from pre by registration (registration Dice 0.891)" in table
    assert table.count("registration Dice") == 1


def test_a_baseline_folder_is_not_called_baseline_twice(tmp_path):
    results = _results("P1")
    results["patients"][0]["timepoints"][0]["timepoint"] = "baseline"
    table = _timepoint_table_of(render_report_html(results, str(tmp_path), figures=False))
    assert "baseline (baseline)" not in table and "<td class=l>baseline</td>" in table
    results["patients"][0]["timepoints"][0]["timepoint"] = "pre"
    table = _timepoint_table_of(render_report_html(results, str(tmp_path), figures=False))
    assert "pre (baseline)" in table


def test_a_header_size_of_one_scan_is_not_shown_as_every_scans(tmp_path):
    # "height 178 cm, weight 84 kg (from the DICOM header)" had stood for a patient whose
    # baseline header held neither.
    results = _results("P1")
    pre, post = results["patients"][0]["timepoints"]
    post["measurement"].update(height_cm=178.0, weight_kg=84.0)
    page = render_report_html(results, str(tmp_path), figures=False)
    assert "height 178 cm, weight 84 kg (from the DICOM header); none at pre" in page
