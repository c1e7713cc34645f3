"""The study-folder layout: patients, their facts, and their timepoints.

A study is a folder of patient folders; each patient folder holds a
``patient.json`` and one folder per scan (timepoint)::

    STUDY/
      study.csv              optional: patient_id + any patient.json key, one row per patient
      P001/
        patient.json         {"height_cm": 172, "weight_kg": 80, "liver_condition": "normal",
                              "procedure": "PVE", "procedure_date": "2024-03-04",
                              "resection": "right_hepatectomy"}
        baseline/            any name; timepoints are ordered by scan date
          image.nii.gz       or image.nii / image.nrrd / image.mha, or image/ (a DICOM folder);
                             DICOM files straight in the timepoint folder, or in one
                             subfolder of any name, are found too
          liver.nii.gz       optional masks: liver.*, tumor.*, flr.*, segments.*
          timepoint.json     {"scan_date": "2024-02-26"} (used when the image has no StudyDate;
                             optional "series_uid" and "modality": "ct" | "mr")
        post_pve/ ...

Nothing here reads an image: :func:`discover_study` only looks at names,
small JSON/CSV files and, to recognise DICOM files, the first bytes of a few
files, so it is fast on any cohort. Scan dates, which a DICOM
header may hold, are settled when each timepoint is measured (see
:mod:`flr_volumetry.batch`). Folders and files whose names start with
``truth`` (ground truth of the bundled sample study), ``.`` or ``_`` are
ignored: they are never inputs.

Patient IDs are the folder names; they must be pseudonymous, because they
appear in every output.
"""

from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import clinical
from .errors import InputError, json_object
from .hypertrophy import PROCEDURES, parse_date
from .io import IMAGE_SUFFIXES, holds_dicom
from .remnant._plan import PLAN_KEYS, RemnantPlan, as_flag, resection_key, segment_number
from .volumetry import Patient

__all__ = [
    "PROCEDURES",
    "PATIENT_KEYS",
    "MASK_NAMES",
    "StudyLayoutError",
    "StudyPatient",
    "StudyTimepoint",
    "Study",
    "discover_study",
    "read_patient_file",
    "read_study_csv",
    "TIMEPOINT_KEYS",
    "read_timepoint_file",
]

#: Keys of ``patient.json`` and columns of ``study.csv`` (besides ``patient_id``).
PATIENT_KEYS = ("height_cm", "weight_kg", "liver_condition", "procedure", "procedure_date",
                "resection", "remnant_segments", "resect_caudate", "plan",
                "hbs_pct_per_min_m2")
_DECIMAL_COMMA = re.compile(r"^\s*(-?\d+),(\d+)\s*$")
_DECIMAL_KEYS = ("height_cm", "weight_kg")
#: The keys that each define the remnant on their own: one per patient.
REMNANT_KEYS = ("plan", "resection", "remnant_segments")
#: Optional per-timepoint masks, by the stem of their file name.
MASK_NAMES = ("liver", "tumor", "flr", "segments")
_IGNORED_PREFIXES = ("truth", ".", "_")
# Image file suffixes the layout accepts for ``image.*`` and masks; NRRD/MHA
# detached headers (.nhdr, .mhd) work too since io reads them.
_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES)


class StudyLayoutError(InputError):
    """The study folder as a whole cannot be used (a usage error: exit code 2)."""

    usage = True


@dataclass(frozen=True)
class StudyTimepoint:
    """The input files of one scan of one patient (paths are absolute strings).

    ``error`` is set when the folder cannot be measured as it is (no image,
    two images, an unreadable ``timepoint.json``); such a timepoint is
    reported as failed without being measured.
    """

    patient_id: str
    name: str
    folder: str
    image: str | None = None
    liver: str | None = None
    tumor: str | None = None
    flr: str | None = None
    segments: str | None = None
    plan: str | None = None
    timepoint_json: str | None = None
    scan_date: str | None = None
    series_uid: str | None = None
    modality: str | None = None
    error: str | None = None

    def input_files(self):
        """Every file whose content the measurement depends on, sorted (for hashing)."""
        paths = []
        for p in (self.image, self.liver, self.tumor, self.flr, self.segments, self.plan,
                  self.timepoint_json):
            if p is None:
                continue
            if os.path.isdir(p):
                for root, dirs, files in os.walk(p):
                    dirs.sort()
                    paths += [os.path.join(root, f) for f in sorted(files)]
            else:
                paths.append(p)
        return paths


