import pytest

from flr_volumetry import hypertrophy
from flr_volumetry.errors import ClinicalInputError, InputError

PRE = {"flr_ml": 400.0, "sflr_pct": 26.0, "measured_flr_pct": 22.0, "scan_date": "2024-01-02"}
POST = {"flr_ml": 560.0, "sflr_pct": 36.4, "measured_flr_pct": 30.0, "scan_date": "2024-02-06"}


def test_shindoh_and_leung_numbers():
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09")
    assert h.interval_days == 28
    assert h.dh_pct_points == pytest.approx(10.4)
    assert h.kgr_pct_per_week == pytest.approx(10.4 / 4)
    assert h.kgr_meets_2pct is True
    assert h.dh_meets_7_5_pct_points is True
    assert h.measured_dh_pct_points == pytest.approx(8.0)
    assert h.gr_pct_per_week == pytest.approx(2.0)
    assert h.gr_meets_2_66pct is False
    assert h.flr_growth_ml == pytest.approx(160.0)
    assert h.flr_growth_pct == pytest.approx(40.0)
    assert h.kgr_pct_per_day == pytest.approx(10.4 / 28)


def test_kgr_threshold_is_inclusive_at_2():
    pre = dict(PRE, sflr_pct=20.0)
    post = dict(POST, sflr_pct=28.0)
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert h.kgr_pct_per_week == pytest.approx(2.0)
    assert h.kgr_meets_2pct is True


def test_dates_from_options_override_files():
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09", post_date="2024-01-23")
    assert h.interval_days == 14


def test_missing_procedure_date_is_an_error_unless_asked():
    with pytest.raises(ClinicalInputError, match="procedure date") as err:
        hypertrophy(PRE, POST)
    # A Python caller is told the keyword arguments, not only the command line's flags.
    assert "procedure_date" in str(err.value) and "from_baseline_date=True" in str(err.value)
    h = hypertrophy(PRE, POST, from_baseline_date=True)
    assert h.interval_days == 35
    assert any("baseline scan date" in w for w in h.warnings)


def test_followup_before_procedure_is_an_error():
    with pytest.raises(ClinicalInputError, match="on or before"):
        hypertrophy(PRE, POST, procedure_date="2024-02-10")


def test_followup_before_baseline_is_an_error():
    with pytest.raises(ClinicalInputError, match="not after the baseline"):
        hypertrophy(POST, PRE, procedure_date="2023-12-01")


def test_missing_followup_date():
    with pytest.raises(ClinicalInputError, match="follow-up scan date.*post_date"):
        hypertrophy(PRE, dict(POST, scan_date=None), procedure_date="2024-01-09")


def test_bad_date_text():
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        hypertrophy(PRE, POST, procedure_date="9 Jan")


@pytest.mark.parametrize("text", ["160124", "240213", "2024111", "2024116", "24-01-16"])
def test_short_digit_dates_are_refused_not_guessed(text):
    # strptime had read '160124' as 1601-02-04 and '2024111' as 2024-11-01: a KGR over
    # 292,527 days, exit 0.
    with pytest.raises(InputError, match="is not a date"):
        hypertrophy(PRE, POST, procedure_date=text)


def test_implausible_year_is_refused():
    with pytest.raises(InputError, match="not a plausible"):
        hypertrophy(PRE, dict(POST, scan_date="24020103"), procedure_date="2024-01-09")


def test_unpadded_iso_date_is_read():
    h = hypertrophy(PRE, POST, procedure_date="2024-1-9")
    assert h.interval_days == 28


def test_missing_pandas_date_is_a_missing_date():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ClinicalInputError, match="follow-up scan date"):
        hypertrophy(PRE, dict(POST, scan_date=pd.NaT), procedure_date="2024-01-09")
    h = hypertrophy(PRE, POST, procedure_date=pd.NaT, from_baseline_date=True)
    assert h.interval_days == 35


def test_without_body_size_kgr_is_null_but_gr_is_computed():
    pre = dict(PRE, sflr_pct=None)
    h = hypertrophy(pre, POST, procedure_date="2024-01-09")
    assert h.kgr_pct_per_week is None and h.kgr_meets_2pct is None
    assert h.gr_pct_per_week == pytest.approx(2.0)


def test_needs_flr():
    with pytest.raises(InputError, match="flr_ml"):
        hypertrophy(dict(PRE, flr_ml=None), POST, procedure_date="2024-01-09")


