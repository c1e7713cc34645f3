"""Batch outputs: CSV tables, the ``results.json`` schema, figures and the HTML report.

Everything is written atomically (a temporary file in the same folder, then
``os.replace``): a run killed half-way leaves the previous file or none,
never half a table. Figures are drawn with matplotlib's Agg canvas (no
display, no pyplot state) and embedded in ``report.html`` as base64 PNG, so
the report is one self-contained file.

``results.json`` schema (``schema_version`` "1.4")
----------------------------------------------------
::

    {
      "schema": "flr-volumetry/batch-results",
      "schema_version": "1.4",
      "software_version": "0.1.0",
      "created_utc": "2026-01-31T12:00:00Z",
      "study": "/abs/path/STUDY",
      "options": {"workers": 1, "scheduler": null, "resume": false,
                  "bsa_formula": "mosteller", "telv_formula": "vauthey",
                  "from_baseline_date": false, "figures": true},
      "summary": {"patients": 3, "patients_ok": 2, "patients_failed": 1,
                  "timepoints": 7, "timepoints_ok": 6, "timepoints_failed": 1,
                  "timepoints_resumed": 0, "wall_seconds": 12.3},
      "warnings": ["study-level warnings"],
      "patients": [{
        "patient_id": "P001", "status": "ok" | "failed", "error": null | "sentence",
        "warnings": [...],
        "facts": {"height_cm", "weight_kg", "liver_condition", "procedure",
                  "procedure_date", "resection", "remnant_segments", "resect_caudate",
                  "plan", "hbs_pct_per_min_m2"},  # liver_condition null: given but refused
        "sflr_threshold_pct": 20.0,         # null when the liver condition is unknown
        "baseline": "baseline",             # timepoint name, first by scan date
        "timepoints": [{                    # ordered by scan date (undated last)
          "patient_id", "timepoint", "scan_date", "date_source": "dicom" | "timepoint.json",
          "status": "ok" | "failed", "error", "is_baseline",
          "measurement": {Measurement.to_dict(): every volume, ratio, warning and method},
          "liver_method", "flr_method",     # where the liver and FLR masks came from
          "masks": {"liver": "/abs/STUDY/P001/baseline/liver.nii.gz",   # an input, used as is
                    "flr": "masks/P001/baseline/flr.nii.gz"},          # made by this run
          "masks_resampled": ["liver"],     # given masks on another grid resampled with
                                            # --resample-masks (not those merely stored
                                            # with an axis flipped: placed exactly)
          "overlay": "masks/P001/baseline/overlay.png",
          "input_hash": "sha256 hex of input files + facts + options", "resumed": false,
          "seconds": 1.2, "hash_seconds": 0.01, "measure_seconds": 1.0,   # timing
          "save_seconds": 0.02, "figure_seconds": 0.07
        }],
        "followups": [{                     # every follow-up against the baseline
          "timepoint": "post_pve", "status": "ok" | "failed", "error",
          "hypertrophy": {Hypertrophy.to_dict(): interval, DH, KGR, GR, growth, ...}
        }],
        "summary": {the patients.csv row: the latest follow-up against the baseline}
      }]
    }

Values that cannot be computed are ``null``. Masks the run made (segmented
liver, FLR from a plan) and figures are saved under ``masks/`` and given
relative to the output folder; masks that were inputs are given by their
absolute path. A change that removes or renames a key bumps
the major version; adding keys bumps the minor version.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import html
import io as _io
import json
import math
import os
import urllib.parse

import numpy as np

from . import clinical
from .io import atomic_file

__all__ = [
    "RESULTS_SCHEMA",
    "RESULTS_SCHEMA_VERSION",
    "TIMEPOINT_COLUMNS",
    "PATIENT_COLUMNS",
    "write_text_atomic",
    "write_csv_atomic",
    "overlay_png",
    "growth_chart_png",
    "render_report_html",
]

RESULTS_SCHEMA = "flr-volumetry/batch-results"
RESULTS_SCHEMA_VERSION = "1.4"  # 1.1: daily KGR and GR in the summary; 1.2: FLR growth/day;
# 1.3: masks_resampled of each timepoint; 1.4: the ALPPS registry criterion (facts'
# hbs_pct_per_min_m2; the summary's flr_growth_pct_per_day and alpps_high_phlf_risk)

#: Columns of ``timepoints.csv``: the issue's names first, then the methods used.
TIMEPOINT_COLUMNS = (
    "patient_id", "timepoint", "scan_date", "status", "error",
    "total_liver_ml", "tumor_ml", "functional_liver_ml", "flr_ml", "sflr_pct",
    "measured_flr_pct",
    "is_baseline", "date_source", "resected_ml", "telv_ml", "bsa_m2", "flr_bw_ratio_pct",
    "flr_bw_adequate", "sflr_threshold_pct", "sflr_adequate", "height_cm", "weight_kg",
    "liver_condition", "liver_method", "flr_method", "tumor_excluded_from_flr", "bsa_formula",
    "telv_formula", "n_warnings",
)

#: Columns of ``patients.csv``: the issue's names first, then context.
PATIENT_COLUMNS = (
    "patient_id", "status", "error", "procedure", "procedure_date", "interval_days",
    "sflr_baseline_pct", "sflr_followup_pct", "dh_pct_points", "kgr_pct_per_week",
    "kgr_meets_2pct", "gr_pct_per_week", "gr_meets_2_66pct", "sflr_adequate",
    # Daily rates (the ALPPS series give them) after the weekly ones.
    "kgr_pct_per_day", "gr_pct_per_day",
    "liver_condition", "sflr_threshold_pct", "baseline_timepoint", "followup_timepoint",
    "n_timepoints", "measured_dh_pct_points", "flr_baseline_ml", "flr_followup_ml",
    "flr_growth_ml", "flr_growth_pct", "flr_growth_pct_per_day", "hbs_pct_per_min_m2",
    "alpps_high_phlf_risk", "interval_start", "warnings",
)


# --------------------------------------------------------------------- files
def write_text_atomic(text, path, *, mode="w"):
    """Write ``text`` (str, or bytes with ``mode="wb"``) so that ``path`` is complete or absent.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_text_atomic("hello\\n", p)
    >>> open(p).read(), [f for f in os.listdir(os.path.dirname(p)) if f.startswith(".tmp")]
    ('hello\\n', [])
    """
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    with atomic_file(path, suffix=os.path.basename(path)) as tmp, open(tmp, mode, **kwargs) as fh:
        fh.write(text)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        # repr keeps every digit: the CSV holds the same number as results.json.
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_csv_atomic(rows, columns, path):
    """Write dict rows as CSV with exactly ``columns`` (missing keys empty), atomically.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> write_csv_atomic([{"a": 1.5, "b": None}], ("a", "b"), p)
    >>> open(p).read()
    'a,b\\n1.5,\\n'
    """
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    write_text_atomic(buf.getvalue(), path)


# ------------------------------------------------------------------- figures
def _figure(width_in, height_in):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on the Agg canvas: no pyplot, no global state, no display,
    # safe in worker processes and in Dask threads.
    fig = Figure(figsize=(width_in, height_in), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def _png(fig):
    import warnings

    buf = _io.BytesIO()
    with warnings.catch_warnings():
        # A patient or timepoint name in a script the font lacks (CJK) is drawn as boxes;
        # matplotlib's per-glyph warnings would break the batch's one-line stderr.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        # Light compression: a third of the encoding time for a slightly larger file.
        fig.savefig(buf, format="png", pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _lps(image):
    """Array (z, y, x) and spacing of ``image`` reoriented to LPS (x -> left, y -> posterior)."""
    import SimpleITK as sitk

    if np.allclose(image.GetDirection(), np.eye(3).ravel()):
        # Already LPS: a view of the caller's image, which outlives it.
        return sitk.GetArrayViewFromImage(image), image.GetSpacing()
    img = sitk.DICOMOrient(image, "LPS")
    # A copy, not a view: the reoriented image is freed when this returns.
    return sitk.GetArrayFromImage(img), img.GetSpacing()


def _centre_index(mask):
    """Rounded (z, y) centre of mass of a boolean volume, from its projections (fast)."""
    out = []
    for axes in ((1, 2), (0, 2)):
        w = np.count_nonzero(mask, axis=axes)
        out.append(int(round(float(np.dot(np.arange(w.size), w)) / w.sum())))
    return out


def _window(arr, modality=None):
    if (modality or "").upper() == "CT" or (modality is None and arr.min() < -500):
        return -160.0, 240.0  # abdominal soft-tissue window, HU
    sample = arr[:: max(1, arr.shape[0] // 16)].astype(np.float32)
    lo, hi = np.percentile(sample, (1.0, 99.5))
    return float(lo), float(hi if hi > lo else lo + 1.0)


_LIVER_RGB = np.array([1.0, 0.83, 0.0])
_FLR_RGB = np.array([0.0, 0.78, 0.33])
_TUMOR_RGB = np.array([1.0, 0.19, 0.19])


def _outline(mask):
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, border_value=0)


def _compose(slice_, lo, hi, liver, flr=None, tumor=None):
    """One RGB picture of a slice: grey scan, FLR tinted green, liver and tumour outlined.

    Composed with numpy and shown with a single imshow: far cheaper than
    layered masked images and contour lines, for the same picture.
    """
    grey = np.clip((np.asarray(slice_, np.float32) - lo) / (hi - lo), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    if flr is not None and flr.any():
        rgb[flr] = 0.55 * rgb[flr] + 0.45 * _FLR_RGB
    for mask, colour in ((liver, _LIVER_RGB), (tumor, _TUMOR_RGB)):
        if mask is not None and mask.any():
            rgb[_outline(mask)] = colour
    return rgb


def _overlay_legend(has_flr, has_tumour):
    """The colours of the masks drawn, and only those: "red: tumour" under a scan given no
    tumour mask reads as "no tumour found".

    Examples
    --------
    >>> _overlay_legend(True, False)
    'yellow: liver   green: FLR   (no tumour mask)'
    """
    return "   ".join(["yellow: liver", "green: FLR" if has_flr else "(no FLR)",
                       "red: tumour" if has_tumour else "(no tumour mask)"])


def overlay_png(image, liver, flr=None, tumor=None, *, modality=None, title=None):
    """Axial and coronal slices of a scan with the liver and FLR outlined, as PNG bytes.

    The slices pass through the centre of the FLR (of the liver without
    one). Images are reoriented to LPS first, so the patient's right is on
    the viewer's left (radiological convention) and the head is up.

    Parameters
    ----------
    image, liver : SimpleITK.Image
        The scan and the liver mask on its grid.
    flr, tumor : SimpleITK.Image, optional
        FLR (filled, green) and tumour (red outline) on the same grid.
    modality : str, optional
        'CT' uses a soft-tissue window; otherwise percentiles.
    title : str, optional

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((8, 16, 16), np.uint8); a[2:6, 4:12, 4:12] = 1
    >>> liver = sitk.GetImageFromArray(a)
    >>> ct = sitk.GetImageFromArray((a * 100).astype(np.int16) - 1000)
    >>> overlay_png(ct, liver)[:4] == b"\\x89PNG"
    True
    """
    img, spacing = _lps(image)
    liv, _ = _lps(liver)
    liv = liv != 0
    focus = liv
    fl = None
    if flr is not None:
        fl = np.asarray(_lps(flr)[0]) != 0
        if fl.any():
            focus = fl
    tu = None if tumor is None else np.asarray(_lps(tumor)[0]) != 0
    if focus.any():
        zc, yc = _centre_index(focus)
    else:
        zc, yc = img.shape[0] // 2, img.shape[1] // 2
    lo, hi = _window(np.asarray(img), modality)
    sx, sy, sz = spacing

    fig = _figure(7.0, 3.4)
    views = (
        ("axial", lambda a: a[zc], sy / sx, "upper"),
        ("coronal", lambda a: a[:, yc, :], sz / sx, "lower"),
    )
    for i, (name, cut, aspect, origin) in enumerate(views):
        ax = fig.add_subplot(1, 2, i + 1)
        rgb = _compose(cut(img), lo, hi, cut(liv), None if fl is None else cut(fl),
                       None if tu is None else cut(tu))
        ax.imshow(rgb, aspect=aspect, origin=origin, interpolation="nearest")
        ax.set_title(f"{name} (R on left)", fontsize=8)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, parse_math=False)  # '$' in an ID is text
    fig.text(0.5, 0.02, _overlay_legend(fl is not None, tu is not None), ha="center",
             fontsize=7)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.08, top=0.86, wspace=0.04)
    return _png(fig)


def _days(date_text, start):
    return (_dt.date.fromisoformat(date_text) - start).days


def growth_chart_png(points, *, procedure_date=None, sflr_threshold_pct=20.0, title=None,
                     rate_lines=True):
    """sFLR and measured FLR ratio over time with their threshold lines, as PNG bytes.

    Left: sFLR (%) with the adequacy threshold of the liver condition and
    the line of a 2 %/week kinetic growth rate from the baseline (Shindoh).
    Right: measured FLR ratio (FLR / FLV, %) with the 2.66 %/week line
    (Leung). Points above a rate line grow faster than that rate.

    Parameters
    ----------
    points : sequence of dict
        ``{"scan_date": "YYYY-MM-DD", "sflr_pct": float or None,
        "measured_flr_pct": float or None}``, the baseline first.
    procedure_date : str, optional
        Day 0 of the x axis and start of the rate lines (else the baseline scan).
    sflr_threshold_pct : float
    rate_lines : bool
        Draw the 2 and 2.66 %/week lines from the first point (the baseline).

    Examples
    --------
    >>> pts = [{"scan_date": "2024-01-01", "sflr_pct": 18.0, "measured_flr_pct": 25.0},
    ...        {"scan_date": "2024-02-05", "sflr_pct": 27.0, "measured_flr_pct": 33.0}]
    >>> growth_chart_png(pts, procedure_date="2024-01-08")[:4] == b"\\x89PNG"
    True
    """
    pts = [p for p in points if p.get("scan_date")]
    start_text = procedure_date or (pts[0]["scan_date"] if pts else None)
    fig = _figure(7.0, 3.0)
    panels = (
        ("sflr_pct", "sFLR (%)", clinical.KGR_THRESHOLD_PCT_PER_WEEK, "KGR 2 %/week",
         sflr_threshold_pct),
        ("measured_flr_pct", "measured FLR / FLV (%)", clinical.GR_THRESHOLD_PCT_PER_WEEK,
         "GR 2.66 %/week", None),
    )
    if start_text is None:
        return _png(fig)
    start = _dt.date.fromisoformat(start_text)
    xlabel = "days since procedure" if procedure_date else "days since baseline scan"
    for i, (key, ylabel, rate, rate_label, threshold) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        xy = [(_days(p["scan_date"], start), p[key]) for p in pts if p.get(key) is not None]
        if xy:
            xs, ys = zip(*xy)
            ax.plot(xs, ys, "o-", color="#1f5fa8", label="measured")
            if rate_lines:
                x_end = max(max(xs), 7) * 1.08
                base_y = ys[0]
                ax.plot([0, x_end], [base_y, base_y + rate * x_end / 7.0], "--",
                        color="#d07000", label=rate_label)
        if threshold is not None:
            ax.axhline(threshold, color="#b00020", lw=1.0, ls=":",
                       label=f"adequate >= {threshold:g} %")
        if procedure_date:
            ax.axvline(0, color="0.5", lw=0.8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        if not xy:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", fontsize=8,
                    color="0.4", transform=ax.transAxes)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9, parse_math=False)  # '$' in an ID is text
    # Fixed margins: tight_layout would draw the figure twice.
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.16, top=0.88, wspace=0.25)
    return _png(fig)


# ---------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f0f3f7} td.l,th.l{text-align:left}
.pass{color:#0a7a2f;font-weight:600}.fail{color:#b00020;font-weight:600}.na{color:#888}
.err{color:#b00020;font-size:.9em}.warn{color:#8a5a00;font-size:.85em}
section{border-top:2px solid #ddd;margin-top:1.5em;padding-top:.5em}
img{max-width:100%}
.overlays{display:flex;flex-wrap:wrap;gap:.5em}.overlays div{flex:1 1 560px;max-width:640px}
"""