@dataclass(frozen=True)
class StudyPatient:
    """One patient's facts (from ``patient.json`` and/or ``study.csv``) and timepoints.

    ``error`` is set when the facts are unusable (e.g. an unknown liver
    condition); the patient's timepoints are then reported as failed.
    ``procedure_date`` may be missing: the volumes are still measured, and
    the growth analysis says what is missing.
    """

    patient_id: str
    folder: str
    height_cm: float | None = None
    weight_kg: float | None = None
    liver_condition: str | None = "normal"  # None: given, refused (the patient has an error)
    procedure: str | None = None
    procedure_date: str | None = None
    resection: str | None = None
    remnant_segments: tuple[int, ...] | None = None
    resect_caudate: bool = False
    plan: str | dict | None = None
    # After ALPPS stage 1: the FLR's function on hepatobiliary scintigraphy (%/min/m^2),
    # measured elsewhere; the growth analysis judges the ALPPS registry criterion with it.
    hbs_pct_per_min_m2: float | None = None
    timepoints: tuple[StudyTimepoint, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None

    def timepoints_by_date(self):
        """The timepoints in scan-date order as far as ``timepoint.json`` dates tell (the
        undated, e.g. DICOM until read, after them), then by folder name."""
        return tuple(sorted(self.timepoints,
                            key=lambda tp: (tp.scan_date is None, tp.scan_date or "", tp.name)))

    def volumetry_patient(self):
        """The :class:`~flr_volumetry.Patient` used to measure every timepoint."""
        return Patient(height_cm=self.height_cm, weight_kg=self.weight_kg,
                       liver_condition=self.liver_condition)

    def remnant_spec(self):
        """How the FLR is derived when a timepoint has no ``flr.*`` mask, as a dict.

        Keys: ``plan`` (a path, or the plan as a dict), or ``resection`` or
        ``remnant_segments`` with ``resect_caudate``; empty when the patient
        file names none of them.
        """
        if self.plan:
            return {"plan": self.plan}
        if self.remnant_segments:
            return {"remnant_segments": list(self.remnant_segments),
                    "resect_caudate": self.resect_caudate}
        if self.resection:
            return {"resection": self.resection, "resect_caudate": self.resect_caudate}
        return {}

    def facts(self):
        """The patient facts as a JSON-ready dict (no timepoints)."""
        return {
            "height_cm": self.height_cm, "weight_kg": self.weight_kg,
            "liver_condition": self.liver_condition, "procedure": self.procedure,
            "procedure_date": self.procedure_date, "resection": self.resection,
            "remnant_segments": None if self.remnant_segments is None
            else list(self.remnant_segments),
            "resect_caudate": self.resect_caudate,
            # An inline plan's own keys only: what else it holds (a name?) is never copied.
            "plan": ({k: v for k, v in self.plan.items() if k in PLAN_KEYS}
                     if isinstance(self.plan, dict) else self.plan),
            "hbs_pct_per_min_m2": self.hbs_pct_per_min_m2,
        }


@dataclass(frozen=True)
class Study:
    """A discovered study folder."""

    path: str
    patients: tuple[StudyPatient, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def timepoints(self):
        return tuple(tp for p in self.patients for tp in p.timepoints)


def _ignored(name):
    return name.startswith(_IGNORED_PREFIXES)


def _check_folder_name(name, parent):
    """Refuse a patient or timepoint folder whose name is not UTF-8 text (bytes Python
    carries as surrogates): it names every output row and log line, which cannot hold
    it, and ITK aborts the whole process on such a path."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise StudyLayoutError(f"the folder {ascii(name)} in {ascii(str(parent))} has a name "
                               f"that is not valid UTF-8 text; rename it.") from None


def _image_suffix(name):
    low = name.lower()
    for s in _SUFFIXES:
        if low.endswith(s):
            return s
    return None


def _stem(name):
    s = _image_suffix(name)
    return name[: -len(s)] if s else None


# Masks may also be segmentation files (one segment, or a label map): 3D Slicer's and
# DICOM SEG. '.seg.nrrd' before '.nrrd', or 'liver.seg.nrrd' would have the stem 'liver.seg'.
_MASK_SUFFIXES = (".seg.nrrd", ".dcm") + _SUFFIXES


# Other spellings of a mask's name: the messages say "tumour", and a tumour.nii.gz had been
# passed over without a word (its volume left in the FLR).
_MASK_ALIASES = {"tumour": "tumor"}


def _mask_stem(name):
    """'liver' of 'liver.nii.gz', 'Liver.seg.nrrd' or 'liver.dcm' ('tumor' of
    'tumour.nii.gz'); None for other files."""
    low = name.lower()
    for s in _MASK_SUFFIXES:
        if low.endswith(s):
            stem = low[: -len(s)]
            return _MASK_ALIASES.get(stem, stem)
    return None


def _read_json(path, what):
    try:
        # utf-8-sig: editors on Windows save JSON with a byte-order mark (study.csv too).
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh, object_pairs_hook=json_object)
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} {path} is not readable JSON ({exc}); fix or remove it.") \
            from exc
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} must hold a JSON object {{...}}.")
    return data


def _segments_tuple(value, where):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").replace(" ", ",").strip("[]()").split(",")
                 if p]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    try:
        segs = tuple(segment_number(p) for p in parts)  # 2.7 is no segment, nor is it 2
    except (TypeError, ValueError):  # (an InputError is a ValueError)
        raise InputError(f"remnant_segments in {where} must be Couinaud numbers 1-8, "
                         f"e.g. [2, 3], got {value!r}.") from None
    if not segs or any(s < 1 or s > 8 for s in segs):
        raise InputError(f"remnant_segments in {where} must be Couinaud numbers 1-8, "
                         f"got {value!r}.")
    return segs


def _number(value, key, where):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        raise InputError(f"{key} in {where} must be a number, got {value!r}.") from None


def _clean_facts(raw, where, base_dir):
    """Validate and normalise patient facts; unknown keys come back as warnings."""
    facts, warnings = {}, []
    for key, value in raw.items():
        if key == "patient_id":
            continue
        if key not in PATIENT_KEYS:
            warnings.append(f"{where}: unknown key {key!r} ignored (known: "
                            f"{', '.join(PATIENT_KEYS)}).")
            continue
        if value is None or value == "":
            continue
        if key in ("height_cm", "weight_kg"):
            facts[key] = _number(value, key, where)
        elif key == "liver_condition":
            cond = str(value).strip().lower()
            clinical.sflr_threshold_pct(cond)  # refuses unknown conditions with a sentence
            facts[key] = cond
        elif key == "procedure":
            proc = str(value).strip().upper().replace(" ", "")
            if proc not in PROCEDURES:
                raise InputError(f"procedure {value!r} in {where} is unknown; use one of "
                                 f"{', '.join(PROCEDURES)}.")
            facts[key] = proc
        elif key == "hbs_pct_per_min_m2":
            try:
                facts[key] = clinical.check_hbs(value.strip().replace(",", ".", 1)
                                                if isinstance(value, str) else value)
            except InputError as exc:
                raise InputError(f"hbs_pct_per_min_m2 in {where}: {exc}") from exc
        elif key == "procedure_date":
            date = parse_date(value, f"procedure_date in {where}")
            if date is None:  # NaN (a JSON NaN literal) is no date, and no missing cell either
                raise InputError(f"procedure_date in {where} {value!r} is not a date; write it "
                                 f"as YYYY-MM-DD.")
            facts[key] = date.isoformat()
        elif key == "remnant_segments":
            facts[key] = _segments_tuple(value, where)
        elif key == "plan":
            # A plan file (relative to the file that names it) or the plan itself, inline:
            # checked now, as a resection is, even when every timepoint has its FLR mask.
            if isinstance(value, dict):
                RemnantPlan.from_dict(value)
            facts[key] = dict(value) if isinstance(value, dict) else \
                os.path.abspath(os.path.join(base_dir, str(value)))
        elif key == "resection":
            facts[key] = resection_key(value)
        elif key == "resect_caudate":
            facts[key] = as_flag(value, f"resect_caudate in {where}")
        else:
            facts[key] = str(value).strip()
    given = [k for k in REMNANT_KEYS if k in facts]
    if len(given) > 1:
        # measure refuses two definitions too; picking one would give another sFLR.
        raise InputError(f"{where} defines the remnant {len(given)} ways ({', '.join(given)}); "
                         f"keep one.")
    if facts.get("plan") is not None and facts.get("resect_caudate"):
        # The plan decides the caudate itself; the flag would be dropped without a word.
        raise InputError(f"resect_caudate in {where} does not apply to a plan; set it in the "
                         f"plan (segment plans), or leave it out.")
    return facts, warnings


def read_patient_file(path):
    """Validated facts of one ``patient.json`` as ``(facts, warnings)``.

    Raises :class:`~flr_volumetry.InputError` with one sentence when a value
    is unusable.

    Examples
    --------
    >>> import json, os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "patient.json")
    >>> with open(p, "w") as fh:
    ...     json.dump({"height_cm": 170, "weight_kg": 70, "procedure": "pve",
    ...                "procedure_date": "20240301", "remnant_segments": [2, 3]}, fh)
    >>> facts, warnings = read_patient_file(p)
    >>> facts["procedure"], facts["procedure_date"], facts["remnant_segments"]
    ('PVE', '2024-03-01', (2, 3))
    """
    raw = _read_json(path, "patient file")
    return _clean_facts(raw, os.fspath(path), os.path.dirname(os.path.abspath(path)))


def read_study_csv(path):
    """Rows of ``study.csv`` by patient ID, as ``{patient_id: raw dict}``.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "study.csv")
    >>> with open(p, "w") as fh:
    ...     _ = fh.write("patient_id,height_cm,weight_kg\\nP001,170,70\\n")
    >>> read_study_csv(p)["P001"]["height_cm"]
    '170'
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = fh.readline()
            fh.seek(0)
            # Spreadsheets in many locales save CSV with ';' (or tabs); the header holds
            # names only, so its separator is unambiguous.
            delimiter = next((d for d in (",", ";", "\t") if d in header), ",")
            reader = csv.DictReader(fh, delimiter=delimiter)
            rows = list(reader)
            names = [(n or "").strip() for n in reader.fieldnames or ()]
        if delimiter != ",":
            # The same locales write 72,5 for 72.5: in the numbers, not in a segment list
            # ("2,3" had become "2.3").
            rows = [{k: _DECIMAL_COMMA.sub(r"\1.\2", v)
                     if isinstance(v, str) and (k or "").strip() in _DECIMAL_KEYS else v
                     for k, v in row.items()} for row in rows]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StudyLayoutError(f"{path} is not a readable CSV file ({exc}).") from exc
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        # DictReader keeps the last column of a name: a height typed twice would pass as
        # the second.
        raise StudyLayoutError(f"{path} has the column {', '.join(twice)} twice; keep one.")
    out = {}
    for i, row in enumerate(rows, start=2):
        if not row.get(None) and not any((v or "").strip() for v in row.values()
                                         if isinstance(v, str)):
            # A row of separators only (";;;;", as a spreadsheet saves emptied rows) holds
            # no more than a blank line, which csv skips: it had stopped the whole study.
            continue
        if row.get(None):
            # Values beyond the header were dropped without a word; often a decimal comma
            # in a comma-separated file (170,5) that shifted every later column.
            raise StudyLayoutError(f"{path} line {i} has more values than the header has "
                                   f"columns; quote values that hold the separator.")
        pid = (row.get("patient_id") or "").strip()
        if not pid:
            raise StudyLayoutError(f"{path} line {i} has no patient_id; every row needs one "
                                   f"(the name of the patient's folder).")
        if pid in out:
            raise StudyLayoutError(f"{path} lists patient {pid} twice; keep one row per "
                                   f"patient.")
        out[pid] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    return out