def test_different_telv_estimates_are_not_counted_as_growth():
    # Baseline TELV 1538.5 mL (sFLR 26.0 %); the follow-up was measured with another
    # formula (or weight): TELV 1400 mL, sFLR 40.0 %. Growth is 400 -> 560 mL only.
    pre = dict(PRE, telv_ml=400.0 / 0.26)
    post = dict(POST, telv_ml=1400.0, sflr_pct=40.0)
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert h.sflr_post_pct == pytest.approx(560.0 / (400.0 / 0.26) * 100.0)  # 36.4 %
    assert h.dh_pct_points == pytest.approx(10.4)
    assert h.kgr_pct_per_week == pytest.approx(10.4 / 4)
    assert any("estimate the total liver volume differently" in w for w in h.warnings)
    assert "baseline" in h.methods["telv"]
    # The same estimate, rounded in JSON: nothing to say, nothing recomputed.
    same = hypertrophy(pre, dict(POST, telv_ml=400.0 / 0.26 + 0.1), procedure_date="2024-01-09")
    assert same.sflr_post_pct == 36.4 and not same.warnings


@pytest.mark.parametrize("sflr", [0.0, 1e308, 52.0])
def test_an_sflr_that_its_own_flr_and_telv_contradict_is_refused(sflr):
    # Hand-edited measurements: 0 or 1e308 had given a DH of -26 or -1e308 points.
    telv = 400.0 / 0.26
    with pytest.raises(InputError, match="baseline measurement's sflr_pct .* does not match"):
        hypertrophy(dict(PRE, telv_ml=telv, sflr_pct=sflr), dict(POST, telv_ml=telv),
                    procedure_date="2024-01-09")
    # As JSON rounds it: accepted.
    h = hypertrophy(dict(PRE, telv_ml=telv, sflr_pct=26.0004), dict(POST, telv_ml=telv),
                    procedure_date="2024-01-09")
    assert h.dh_pct_points == pytest.approx(10.4, abs=1e-3)


@pytest.mark.parametrize("missing", ["baseline", "follow-up"])
def test_a_measurement_without_body_size_takes_the_others_telv(missing):
    # The follow-up scan's header had no height (or the weight was not typed again): DH
    # and KGR had been refused although the baseline's TELV gives its sFLR.
    telv = 400.0 / 0.26
    pre, post = dict(PRE, telv_ml=telv), dict(POST, telv_ml=telv)
    if missing == "baseline":
        pre.update(sflr_pct=None, telv_ml=None)
    else:
        post.update(sflr_pct=None, telv_ml=None)
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert h.sflr_pre_pct == pytest.approx(26.0) and h.sflr_post_pct == pytest.approx(36.4)
    assert h.dh_pct_points == pytest.approx(10.4)
    assert h.kgr_pct_per_week == pytest.approx(10.4 / 4)
    other = "follow-up" if missing == "baseline" else "baseline"
    assert any(f"the {missing} has no sFLR (no height or weight)" in w
               and f"the {other}'s TELV ({telv:.1f} mL)" in w for w in h.warnings)
    assert other in h.methods["telv"]
    # Neither has a TELV: nothing to borrow.
    bare = hypertrophy(dict(PRE, sflr_pct=None), dict(POST, sflr_pct=None),
                       procedure_date="2024-01-09")
    assert bare.dh_pct_points is None


@pytest.mark.parametrize("key", ["flr_ml", "sflr_pct", "measured_flr_pct", "telv_ml"])
@pytest.mark.parametrize("bad", ["abc", True, float("inf")])  # NaN: missing, tested below
def test_non_numbers_in_a_measurement_are_refused(key, bad):
    with pytest.raises(InputError, match=f"follow-up measurement's {key} is .*not a number"):
        hypertrophy(PRE, dict(POST, **{key: bad}), procedure_date="2024-01-09")


def test_telv_of_one_measurement_only_is_said_and_a_vanished_flr_refused():
    h = hypertrophy(dict(PRE, telv_ml=400.0 / 0.26), POST, procedure_date="2024-01-09")
    assert any("only one measurement records its TELV" in w for w in h.warnings)
    for flr_ml in (0.0, -5.0):
        with pytest.raises(InputError, match="follow-up FLR volume must be positive"):
            hypertrophy(PRE, dict(POST, flr_ml=flr_ml), procedure_date="2024-01-09")