def _num(value, digits=1, unit=""):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<span class="na">n/a</span>'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}{unit}"
    return html.escape(str(value))


def _num_vs(value, cutoff, digits=1, *, strictly=False):
    """``value`` shown with enough decimals that it does not seem to cross ``cutoff``
    when it does not (``clinical.shown_against``)."""
    if value is None or cutoff is None or isinstance(value, bool) \
            or not isinstance(value, (int, float)) or math.isnan(value):
        return _num(value, digits)
    return html.escape(clinical.shown_against(value, cutoff, digits, strictly=strictly))


def _verdict(ok, text_pass="pass", text_fail="fail"):
    if ok is None:
        return '<span class="na">n/a</span>'
    return f'<span class="pass">{text_pass}</span>' if ok else \
        f'<span class="fail">{text_fail}</span>'


def _img_tag(png_bytes, alt):
    data = base64.b64encode(png_bytes).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _anchor(patient_id, part="patient"):
    """The id of a patient's section (or of its list of warnings): its ID percent-encoded
    (an HTML id holds no space), after a prefix no table id has (a patient named "cohort")
    and one per part (a patient named "P1-warnings")."""
    return f"{part}-" + urllib.parse.quote(patient_id, safe="")


def _patient_warnings(p):
    """Every warning of a patient, its scans' and its follow-ups', each named by its scan."""
    warnings = list(p.get("warnings") or [])
    for t in p["timepoints"]:
        warnings += [f"{t['timepoint']}: {w}" for w in (t.get("measurement") or {}).get(
            "warnings", [])]
    for f in p["followups"]:
        warnings += [f"{f['timepoint']}: {w}" for w in (f.get("hypertrophy") or {}).get(
            "warnings", [])]
    return warnings