#: Keys of ``timepoint.json``.
TIMEPOINT_KEYS = ("scan_date", "series_uid", "modality")


def read_timepoint_file(timepoint_json):
    """Validated ``timepoint.json``: ``scan_date`` (ISO), ``series_uid``, ``modality``.

    ``series_uid`` chooses the series of a DICOM folder holding several;
    ``modality`` (``ct`` or ``mr``) guides automatic segmentation when the
    image header does not say.

    Examples
    --------
    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "timepoint.json")
    >>> with open(p, "w") as fh:
    ...     json.dump({"scan_date": "20240315", "modality": "MR"}, fh)
    >>> read_timepoint_file(p)
    {'scan_date': '2024-03-15', 'series_uid': None, 'modality': 'mr'}
    """
    data = _read_json(timepoint_json, "timepoint file")
    unknown = sorted(set(data) - set(TIMEPOINT_KEYS))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)} in {timepoint_json}; known: "
                         f"{', '.join(TIMEPOINT_KEYS)}.")
    d = parse_date(data.get("scan_date"), f"scan_date in {timepoint_json}")
    modality = data.get("modality")
    if modality is not None:
        modality = str(modality).strip().lower()
        if modality not in ("ct", "mr"):
            raise InputError(f"modality in {timepoint_json} must be ct or mr, got "
                             f"{data['modality']!r}.")
    uid = data.get("series_uid")
    return {"scan_date": None if d is None else d.isoformat(),
            "series_uid": None if uid in (None, "") else str(uid), "modality": modality}