def test_numpy_numbers_are_numbers():
    import numpy as np

    pre = {k: np.float32(v) if isinstance(v, float) else v for k, v in PRE.items()}
    post = dict(POST, flr_ml=np.int64(560))
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert h.flr_growth_ml == pytest.approx(160.0)


def test_growth_exactly_on_a_cut_off_is_judged_as_on_it():
    # 25.3 -> 33.3 % in 28 days is 2.0 %/week exactly, which floating point makes
    # 1.9999999999999991 ("KGR 2.00 %/week (below 2 %/week)"); 21.7 -> 32.34 % measured
    # is GR 2.66 exactly, which it made 2.660000000000001 (above 2.66: the unsafe way).
    pre = {"flr_ml": 400.0, "sflr_pct": 25.3, "measured_flr_pct": 21.7, "scan_date": "2024-01-01"}
    post = {"flr_ml": 520.0, "sflr_pct": 33.3, "measured_flr_pct": 32.34,
            "scan_date": "2024-01-29"}
    h = hypertrophy(pre, post, procedure_date="2024-01-01")
    assert h.kgr_pct_per_week == pytest.approx(2.0) and h.kgr_meets_2pct is True
    assert h.dh_pct_points == pytest.approx(8.0)
    assert h.gr_pct_per_week == pytest.approx(2.66) and h.gr_meets_2_66pct is False


def test_nan_from_a_csv_row_is_a_missing_figure():
    # Rows of timepoints.csv read by pandas: no height and weight leaves sflr_pct empty (NaN),
    # which had been refused as "not a number; measure the scan again".
    nan = float("nan")
    h = hypertrophy(dict(PRE, sflr_pct=nan), dict(POST, sflr_pct=nan),
                    procedure_date="2024-01-09")
    assert h.kgr_pct_per_week is None and h.kgr_meets_2pct is None
    assert h.gr_pct_per_week == pytest.approx(2.0)
    with pytest.raises(InputError, match="not a number"):
        hypertrophy(dict(PRE, sflr_pct=float("inf")), POST, procedure_date="2024-01-09")


def test_a_missing_measured_flr_share_says_gr_is_not_computed():
    # An empty measured_flr_pct (NaN) had left GR null without a word, and an empty sflr_pct
    # was blamed on a missing height or weight only.
    nan = float("nan")
    h = hypertrophy(PRE, dict(POST, measured_flr_pct=nan), procedure_date="2024-01-09")
    assert h.gr_pct_per_week is None
    assert any("the follow-up measurement has no measured FLR share (measured_flr_pct): GR "
               "is not computed" in w for w in h.warnings)
    h = hypertrophy(dict(PRE, sflr_pct=nan), dict(POST, sflr_pct=nan), procedure_date="2024-01-09")
    assert any("sFLR is missing from a measurement (no height or weight was given, or the "
               "value is empty)" in w for w in h.warnings)


@pytest.mark.parametrize("post_date, said", [("2024-01-11", "2 days"),
                                              ("2030-02-13", "2227 days")])
def test_an_interval_no_growth_assessment_has_is_said(post_date, said):
    # A day after the PVE, KGR had been 90 %/week; six years after, 0.04 %/week, "not met":
    # both unsaid.
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09", post_date=post_date)
    assert any(f"the follow-up scan is {said} after the procedure date" in w
               for w in h.warnings)
    assert not any("after the procedure date" in w
                   for w in hypertrophy(PRE, POST, procedure_date="2024-01-09").warnings)


def test_the_baseline_date_option_has_the_batch_and_command_line_name():
    # hypertrophy(allow_baseline_date=) beside BatchOptions(from_baseline_date=) and
    # --from-baseline-date: one name now, the former still read.
    h = hypertrophy(PRE, POST, from_baseline_date=True)
    assert h.interval_days == 35
    assert hypertrophy(PRE, POST, allow_baseline_date=True).interval_days == 35


def test_an_undated_baseline_is_said_not_checked_against_the_procedure():
    h = hypertrophy(dict(PRE, scan_date=None), POST, procedure_date="2024-01-09")
    assert h.interval_days == 28
    assert any("baseline scan date is unknown" in w for w in h.warnings)
    assert not any("baseline scan date is unknown" in w
                   for w in hypertrophy(PRE, POST, procedure_date="2024-01-09").warnings)


