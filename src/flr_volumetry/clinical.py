"""Clinical formulas: plain numbers in, plain numbers out.

Every formula cites its source; ``../shared/CLINICAL.md`` in the project's
steering folder holds the full reference. Units are in every name:
``height_cm``, ``weight_kg``, ``bsa_m2``, ``*_ml``, ``*_pct``,
``*_pct_points``, ``*_pct_per_week``.

Examples
--------
>>> round(bsa_m2(170, 70), 4)
1.8181
>>> round(telv_ml(170, 70), 1)
1509.7
>>> round(sflr_pct(450.0, telv_ml(170, 70)), 2)
29.81
"""

from __future__ import annotations

import math
import numbers

from .errors import ClinicalInputError

__all__ = [
    "BSA_FORMULAS",
    "TELV_FORMULAS",
    "LIVER_CONDITIONS",
    "KGR_THRESHOLD_PCT_PER_WEEK",
    "GR_THRESHOLD_PCT_PER_WEEK",
    "DH_THRESHOLD_PCT_POINTS",
    "FLR_BW_RATIO_THRESHOLD_PCT",
    "ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY",
    "ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2",
    "check_body_size",
    "check_height",
    "check_weight",
    "after_resection",
    "formula_key",
    "bsa_m2",
    "telv_ml",
    "sflr_pct",
    "measured_flr_pct",
    "flr_bw_ratio_pct",
    "sflr_threshold_pct",
    "sflr_adequate",
    "flr_bw_adequate",
    "kgr_pct_per_week",
    "pct_per_week_to_pct_per_day",
    "check_hbs",
    "alpps_high_phlf_risk",
]

#: Shindoh, J Am Coll Surg 2013;216:201-9: KGR < 2 %/week -> PHLF 21.6 % vs 0 %.
KGR_THRESHOLD_PCT_PER_WEEK = 2.0
#: Leung, J Am Coll Surg 2014;219:620-30: no PHLF with measured GR > 2.66 %/week.
GR_THRESHOLD_PCT_PER_WEEK = 2.66
#: Shindoh 2013: degree of hypertrophy cut-off, percentage points of sFLR.
DH_THRESHOLD_PCT_POINTS = 7.5
#: FLR to body-weight ratio target common in ALPPS series (assumes 1 g/mL).
FLR_BW_RATIO_THRESHOLD_PCT = 0.5
#: ALPPS registry (Tomassini, HPB 2020, doi:10.1016/j.hpb.2020.01.010): the FLR's daily
#: volume gain (KGR_FLR, % of the first-stage FLR per day) at most 4.1 %/day together with
#: its hepatobiliary scintigraphy function (HBS_FLR) at most 2.7 %/min/m^2 marks a high
#: risk of liver failure after ALPPS stage 2. HBS is measured outside this tool.
ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY = 4.1
ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2 = 2.7
#: Measured FLR/FLV (%) from which a scan shows no liver left to resect: taken after the
#: resection (or given an FLR mask that is the whole liver). Not a clinical cut-off: the
#: smallest standard resection (left lateral sectionectomy) leaves about 75-85 %.
AFTER_RESECTION_FLR_PCT = 95.0

#: sFLR adequacy thresholds (%) by the state of the liver parenchyma.
LIVER_CONDITIONS = {"normal": 20.0, "chemotherapy": 30.0, "steatosis": 30.0, "cirrhosis": 40.0,
                    "fibrosis": 40.0}

# Plausible adult ranges; outside them a typo (metres for cm, lb for kg) is
# far more likely than a real patient, so we refuse rather than compute.
_HEIGHT_CM_RANGE = (100.0, 250.0)
_WEIGHT_KG_RANGE = (25.0, 350.0)


def check_body_size(height_cm, weight_kg):
    """Refuse heights and weights that are implausible for an adult.

    Parameters
    ----------
    height_cm : float
        Body height in centimetres.
    weight_kg : float
        Body weight in kilograms.

    Raises
    ------
    ClinicalInputError
        With a sentence naming the implausible value.

    Examples
    --------
    >>> check_body_size(170, 70)
    >>> check_body_size(1.70, 70)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.ClinicalInputError: height 1.7 cm is implausible for an adult (expected 100-250 cm); give the height in centimetres.
    """
    check_height(height_cm)
    check_weight(weight_kg)