def _dicom_images(folder, entries):
    """DICOM series without an ``image`` name: the folder itself, or its DICOM subfolders.

    Exports from PACS and scanners rarely follow a naming scheme; a
    timepoint folder that holds DICOM files, or one subfolder of any name
    that does, is a scan. Several such subfolders are reported as several
    images (the user must say which by naming it ``image``).
    """
    # A DICOM SEG mask (liver.dcm) beside a scan in a subfolder is not the scan.
    masks = {e for e in entries if _mask_stem(e) in MASK_NAMES}
    if holds_dicom(folder, recursive=False, exclude=masks):
        return [folder]
    return [os.path.join(folder, e) for e in entries
            if os.path.isdir(os.path.join(folder, e)) and holds_dicom(os.path.join(folder, e))]


def _find_timepoint(patient_id, folder, warnings=None):
    """A StudyTimepoint for ``folder``, or None when it holds nothing of a timepoint.

    What the patient's report should say about the folder is added to
    ``warnings`` (a list), when given.
    """
    name = os.path.basename(folder)
    entries = sorted(e for e in os.listdir(folder) if not _ignored(e))
    images, masks, problems = [], {}, []
    plan = tp_json = broken_link = None
    for e in entries:
        full = os.path.join(folder, e)
        if os.path.islink(full) and not os.path.exists(full) and (
                _stem(e) == "image" or e == "image" or _mask_stem(e) in MASK_NAMES
                or e in ("plan.json", "timepoint.json")):
            # Passed over, a link to a moved mask would have the liver segmented instead.
            broken_link = broken_link or (f"{name}/{e} is a symbolic link whose target "
                                          f"{os.readlink(full)} cannot be reached; restore "
                                          f"it or remove the link.")
            continue
        if e == "image" and os.path.isdir(full):
            images.append(full)
        elif _stem(e) == "image" and os.path.isfile(full):
            images.append(full)
        elif _mask_stem(e) in MASK_NAMES and os.path.isfile(full):
            stem = _mask_stem(e)
            if stem in masks:
                problems.append(f"two {stem} masks ({os.path.basename(masks[stem])} and {e}); "
                                f"keep one.")
            masks[stem] = full
        elif e == "plan.json":
            plan = full
        elif e == "timepoint.json":
            tp_json = full
        elif (warnings is not None and _image_suffix(e) and os.path.isfile(full)
              and not e.lower().endswith(".dcm")):  # (.dcm: DICOM slices, found below)
            # An image file under another name is no input: said, since a mask named
            # otherwise (tumour_mask.nii.gz) changes the volumes by its absence.
            warnings.append(f"{name}/{e} is not read: a timepoint's scan is image.*, its masks "
                            f"{', '.join(n + '.*' for n in MASK_NAMES)}; rename the file if "
                            f"it is one of them.")
    if not images:
        images = _dicom_images(folder, entries)
    elif len(images) == 1 and warnings is not None:
        # The scan named image wins, but a DICOM export beside it had been passed over
        # without a word (its StudyDate never checked).
        rest = [e for e in entries if os.path.join(folder, e) != images[0]]  # not read again
        others = _dicom_images(folder, rest)
        if others:
            shown = ", ".join("its own files" if d == folder else os.path.basename(d) + "/"
                              for d in others)
            warnings.append(f"{name}/ also holds DICOM ({shown}), not measured: "
                            f"{os.path.basename(images[0])} is its scan, as the one named "
                            f"image; remove the other if it is not the same scan.")
    if not images and not masks and tp_json is None and plan is None and not broken_link:
        return None
    error = None
    if broken_link:
        error = broken_link
    elif not images:
        error = (f"no image in {name}/: put the scan there as image.nii.gz (or .nii, .nrrd, "
                 f".mha) or as DICOM files (in the folder itself or a subfolder such as "
                 f"image/).")
    elif len(images) > 1:
        error = (f"several images in {name}/ ({', '.join(os.path.basename(i) for i in images)}); "
                 f"keep one, or name the scan to measure image/.")
    elif problems:
        error = problems[0]
    extra = {}
    if tp_json is not None:
        # Read beside another error too: a timepoint without its scan still has its date,
        # which orders the others (the baseline among them).
        try:
            extra = read_timepoint_file(tp_json)
        except InputError as exc:
            error = error or str(exc)
    return StudyTimepoint(
        patient_id=patient_id, name=name, folder=folder,
        image=images[0] if len(images) == 1 else None,
        liver=masks.get("liver"), tumor=masks.get("tumor"), flr=masks.get("flr"),
        segments=masks.get("segments"), plan=plan, timepoint_json=tp_json, error=error,
        **extra,
    )