def test_methods_say_how_each_threshold_is_compared():
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09")
    # As judged: KGR 2.0 and DH 7.5 are met, GR 2.66 is not (test_kgr_threshold_is_inclusive).
    assert "met at >= 2" in h.methods["kgr"] and "met at >= 7.5" in h.methods["dh"]
    assert "met above 2.66, > not >=" in h.methods["gr"]


@pytest.mark.parametrize("key", ["flr_ml", "sflr_pct", "telv_ml", "measured_flr_pct"])
def test_a_400_digit_integer_is_refused_in_a_sentence(key):
    # JSON reads 1e400 written out as an integer; float() of it had escaped as an
    # OverflowError ("unexpected failure").
    with pytest.raises(InputError, match=f"{key} is 1000.*not a number"):
        hypertrophy(dict(PRE, **{key: 10 ** 400}), POST, procedure_date="2024-01-09")


@pytest.mark.parametrize("key", ["sflr_pct", "measured_flr_pct"])
def test_a_negative_percentage_is_refused(key):
    # sflr_pct -5 had given a DH of 41.4 points and a KGR that "met" 2 %/week.
    with pytest.raises(InputError, match=f"{key} is -5.*negative"):
        hypertrophy(dict(PRE, **{key: -5.0}), POST, procedure_date="2024-01-09")


def test_a_baseline_scanned_after_the_procedure_is_refused():
    # It already holds part of the growth: KGR since the procedure comes out too low (the
    # command line had computed it with a warning, while the batch refuses such a patient).
    with pytest.raises(ClinicalInputError, match=r"baseline scan \(2024-01-02\) is after the "
                                                  r"procedure \(2024-01-01\)"):
        hypertrophy(PRE, POST, procedure_date="2024-01-01")
    assert hypertrophy(PRE, POST, procedure_date="2024-01-02").interval_days == 35


@pytest.mark.parametrize("without", ["baseline", "follow-up"])
def test_tumour_subtracted_at_one_scan_only_is_said(without):
    # FLV = TLV - tumour at one scan and TLV at the other: GR compared two different ratios
    # unsaid (P001's GR 2.86 "above 2.66" became 2.55 "not above").
    pre, post = dict(PRE, tumor_ml=80.0), dict(POST, tumor_ml=60.0)
    (pre if without == "baseline" else post)["tumor_ml"] = None
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    said = [w for w in h.warnings if "tumour" in w]
    assert len(said) == 1 and f"the {without} has no tumour mask" in said[0]
    assert "GR" in said[0]
    both = hypertrophy(dict(PRE, tumor_ml=80.0), dict(POST, tumor_ml=60.0),
                       procedure_date="2024-01-09")
    assert not [w for w in both.warnings if "tumour" in w]
    assert not [w for w in hypertrophy(PRE, POST, procedure_date="2024-01-09").warnings
                if "tumour" in w]
    # An empty tumour mask subtracts nothing: the two FLVs are one definition.
    empty = hypertrophy(dict(PRE, tumor_ml=0.0), POST, procedure_date="2024-01-09")
    assert not [w for w in empty.warnings if "tumour" in w]


def test_a_follow_up_verdict_that_the_common_telv_turns_is_said():
    # Weight 90 kg at baseline, 70 kg at follow-up: its own sFLR (35.3 %) is adequate for a
    # chemotherapy liver, the one with the baseline's TELV (29.4 %) is not; the tables
    # showed both verdicts with nothing saying which scan size judged.
    pre = {"flr_ml": 400.0, "telv_ml": 1700.0, "sflr_pct": 100 * 400 / 1700,
           "scan_date": "2024-01-02", "sflr_threshold_pct": 30.0}
    post = {"flr_ml": 500.0, "telv_ml": 1416.0, "sflr_pct": 100 * 500 / 1416,
            "scan_date": "2024-02-06", "sflr_threshold_pct": 30.0}
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    (said,) = [w for w in h.warnings if "estimate the total liver volume differently" in w]
    assert "below the 30 % threshold" in said and "its own sFLR (35.3 %) is not" in said
    same = hypertrophy(pre, dict(post, flr_ml=600.0, sflr_pct=100 * 600 / 1416),
                       procedure_date="2024-01-09")
    (said,) = [w for w in same.warnings if "estimate the total liver volume differently" in w]
    assert "threshold" not in said