def check_height(height_cm):
    """Refuse a height that is implausible for an adult (as :func:`check_body_size`).

    Examples
    --------
    >>> check_height(172)
    """
    _check_in_range(height_cm, _HEIGHT_CM_RANGE, "height", "cm", "centimetres")


def check_weight(weight_kg):
    """Refuse a weight that is implausible for an adult (as :func:`check_body_size`), for a
    patient whose height is not known (FLR/body weight needs no height).

    Examples
    --------
    >>> check_weight(70)
    >>> check_weight(70000)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.ClinicalInputError: weight 70000 kg is implausible for an adult (expected 25-350 kg); give the weight in kilograms.
    """
    _check_in_range(weight_kg, _WEIGHT_KG_RANGE, "weight", "kg", "kilograms")


def _check_in_range(value, low_high, what, unit, unit_words):
    low, high = low_high
    number = _number(value)
    if number is None and value is not None:
        # Text that spells no number, a list, True: float() had raised a bare ValueError or
        # TypeError from here, not the sentence every other wrong value gets.
        raise ClinicalInputError(f"{what} must be a number of {unit_words}, got {value!r}.")
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise ClinicalInputError(
            f"{what} {value} {unit} is implausible for an adult "
            f"(expected {low:g}-{high:g} {unit}); give the {what} in {unit_words}."
        )


def _mosteller(h, w):
    # Mosteller, N Engl J Med 1987;317:1098.
    return math.sqrt(h * w / 3600.0)


def _dubois(h, w):
    # DuBois & DuBois, Arch Intern Med 1916;17:863.
    return 0.007184 * h**0.725 * w**0.425


def _haycock(h, w):
    # Haycock et al., J Pediatr 1978;93:62.
    return 0.024265 * h**0.3964 * w**0.5378


def _gehan_george(h, w):
    # Gehan & George, Cancer Chemother Rep 1970;54:225.
    return 0.0235 * h**0.42246 * w**0.51456


def _boyd(h, w):
    # Boyd 1935; weight in grams inside the exponent.
    wg = w * 1000.0
    return 0.0003207 * h**0.3 * wg ** (0.7285 - 0.0188 * math.log10(wg))


BSA_FORMULAS = {
    "mosteller": _mosteller,
    "dubois": _dubois,
    "haycock": _haycock,
    "gehan_george": _gehan_george,
    "boyd": _boyd,
}


def formula_key(name):
    """The canonical name of a BSA or TELV formula as typed (``"Korean-Dubois"`` ->
    ``"korean_dubois"``); whether it exists is checked where it is used."""
    return str(name).strip().lower().replace("-", "_")


def _choose(table, name, what):
    key = formula_key(name)
    if key not in table:
        raise ClinicalInputError(
            f"unknown {what} formula {name!r}; choose one of: {', '.join(sorted(table))}."
        )
    return key


def bsa_m2(height_cm, weight_kg, formula="mosteller"):
    """Body surface area in m^2.

    Parameters
    ----------
    height_cm, weight_kg : float
        Body height (cm) and weight (kg).
    formula : {'mosteller', 'dubois', 'haycock', 'gehan_george', 'boyd'}
        Mosteller (default), DuBois & DuBois, Haycock, Gehan & George, Boyd.

    Examples
    --------
    >>> round(bsa_m2(170, 70, "dubois"), 4)
    1.8097
    """
    check_body_size(height_cm, weight_kg)
    key = _choose(BSA_FORMULAS, formula, "BSA")
    return BSA_FORMULAS[key](float(height_cm), float(weight_kg))


# TELV formulas: name -> (function of (bsa_m2, height_cm, weight_kg), BSA formula
# it requires or None when the user's BSA choice applies, citation).
TELV_FORMULAS = {
    # Vauthey, Liver Transpl 2002;8:233. The BSA formula of the derivation is
    # not confirmed: the user's BSA choice applies (Mosteller by default).
    "vauthey": (lambda bsa, h, w: -794.41 + 1267.28 * bsa, None,
                "Vauthey, Liver Transpl 2002;8:233"),
    "urata": (lambda bsa, h, w: 706.2 * bsa + 2.4, None,
              "Urata, Hepatology 1995;21:1317 (Japanese adults)"),
    "heinemann": (lambda bsa, h, w: 1072.8 * bsa - 345.7, None,
                  "Heinemann, Liver Transpl Surg 1999;5:366 (German autopsy series)"),
    "yu": (lambda bsa, h, w: 21.585 * w**0.732 * h**0.225, None,
           "Yu, Liver Transpl 2004;10:779 (Korean; weight and height, no BSA)"),
    "korean_dubois": (lambda bsa, h, w: 908.204 * bsa - 464.728, "dubois",
                      "Korean living donors, DuBois BSA"),
    "korean_mosteller": (lambda bsa, h, w: 893.485 * bsa - 439.169, "mosteller",
                         "Korean living donors, Mosteller BSA"),
    "feng": (lambda bsa, h, w: 758.259 * bsa - 124.272, None,
             "Feng, 2017 (Chinese adults)"),
}