def is_patient_folder(folder):
    """Whether discovery would take ``folder`` (in a study) as a patient's: it holds
    patient.json or a timepoint folder with a scan or mask."""
    folder = os.fspath(folder)
    name = os.path.basename(folder)
    if _ignored(name) or not os.path.isdir(folder):
        return False
    return _find_patient(name, folder, None, os.path.dirname(folder)) is not None


def _find_patient(patient_id, folder, csv_row, study_path):
    timepoints, empty, beside = [], [], []
    for e in sorted(os.listdir(folder)):
        full = os.path.join(folder, e)
        if _ignored(e) or not os.path.isdir(full):
            continue
        _check_folder_name(e, folder)
        tp = _find_timepoint(patient_id, full, beside)
        if tp is not None:
            timepoints.append(tp)
        else:
            empty.append(e)
    pfile = os.path.join(folder, "patient.json")
    has_file = os.path.isfile(pfile)
    if not timepoints and not has_file:
        return None
    facts, warnings = {}, list(beside)
    if empty:
        # A scan not copied yet would otherwise vanish from the results without a word.
        warnings.append(f"{', '.join(e + '/' for e in empty)} in {patient_id}/ "
                        f"{'holds' if len(empty) == 1 else 'hold'} no scan, mask or "
                        f"timepoint.json: skipped.")
    try:
        if csv_row is not None:
            facts, csv_warnings = _clean_facts(csv_row, f"study.csv ({patient_id})",
                                               study_path)
            warnings += csv_warnings
        if has_file:
            own, own_warn = read_patient_file(pfile)
            warnings += own_warn
            if any(k in own for k in REMNANT_KEYS):
                # patient.json's remnant replaces study.csv's whole, whichever key names it.
                for key in [k for k in REMNANT_KEYS if k in facts and k not in own]:
                    warnings.append(f"patient.json and study.csv define the remnant "
                                    f"differently ({key} {facts.pop(key)!r} in study.csv); "
                                    f"patient.json is used.")
            for key, value in own.items():
                if key in facts and facts[key] != value:
                    warnings.append(f"patient.json and study.csv disagree on {key} "
                                    f"({value!r} vs {facts[key]!r}); patient.json is used.")
            facts.update(own)
        elif csv_row is None:
            warnings.append(f"no patient.json in {patient_id}/ and no study.csv row: height "
                            f"and weight come from the DICOM header if any, the liver "
                            f"condition defaults to normal.")
        patient = StudyPatient(patient_id=patient_id, folder=folder, **facts)
        patient.volumetry_patient()  # refuses implausible height/weight now, per patient
    except InputError as exc:
        patient = StudyPatient(patient_id=patient_id, folder=folder, error=str(exc),
                               **_readable_facts(csv_row, pfile if has_file else None,
                                                 patient_id, study_path, folder))
    if not timepoints and patient.error is None:
        patient = replace(patient, error=f"no timepoint folder with an image in "
                                         f"{patient_id}/.")
    return replace(patient, timepoints=tuple(timepoints), warnings=tuple(warnings))