def _cohort_table(patients):
    head = ("patient", "status", "procedure", "follow-up", "interval (days)", "sFLR baseline %",
            "sFLR follow-up %", "DH (points)", "KGR %/week", ">= 2 %/week", "GR %/week",
            "> 2.66 %/week", "sFLR adequate", "warnings", "error")
    rows = []
    for p in patients:
        s = p["summary"]
        status = _verdict(p["status"] == "ok", "ok", "failed")
        anchor = _anchor(p["patient_id"])
        n_warnings = len(_patient_warnings(p))
        rows.append(
            "<tr>" + "".join(f"<td{' class=l' if i < 4 else ''}>{c}</td>" for i, c in enumerate((
                f'<a href="#{anchor}">{html.escape(p["patient_id"])}</a>',
                status, _num(s.get("procedure")),
                # Which scan the row's figures compare (the latest measured before any
                # resection; not always the latest folder).
                _num(s.get("followup_timepoint")), _num(s.get("interval_days"), 0),
                # Never rounded across a cut-off (a baseline sFLR of 19.996 % had read "20.0",
                # a DH of 7.4996 points "7.5").
                _num_vs(s.get("sflr_baseline_pct"), s.get("sflr_threshold_pct")),
                _num_vs(s.get("sflr_followup_pct"), s.get("sflr_threshold_pct")),
                _num_vs(s.get("dh_pct_points"), clinical.DH_THRESHOLD_PCT_POINTS),
                _num_vs(s.get("kgr_pct_per_week"), clinical.KGR_THRESHOLD_PCT_PER_WEEK, 2),
                _verdict(s.get("kgr_meets_2pct")),
                _num_vs(s.get("gr_pct_per_week"), clinical.GR_THRESHOLD_PCT_PER_WEEK, 2,
                        strictly=True),
                _verdict(s.get("gr_meets_2_66pct")), _verdict(s.get("sflr_adequate"), "yes", "no"),
                f'<a href="#{_anchor(p["patient_id"], "warnings")}">{n_warnings}</a>'
                if n_warnings else "0",
            ))) + f'<td class="l err">{html.escape(p.get("error") or "")}</td></tr>')
    ths = "".join(f"<th{' class=l' if i < 4 or i == len(head) - 1 else ''}>{h}</th>"
                  for i, h in enumerate(head))
    return f'<table id="cohort"><tr>{ths}</tr>{"".join(rows)}</table>'