def telv_bsa_formula(telv_formula, bsa_formula="mosteller"):
    """The BSA formula that a TELV formula actually uses.

    Some TELV formulas were derived with a specific BSA formula and fix it;
    the others use the caller's choice.

    Examples
    --------
    >>> telv_bsa_formula("korean_dubois", "mosteller")
    'dubois'
    >>> telv_bsa_formula("vauthey", "haycock")
    'haycock'
    """
    key = _choose(TELV_FORMULAS, telv_formula, "TELV")
    fixed = TELV_FORMULAS[key][1]
    return fixed or _choose(BSA_FORMULAS, bsa_formula, "BSA")


def telv_ml(height_cm, weight_kg, formula="vauthey", bsa_formula="mosteller"):
    """Total estimated liver volume (mL) from body size.

    Parameters
    ----------
    height_cm, weight_kg : float
        Body height (cm) and weight (kg).
    formula : str
        One of ``TELV_FORMULAS``: 'vauthey' (default), 'urata', 'heinemann',
        'yu', 'korean_dubois', 'korean_mosteller', 'feng'.
    bsa_formula : str
        BSA formula for TELV formulas that do not fix their own.

    Examples
    --------
    >>> round(telv_ml(170, 70, "urata"), 1)
    1286.4
    >>> round(telv_ml(170, 70, "yu"), 1)
    1536.8
    """
    key = _choose(TELV_FORMULAS, formula, "TELV")
    bsa = bsa_m2(height_cm, weight_kg, telv_bsa_formula(key, bsa_formula))
    return TELV_FORMULAS[key][0](bsa, float(height_cm), float(weight_kg))