def _readable_facts(csv_row, pfile, patient_id, study_path, folder):
    """The facts of a refused patient that can be read on their own.

    One refused value (a weight in grams) had cost every fact: a chemotherapy liver
    became a normal one (threshold 20 %) and the procedure and its date vanished from
    every output. Each value is read alone here, patient.json's over study.csv's; the
    patient still fails with its error.
    """
    sources = [] if csv_row is None else [(csv_row, f"study.csv ({patient_id})", study_path)]
    unreadable = False
    if pfile is not None:
        try:
            raw = _read_json(pfile, "patient file")
            sources.append((raw, pfile, folder))
        except InputError:
            unreadable = True  # the patient's error already says what is wrong with the file
    facts, refused = {}, set()
    for raw, where, base in sources:
        for key, value in raw.items():
            if key in PATIENT_KEYS:
                try:
                    facts.update(_clean_facts({key: value}, where, base)[0])
                    refused.discard(key)
                except InputError:
                    refused.add(key)
    try:
        StudyPatient(patient_id=patient_id, folder=folder, **facts).volumetry_patient()
    except InputError:
        # A height and weight are used together or not at all: a refused pair measured
        # nothing, so neither is reported.
        facts.pop("height_cm", None)
        facts.pop("weight_kg", None)
    if "liver_condition" in refused or (unreadable and "liver_condition" not in facts):
        # Not the default: a refused "cirhosis" (or a patient.json that cannot be read) had
        # been reported as a normal liver with the 20 % threshold. None says the condition,
        # and so the threshold, is unknown.
        facts["liver_condition"] = None
    return facts