def test_a_follow_up_whose_flr_is_the_whole_liver_is_said_to_be_after_the_resection():
    # A CT after the right hepatectomy (liver = remnant) had been compared as a post-PVE
    # scan: KGR 1.44 "below 2 %/week" beside GR 9.22, unsaid.
    post = dict(POST, measured_flr_pct=100.0)
    (said,) = [w for w in hypertrophy(PRE, post, procedure_date="2024-01-09").warnings
               if "resection" in w]
    assert "FLR is 100 % of its functional liver" in said
    assert not [w for w in hypertrophy(PRE, POST, procedure_date="2024-01-09").warnings
                if "resection" in w]


def test_relative_flr_growth_per_day_is_given_for_alpps_series():
    # ALPPS series report growth per day; kgr_pct_per_day is sFLR points per day, which
    # must not be read as the FLR's own relative growth (84.6 % in 10 days: 8.46 %/day).
    pre = dict(PRE, flr_ml=400.0)
    post = dict(POST, flr_ml=400.0 * 1.846, scan_date="2024-01-19")
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert h.interval_days == 10
    assert h.flr_growth_pct_per_day == pytest.approx(8.46)
    assert h.to_dict()["flr_growth_pct_per_day"] == pytest.approx(8.46)


@pytest.mark.parametrize("given", ["pre.json", None])
def test_a_path_or_nothing_for_a_measurement_is_said_to_be_one(given):
    # A path had been read as a measurement without fields: "the follow-up scan date is
    # unknown", which sent the user looking for a date.
    with pytest.raises(InputError, match="must be a Measurement or its to_dict"):
        hypertrophy(given, POST, procedure_date="2024-01-08")
    with pytest.raises(InputError, match="post .*must be a Measurement"):
        hypertrophy(PRE, given, procedure_date="2024-01-08")


def test_from_baseline_date_as_text_is_read_as_the_plans_flags_not_taken_as_true():
    # "false" (from a JSON or YAML file) is a true value: it had counted from the baseline.
    dated = hypertrophy(PRE, POST, procedure_date="2024-01-08")
    assert hypertrophy(PRE, POST, procedure_date="2024-01-08",
                       from_baseline_date="false") == dated
    assert hypertrophy(PRE, POST, procedure_date="2024-01-08",
                       from_baseline_date=None) == dated  # not given
    assert hypertrophy(PRE, POST, from_baseline_date="true") == \
        hypertrophy(PRE, POST, from_baseline_date=True)
    with pytest.raises(InputError, match="from_baseline_date must be true or false"):
        hypertrophy(PRE, POST, from_baseline_date="sometimes")


def test_alpps_registry_criterion_judges_flr_growth_per_day_with_the_entered_hbs():
    # Tomassini 2020: KGR_FLR (the FLR's own growth per day, not sFLR points) <= 4.1 %/day
    # and HBS_FLR <= 2.7 %/min/m^2 mark a high risk; stage 1 on 2024-01-09, 10 days.
    post = dict(POST, scan_date="2024-01-19")  # FLR +40 % in 10 days: 4.0 %/day
    h = hypertrophy(PRE, post, procedure_date="2024-01-09", hbs_pct_per_min_m2=2.4)
    assert h.flr_growth_pct_per_day == pytest.approx(4.0)
    assert h.kgr_pct_per_day == pytest.approx(10.4 / 10)  # the other daily rate, not judged
    assert h.flr_growth_above_4_1pct_per_day is False
    assert h.hbs_pct_per_min_m2 == 2.4 and h.alpps_high_phlf_risk is True
    # Good function alone takes the patient out of the high-risk group.
    assert hypertrophy(PRE, post, procedure_date="2024-01-09",
                       hbs_pct_per_min_m2=3.1).alpps_high_phlf_risk is False
    # Fast growth alone too (FLR +50 %, 4.55 %/day).
    fast = dict(post, flr_ml=600.0, sflr_pct=39.0)
    assert hypertrophy(PRE, fast, procedure_date="2024-01-09",
                       hbs_pct_per_min_m2=2.4).alpps_high_phlf_risk is False