def _flr_method_cell(t):
    """Where the FLR came from, with the registration's Dice when the plan was carried (a
    reviewer of the report had seen 'carried by registration' with no quality figure)."""
    reg = ((t.get("measurement") or {}).get("methods") or {}).get("registration") or {}
    dice = reg.get("dice") if isinstance(reg, dict) else None
    cell = _num(t.get("flr_method"))
    if isinstance(dice, (int, float)) and not isinstance(dice, bool) and math.isfinite(dice):
        cell += f" (registration Dice {dice:.3f})"
    return cell


def _sflr_cell(own, used, threshold):
    """A scan's sFLR, and beside it the one the growth analysis used when that differs
    (another scan's TELV): one scan must not show two sFLRs unexplained."""
    cell = _num_vs(own, threshold)
    if used is None or (own is not None and abs(used - own) < 0.05):
        return cell
    return f"{cell} ({_num_vs(used, threshold)} in the growth analysis, with the other " \
           f"scan's TELV)"


def _timepoint_table(p, threshold, sflr_by_tp=None):
    sflr_by_tp = _sflr_by_timepoint(p) if sflr_by_tp is None else sflr_by_tp
    head = ("timepoint", "scan date", "status", "total liver mL", "tumour mL", "FLR mL",
            "sFLR %", "FLR/FLV %", "FLR/BW %", "FLR/BW &gt; 0.5 %", "liver from", "FLR from")
    left = (0, 1, 2, 10, 11)
    rows = []
    for t in p["timepoints"]:
        m = t.get("measurement") or {}
        # (a folder named "baseline" needs no "(baseline)" after it)
        name = html.escape(t["timepoint"]) + (
            " (baseline)" if t.get("is_baseline") and t["timepoint"].lower() != "baseline"
            else "")
        rows.append("<tr>" + "".join(f"<td{' class=l' if i in left else ''}>{c}</td>"
                                     for i, c in enumerate((
            name, _num(t.get("scan_date")),
            _verdict(t["status"] == "ok", "ok", "failed") + (
                f' <span class="err">{html.escape(t["error"])}</span>' if t.get("error") else ""),
            _num(m.get("total_liver_ml")), _num(m.get("tumor_ml")), _num(m.get("flr_ml")),
            # Beside the follow-up's sFLR verdict: never rounded across its threshold.
            _sflr_cell(m.get("sflr_pct"), sflr_by_tp.get(t["timepoint"]), threshold),
            _num(m.get("measured_flr_pct")),
            # The one ratio with a cut-off when only the weight is known (above 0.5 %).
            _num_vs(m.get("flr_bw_ratio_pct"), clinical.FLR_BW_RATIO_THRESHOLD_PCT, 2,
                    strictly=True), _verdict(m.get("flr_bw_adequate"), "yes", "no"),
            _num(t.get("liver_method")), _flr_method_cell(t),
        ))) + "</tr>")
    ths = "".join(f"<th{' class=l' if i in left else ''}>{h}</th>"
                  for i, h in enumerate(head))
    return f"<table><tr>{ths}</tr>{''.join(rows)}</table>"