def discover_study(study_dir, *, exclude=()):
    """Find the patients and timepoints of a study folder (reads no image).

    Parameters
    ----------
    study_dir : str or os.PathLike
        The study folder (layout in the module docstring and the README).
    exclude : str, os.PathLike or sequence of them
        Paths of folders to skip (e.g. an output folder placed inside the
        study); one path alone is one folder.

    Returns
    -------
    Study
        Patients sorted by ID, each with its timepoints sorted by folder
        name (the batch orders them by scan date once dates are known).
        Problems of one patient or timepoint are stored in its ``error``;
        they never stop the discovery of the others.

    Raises
    ------
    StudyLayoutError
        The folder does not exist, or holds no patient.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(d, "P001", "baseline"))
    >>> open(os.path.join(d, "P001", "baseline", "image.nii.gz"), "w").close()
    >>> study = discover_study(d)
    >>> [(p.patient_id, [t.name for t in p.timepoints]) for p in study.patients]
    [('P001', ['baseline'])]
    """
    if not isinstance(study_dir, (str, os.PathLike)):
        # None had raised pathlib's bare TypeError.
        raise StudyLayoutError(f"the study folder must be a path (str or pathlib.Path), not "
                               f"{type(study_dir).__name__}.")
    path = Path(study_dir)
    if not path.is_dir():
        raise StudyLayoutError(f"the study folder {study_dir} does not exist or is not a "
                               f"folder.")
    if isinstance(exclude, (str, os.PathLike)):
        exclude = (exclude,)  # one folder: a string had been taken letter by letter
    study_path = str(path.resolve())
    csv_path = path / "study.csv"
    rows = read_study_csv(csv_path) if csv_path.is_file() else {}
    warnings = []
    patients = []
    seen = set()
    skip = {os.path.realpath(x) for x in exclude}
    # The same name in another Unicode form is the same patient: macOS writes folder names
    # decomposed (u + combining diaeresis), spreadsheets composed.
    row_of = {unicodedata.normalize("NFC", pid): pid for pid in rows}
    for e in sorted(os.listdir(path)):
        full = path / e
        if _ignored(e) or not full.is_dir() or os.path.realpath(full) in skip:
            continue
        _check_folder_name(e, path)
        row = row_of.get(unicodedata.normalize("NFC", e))
        p = _find_patient(e, str(full.resolve()), rows.get(row), study_path)
        if p is not None:
            patients.append(p)
            seen.add(row if row is not None else e)
        elif row is None:  # (study.csv's patients without data are listed below)
            warnings.append(f"{e}/ holds no patient.json and no timepoint folder with a scan: "
                            f"skipped.")
    for pid in sorted(set(rows) - seen):
        warnings.append(f"study.csv lists patient {pid}, but there is no folder {pid}/ with "
                        f"timepoints; skipped.")
    if not patients:
        raise StudyLayoutError(
            f"no patient found in {study_dir}: expected folders such as P001/ holding "
            f"patient.json and timepoint folders with an image (see the README's "
            f"'Study layout')."
        )
    return Study(path=study_path, patients=tuple(patients), warnings=tuple(warnings))