def test_without_hbs_the_alpps_criterion_is_not_judged_and_says_so():
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09")
    assert h.hbs_pct_per_min_m2 is None and h.alpps_high_phlf_risk is None
    assert h.flr_growth_above_4_1pct_per_day is False  # 40 % in 28 days: 1.4 %/day
    assert "not judged" in h.methods["alpps_registry"]


@pytest.mark.parametrize("bad", [0, -2.0, float("nan"), float("inf"), "2,5", True])
def test_a_scintigraphy_value_that_is_no_positive_number_is_refused(bad):
    with pytest.raises(ClinicalInputError, match="scintigraphy function must be a positive"):
        hypertrophy(PRE, POST, procedure_date="2024-01-09", hbs_pct_per_min_m2=bad)


@pytest.mark.parametrize("procedure", ["PVE", "PVL", "PVE+HVE"])
def test_after_another_procedure_than_alpps_the_registry_criterion_is_not_judged(procedure):
    # A PVE patient's growth over weeks is always far below 4.1 %/day: judged, every PVE
    # patient given a scintigraphy had been called at high risk.
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09", hbs_pct_per_min_m2=2.4,
                    procedure=procedure)
    assert h.alpps_high_phlf_risk is None and h.flr_growth_above_4_1pct_per_day is None
    assert any("is not used" in w and f"procedure is {procedure}" in w for w in h.warnings)
    assert f"not judged: the procedure is {procedure}" in h.methods["alpps_registry"]
    alpps = hypertrophy(PRE, POST, procedure_date="2024-01-09", hbs_pct_per_min_m2=2.4,
                        procedure="alpps")
    assert alpps.alpps_high_phlf_risk is True and not alpps.warnings


def test_an_unknown_procedure_or_a_list_of_measurements_is_refused_in_a_sentence():
    # "ALPPS stage 1" or a typo had silently left the ALPPS criterion out.
    with pytest.raises(InputError, match="procedure 'ALPPS stage 1' is unknown; use one of "
                                         "PVE, PVL, PVE\\+HVE, ALPPS"):
        hypertrophy(PRE, POST, procedure_date="2024-01-09", procedure="ALPPS stage 1")
    # A list had been read as a measurement with no field ("the follow-up scan date is
    # unknown").
    with pytest.raises(InputError, match="must be a Measurement or its to_dict\\(\\) form"):
        hypertrophy([PRE], [POST], procedure_date="2024-01-09")


@pytest.mark.parametrize("post_date, said", [("2024-01-13", "4 days"), ("2024-01-14", None),
                                              ("2024-07-09", None), ("2024-07-10", "183 days")])
def test_the_plausible_interval_is_5_to_182_days_inclusive(post_date, said):
    h = hypertrophy(PRE, POST, procedure_date="2024-01-09", post_date=post_date)
    told = [w for w in h.warnings if "after the procedure date" in w]
    assert (told == []) if said is None else any(f"is {said} after" in w for w in told)


def test_a_follow_up_on_the_baseline_day_is_refused():
    with pytest.raises(ClinicalInputError, match="is not after the baseline scan"):
        hypertrophy(PRE, dict(POST, scan_date=PRE["scan_date"]), from_baseline_date=True)


def test_telvs_half_a_millilitre_apart_are_one_estimate():
    # (JSON rounding of one TELV: not another formula, height or weight.)
    pre = dict(PRE, telv_ml=1538.4, sflr_pct=100 * 400.0 / 1538.4)
    for telv_post, recomputed in ((1538.8, False), (1539.0, True)):
        post = dict(POST, telv_ml=telv_post, sflr_pct=100 * 560.0 / telv_post)
        h = hypertrophy(pre, post, procedure_date="2024-01-09")
        assert any("estimate the total liver volume differently" in w
                   for w in h.warnings) is recomputed


@pytest.mark.parametrize("which", ["baseline", "follow-up"])
def test_an_flr_that_is_the_whole_liver_at_either_scan_is_said(which):
    # At the baseline it had given a negative KGR with no word (the follow-up's was said).
    pre, post = dict(PRE), dict(POST)
    (pre if which == "baseline" else post)["measured_flr_pct"] = 100.0
    h = hypertrophy(pre, post, procedure_date="2024-01-09")
    assert sum(f"the {which}'s FLR is 100 % of its functional liver" in w
               for w in h.warnings) == 1
    other = "follow-up" if which == "baseline" else "baseline"
    assert not any(f"the {other}'s FLR is" in w for w in h.warnings)
