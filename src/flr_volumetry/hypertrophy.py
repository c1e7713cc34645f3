"""Growth of the remnant between two measurements (after PVE, PVL or ALPPS).

Degree of hypertrophy and kinetic growth rate after Shindoh (J Am Coll Surg
2013;216:201-9), measured-volume growth rate after Leung (J Am Coll Surg
2014;219:620-30). The interval runs from the procedure date (PVE, or ALPPS
stage 1) to the follow-up scan.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass

from . import clinical
from ._options import as_flag
from .errors import ClinicalInputError, InputError

__all__ = ["Hypertrophy", "baseline_index", "hypertrophy", "parse_date"]


_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_DICOM_DATE = re.compile(r"\d{8}")
_PLAUSIBLE_YEARS = (1900, 2100)


def parse_date(value, what="date"):
    """A ``datetime.date`` from a date, ISO ``YYYY-MM-DD`` or DICOM ``YYYYMMDD`` string.

    Nothing else is read: a shorter run of digits (``160124``, ``2024111``)
    could be several dates, and ``strptime`` would pick one of them without
    a word. Years outside 1900-2100 are refused as typing errors. A missing
    value (None, ``""``, pandas' ``NaT``) gives None.

    Examples
    --------
    >>> parse_date("2024-03-01"), parse_date("20240301")
    (datetime.date(2024, 3, 1), datetime.date(2024, 3, 1))
    >>> parse_date(None) is None
    True
    >>> parse_date("240301")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: date '240301' is not a date; write it as YYYY-MM-DD.
    """
    if value is None or value == "" or value != value:  # NaN and NaT differ from themselves
        return None
    if isinstance(value, _dt.datetime):
        date = value.date()
    elif isinstance(value, _dt.date):
        date = value
    else:
        text = str(value).strip()
        date = None
        for pattern, fmt in ((_ISO_DATE, "%Y-%m-%d"), (_DICOM_DATE, "%Y%m%d")):
            if pattern.fullmatch(text):
                try:
                    date = _dt.datetime.strptime(text, fmt).date()
                except ValueError:
                    pass
        if date is None:
            raise InputError(f"{what} {text!r} is not a date; write it as YYYY-MM-DD.")
    if not _PLAUSIBLE_YEARS[0] <= date.year <= _PLAUSIBLE_YEARS[1]:
        raise InputError(f"{what} {date.isoformat()} is not a plausible scan or procedure "
                         f"date (year outside {_PLAUSIBLE_YEARS[0]}-{_PLAUSIBLE_YEARS[1]}); "
                         f"check it.")
    return date


@dataclass(frozen=True)
class Hypertrophy:
    """Growth between a baseline and a follow-up measurement.

    Two kinds of "% per day" live here: ``kgr_pct_per_day`` and ``gr_pct_per_day``
    are percentage *points* of sFLR or FLR/FLV per day (Shindoh's KGR and Leung's
    GR divided by 7), while ``flr_growth_pct_per_day`` is the FLR's own relative
    growth per day (ALPPS series; the ALPPS registry's KGR_FLR).

    Attributes
    ----------
    procedure_date, pre_scan_date, post_scan_date : str or None
        ISO dates; ``interval_start`` is the procedure date, or the baseline scan
        date when asked for (``methods["interval_start"]`` says which).
    interval_days : int
    flr_pre_ml, flr_post_ml, flr_growth_ml, flr_growth_pct, flr_growth_pct_per_day : float
        The FLR at both scans, its growth in mL, in % of the baseline FLR, and that
        per day.
    sflr_pre_pct, sflr_post_pct : float or None
        The sFLRs DH uses (on one TELV; see ``methods["telv"]``).
    dh_pct_points, kgr_pct_per_week, kgr_pct_per_day : float or None
        Shindoh's degree of hypertrophy and kinetic growth rate.
    kgr_meets_2pct, dh_meets_7_5_pct_points : bool or None
        KGR >= 2 %/week, DH >= 7.5 points.
    measured_flr_pre_pct, measured_flr_post_pct, measured_dh_pct_points : float or None
        FLR/FLV at both scans and its change (Leung).
    gr_pct_per_week, gr_pct_per_day : float or None
        Leung's growth rate; ``gr_meets_2_66pct``: GR above 2.66 %/week.
    flr_growth_above_4_1pct_per_day : bool or None
        The FLR's growth per day above the ALPPS registry's 4.1 %/day (None after
        another procedure than ALPPS).
    hbs_pct_per_min_m2 : float or None
        The FLR's scintigraphic function, as entered.
    alpps_high_phlf_risk : bool or None
        ALPPS registry: growth <= 4.1 %/day and HBS <= 2.7 %/min/m^2; None without HBS.
    warnings : tuple of str
    methods : dict
        Each rule as applied (thresholds with >= or >, the interval, the TELV).
    """

    procedure_date: str | None
    pre_scan_date: str | None
    post_scan_date: str
    interval_start: str
    interval_days: int
    flr_pre_ml: float
    flr_post_ml: float
    flr_growth_ml: float
    flr_growth_pct: float
    flr_growth_pct_per_day: float
    sflr_pre_pct: float | None
    sflr_post_pct: float | None
    dh_pct_points: float | None
    kgr_pct_per_week: float | None
    kgr_pct_per_day: float | None
    kgr_meets_2pct: bool | None
    dh_meets_7_5_pct_points: bool | None
    measured_flr_pre_pct: float | None
    measured_flr_post_pct: float | None
    measured_dh_pct_points: float | None
    gr_pct_per_week: float | None
    gr_pct_per_day: float | None
    gr_meets_2_66pct: bool | None
    # ALPPS registry (Tomassini 2020): the FLR's growth per day against 4.1 %/day, and with
    # the scintigraphic function the user entered, the high-risk verdict.
    flr_growth_above_4_1pct_per_day: bool | None = None
    hbs_pct_per_min_m2: float | None = None
    alpps_high_phlf_risk: bool | None = None
    warnings: tuple[str, ...] = ()
    methods: dict | None = None

    def to_dict(self):
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def _get(m, key):
    return m.get(key) if isinstance(m, dict) else getattr(m, key, None)


def _number(m, key, which):
    """``m[key]`` as a float, or None when absent or NaN (an empty cell of a CSV read by
    pandas); anything else that is not a finite number (a string, true/false,
    infinity) is refused: it would give a wrong figure."""
    value = _get(m, key)
    if value is None or (isinstance(value, numbers.Real) and value != value):
        return None
    # numbers.Real: numpy numbers too (pandas rows); bool is a Real, but no volume.
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        number = math.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(number):
        raise InputError(f"the {which} measurement's {key} is {_shown(value)}, not a number; "
                         f"measure the scan again.")
    if number < 0 and key.endswith("_pct"):  # (volumes: refused by the caller)
        # a negative sFLR or FLR/FLV would give a DH and KGR all the same
        raise InputError(f"the {which} measurement's {key} is {value!r}, a negative number; "
                         f"measure the scan again.")
    return number


def _shown(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


#: Procedures that induce hypertrophy of the remnant (../shared/CLINICAL.md); the study
#: layout's ``procedure`` takes the same.
PROCEDURES = ("PVE", "PVL", "PVE+HVE", "ALPPS")
# TELVs differing by less than this (mL) are the same estimate (JSON rounding).
SAME_TELV_ML = 0.5
# Days from the procedure to a follow-up scan outside which the interval is said: not a
# clinical cut-off, the span of the growth assessments in the literature (ALPPS stage 2 at
# 7-14 days; Shindoh's and Leung's volumetry a few weeks after PVE), with room on each side.
PLAUSIBLE_INTERVAL_DAYS = (5, 182)


def baseline_index(scan_dates, procedure_date):
    """Index of the baseline among scans in date order (ISO dates), for growth since
    ``procedure_date`` (ISO, or None).

    The last scan on or before the procedure when several precede it (a diagnostic
    and a planning scan) and one follows it; otherwise the first. The batch, its
    report and the napari growth widget take the same one.

    Examples
    --------
    >>> baseline_index(["2024-02-26", "2024-03-01", "2024-04-01"], "2024-03-04")
    1
    >>> baseline_index(["2024-02-26", "2024-04-01"], None)
    0
    """
    before = [d for d in scan_dates if procedure_date and d <= procedure_date]
    # (When no scan follows the procedure, the date is likely wrong: the follow-ups then
    # fail with "dated on or before the procedure", as they should.)
    if 1 < len(before) < len(scan_dates):
        return len(before) - 1
    return 0


def _borrowed_telv(missing, other, telv_ml, sflr_pct, warnings):
    """Say that the ``missing`` measurement's sFLR was computed with the ``other``'s TELV;
    returns the methods' TELV entry."""
    warnings.append(f"the {missing} has no sFLR (no height or weight): it is computed with the "
                    f"{other}'s TELV ({telv_ml:.1f} mL), {sflr_pct:.1f} %.")
    return f"the {other}'s ({telv_ml:.1f} mL) for both scans"


def _turned_verdict(own_sflr, common_sflr, post):
    """'; judged on it, ...' when the follow-up's adequacy verdict turns with the TELV (its
    own sFLR on one side of its threshold, the one with the baseline's TELV on the other)."""
    threshold = _number(post, "sflr_threshold_pct", "follow-up")
    if threshold is None:
        return ""
    common_ok = clinical.meets(common_sflr, threshold)
    if common_ok == clinical.meets(own_sflr, threshold):
        return ""
    side = "at or above" if common_ok else "below"
    return (f"; judged on it, the follow-up is {side} the {threshold:g} % threshold while its "
            f"own sFLR ({clinical.shown_against(own_sflr, threshold)} %) is not: decide which "
            f"body size holds")


def _tumour_at_one_scan(pre, post, warnings):
    """Say when one scan's FLV subtracts a tumour and the other's is the whole liver: GR
    then compares FLR/(TLV - tumour) with FLR/TLV, not growth alone."""
    tumour_pre = _number(pre, "tumor_ml", "baseline")
    tumour_post = _number(post, "tumor_ml", "follow-up")
    # (an empty tumour mask subtracts nothing: as none)
    if bool(tumour_pre) == bool(tumour_post):
        return
    without, other, tumour_ml = (("baseline", "follow-up", tumour_post) if not tumour_pre
                                 else ("follow-up", "baseline", tumour_pre))
    warnings.append(f"the {without} has no tumour mask, so its FLV is the whole liver, while "
                    f"the {other}'s subtracts its tumour ({tumour_ml:.1f} mL): the measured "
                    f"ratios (FLR/FLV) and GR compare two definitions; give both scans a "
                    f"tumour mask, or neither.")


def _interval(pre_scan, post_scan, procedure, from_baseline_date, warnings):
    """(start, its name, days) of the growth interval: from the procedure, or from the
    baseline scan when asked for; the dates' order checked, an unusual length said in
    ``warnings``."""
    if post_scan is None:
        raise ClinicalInputError(
            "the follow-up scan date is unknown; give it with --post-date YYYY-MM-DD "
            "(post_date in Python)."
        )
    if procedure is None:
        if not from_baseline_date:
            raise ClinicalInputError(
                "the procedure date is unknown; give it (--procedure-date, procedure_date in "
                "Python: PVE or ALPPS stage 1), or ask explicitly to count from the baseline "
                "scan date (--from-baseline-date, from_baseline_date=True)."
            )
        if pre_scan is None:
            raise ClinicalInputError(
                "neither the procedure date nor the baseline scan date is known; give one."
            )
        start, start_name = pre_scan, "baseline scan date"
        warnings.append("no procedure date: the interval counts from the baseline scan date, "
                        "as asked; KGR is then not Shindoh's KGR.")
    else:
        start, start_name = procedure, "procedure date"
    if pre_scan is not None and post_scan <= pre_scan:
        raise ClinicalInputError(
            f"the follow-up scan ({post_scan}) is not after the baseline scan ({pre_scan}); "
            f"check the dates or the order of the files."
        )
    if pre_scan is not None and procedure is not None and pre_scan > procedure:
        # (the batch refuses such a patient alike: "no scan precedes the procedure")
        raise ClinicalInputError(
            f"the baseline scan ({pre_scan}) is after the procedure ({procedure}): it already "
            f"holds part of the growth, so DH and KGR since the procedure would be too low; "
            f"compare with a scan taken before the procedure (or, to compare two later scans, "
            f"give no procedure date and count from the baseline scan: --from-baseline-date)."
        )
    if pre_scan is None and procedure is not None:
        # A baseline taken after the procedure would already hold part of the growth.
        warnings.append("the baseline scan date is unknown, so whether the baseline precedes "
                        "the procedure is not checked; give it (--pre-date, pre_date in "
                        "Python).")
    interval_days = (post_scan - start).days
    if interval_days <= 0:
        raise ClinicalInputError(
            f"the follow-up scan ({post_scan}) is dated on or before the {start_name} "
            f"({start}); growth cannot be computed."
        )
    if not PLAUSIBLE_INTERVAL_DAYS[0] <= interval_days <= PLAUSIBLE_INTERVAL_DAYS[1]:
        # A day after the PVE, KGR had been 90 %/week; six years after, 0.04 %/week: both
        # unsaid, and a date typed a year off looks the same.
        warnings.append(
            f"the follow-up scan is {interval_days} days after the {start_name}, outside the "
            f"{PLAUSIBLE_INTERVAL_DAYS[0]}-{PLAUSIBLE_INTERVAL_DAYS[1]} days of growth "
            f"assessments (ALPPS stage 2 at 7-14 days, volumetry 3-8 weeks after PVE): check "
            f"the dates; KGR and GR per week are "
            + ("dominated by measurement error over so few days." if interval_days
               < PLAUSIBLE_INTERVAL_DAYS[0] else "averaged over growth long finished.")
        )
    return start, start_name, interval_days


def _sflrs_on_one_telv(pre, post, flr_pre, flr_post, warnings):
    """(baseline sFLR, follow-up sFLR, how the TELV was chosen): both on one TELV, so that
    DH counts growth only -- the follow-up recomputed with the baseline's when the two
    differ, a missing one computed with the other's -- each change said in ``warnings``;
    an sFLR that contradicts its own FLR and TELV is refused."""
    sflr_pre, sflr_post = _number(pre, "sflr_pct", "baseline"), _number(post, "sflr_pct",
                                                                         "follow-up")
    telv_pre, telv_post = _number(pre, "telv_ml", "baseline"), _number(post, "telv_ml",
                                                                       "follow-up")
    for which, flr, sflr, telv in (("baseline", flr_pre, sflr_pre, telv_pre),
                                   ("follow-up", flr_post, sflr_post, telv_post)):
        # A measurement edited by hand: its own FLR and TELV say what its sFLR is.
        if sflr is None or telv is None or not telv > 0:
            continue
        own = clinical.sflr_pct(flr, telv)
        if not math.isclose(sflr, own, rel_tol=1e-3, abs_tol=0.01):
            raise InputError(f"the {which} measurement's sflr_pct {_shown(sflr)} does not "
                             f"match its flr_ml / telv_ml ({own:.1f} %); measure the scan "
                             f"again.")
    telv_method = "each measurement's own"
    if sflr_pre is not None and sflr_post is not None and (telv_pre is None) != (telv_post is None):
        warnings.append("only one measurement records its TELV (telv_ml), so it cannot be "
                        "checked that both sFLRs use the same estimate; DH and KGR assume so.")
    if (sflr_post is not None and telv_pre is not None and telv_post is not None
            and abs(telv_post - telv_pre) > SAME_TELV_ML):
        # DH subtracts two ratios: with different denominators (another TELV formula,
        # height or weight) part of the "growth" would be the change of estimate.
        own_sflr_post, sflr_post = sflr_post, clinical.sflr_pct(flr_post, telv_pre)
        telv_method = f"the baseline's ({telv_pre:.1f} mL) for both scans"
        warnings.append(
            f"the measurements estimate the total liver volume differently (TELV "
            f"{telv_pre:.1f} mL at baseline, {telv_post:.1f} mL at follow-up: another formula, "
            f"height or weight); the follow-up sFLR is recomputed with the baseline TELV "
            f"({sflr_post:.1f} %), so that DH and KGR measure growth only"
            f"{_turned_verdict(own_sflr_post, sflr_post, post)}."
        )
    if (sflr_pre is None) != (sflr_post is None):
        # Body size was not given at one scan (a header without height, a weight not typed
        # again): the other scan's TELV gives its sFLR, as when the estimates differ.
        if sflr_pre is None and telv_post is not None:
            sflr_pre = clinical.sflr_pct(flr_pre, telv_post)
            telv_method = _borrowed_telv("baseline", "follow-up", telv_post, sflr_pre, warnings)
        elif sflr_post is None and telv_pre is not None:
            sflr_post = clinical.sflr_pct(flr_post, telv_pre)
            telv_method = _borrowed_telv("follow-up", "baseline", telv_pre, sflr_post, warnings)
    return sflr_pre, sflr_post, telv_method


def hypertrophy(pre, post, *, procedure_date=None, pre_date=None, post_date=None,
                from_baseline_date=False, allow_baseline_date=None, hbs_pct_per_min_m2=None,
                procedure=None):
    """Degree of hypertrophy, KGR and GR between two measurements.

    Parameters
    ----------
    pre, post : Measurement or dict
        Baseline and follow-up (``Measurement`` or its ``to_dict()`` form,
        e.g. read back from a ``measure --json`` file). Both need ``flr_ml``.
    procedure_date : date or str
        PVE / PVL / ALPPS stage-1 date; the interval starts here.
    pre_date, post_date : date or str, optional
        Scan dates; override those stored in the measurements.
    from_baseline_date : bool
        Without a procedure date, count the interval from the baseline scan
        instead (only when the user asks for it; the result says so). The
        name of ``BatchOptions`` and of the command line's option.
    allow_baseline_date : bool, optional
        The former name of ``from_baseline_date``, still read.
    hbs_pct_per_min_m2 : float, optional
        After ALPPS stage 1: the FLR's function on hepatobiliary scintigraphy
        (%/min/m^2, measured outside this tool). With it, the ALPPS registry
        criterion (Tomassini 2020) is judged: the FLR's growth per day at most
        4.1 %/day and this at most 2.7 %/min/m^2 mark a high risk of liver
        failure (``alpps_high_phlf_risk``).
    procedure : str, optional
        PVE, PVL, PVE+HVE or ALPPS. The ALPPS registry criterion is for ALPPS:
        after another procedure known here it is not judged (its fields None),
        and a scintigraphy given is said to be unused.

    Returns
    -------
    Hypertrophy

    Examples
    --------
    >>> pre = {"flr_ml": 400.0, "sflr_pct": 25.0, "measured_flr_pct": 20.0,
    ...        "functional_liver_ml": 2000.0}
    >>> post = {"flr_ml": 520.0, "sflr_pct": 33.0, "measured_flr_pct": 28.0,
    ...         "functional_liver_ml": 1857.0}
    >>> h = hypertrophy(pre, post, procedure_date="2024-01-01", post_date="2024-01-29")
    >>> h.interval_days, h.dh_pct_points, h.kgr_pct_per_week, h.kgr_meets_2pct
    (28, 8.0, 2.0, True)
    >>> h.gr_pct_per_week, h.gr_meets_2_66pct
    (2.0, False)

    After ALPPS stage 1 (7 days), with the FLR's scintigraphic function:

    >>> h = hypertrophy(pre, post, procedure_date="2024-01-01", post_date="2024-01-08",
    ...                 hbs_pct_per_min_m2=2.5)
    >>> h.flr_growth_pct_per_day, h.flr_growth_above_4_1pct_per_day, h.alpps_high_phlf_risk
    (4.285714285714286, True, False)
    """
    for m, which in ((pre, "pre (the baseline)"), (post, "post (the follow-up)")):
        # A path (the command line takes files) or None had been read as a measurement
        # with no field: "the follow-up scan date is unknown", not what was wrong.
        if m is None or isinstance(m, (str, bytes, os.PathLike, list, tuple)):
            raise InputError(f"{which} must be a Measurement or its to_dict() form (a "
                             f"measure --json file read with json.load), not "
                             f"{type(m).__name__}.")
    # "false" from a JSON or YAML file is a true value: it had counted KGR from the baseline
    # scan date. Read as the plan's and the study's flags are.
    from_baseline_date = (False if from_baseline_date is None  # (None: not given)
                          else as_flag(from_baseline_date, "from_baseline_date"))
    if allow_baseline_date is not None:
        allow_baseline_date = as_flag(allow_baseline_date, "allow_baseline_date")
    warnings = []
    hbs = clinical.check_hbs(hbs_pct_per_min_m2)  # (refused before any date is read)
    # Growth spread over weeks after a PVE is always far below ALPPS's 4.1 %/day: judged
    # there, every PVE patient given a scintigraphy had been called at high risk.
    proc = None if procedure is None else str(procedure).strip().upper()
    if proc is not None and proc not in PROCEDURES:
        # "ALPPS stage 1" or "ALLPS" had silently left the ALPPS criterion out.
        raise InputError(f"procedure {procedure!r} is unknown; use one of "
                         f"{', '.join(PROCEDURES)} (or None).")
    alpps = proc in (None, "ALPPS")
    if not alpps and hbs is not None:
        warnings.append(f"the scintigraphic function ({hbs:g} %/min/m^2) is not used: the "
                        f"ALPPS registry criterion is for ALPPS, and the procedure is "
                        f"{procedure}.")
    pre_scan = parse_date(pre_date if pre_date is not None else _get(pre, "scan_date"),
                          "baseline scan date")
    post_scan = parse_date(post_date if post_date is not None else _get(post, "scan_date"),
                           "follow-up scan date")
    procedure_day = parse_date(procedure_date, "procedure date")
    start, start_name, interval_days = _interval(
        pre_scan, post_scan, procedure_day, from_baseline_date or allow_baseline_date, warnings)

    flr_pre, flr_post = _number(pre, "flr_ml", "baseline"), _number(post, "flr_ml", "follow-up")
    if flr_pre is None or flr_post is None:
        raise InputError("both measurements need an FLR volume (flr_ml); measure them with an FLR.")
    if flr_pre <= 0 or flr_post <= 0:
        raise InputError(f"the {'baseline' if flr_pre <= 0 else 'follow-up'} FLR volume must be "
                         f"positive.")

    sflr_pre, sflr_post, telv_method = _sflrs_on_one_telv(pre, post, flr_pre, flr_post,
                                                          warnings)
    dh = kgr = None
    if sflr_pre is None or sflr_post is None:
        warnings.append("sFLR is missing from a measurement (no height or weight was given, "
                        "or the value is empty): DH and KGR are not computed.")
    else:
        dh = sflr_post - sflr_pre
        kgr = clinical.kgr_pct_per_week(dh, interval_days)
    m_pre = _number(pre, "measured_flr_pct", "baseline")
    m_post = _number(post, "measured_flr_pct", "follow-up")
    mdh = gr = None
    for which, value in (("baseline", m_pre), ("follow-up", m_post)):
        if value is None:
            warnings.append(f"the {which} measurement has no measured FLR share "
                            f"(measured_flr_pct): GR is not computed.")
    if m_pre is not None and m_post is not None:
        mdh = m_post - m_pre
        gr = clinical.kgr_pct_per_week(mdh, interval_days)
        _tumour_at_one_scan(pre, post, warnings)
    if clinical.after_resection(m_pre):
        # Said of the follow-up only, a baseline FLR mask of the whole liver had given a
        # negative KGR with no word.
        warnings.append(f"the baseline's FLR is {m_pre:.0f} % of its functional liver: an "
                        f"FLR mask that is the whole liver (or a scan after the resection)? "
                        f"DH, KGR and GR from it do not measure the remnant's growth.")
    if clinical.after_resection(m_post):
        warnings.append(f"the follow-up's FLR is {m_post:.0f} % of its functional liver: a "
                        f"scan after the resection (or an FLR mask that is the whole liver)? "
                        f"Growth since the procedure is measured on scans before the "
                        f"resection.")

    growth_pct = 100.0 * (flr_post - flr_pre) / flr_pre
    growth_pct_per_day = growth_pct / interval_days
    methods = {
        "interval_start": start_name,
        # The comparison as judged (>= or >), not only the number: a value exactly at a
        # threshold is read from here.
        "dh": f"sFLR_post - sFLR_pre (percentage points; Shindoh 2013, met at >= "
              f"{clinical.DH_THRESHOLD_PCT_POINTS:g})",
        "telv": telv_method,
        "kgr": f"DH / (interval_days / 7) (%/week; Shindoh 2013, met at >= "
               f"{clinical.KGR_THRESHOLD_PCT_PER_WEEK:g})",
        "gr": f"(FLR/FLV)_post - (FLR/FLV)_pre per week (Leung 2014, met above "
              f"{clinical.GR_THRESHOLD_PCT_PER_WEEK:g}, > not >=)",
        "alpps_registry": f"ALPPS registry (Tomassini 2020): high risk of liver failure after "
                          f"stage 2 when the FLR's growth per day (flr_growth_pct_per_day, "
                          f"not sFLR points) is at most "
                          f"{clinical.ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY:g} %/day and its "
                          f"scintigraphic function (hbs_pct_per_min_m2, entered) at most "
                          f"{clinical.ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2:g} %/min/m^2; "
                          + ("judged" if alpps and hbs is not None else
                             f"not judged: the procedure is {procedure}" if not alpps else
                             "not judged: no scintigraphic function was entered"),
    }
    return Hypertrophy(
        procedure_date=None if procedure_day is None else procedure_day.isoformat(),
        pre_scan_date=None if pre_scan is None else pre_scan.isoformat(),
        post_scan_date=post_scan.isoformat(), interval_start=start.isoformat(),
        interval_days=interval_days,
        flr_pre_ml=flr_pre, flr_post_ml=flr_post, flr_growth_ml=(flr_post - flr_pre),
        flr_growth_pct=growth_pct,
        # The FLR's own growth per day (ALPPS series); kgr_pct_per_day is sFLR points.
        flr_growth_pct_per_day=growth_pct_per_day,
        sflr_pre_pct=sflr_pre, sflr_post_pct=sflr_post, dh_pct_points=(dh),
        kgr_pct_per_week=(kgr),
        kgr_pct_per_day=(None if kgr is None else clinical.pct_per_week_to_pct_per_day(kgr)),
        kgr_meets_2pct=None if kgr is None else clinical.meets(
            kgr, clinical.KGR_THRESHOLD_PCT_PER_WEEK),
        dh_meets_7_5_pct_points=None if dh is None else clinical.meets(
            dh, clinical.DH_THRESHOLD_PCT_POINTS),
        measured_flr_pre_pct=m_pre, measured_flr_post_pct=m_post,
        measured_dh_pct_points=(mdh), gr_pct_per_week=(gr),
        gr_pct_per_day=(None if gr is None else clinical.pct_per_week_to_pct_per_day(gr)),
        gr_meets_2_66pct=None if gr is None else clinical.meets(
            gr, clinical.GR_THRESHOLD_PCT_PER_WEEK, strictly=True),
        flr_growth_above_4_1pct_per_day=clinical.meets(
            growth_pct_per_day, clinical.ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY,
            strictly=True) if alpps else None,
        hbs_pct_per_min_m2=hbs,
        alpps_high_phlf_risk=(clinical.alpps_high_phlf_risk(growth_pct_per_day, hbs)
                              if alpps else None),
        warnings=tuple(warnings), methods=methods,
    )