def _number(value):
    """``value`` as a float (text from a CSV as the number it spells, as ``bsa_m2`` and
    ``Patient`` take it), or None when it is no number (None, True/False, other text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        return None


def _positive(value, name):
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ClinicalInputError(f"{name} must be a positive number of mL, got {value}.")
    return number


def _volume(value, name):
    """A measured volume: finite and not negative (0 is an empty FLR, a real answer)."""
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ClinicalInputError(f"{name} must be a number of mL (0 or more), got {value}.")
    return number


def sflr_pct(flr_ml, telv_ml):
    """Standardized FLR (%) = FLR / TELV * 100 (Vauthey; Shindoh).

    Examples
    --------
    >>> sflr_pct(400, 1600)
    25.0
    """
    telv_ml = _positive(telv_ml, "TELV")
    flr_ml = _volume(flr_ml, "the FLR volume")
    return 100.0 * flr_ml / telv_ml


def measured_flr_pct(flr_ml, functional_liver_ml):
    """Measured FLR ratio (%) = FLR / (TLV - tumour) * 100 (Leung, MSKCC).

    Examples
    --------
    >>> measured_flr_pct(500, 2000)
    25.0
    """
    functional_liver_ml = _positive(functional_liver_ml, "functional liver volume")
    flr_ml = _volume(flr_ml, "the FLR volume")
    if flr_ml > functional_liver_ml * (1.0 + 1e-9):
        # The remnant is part of the functional liver: arguments swapped had given 500 %.
        raise ClinicalInputError(f"the FLR ({flr_ml:g} mL) is larger than the functional "
                                 f"liver ({functional_liver_ml:g} mL) it is part of; are the "
                                 f"two swapped?")
    return 100.0 * flr_ml / functional_liver_ml


def flr_bw_ratio_pct(flr_ml, weight_kg):
    """FLR to body weight ratio (%) = FLR(mL) / (W kg * 1000) * 100, at 1 g/mL.

    Examples
    --------
    >>> flr_bw_ratio_pct(350, 70)
    0.5
    """
    weight = _number(weight_kg)
    if weight is None or not weight > 0 or not math.isfinite(weight):  # NaN too
        raise ClinicalInputError(f"weight must be positive, got {weight_kg} kg.")
    # As Patient and bsa_m2 refuse it: a weight in grams had given 0.0005 %.
    check_weight(weight)
    flr_ml = _volume(flr_ml, "the FLR volume")
    return 100.0 * flr_ml / (weight * 1000.0)


def sflr_threshold_pct(liver_condition="normal"):
    """Minimum adequate sFLR (%) for the state of the liver.

    20 % normal liver, 30 % after extensive chemotherapy (> 3 months) or
    steatosis, 40 % cirrhosis or fibrosis.

    Examples
    --------
    >>> sflr_threshold_pct("chemotherapy")
    30.0
    """
    key = str(liver_condition).strip().lower()  # as Patient stores it: " Normal" too
    if key not in LIVER_CONDITIONS:
        raise ClinicalInputError(
            f"unknown liver condition {liver_condition!r}; choose one of: "
            f"{', '.join(LIVER_CONDITIONS)}."
        )
    return LIVER_CONDITIONS[key]


# Figures closer than this (in %, % points or %/week) to a cut-off are taken as equal to
# it: percentages differenced in floating point land 1e-15 off a cut-off they equal.
CUTOFF_TOLERANCE = 1e-9


def meets(value, cutoff, *, strictly=False):
    """Whether ``value`` reaches ``cutoff`` (>=; > with ``strictly``), a value equal to it
    within floating-point rounding counting as equal; None when there is no value (None,
    or NaN: an empty cell of a CSV read by pandas), not a verdict of "below".

    Examples
    --------
    >>> 33.3 - 25.3 >= 8.0      # 8 % points, as floating point computes it
    False
    >>> meets(33.3 - 25.3, 8.0)
    True
    >>> meets(32.34 - 21.7, 10.64, strictly=True)   # not above: equal
    False
    >>> meets(float("nan"), 20.0) is None
    True
    """
    if value is None or value != value:
        return None
    number = _number(value)  # text from a CSV as the number it spells, as the formulas take it
    if number is None:
        raise ClinicalInputError(f"{value!r} is not a number to compare with {cutoff:g}.")
    if strictly:
        return bool(number > cutoff + CUTOFF_TOLERANCE)
    return bool(number >= cutoff - CUTOFF_TOLERANCE)


def after_resection(measured_flr_pct):
    """Whether a scan's measured FLR/FLV (%) leaves no liver to resect: the scan was taken
    after the resection (or given an FLR mask that is the whole liver). False without one.

    Examples
    --------
    >>> after_resection(100.0), after_resection(62.0), after_resection(None)
    (True, False, False)
    """
    return measured_flr_pct is not None and measured_flr_pct >= AFTER_RESECTION_FLR_PCT


def shown_against(value, cutoff, digits=1, *, strictly=False):
    """``value`` as text with enough decimals that it does not seem to cross ``cutoff``
    when it does not (29.97 shown as "30.0" beside "inadequate" contradicts itself); a
    value within rounding of the cut-off counts as the cut-off (``meets``).

    Examples
    --------
    >>> shown_against(1.996, 2.0, 2), shown_against(2.6649, 2.66, 2, strictly=True)
    ('1.996', '2.665')
    >>> shown_against(25.04, 20.0)
    '25.0'
    """
    ok = meets(value, cutoff, strictly=strictly)
    while digits < 9 and meets(round(value, digits), cutoff, strictly=strictly) != ok:
        digits += 1
    if meets(round(value, digits), cutoff, strictly=strictly) != ok:
        return f"{cutoff:.{digits}f}" if ok else f"<{cutoff:.{digits}f}"
    return f"{value:.{digits}f}"


def sflr_adequate(sflr_pct, liver_condition="normal"):
    """Whether an sFLR meets the threshold for the liver condition (None without an sFLR).

    Examples
    --------
    >>> sflr_adequate(25.0, "normal"), sflr_adequate(25.0, "chemotherapy")
    (True, False)
    """
    return meets(sflr_pct, sflr_threshold_pct(liver_condition))


def flr_bw_adequate(flr_bw_ratio_pct):
    """Whether an FLR to body weight ratio (%) is above the 0.5 % target (None without one).

    "Above", as CLINICAL.md and the ALPPS series state it: a ratio of
    exactly 0.5 % does not pass.

    Examples
    --------
    >>> flr_bw_adequate(0.62), flr_bw_adequate(0.5)
    (True, False)
    """
    return meets(flr_bw_ratio_pct, FLR_BW_RATIO_THRESHOLD_PCT, strictly=True)


def kgr_pct_per_week(dh_pct_points, interval_days):
    """Growth per week from a change in percentage points over an interval.

    Used both for KGR (Shindoh: DH of sFLR) and for GR (Leung: DH of the
    measured ratio): ``dh / (interval_days / 7)``.

    Examples
    --------
    >>> kgr_pct_per_week(8.0, 28)
    2.0
    """
    # numpy's timedelta64 has no .days, and float() of one gives its count of ticks: 28 days
    # in nanoseconds had given a KGR of 2e-14 %/week.
    if (hasattr(interval_days, "days") and not isinstance(interval_days, numbers.Number)) or \
            type(interval_days).__name__ == "timedelta64":
        # A timedelta (or pandas Timedelta) had been refused as "got 28 days 00:00:00 days".
        raise ClinicalInputError(f"give the interval as a number of days (e.g. its .days), "
                                 f"not a {type(interval_days).__name__}.")
    days, dh = _number(interval_days), _number(dh_pct_points)
    # NaN (an empty cell of a CSV read by pandas) had given a NaN rate, and an infinite
    # interval a rate of 0: neither is a growth rate.
    if dh is None or not math.isfinite(dh):
        raise ClinicalInputError(f"the change must be a number of % points, got "
                                 f"{dh_pct_points!r}.")
    if days is None or not days > 0 or not math.isfinite(days):
        raise ClinicalInputError(
            f"the interval from the procedure to the follow-up scan must be positive, "
            f"got {interval_days} days."
        )
    return dh / (days / 7.0)


def check_hbs(hbs_pct_per_min_m2):
    """The FLR's function on hepatobiliary scintigraphy (%/min/m^2, entered by the user)
    as a float; None stays None, anything but a positive finite number is refused.

    Examples
    --------
    >>> check_hbs("2.4")
    2.4
    >>> check_hbs(0)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.ClinicalInputError: the FLR's hepatobiliary scintigraphy function must be a positive number of %/min/m^2, got 0.
    """
    if hbs_pct_per_min_m2 is None:
        return None
    number = _number(hbs_pct_per_min_m2)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ClinicalInputError(f"the FLR's hepatobiliary scintigraphy function must be a "
                                 f"positive number of %/min/m^2, got {hbs_pct_per_min_m2}.")
    return number


def alpps_high_phlf_risk(kgr_flr_pct_per_day, hbs_pct_per_min_m2):
    """Whether the ALPPS registry criterion (Tomassini 2020) marks a high risk of liver
    failure after stage 2: the FLR's daily volume gain at most 4.1 %/day *and* its
    scintigraphic function at most 2.7 %/min/m^2 ("at most": a value equal to a cut-off
    is on the risk side). None when either figure is missing: half the criterion is no
    verdict.

    ``kgr_flr_pct_per_day`` is the FLR's own relative growth per day
    (``Hypertrophy.flr_growth_pct_per_day``), not the sFLR points per day of
    Shindoh's KGR.

    Examples
    --------
    >>> alpps_high_phlf_risk(3.2, 2.1), alpps_high_phlf_risk(3.2, 3.0)
    (True, False)
    >>> alpps_high_phlf_risk(4.1, 2.7), alpps_high_phlf_risk(6.0, None) is None
    (True, True)
    """
    hbs = check_hbs(hbs_pct_per_min_m2)
    growth_ok = meets(kgr_flr_pct_per_day, ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY, strictly=True)
    if hbs is None or growth_ok is None:
        return None
    return not growth_ok and not meets(hbs, ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2, strictly=True)


def pct_per_week_to_pct_per_day(rate_pct_per_week):
    """Convert %/week to %/day, as ALPPS papers report.

    Examples
    --------
    >>> pct_per_week_to_pct_per_day(7.0)
    1.0
    """
    return rate_pct_per_week / 7.0