def _sflr_by_timepoint(p):
    """Each timepoint's sFLR as the growth analysis used it: a follow-up's recomputed with
    the baseline's TELV when the two estimates differ (so DH is the difference shown), a
    baseline's without a TELV of its own from the latest follow-up's (the summary row's)."""
    sflr = {t["timepoint"]: (t.get("measurement") or {}).get("sflr_pct") for t in p["timepoints"]}
    for f in p["followups"]:
        h = f.get("hypertrophy") or {}
        if h.get("sflr_post_pct") is not None:
            sflr[f["timepoint"]] = h["sflr_post_pct"]
    baseline = p.get("baseline")
    s = p.get("summary") or {}
    if baseline is not None and sflr.get(baseline) is None \
            and s.get("sflr_baseline_pct") is not None:
        sflr[baseline] = s["sflr_baseline_pct"]
    return sflr


def _followup_table(p, threshold, sflr_by_tp):
    head = ("follow-up", "interval (days)", "DH (points)",
            f"vs {clinical.DH_THRESHOLD_PCT_POINTS:g} points", "KGR %/week", "vs 2 %/week",
            "KGR %/day", "GR %/week", "vs 2.66 %/week", "GR %/day", "FLR growth %",
            "FLR growth %/day",
            "sFLR vs threshold" if threshold is None else f"sFLR vs {threshold:g} %")
    # The ALPPS registry's verdict needs the scintigraphy the patient's facts may hold: a
    # column only where it was judged.
    alpps = any((f.get("hypertrophy") or {}).get("alpps_high_phlf_risk") is not None
                for f in p["followups"])
    if alpps:
        head += ("ALPPS registry (Tomassini)",)
    rows = []
    for f in p["followups"]:
        h = f.get("hypertrophy") or {}
        sflr = sflr_by_tp.get(f["timepoint"])
        adequate = None if sflr is None or threshold is None else clinical.meets(sflr, threshold)
        cells = (html.escape(f["timepoint"]) + (
            f' <span class="err">{html.escape(f["error"])}</span>' if f.get("error") else ""),
            _num(h.get("interval_days"), 0),
            # Shindoh's other cut-off (DH 7.5 points, CLINICAL.md), judged and had gone unshown.
            _num_vs(h.get("dh_pct_points"), clinical.DH_THRESHOLD_PCT_POINTS),
            _verdict(h.get("dh_meets_7_5_pct_points")),
            _num_vs(h.get("kgr_pct_per_week"), clinical.KGR_THRESHOLD_PCT_PER_WEEK, 2),
            _verdict(h.get("kgr_meets_2pct")),
            # Daily rates, as the ALPPS series report them (judged weekly, beside).
            _num(h.get("kgr_pct_per_day"), 3),
            _num_vs(h.get("gr_pct_per_week"), clinical.GR_THRESHOLD_PCT_PER_WEEK, 2,
                    strictly=True),
            _verdict(h.get("gr_meets_2_66pct")), _num(h.get("gr_pct_per_day"), 3),
            _num(h.get("flr_growth_pct")),
            # Never rounded across the ALPPS registry's 4.1 %/day (4.103 shown as 4.10 beside
            # "not high risk").
            _num_vs(h.get("flr_growth_pct_per_day"), clinical.ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY,
                    2, strictly=True),
            _verdict(adequate, "adequate", "inadequate"))
        if alpps:
            cells += (_alpps_cell(h),)
        rows.append("<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{c}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    if not rows:
        return f"<p>{html.escape(_no_growth_sentence(p))}</p>"
    ths = "".join(f"<th{' class=l' if i == 0 else ''}>{h}</th>" for i, h in enumerate(head))
    return f"<table><tr>{ths}</tr>{''.join(rows)}</table>"


def _alpps_cell(h):
    """The ALPPS registry verdict: high risk when the FLR's growth is at most 4.1 %/day and
    its scintigraphic function at most 2.7 %/min/m^2."""
    risk, hbs = h.get("alpps_high_phlf_risk"), h.get("hbs_pct_per_min_m2")
    if risk is None:
        return _verdict(None)
    hbs = clinical.shown_against(hbs, clinical.ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2, 1,
                                 strictly=True)
    return (_verdict(not risk, "not high risk", "high risk of liver failure")
            + html.escape(f" (HBS {hbs} %/min/m^2; growth <= "
                          f"{clinical.ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY:g} %/day and HBS <= "
                          f"{clinical.ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2:g})"))


def _no_growth_sentence(p):
    """Why a patient has no growth row: no scan after the baseline, or scans that failed
    (a failed follow-up had been reported as none)."""
    names = [t["timepoint"] for t in p["timepoints"]]
    first = names.index(p["baseline"]) if p.get("baseline") in names else 0
    if len(names) <= first + 1:
        return "No follow-up scan: no growth computed."
    failed = [t["timepoint"] for t in p["timepoints"] if t["status"] != "ok"]
    if failed:
        return f"No growth computed: {', '.join(failed)} failed (errors above)."
    return "No growth computed (see the error above)."


class _ChartCache:
    """Growth-chart PNGs kept by the hash of their inputs (see render_report_html)."""

    def __init__(self, folder, version):
        self.folder, self.version, self.used = folder, version, set()

    def png(self, points, **kwargs):
        if self.folder is None:
            return growth_chart_png(points, **kwargs)
        key = hashlib.sha256(json.dumps([self.version, points, kwargs], sort_keys=True,
                                        default=str).encode()).hexdigest()
        path = os.path.join(self.folder, f"{key}.png")
        self.used.add(os.path.basename(path))
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                return fh.read()
        png = growth_chart_png(points, **kwargs)
        write_text_atomic(png, path, mode="wb")
        return png

    def prune(self):
        if self.folder is None or not os.path.isdir(self.folder):
            return
        for name in os.listdir(self.folder):
            if name.endswith(".png") and name not in self.used:
                os.unlink(os.path.join(self.folder, name))


def _kilos_or_cm(value):
    """170 and 181.7, as given: the height and weight used, not rounded to other ones."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _body_size_text(p):
    """The height and weight the measurements used: patient.json's or study.csv's, else
    the DICOM header's (which the facts lack: the report had said "n/a" beside them)."""
    facts = p.get("facts") or {}
    if facts.get("height_cm") is not None or facts.get("weight_kg") is not None:
        sizes, source = [(facts.get("height_cm"), facts.get("weight_kg"), None)], ""
    else:
        sizes = [(m.get("height_cm"), m.get("weight_kg"), t["timepoint"])
                 for t in p["timepoints"] for m in [t.get("measurement") or {}]
                 if m.get("height_cm") is not None or m.get("weight_kg") is not None]
        source = " (from the DICOM header)" if sizes else ""
    if not sizes:
        return f"height {_num(None)}, weight {_num(None)}"
    distinct = list(dict.fromkeys((h, w) for h, w, _ in sizes))

    def text(h, w):
        return (f"height {_num(h) if h is None else _kilos_or_cm(h) + ' cm'}, weight "
                f"{_num(w) if w is None else _kilos_or_cm(w) + ' kg'}")

    # Scans measured without them (a header without height or weight): named, or the one
    # size shown would read as every scan's.
    from_headers = sizes[0][2] is not None
    without = [t["timepoint"] for t in p["timepoints"] if from_headers and t.get("measurement")
               and t["measurement"].get("height_cm") is None
               and t["measurement"].get("weight_kg") is None]
    none_at = f"; none at {html.escape(', '.join(without))}" if without else ""
    if len(distinct) == 1:
        return text(*distinct[0]) + source + none_at
    # Headers of different scans may disagree: each timepoint's, as its sFLR used them.
    return ("; ".join(f"{text(h, w)} ({html.escape(tp)})" for h, w, tp in sizes) + source
            + none_at)


def _patient_section(p, out_dir, figures=True, charts=None):
    pid = html.escape(p["patient_id"])
    facts = p.get("facts") or {}
    # None: a condition the patient's files gave and the tool refused (unknown, not normal).
    condition = facts.get("liver_condition", "normal")
    threshold = p.get("sflr_threshold_pct")
    if threshold is None and condition is not None:
        threshold = clinical.sflr_threshold_pct(condition)
    parts = [f'<section id="{_anchor(p["patient_id"])}"><h2>{pid}</h2>']
    parts.append(
        f"<p>Procedure {_num(facts.get('procedure'))} on {_num(facts.get('procedure_date'))}; "
        f"liver {_num(condition)} (sFLR threshold {_num(threshold, 0, ' %')}); "
        f"{_body_size_text(p)}.</p>")
    if p.get("error"):
        parts.append(f'<p class="err">Failed: {html.escape(p["error"])}</p>')
    sflr_by_tp = _sflr_by_timepoint(p)
    parts.append(_timepoint_table(p, threshold, sflr_by_tp))
    parts.append(_followup_table(p, threshold, sflr_by_tp))
    # The baseline and its follow-ups: the rate lines start at the baseline, so scans before
    # it (measured, not compared) stay off the chart. Without a baseline, no rate lines.
    compared = p["timepoints"]
    names = [t["timepoint"] for t in compared]
    if p.get("baseline") in names:
        compared = compared[names.index(p["baseline"]):]
    pts = [{"scan_date": t.get("scan_date"), "sflr_pct": sflr_by_tp.get(t["timepoint"]),
            "measured_flr_pct": (t.get("measurement") or {}).get("measured_flr_pct")}
           for t in compared if t["status"] == "ok" and t.get("scan_date")]
    if pts and figures:
        png = (charts or _ChartCache(None, None)).png(
            pts, procedure_date=facts.get("procedure_date"), sflr_threshold_pct=threshold,
            title=f"{p['patient_id']}: growth", rate_lines=p.get("baseline") in names)
        parts.append(_img_tag(png, f"{p['patient_id']} growth chart"))
    overlays = []
    for t in p["timepoints"]:
        rel = t.get("overlay")
        path = os.path.join(out_dir, rel) if rel else None
        if path and os.path.isfile(path):
            with open(path, "rb") as fh:
                overlays.append(_img_tag(fh.read(), f"{p['patient_id']} {t['timepoint']} "
                                                    f"overlay"))
    if overlays:
        parts.append('<div class="overlays">' + "".join(f"<div>{o}</div>" for o in overlays)
                     + "</div>")
    warnings = _patient_warnings(p)
    if warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        parts.append(f'<ul class="warn" id="{_anchor(p["patient_id"], "warnings")}">{items}</ul>')
    parts.append("</section>")
    return "\n".join(parts)


def _formulas_text(options):
    """The BSA and TELV formulas used: a TELV formula derived with its own BSA formula
    replaces the one asked (the header had named the one asked, not the one used)."""
    bsa, telv = options.get("bsa_formula"), options.get("telv_formula")
    try:
        used = clinical.telv_bsa_formula(telv, bsa)
    except Exception:  # noqa: BLE001 - an older or hand-made results.json: say what it says
        used = bsa
    if used is None or bsa is None or used == clinical.formula_key(bsa):
        return f"BSA {bsa}, TELV {telv}"
    return f"BSA {used} (required by {telv}; {bsa} asked), TELV {telv}"


def render_report_html(results, out_dir, *, figures=True, chart_cache=None):
    """The self-contained HTML report of a batch run (``results.json`` content).

    Parameters
    ----------
    results : dict
        As written to ``results.json`` (schema in the module docstring).
    out_dir : str
        Output folder; overlay PNGs are read from there and embedded.
    figures : bool
        Draw the growth charts (overlays are embedded when their files exist).
    chart_cache : str, optional
        A folder where each growth chart is kept under the hash of what it
        draws, so that a re-run (``--resume``) draws only the charts whose
        figures changed (0.2 s each); charts no longer drawn are removed.

    Returns
    -------
    str
    """
    s = results["summary"]
    body = [
        "<h1>FLR volumetry: batch report</h1>",
        f"<p>{s['patients']} patients ({s['patients_ok']} ok, {s['patients_failed']} failed), "
        f"{s['timepoints']} timepoints ({s['timepoints_ok']} ok, {s['timepoints_failed']} "
        f"failed). flr-volumetry {html.escape(results['software_version'])}, "
        f"{html.escape(results['created_utc'])}. Formulas: "
        f"{html.escape(_formulas_text(results['options']))}. KGR (Shindoh) passes at "
        f">= 2 %/week, GR on measured volumes (Leung) at > 2.66 %/week; the sFLR threshold is "
        f"20 / 30 / 40 % for a normal / post-chemotherapy or steatotic / cirrhotic or fibrotic "
        f"liver.</p>",
        "<h2>Cohort</h2>", _cohort_table(results["patients"]),
    ]
    if results.get("warnings"):
        body.append('<ul class="warn">' + "".join(f"<li>{html.escape(w)}</li>"
                                                  for w in results["warnings"]) + "</ul>")
    charts = _ChartCache(chart_cache, results.get("software_version"))
    body += [_patient_section(p, out_dir, figures, charts) for p in results["patients"]]
    charts.prune()
    body.append("<p class=na>Research tool; not a certified medical device.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>FLR volumetry report</title><style>" + _CSS + "</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
