"""``flr-volumetry hypertrophy``: DH, KGR and GR between two measurements."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError, check_exists, json_object
from ..hypertrophy import hypertrophy
from ..clinical import (ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2, ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY,
                        GR_THRESHOLD_PCT_PER_WEEK, KGR_THRESHOLD_PCT_PER_WEEK, check_hbs)
from ._common import check_outputs, emit_json, fmt, fmt_vs


def add_parser(sub):
    p = sub.add_parser(
        "hypertrophy", help="degree of hypertrophy, KGR and GR between two measure JSONs",
        description="Degree of hypertrophy and kinetic growth rate (Shindoh, >= 2 %/week) "
                    "and measured growth rate (Leung, > 2.66 %/week) between a baseline "
                    "and a follow-up `measure --json` file.",
    )
    p.add_argument("--pre", required=True, help="baseline measure JSON")
    p.add_argument("--post", required=True, help="follow-up measure JSON")
    # One of the two, never both (both had been accepted, the procedure date silently
    # winning) and never neither: either is then a usage error (exit 2) from argparse,
    # before any file is read. The Python API keeps its own check and message.
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--procedure-date", help="PVE / PVL / ALPPS stage-1 date, YYYY-MM-DD "
                                               "(or --from-baseline-date)")
    when.add_argument("--from-baseline-date", action="store_true",
                      help="without a procedure date, count the interval from the baseline "
                           "scan (KGR is then not Shindoh's KGR)")
    p.add_argument("--pre-date", help="baseline scan date (default: from the JSON)")
    p.add_argument("--post-date", help="follow-up scan date (default: from the JSON)")
    p.add_argument("--hbs-pct-per-min-m2", metavar="HBS", type=_hbs,
                   help="after ALPPS stage 1: the FLR's function on hepatobiliary "
                        "scintigraphy (%%/min/m^2, measured elsewhere); judges the ALPPS "
                        "registry criterion (Tomassini 2020: FLR growth <= 4.1 %%/day and "
                        "HBS <= 2.7 %%/min/m^2, high risk of liver failure)")
    p.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    p.set_defaults(func=run)


def _hbs(text):
    """The option's value as a number, or argparse's usage error (exit 2) naming it."""
    try:
        return check_hbs(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _read(path):
    check_exists(path)
    try:
        # utf-8-sig: a byte-order mark (Windows editors) is read, as in a study folder.
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh, object_pairs_hook=json_object)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable JSON file ({exc}).") from exc
    if not isinstance(data, dict) or "flr_ml" not in data:
        raise InputError(f"{path} is not a `measure` result: it has no flr_ml.")
    return data


def run(args):
    check_outputs({"--json": args.json}, [args.pre, args.post])
    h = hypertrophy(_read(args.pre), _read(args.post), procedure_date=args.procedure_date,
                    pre_date=args.pre_date, post_date=args.post_date,
                    from_baseline_date=args.from_baseline_date,
                    hbs_pct_per_min_m2=args.hbs_pct_per_min_m2)
    emit_json(h.to_dict(), args.json)
    if args.json:
        print(f"{h.interval_days} days; DH {fmt(h.dh_pct_points, ' points')}, "
              f"KGR {fmt_vs(h.kgr_pct_per_week, KGR_THRESHOLD_PCT_PER_WEEK, ' %/week', 2)}"
              f"{_verdict(h.kgr_meets_2pct, '2 %/week')}, "
              f"GR "
              f"{fmt_vs(h.gr_pct_per_week, GR_THRESHOLD_PCT_PER_WEEK, ' %/week', 2, strictly=True)}"
              f"{_verdict(h.gr_meets_2_66pct, '2.66 %/week', 'above', 'not above')}"
              f"{_alpps(h)}; written to {args.json}")
    # On stderr whether or not the JSON goes to stdout: a procedure date a year off is
    # said there, not only inside the file.
    for w in h.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _verdict(meets, cutoff, yes="meets", no="below"):
    """' (meets CUTOFF)' or ' (below CUTOFF)'; nothing when there is no figure to judge."""
    if meets is None:
        return ""
    return f" ({yes if meets else no} {cutoff})"


def _alpps(h):
    """'; FLR growth X %/day, HBS Y %/min/m^2: high risk ...' when a scintigraphic function
    was entered (the registry criterion is judged only with it)."""
    if h.alpps_high_phlf_risk is None:
        return ""
    growth = fmt_vs(h.flr_growth_pct_per_day, ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY, " %/day", 2,
                    strictly=True)
    verdict = ("high risk of liver failure (ALPPS registry)" if h.alpps_high_phlf_risk
               else "not the ALPPS registry's high-risk group")
    hbs = fmt_vs(h.hbs_pct_per_min_m2, ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2, " %/min/m^2", 1,
                 strictly=True)
    return f"; FLR growth {growth}, HBS {hbs}: {verdict}"
