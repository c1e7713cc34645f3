"""Batch volumetry of a study folder, with the longitudinal growth analysis.

:func:`run_batch` finds the patients and timepoints of a study folder
(:mod:`flr_volumetry.study`), measures every timepoint with
:func:`flr_volumetry.workflow.measure_files` (one timepoint per task:
serially, in ``workers`` processes, or on a Dask distributed cluster),
computes each follow-up's growth against the baseline with
:func:`flr_volumetry.hypertrophy.hypertrophy`, and writes the outputs
(:mod:`flr_volumetry.report`):

- ``timepoints.csv``, ``patients.csv``, ``results.json``, ``report.html``;
- ``masks/<patient>/<timepoint>/``: the masks the run made (a segmented
  liver, the FLR derived from the plan; NIfTI, for review in napari) and the
  overlay figure; masks given as inputs are referenced, not copied;
- ``cache/<patient>/<timepoint>.json``: per-timepoint results with the content
  hash of their inputs, for ``resume``;
- ``batch.log``: what happened, by patient ID (never a name).

A broken timepoint or patient is recorded with its error and never stops
the others. Every output is written atomically.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import numbers
import os
import socket
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from ._options import as_options, check_field_types
from . import clinical
from .clinical import sflr_adequate, sflr_threshold_pct
from .errors import InputError
from .hypertrophy import baseline_index, hypertrophy
from .io import load_image, series_patient_id, write_json_atomic, write_mask
from .io._writers import all_or_none
from .report import (
    PATIENT_COLUMNS,
    RESULTS_SCHEMA,
    RESULTS_SCHEMA_VERSION,
    TIMEPOINT_COLUMNS,
    overlay_png,
    render_report_html,
    write_csv_atomic,
    write_text_atomic,
)
from .study import StudyLayoutError, discover_study, is_patient_folder
from .volumetry import Patient, VolumetryOptions
from .workflow import measure_files

__all__ = ["BatchOptions", "BatchResult", "TimepointTask", "analyse_patient", "run_batch",
           "run_timepoint"]

log = logging.getLogger("flr_volumetry.batch")

_MASK_FILES = ("liver", "flr", "tumor", "segments")


def _software_version():
    from . import __version__

    return __version__


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs.

    Attributes
    ----------
    workers : int
        Timepoints measured at once in separate processes on this machine
        (1: in this process). Memory use is bounded by ``workers`` timepoints.
    resume : bool
        Skip timepoints already measured in ``out_dir`` whose inputs (file
        contents, patient facts, options) are unchanged.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); the
        timepoints then run on its workers, which must see the study and
        output folders at the same paths (a shared file system).
    volumetry : VolumetryOptions
        BSA and TELV formulas.
    scheduler_timeout_s : float
        How long to try to reach the scheduler before giving up.
    from_baseline_date : bool
        For patients without a procedure date, count growth intervals from
        the baseline scan (not Shindoh's KGR; the results say so).
    figures : bool
        Draw the overlay figure of each timepoint for the report.
    progress : bool
        Show a progress bar on stderr.
    resample_masks : bool
        Resample a given mask file on another grid than its scan onto the
        scan's (nearest neighbour, said with its volume before and after).
        Without it such a timepoint fails: a mask made on another scan, or
        written with the wrong spacing, is no mask of this one.
    """

    workers: int = 1
    resume: bool = False
    scheduler: str | None = None
    scheduler_timeout_s: float = 30.0
    volumetry: VolumetryOptions = field(default_factory=VolumetryOptions)
    from_baseline_date: bool = False
    figures: bool = True
    progress: bool = True
    resample_masks: bool = False

    def __post_init__(self):
        # numbers.Integral: a numpy integer (a count from a DataFrame, os.cpu_count() // 2 in
        # numpy) is a whole number too; it had been refused. Stored as an int.
        if isinstance(self.workers, (bool, np.bool_)) \
                or not isinstance(self.workers, numbers.Integral) or self.workers < 1:
            raise StudyLayoutError(f"workers must be a whole number >= 1, got {self.workers!r}.")
        object.__setattr__(self, "workers", int(self.workers))
        try:
            # Frozen: set once, as the dataclass itself would.
            object.__setattr__(self, "volumetry", as_options(self.volumetry, VolumetryOptions,
                                                             "volumetry options"))
            # resume="false" (from a JSON or YAML file) had resumed: a string is true.
            check_field_types(self, "batch options")
            if not self.scheduler_timeout_s > 0:
                raise InputError(f"scheduler_timeout_s must be positive, got "
                                 f"{self.scheduler_timeout_s!r}.")
        except InputError as exc:
            raise StudyLayoutError(str(exc)) from None


@dataclass(frozen=True)
class BatchResult:
    """What a batch run produced. ``results`` is the content of ``results.json``.

    Attributes
    ----------
    out_dir : str
    results : dict
        The content of ``results.json`` (schema in :mod:`flr_volumetry.report`).
    timepoints_csv, patients_csv, results_json, report_html, log_file : str
        Paths of the files written in ``out_dir``.
    """

    out_dir: str
    results: dict
    timepoints_csv: str
    patients_csv: str
    results_json: str
    report_html: str
    log_file: str

    @property
    def ok(self):
        """True when every patient and timepoint succeeded."""
        s = self.results["summary"]
        return s["patients_failed"] == 0 and s["timepoints_failed"] == 0

    @property
    def failed_patients(self):
        return [p["patient_id"] for p in self.results["patients"] if p["status"] != "ok"]

    def summary_line(self):
        """One line: counts, the failed patients, and where the report is."""
        s = self.results["summary"]
        line = (f"{s['patients']} patients: {s['patients_ok']} ok, {s['patients_failed']} "
                f"failed; {s['timepoints']} timepoints: {s['timepoints_ok']} ok, "
                f"{s['timepoints_failed']} failed")
        if s.get("timepoints_resumed"):
            line += f" ({s['timepoints_resumed']} unchanged, skipped)"
        if self.failed_patients:
            line += f" (failed: {', '.join(self.failed_patients)}; errors in {self.patients_csv})"
        return line + f"; report: {self.report_html}"


@dataclass(frozen=True)
class TimepointTask:
    """Everything one worker needs to measure one timepoint (small and picklable)."""

    timepoint: object  # StudyTimepoint
    patient: Patient
    remnant: dict
    options: VolumetryOptions
    out_dir: str
    resume: bool = False
    figures: bool = True
    patient_error: str | None = None
    plan_source: object = None  # StudyTimepoint whose plan.json (or scan) holds the plan
    plan_carried: bool = False  # the plan holds plan_source's coordinates: register
    resect_caudate: bool = False  # patient.json's flag, which a plan file would override
    resample_masks: bool = False  # a given mask on another grid: resampled (else refused)


# ------------------------------------------------------------- one timepoint
def _hash_inputs(task):
    """Content hash of a timepoint's inputs and of everything that changes its result."""
    tp = task.timepoint
    h = hashlib.sha256()  # hardware-accelerated on most CPUs: the fastest here
    facts = {
        "software": _software_version(), "schema": RESULTS_SCHEMA_VERSION,
        "patient": [task.patient.height_cm, task.patient.weight_kg, task.patient.liver_condition],
        "remnant": task.remnant, "options": [task.options.bsa_formula, task.options.telv_formula],
        "figures": task.figures,
        # patient.json's resect_caudate beside a plan.json is refused by the measurement:
        # a cached result must not stand in for that refusal.
        "resect_caudate": task.resect_caudate,
    }
    h.update(json.dumps(facts, sort_keys=True, default=str).encode())
    files = list(tp.input_files())
    if isinstance(task.remnant.get("plan"), str):
        files.append(task.remnant["plan"])  # an inline plan is hashed with the facts above
    src = task.plan_source
    if src is not None and src.name != tp.name:
        # A plan carried from another scan depends on that scan and its masks.
        theirs = src.input_files() if task.plan_carried else [src.plan] if src.plan else []
        files += [p for p in theirs if p not in files]
    for path in files:
        h.update(b"\0" + os.path.relpath(path, tp.folder).encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as exc:
            raise InputError(f"cannot read {os.path.relpath(path, tp.folder)} in "
                             f"{tp.patient_id}/{tp.name}/ ({exc.strerror}).") from exc
    return h.hexdigest()


def _rel(out_dir, *parts):
    return "/".join(parts), os.path.join(out_dir, *parts)


def _cache_path(out_dir, patient_id, timepoint):
    return os.path.join(out_dir, "cache", patient_id, f"{timepoint}.json")


def _cached(task, input_hash):
    path = _cache_path(task.out_dir, task.timepoint.patient_id, task.timepoint.name)
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    if rec.get("input_hash") != input_hash or rec.get("status") != "ok":
        return None
    if rec.get("masks_resampled") and not task.resample_masks:
        # Measured on a resampled mask, which is now refused (hashing the option instead
        # made every timepoint's record stale when it was given, as the error advises).
        return None
    source = (((rec.get("measurement") or {}).get("methods") or {}).get("image") or {})
    if source.get("source") != task.timepoint.image:
        # The same content at another path (a copied study): the record's paths would
        # name the old study's files.
        return None
    artifacts = list((rec.get("masks") or {}).values())
    if rec.get("overlay"):
        artifacts.append(rec["overlay"])
    if not all(os.path.isfile(os.path.join(task.out_dir, a)) for a in artifacts):
        return None
    return rec


def _remnant_kwargs(task):
    """``measure_files`` keywords that give the FLR, and a description of its source.

    A plan with landmarks or a cut surface is placed on one scan
    (``task.plan_source``); at the patient's other timepoints it is carried
    by registering that scan to this one, so the same remnant is measured
    on every scan.
    """
    from .remnant import RemnantPlan

    tp = task.timepoint
    if tp.flr:
        return {"flr": tp.flr}, f"file {os.path.basename(tp.flr)}"
    src = task.plan_source
    patient_plan = task.remnant.get("plan")
    plan_file = tp.plan or (src.plan if src is not None else None)
    if plan_file and (task.remnant or task.resect_caudate):
        # Picking one would give another FLR without a word.
        given = ", ".join(k for k in ("plan", "resection", "remnant_segments")
                          if task.remnant.get(k) is not None) or "resect_caudate"
        raise InputError(
            f"the remnant is defined twice: by {os.path.basename(plan_file)} in "
            f"{(tp if tp.plan else src).name} and by {given} in patient.json; keep one.")
    if tp.plan:
        plan, where = _load_plan(tp.plan), f"plan {os.path.basename(tp.plan)} ({tp.name})"
    elif src is not None and src.plan:
        plan, where = _load_plan(src.plan), f"plan {os.path.basename(src.plan)} ({src.name})"
    elif not task.remnant:
        raise InputError(
            "no FLR: put an flr.* mask in the timepoint folder, or give resection, "
            "remnant_segments or plan in patient.json.")
    elif patient_plan:
        plan = _load_plan(patient_plan)
        where = ("plan in patient.json" if isinstance(patient_plan, dict)
                 else f"plan {os.path.basename(patient_plan)} (patient)")
    else:
        caudate = bool(task.remnant.get("resect_caudate"))
        suffix = ", caudate resected" if caudate else ""
        if task.remnant.get("remnant_segments"):
            segs = tuple(int(s) for s in task.remnant["remnant_segments"])
            return ({"plan": RemnantPlan(remnant_segments=segs, resect_caudate=caudate)},
                    "segments " + ",".join(str(s) for s in segs) + suffix)
        return ({"plan": RemnantPlan(resection=task.remnant["resection"],
                                     resect_caudate=caudate)},
                f"resection {task.remnant['resection']}{suffix}")
    if tp.plan or not task.plan_carried or src is None or src.name == tp.name:
        return {"plan": plan}, where
    return ({"plan": plan, "plan_baseline": (src.image, src.liver)},
            f"{where}, carried from {src.name} by registration")


def _load_plan(plan):
    """A RemnantPlan from a plan file, or from a plan written inline in patient.json."""
    from .remnant import RemnantPlan

    return RemnantPlan.from_dict(plan) if isinstance(plan, dict) else RemnantPlan.load(plan)


def _plan_source(patient):
    """Where a patient's plan comes from: ``(timepoint, carried)``, or ``(None, False)``.

    The timepoint whose folder holds ``plan.json`` (the earliest, when
    several do); else, for a plan in ``patient.json``, the baseline: the
    earliest ``timepoint.json`` date, then the first folder by name (DICOM
    dates are not known before the scans are read). ``carried`` is True when
    the plan holds coordinates of that scan (landmarks or a cut surface), so
    the other timepoints need a registration; segment plans are applied to
    each scan's own segment map as they are. A plan that cannot be read is
    not carried (its timepoints report the error).
    """
    tps = [tp for tp in patient.timepoints_by_date() if tp.image]
    with_plan = [tp for tp in tps if tp.plan]
    if with_plan:
        source = with_plan[0]
        plan = source.plan
    elif tps and patient.remnant_spec().get("plan"):
        source = tps[0]
        plan = patient.remnant_spec()["plan"]
    else:
        return None, False
    try:
        loaded = _load_plan(plan)
    except Exception:  # noqa: BLE001 - one patient's bad plan must not stop the batch
        return source, False
    if not with_plan and loaded.in_scan_coordinates and loaded.placed_on is not None:
        # A plan saved with its scan's record: that scan, not the earliest, is its own
        # (points used as they are on another scan, then carried again, are garbage).
        source = _timepoint_placed_on(loaded, tps) or source
    return source, loaded.in_scan_coordinates


def _timepoint_placed_on(plan, timepoints):
    """The timepoint whose scan the plan's ``placed_on`` records (grid and voxel digest),
    or None; scans that cannot be read are passed over (their timepoints say why)."""
    import SimpleITK as sitk

    from .io import same_grid

    for tp in timepoints:
        try:
            if os.path.isfile(tp.image):
                # The header's grid first: a scan on another grid is not the plan's, and
                # reading every scan's voxels at the start of each run (--resume too) costs
                # seconds a scan.
                header = sitk.ImageFileReader()
                header.SetFileName(tp.image)
                header.ReadImageInformation()
                if not same_grid(plan.placed_on_grid, header):
                    continue
            image = load_image(tp.image, series_uid=tp.series_uid).image
        except Exception:  # noqa: BLE001
            continue
        if not plan.placed_on_another_scan(image):
            return tp
    return None


def _header_date(tp):
    from .io import series_study_date

    try:
        return series_study_date(tp.image, tp.series_uid)
    except Exception:  # noqa: BLE001 - a folder unreadable even for headers: no date
        return None


def _scan_date(scan, tp, warnings):
    header = scan.study_date.isoformat() if scan.study_date else None
    if header and tp.scan_date and header != tp.scan_date:
        warnings.append(f"the DICOM StudyDate ({header}) differs from timepoint.json "
                        f"({tp.scan_date}); the DICOM date is used.")
    if header:
        return header, "dicom"
    if tp.scan_date:
        return tp.scan_date, "timepoint.json"
    raise InputError(
        f"no scan date: the image has no DICOM StudyDate and {tp.name}/timepoint.json gives "
        f"none; add timepoint.json with {{\"scan_date\": \"YYYY-MM-DD\"}}.")


# Every file the batch writes into OUT/masks/<patient>/<timepoint>/.
_OUTPUT_FILES = tuple(f"{name}.nii.gz" for name in _MASK_FILES) + ("overlay.png",)


def _remove_outputs(out_dir, patient_id, timepoint, keep=()):
    """Delete the batch's own files of a timepoint in OUT/masks but ``keep`` (never another
    file), and the folder when that leaves it empty: masks/ holds what this run made."""
    folder = os.path.join(out_dir, "masks", patient_id, timepoint)
    for name in _OUTPUT_FILES:
        path = os.path.join(folder, name)
        if name not in keep and os.path.isfile(path):
            os.unlink(path)
    for path in (folder, os.path.dirname(folder)):
        try:
            os.rmdir(path)  # only when empty
        except OSError:
            break


def _prune_removed_timepoints(out_dir, records):
    """Remove the outputs of timepoints an earlier run measured (its results.json, or the
    cache entries of a run killed before its tables) and this study no longer has; folders
    no run recorded are the user's, and stay."""
    earlier = set()
    try:
        with open(os.path.join(out_dir, "results.json"), encoding="utf-8") as fh:
            previous = json.load(fh)
        earlier = {(str(t.get("patient_id")), str(t.get("timepoint")))
                   for p in previous.get("patients", []) for t in p.get("timepoints", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no earlier tables, or not ours to read
    # A run killed before its tables measured (and saved masks of) timepoints that no
    # results.json lists: its cache entries record them.
    cache = os.path.join(out_dir, "cache")
    try:
        for pid in os.listdir(cache):
            folder = os.path.join(cache, pid)
            if pid == "charts" or not os.path.isdir(folder):
                continue
            earlier |= {(pid, name[:-5]) for name in os.listdir(folder)
                        if name.endswith(".json") and _is_own_record(os.path.join(folder, name),
                                                                     pid, name[:-5])}
    except OSError:
        pass
    current = {(r["patient_id"], r["timepoint"]) for r in records}
    for pid, tp in sorted(earlier - current):
        if "/" in pid + tp or "\\" in pid + tp or ".." in (pid, tp):
            continue  # not a folder name a run could have made
        _remove_outputs(out_dir, pid, tp)
        path = _cache_path(out_dir, pid, tp)
        if _is_own_record(path, pid, tp):
            try:
                os.unlink(path)
                os.rmdir(os.path.join(cache, pid))  # only when empty
            except OSError:
                pass


def _is_own_record(path, patient_id, timepoint):
    """Whether ``path`` holds a timepoint record a run wrote (see :func:`_new_record`) for
    this patient and timepoint: any other JSON file under OUT/cache is the user's (a
    cache/tool/settings.json had been deleted as the record of a timepoint 'settings')."""
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return False
    return (isinstance(rec, dict) and "input_hash" in rec
            and rec.get("patient_id") == patient_id and rec.get("timepoint") == timepoint)


def _save_masks(masks, out_dir, tp):
    """Write the masks this run made; refer to the input files for the others.

    A mask given as a file in the timepoint folder is already there for
    review; writing it again would only cost time. Masks that were made
    (segmented liver, FLR from the plan, segments from landmarks) are saved,
    and so is a given mask that was resampled onto the scan's grid: what was
    measured is then not the file.
    """
    saved = {}
    folder_parts = ("masks", tp.patient_id, tp.name)
    for name in _MASK_FILES:
        rel, path = _rel(out_dir, *folder_parts, f"{name}.nii.gz")
        given = getattr(tp, name)
        if name in masks and (given is None or not _file_on_grid_of(given, masks[name])):
            write_mask(masks[name], path)
            saved[name] = rel
            continue
        if name in masks:
            saved[name] = given
        if os.path.exists(path):
            os.unlink(path)  # a mask of an earlier run that this run did not make
    return saved


def _file_on_grid_of(path, image):
    """Whether the image file ``path`` lies on ``image``'s grid (its header only is read;
    a file whose header ITK cannot read alone, such as DICOM SEG, is taken as not)."""
    from .io import same_grid

    grid = _file_grid(path)
    return grid is not None and same_grid(grid, image)


def _file_grid(path):
    """The grid (size, spacing, origin, direction) in an image file's header, or None when
    ITK cannot read the header alone (DICOM SEG) or the file is not 3-D."""
    import SimpleITK as sitk

    from .io._images import itk_warnings_hidden

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        with itk_warnings_hidden():
            reader.ReadImageInformation()
    except RuntimeError:
        return None
    if reader.GetDimension() != 3:
        return None
    return {"size": reader.GetSize(), "spacing": reader.GetSpacing(),
            "origin": reader.GetOrigin(), "direction": reader.GetDirection()}


# Files that store only their segments' extent, placed on the scan by their own geometry.
_PLACED_MASK_SUFFIXES = (".seg.nrrd", ".dcm")


def _masks_off_grid(tp, image, resample):
    """The names of the given mask files on another grid than the scan ``image``, which
    the measurement resamples; without ``resample`` the first is refused in one sentence.

    Issue 6 counts a mask on another grid among the broken inputs: resampled, a
    mask made on another scan, or written with the wrong spacing (2 x 2 x 3 mm for
    1 x 1 x 2.5), is measured as nonsense (a 4342 mL liver for 2031) under a
    status of ok. ``--resample-masks`` asks for the resampling. A grid holding
    the scan's own voxels in another axis order passes; 3D Slicer segmentations
    and DICOM SEG files store their segments' extent only, and are placed as always.
    """
    from .io._geometry import grid_description, same_voxels

    off_grid = []
    for name in _MASK_FILES:
        path = getattr(tp, name)
        if path is None or os.fspath(path).lower().endswith(_PLACED_MASK_SUFFIXES):
            continue
        grid = _file_grid(path)
        if grid is None or same_voxels(grid, image):
            # (A file ITK cannot read is refused, with its reason, by the reader. The same
            # voxels stored with an axis flipped, as dcm2niix writes a DICOM series, are
            # placed exactly.)
            continue
        off_grid.append(name)
        if resample:
            continue
        raise InputError(
            f"the {name} mask {os.path.basename(path)} is on another grid "
            f"({grid_description(grid)}) than the scan ({grid_description(image)}); "
            f"export it on the scan's grid, or run batch with --resample-masks to resample "
            f"it by nearest neighbour."
        )
    return off_grid


def _one_line(exc, max_chars=300):
    """An exception's text on one line (a CSV cell), shortened: ITK's run over many."""
    text = " ".join(str(exc).split())
    return text if len(text) <= max_chars else text[:max_chars - 3] + "..."


def _new_record(tp):
    """A timepoint record with every key, failed until proven ok."""
    return {"patient_id": tp.patient_id, "timepoint": tp.name, "scan_date": tp.scan_date,
            "date_source": "timepoint.json" if tp.scan_date else None, "status": "failed",
            "error": None, "measurement": None, "liver_method": None, "flr_method": None,
            "masks": {}, "masks_resampled": [], "overlay": None, "input_hash": None,
            "resumed": False,
            "seconds": None, "hash_seconds": None, "measure_seconds": None,
            "save_seconds": None, "figure_seconds": None}


def run_timepoint(task):
    """Measure one timepoint and save its masks and figure; never raises.

    Returns the timepoint record (see ``results.json`` in
    :mod:`flr_volumetry.report`): ``status`` is ``"ok"`` or ``"failed"``
    with the ``error`` sentence.
    """
    t0 = time.perf_counter()
    tp = task.timepoint
    rec = _new_record(tp)
    masks = {}
    scan = None
    try:
        if task.patient_error:
            raise InputError(f"patient not measured: {task.patient_error}")
        if tp.error:
            raise InputError(tp.error)
        t_hash = time.perf_counter()
        rec["input_hash"] = input_hash = _hash_inputs(task)
        rec["hash_seconds"] = time.perf_counter() - t_hash
        if task.resume:
            cached = _cached(task, input_hash)
            if cached is not None:
                cached.update(resumed=True, seconds=time.perf_counter() - t0)
                return cached
        if tp.scan_date is None and not os.path.isdir(tp.image):
            # Only a DICOM folder can carry a StudyDate: fail before reading pixels.
            raise InputError(
                f"no scan date: {os.path.basename(tp.image)} carries none and "
                f"{tp.name}/timepoint.json is missing; add it with "
                f"{{\"scan_date\": \"YYYY-MM-DD\"}}.")
        flr_kwargs, rec["flr_method"] = _remnant_kwargs(task)
        rec["liver_method"] = (f"file {os.path.basename(tp.liver)}" if tp.liver
                               else "automatic segmentation")
        t_measure = time.perf_counter()
        scan = load_image(tp.image, series_uid=tp.series_uid)
        warnings = []
        rec["scan_date"], rec["date_source"] = _scan_date(scan, tp, warnings)
        rec["masks_resampled"] = _masks_off_grid(tp, scan.image, task.resample_masks)
        m = measure_files(scan, liver=tp.liver, tumor=tp.tumor, segments=tp.segments,
                          patient=task.patient, options=task.options,
                          scan_date=rec["scan_date"], modality=tp.modality, masks_out=masks,
                          **flr_kwargs)
        rec["measure_seconds"] = time.perf_counter() - t_measure
        measurement = m.to_dict()
        measurement["warnings"] = warnings + measurement["warnings"]
        rec["measurement"] = measurement
        t_save = time.perf_counter()
        rec["masks"] = _save_masks(masks, task.out_dir, tp)
        rec["save_seconds"] = time.perf_counter() - t_save
        if task.figures and "liver" in masks:
            t_fig = time.perf_counter()
            try:
                png = overlay_png(scan.image, masks["liver"], masks.get("flr"),
                                  masks.get("tumor"), modality=scan.modality,
                                  title=f"{tp.patient_id} / {tp.name} ({rec['scan_date']})")
                rel, path = _rel(task.out_dir, "masks", tp.patient_id, tp.name, "overlay.png")
                write_text_atomic(png, path, mode="wb")
                rec["overlay"] = rel
            except Exception as exc:  # noqa: BLE001 - a figure never undoes a measurement
                measurement["warnings"].append(
                    f"the overlay figure could not be drawn ({type(exc).__name__}: "
                    f"{_one_line(exc)}).")
            rec["figure_seconds"] = time.perf_counter() - t_fig
        if rec["overlay"] is None:  # no figure this run (--no-figures, or it failed)
            _remove_outputs(task.out_dir, tp.patient_id, tp.name,
                            keep=[f for f in _OUTPUT_FILES if f != "overlay.png"])
        rec["status"] = "ok"
    except InputError as exc:
        rec["error"] = str(exc)
    except MemoryError:
        rec["error"] = "out of memory while measuring this timepoint; run with fewer workers."
    except Exception as exc:  # noqa: BLE001 - one broken timepoint must not stop the batch
        rec["error"] = f"unexpected failure ({type(exc).__name__}: {_one_line(exc)})."
    if rec["status"] != "ok":
        # A failed row carries no volumes: whatever was measured before the failure is not
        # a result, nor are an earlier run's masks and figure of this timepoint.
        rec.update(measurement=None, masks={}, overlay=None)
        try:
            _remove_outputs(task.out_dir, tp.patient_id, tp.name)
            if tp.liver is None and "liver" in masks:
                # Segmented before a later step failed: kept for review, since it may be
                # the cause (a plan's landmark outside a poor mask).
                rec["masks"] = _save_masks({"liver": masks["liver"]}, task.out_dir, tp)
                rec["error"] = (f"{rec['error'].rstrip('.')} (the segmented liver is saved "
                                f"for review: {rec['masks']['liver']}).")
        except (OSError, InputError):  # InputError: a mask the disk had no room for
            pass  # its own failure is what the row says; the cleanup is not a result
        if scan is not None and scan.warnings:
            # How the scan was read may be the cause (another series than the mask's, a
            # slice dropped): a liver 'on another grid' had been blamed on the mask alone.
            rec["error"] = (f"{rec['error'].rstrip('.')}. Reading the scan: "
                            + " ".join(w if w.endswith(".") else w + "." for w in scan.warnings))
        if rec["scan_date"] is None and tp.image and os.path.isdir(tp.image):
            # Its date still places it among the patient's scans (an undated one stops the
            # growth analysis): the headers hold it even when the volume cannot be read.
            date = _header_date(tp)
            if date is not None:
                rec["scan_date"], rec["date_source"] = date.isoformat(), "dicom"
    rec["seconds"] = time.perf_counter() - t0
    if rec["status"] == "ok":
        try:
            write_json_atomic(rec, _cache_path(task.out_dir, tp.patient_id, tp.name))
        except (OSError, InputError):  # InputError: a full disk, said by the writer
            pass  # without its cache entry the timepoint is measured again on --resume
    return rec


# ---------------------------------------------------------------- executors
def _failed_record(task, message):
    rec = _new_record(task.timepoint)
    rec["error"] = message
    return rec


def _run_serial(tasks):
    for task in tasks:
        yield run_timepoint(task)


def _process_alive(pid):
    """Whether process ``pid`` exists on this computer (another user's counts: alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _init_worker(itk_threads, main_pid, quiet_loggers=(), warning_filters=()):
    import signal

    import SimpleITK as sitk

    # As quiet as the main process: a worker, forked from the fork server, had printed
    # pydicom's lines about old header syntax that the command line keeps for --debug.
    for name, level in quiet_loggers:
        logging.getLogger(name).setLevel(level)
    warnings.filters[:0] = list(warning_filters)

    # N processes on C cores: each ITK filter gets C / N threads, not C, so the
    # processes do not fight over the cores.
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(itk_threads)
    # Ctrl-C reaches the whole process group: the main process stops the workers itself
    # (a worker that caught it had gone on to the next queued timepoint).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with(main_pid)


def _exit_with(main_pid, poll_s=1.0):
    """End this worker within ``poll_s`` of the main process's end (killed, say): a worker
    is the fork server's child, which outlives the main process, and had gone on writing
    the queued timepoints into OUT."""
    import threading

    def watch():
        while True:
            time.sleep(poll_s)
            if not _process_alive(main_pid):
                os._exit(1)

    threading.Thread(target=watch, name="flr-main-watch", daemon=True).start()


def _stop_workers(pool):
    """Stop a process pool now: queued timepoints dropped, running ones ended (their
    outputs are written atomically, so at most a temporary file is left, which the next
    run removes)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # gone at shutdown
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():  # SIGTERM not acted on (busy in native code): no choice left
            process.kill()


def _quiet_loggers(names=("pydicom", "highdicom")):
    """(name, level) of the libraries' loggers this process has set a level for."""
    return tuple((n, logging.getLogger(n).level) for n in names
                 if logging.getLogger(n).level != logging.NOTSET)


def _run_processes(tasks, workers):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # forkserver: children fork from a clean server process, never from this
    # one (which may hold threads: tqdm, logging, a GUI), and inherit its
    # already-imported modules, so they start fast.
    ctx = multiprocessing.get_context("forkserver")
    # Modules a worker would otherwise import on its first timepoint (missing
    # optional ones are skipped by the fork server).
    ctx.set_forkserver_preload(["flr_volumetry.batch", "flr_volumetry.remnant",
                                "flr_volumetry.segmentation", "scipy.ndimage",
                                "matplotlib.figure", "matplotlib.backends.backend_agg"])
    from concurrent.futures.process import BrokenProcessPool

    def pool_of(n):
        threads = max(1, (os.cpu_count() or 1) // n)
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                   initargs=(threads, os.getpid(), _quiet_loggers(),
                                             tuple(warnings.filters)))

    def run(batch, n):
        """Yield the records of ``batch`` on ``n`` workers; returns the tasks a dead
        worker took down with it (every one still queued or running)."""
        pool, lost = pool_of(n), []
        try:
            futures = {pool.submit(run_timepoint, t): t for t in batch}
            for fut in as_completed(futures):
                try:
                    rec = fut.result()
                except BrokenProcessPool:
                    lost.append(futures[fut])
                    continue
                except Exception as exc:  # noqa: BLE001 - one timepoint's, in words
                    rec = _failed_record(futures[fut], f"the worker process failed "
                                                       f"({type(exc).__name__}: {exc}).")
                yield rec
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, or the caller stopped reading): stop now
            # instead of measuring the queued timepoints before returning.
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
        return lost

    lost = yield from run(tasks, min(workers, len(tasks)))
    if lost:
        log.warning("a worker process died (killed for memory?): %d timepoint(s) it took "
                    "down are measured again, one at a time", len(lost))
    # A worker that dies (killed for memory) breaks the pool: every timepoint queued had
    # failed with it. Each is measured again on its own, so that only one that kills its
    # worker again fails, in words.
    for task in sorted(lost, key=tasks.index):
        if (yield from run([task], 1)):
            yield _failed_record(task, "the worker process measuring it alone died (killed "
                                       "for memory?); run on a machine with more memory.")


def _run_dask(tasks, address, timeout_s):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise StudyLayoutError("--scheduler needs the 'distributed' package: pip install "
                               "'dask[distributed]'.") from None
    try:
        client = Client(address, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError by transport
        raise StudyLayoutError(f"cannot reach the Dask scheduler at {address} "
                               f"({type(exc).__name__}: {exc}).") from exc
    with client:
        futures = {}
        for t in tasks:
            key = f"flr-timepoint-{t.timepoint.patient_id}-{t.timepoint.name}-{os.getpid()}-" \
                  f"{time.time_ns()}"
            futures[client.submit(run_timepoint, t, key=key, pure=False)] = t
        for fut in as_completed(list(futures)):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker
                yield _failed_record(futures[fut], f"the Dask task failed "
                                                   f"({type(exc).__name__}: {exc}).")


# --------------------------------------------------------------- longitudinal
def _order(records):
    dated = sorted((r for r in records if r.get("scan_date")),
                   key=lambda r: (r["scan_date"], r["timepoint"]))
    return dated + sorted((r for r in records if not r.get("scan_date")),
                          key=lambda r: r["timepoint"])


def analyse_patient(patient, records, *, from_baseline_date=False):
    """The ``results.json`` entry of one patient: timepoints, follow-ups, summary row.

    The baseline is the first timepoint by scan date -- or, when the
    procedure date is known and several scans precede it (a diagnostic and a
    planning scan), the last scan on or before the procedure: the state of
    the liver when the procedure was done. Earlier scans are measured and
    listed, not compared. Every later timepoint that was measured is a
    follow-up, compared with the baseline by
    :func:`~flr_volumetry.hypertrophy.hypertrophy`. The summary (a row of
    ``patients.csv``) is the latest follow-up against the baseline, leaving out scans
    whose FLR is the whole liver (taken after the resection; said).

    No baseline is chosen, and the patient fails, when a timepoint has no
    scan date or no scan precedes a known procedure date.
    """
    ordered = _order(records)
    errors, warnings = [], list(patient.warnings)
    if patient.error:
        errors.append(patient.error)
    for r in ordered:
        r["is_baseline"] = False
        if r["status"] != "ok" and not patient.error:
            errors.append(f"{r['timepoint']}: {r['error']}")
    dated = [r for r in ordered if r.get("scan_date")]
    undated = [r["timepoint"] for r in ordered if not r.get("scan_date")]
    for day in sorted({r["scan_date"] for r in dated}):
        same = [r["timepoint"] for r in dated if r["scan_date"] == day]
        if len(same) > 1:
            # Ordered by folder name: the summary had compared the last one without a word.
            warnings.append(f"{' and '.join(same)} share the scan date {day}: they are ordered "
                            f"by folder name; check their dates (or keep one scan).")
    if undated and len(ordered) > 1:
        # Where an undated scan falls is unknown: it may be the baseline, and a later
        # scan taken for it would turn growth since the procedure into growth since then.
        errors.append(f"no growth computed: {', '.join(undated)} has no scan date, so the "
                      f"scans cannot be put in order")
        dated = []
    before = [r for r in dated
              if patient.procedure_date and r["scan_date"] <= patient.procedure_date]
    first = baseline_index([r["scan_date"] for r in dated], patient.procedure_date)
    if first > 0:
        warnings.append(
            f"{first + 1} scans precede the procedure ({patient.procedure_date}): the last, "
            f"{dated[first]['timepoint']}, is the baseline; "
            f"{', '.join(r['timepoint'] for r in dated[:first])} measured, not compared.")
        dated = dated[first:]
    if patient.procedure_date and dated and not before and len(dated) > 1:
        # A follow-up taken for the baseline: its growth since the procedure is not counted,
        # yet the interval would start at the procedure (a KGR too low, a false "below").
        errors.append(f"no scan precedes the procedure ({patient.procedure_date}): the first, "
                      f"{dated[0]['timepoint']}, is dated {dated[0]['scan_date']}; check the "
                      f"procedure date, or add the baseline scan")
        dated = []
    baseline = dated[0] if dated else None
    followups = []
    if baseline is not None:
        baseline["is_baseline"] = True
        for r in dated[1:]:
            if r["status"] != "ok" or baseline["status"] != "ok":
                continue
            f = {"timepoint": r["timepoint"], "status": "failed", "error": None,
                 "hypertrophy": None}
            try:
                h = hypertrophy(baseline["measurement"], r["measurement"],
                                procedure_date=patient.procedure_date,
                                from_baseline_date=from_baseline_date,
                                hbs_pct_per_min_m2=patient.hbs_pct_per_min_m2,
                                procedure=patient.procedure)
                f.update(status="ok", hypertrophy=h.to_dict())
            except InputError as exc:
                msg = str(exc)
                if patient.procedure_date is None and "procedure date" in msg:
                    msg = (f"no procedure date: add procedure_date (YYYY-MM-DD) to "
                           f"{patient.patient_id}/patient.json or study.csv, or run with "
                           f"--from-baseline-date.")
                f["error"] = msg
                errors.append(f"{r['timepoint']}: {msg}")
            followups.append(f)
        if baseline["status"] != "ok" and len(dated) > 1 and not patient.error:
            errors.append(f"the baseline scan ({baseline['timepoint']}) failed: no growth can "
                          f"be computed.")
    if baseline is not None and len(dated) == 1 and not errors:
        warnings.append("only one dated timepoint: no growth computed.")

    measured = [r for r in dated[1:] if r["status"] == "ok"]
    after = [r for r in measured if clinical.after_resection(
        (r.get("measurement") or {}).get("measured_flr_pct"))]
    if after:
        # A CT after the hepatectomy (the liver is the remnant) is no post-PVE scan: its
        # "growth" since the procedure is the resection's.
        measured = [r for r in measured if r not in after]
        compared = (f"the row compares {measured[-1]['timepoint']}, the last scan before it"
                    if measured else "the row compares no follow-up")
        warnings.append(f"{', '.join(r['timepoint'] for r in after)}: the FLR is the whole "
                        f"liver, as after the resection; {compared}")
    latest = measured[-1] if measured else None
    if baseline is not None and latest is not None and baseline["status"] == "ok":
        methods = [r.get("flr_method") or "" for r in (baseline, latest)]
        if len({m.startswith("file ") for m in methods}) > 1:
            # A mask drawn by hand at one scan and a plan at the other may keep other
            # segments (1-4 and 2-4): their difference is not growth.
            warnings.append(f"the FLR of {baseline['timepoint']} comes from {methods[0]} and "
                            f"that of {latest['timepoint']} from {methods[1]}: growth "
                            f"compares two definitions of the remnant; check that they keep "
                            f"the same segments")
    latest_f = next((f for f in followups if latest and f["timepoint"] == latest["timepoint"]),
                    None)
    h = (latest_f or {}).get("hypertrophy") or {}
    base_m = (baseline or {}).get("measurement") or {}
    last_m = (latest or {}).get("measurement") or {}
    adequate_m = last_m or base_m
    summary = {
        "patient_id": patient.patient_id,
        "status": "failed" if errors else "ok",
        # Each error is a sentence: joined without the doubled ".;".
        "error": "; ".join(e.rstrip(".") for e in dict.fromkeys(errors)) + "." if errors
        else None,
        "procedure": patient.procedure, "procedure_date": patient.procedure_date,
        "interval_days": h.get("interval_days"),
        # The sFLRs that DH used (a follow-up's recomputed with the baseline TELV if the two
        # estimates differ, a baseline's from the follow-up's TELV if it had none), so that
        # the row's DH is its own difference.
        "sflr_baseline_pct": h["sflr_pre_pct"] if h else base_m.get("sflr_pct"),
        "sflr_followup_pct": h["sflr_post_pct"] if h else last_m.get("sflr_pct"),
        "dh_pct_points": h.get("dh_pct_points"),
        "kgr_pct_per_week": h.get("kgr_pct_per_week"),
        "kgr_meets_2pct": h.get("kgr_meets_2pct"),
        "gr_pct_per_week": h.get("gr_pct_per_week"),
        "gr_meets_2_66pct": h.get("gr_meets_2_66pct"),
        # Daily rates: the ALPPS series report them (CLINICAL.md).
        "kgr_pct_per_day": h.get("kgr_pct_per_day"),
        "gr_pct_per_day": h.get("gr_pct_per_day"),
        # Judged on that same sFLR, or the row could show 30.0 % beside "inadequate".
        "sflr_adequate": (sflr_adequate(h["sflr_post_pct"], patient.liver_condition)
                          if h.get("sflr_post_pct") is not None
                          else adequate_m.get("sflr_adequate")),
        "liver_condition": patient.liver_condition,
        "sflr_threshold_pct": (None if patient.liver_condition is None  # refused: unknown
                               else sflr_threshold_pct(patient.liver_condition)),
        "baseline_timepoint": baseline["timepoint"] if baseline else None,
        "followup_timepoint": latest["timepoint"] if latest else None,
        "n_timepoints": len(records),
        "measured_dh_pct_points": h.get("measured_dh_pct_points"),
        "flr_baseline_ml": base_m.get("flr_ml"), "flr_followup_ml": last_m.get("flr_ml"),
        "flr_growth_ml": h.get("flr_growth_ml"), "flr_growth_pct": h.get("flr_growth_pct"),
        # The ALPPS registry criterion (Tomassini 2020), judged when the facts hold the
        # scintigraphic function.
        "flr_growth_pct_per_day": h.get("flr_growth_pct_per_day"),
        "hbs_pct_per_min_m2": patient.hbs_pct_per_min_m2,
        "alpps_high_phlf_risk": h.get("alpps_high_phlf_risk"),
        "interval_start": h.get("interval_start"),
        # What the row's figures rest on (a scan left out after the resection, another TELV at
        # follow-up), so that a CSV reader sees it beside them.
        "warnings": "; ".join(w.rstrip(".") for w in dict.fromkeys(
            warnings + list(h.get("warnings") or []))) or None,
    }
    return {
        "patient_id": patient.patient_id, "status": summary["status"],
        "error": summary["error"], "warnings": warnings, "facts": patient.facts(),
        "sflr_threshold_pct": summary["sflr_threshold_pct"],
        "baseline": summary["baseline_timepoint"], "timepoints": ordered,
        "followups": followups, "summary": summary,
    }


def _timepoint_row(rec):
    m = rec.get("measurement") or {}
    methods = m.get("methods") or {}
    row = {k: m.get(k) for k in TIMEPOINT_COLUMNS if k in m}
    row.update({k: rec.get(k) for k in ("patient_id", "timepoint", "scan_date", "status",
                                        "error", "is_baseline", "date_source", "liver_method",
                                        "flr_method")})
    row.update(tumor_excluded_from_flr=methods.get("tumor_excluded_from_flr"),
               bsa_formula=methods.get("bsa_formula"), telv_formula=methods.get("telv_formula"),
               n_warnings=len(m.get("warnings") or []) if m else None)
    return row


# ------------------------------------------------------------------ the run
def _one_patients_scans(patient):
    """``patient``, failed when its DICOM timepoints carry different PatientIDs.

    A scan exported into the wrong patient's folder would otherwise be measured as
    this patient's and its growth judged. The IDs (often hospital numbers) are read
    from one header per timepoint and kept nowhere: the error names the timepoints.
    """
    ids = {}
    for tp in patient.timepoints:
        if tp.image and os.path.isdir(tp.image):
            dicom_id = series_patient_id(tp.image, tp.series_uid)
            if dicom_id is not None:
                ids.setdefault(dicom_id, []).append(tp.name)
    if len(ids) < 2 or patient.error:
        return patient
    groups = " / ".join(", ".join(names) for names in ids.values())
    return replace(patient, error=f"its timepoints hold scans of different patients (their "
                                  f"DICOM PatientIDs differ: {groups}); put each patient's "
                                  f"scans in a folder of their own.")


def _tasks(study, out_dir, options):
    tasks = []
    for p in study.patients:
        try:
            vp = p.volumetry_patient() if not p.error else Patient()
        except InputError:
            vp = Patient()
        plan_source, plan_carried = _plan_source(p)
        for tp in p.timepoints:
            tasks.append(TimepointTask(timepoint=tp, patient=vp, remnant=p.remnant_spec(),
                                       options=options.volumetry, out_dir=out_dir,
                                       resume=options.resume, figures=options.figures,
                                       patient_error=p.error, plan_source=plan_source,
                                       plan_carried=plan_carried,
                                       resect_caudate=p.resect_caudate,
                                       resample_masks=options.resample_masks))
    return tasks


def _remove_stale_temp_files(out_dir):
    """Delete the ``.tmp-*`` files a killed run left (never a finished output).

    Only where the batch writes: OUT itself, ``OUT/masks`` and ``OUT/cache``;
    anything else in OUT belongs to the user.
    """
    folders = [(out_dir, False)] + [(os.path.join(out_dir, d), True) for d in ("masks", "cache")]
    for top, recursive in folders:
        walk = os.walk(top) if recursive else [(top, [], os.listdir(top))]
        for root, _, files in walk:
            for f in files:
                if f.startswith(".tmp-"):
                    try:
                        os.unlink(os.path.join(root, f))
                    except OSError:
                        pass


def _log_to(path):
    # Appended: a run stopped early must not erase the log of the run whose tables remain.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    # The file gets every line; the terminal gets the progress bar and the
    # summary, not one INFO line per timepoint.
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, unit="timepoint", file=sys.stderr, disable=not enabled,
                desc="measuring", dynamic_ncols=True)


def run_batch(study_dir, out_dir, options=None):
    """Measure every timepoint of a study folder and analyse each patient's growth.

    Parameters
    ----------
    study_dir : str or os.PathLike
        The study folder (layout: :mod:`flr_volumetry.study` and the README).
    out_dir : str or os.PathLike
        Where the outputs go (created if needed; may hold an earlier run to resume).
    options : BatchOptions or dict, optional

    Returns
    -------
    BatchResult
        ``result.ok`` is False when any patient or timepoint failed; their
        errors are in the tables and ``results.json``.

    Raises
    ------
    StudyLayoutError
        A usage problem: no study folder, no patient in it, bad options, an
        unreachable scheduler.
    InputError
        The outputs cannot be written.

    Notes
    -----
    With ``workers > 1`` the worker processes start from a fork server and
    import the calling script again, as with any ``multiprocessing`` start
    method other than fork: a script that calls ``run_batch`` must do so
    under ``if __name__ == "__main__":``.

    Examples
    --------
    >>> import os, tempfile, json, numpy as np, SimpleITK as sitk
    >>> study = tempfile.mkdtemp()
    >>> a = np.zeros((10, 20, 20), np.int16); a[2:8, 4:16, 4:16] = 1
    >>> for tp, date, flr_x in (("pre", "2024-01-01", 8), ("post", "2024-02-05", 10)):
    ...     d = os.path.join(study, "P001", tp); os.makedirs(d)
    ...     img = sitk.GetImageFromArray(a); img.SetSpacing((5.0, 5.0, 5.0))
    ...     sitk.WriteImage(img, os.path.join(d, "image.nii.gz"))
    ...     sitk.WriteImage(img, os.path.join(d, "liver.nii.gz"))
    ...     f = a.copy(); f[:, :, flr_x:] = 0; fi = sitk.GetImageFromArray(f)
    ...     fi.CopyInformation(img); sitk.WriteImage(fi, os.path.join(d, "flr.nii.gz"))
    ...     with open(os.path.join(d, "timepoint.json"), "w") as fh:
    ...         json.dump({"scan_date": date}, fh)
    >>> with open(os.path.join(study, "P001", "patient.json"), "w") as fh:
    ...     json.dump({"height_cm": 170, "weight_kg": 70, "procedure": "PVE",
    ...                "procedure_date": "2024-01-08"}, fh)
    >>> out = tempfile.mkdtemp()
    >>> r = run_batch(study, out, BatchOptions(progress=False, figures=False))
    >>> r.ok, r.results["patients"][0]["summary"]["interval_days"]
    (True, 28)
    """
    try:
        options = as_options(options, BatchOptions, "batch options")
    except InputError as exc:
        raise StudyLayoutError(str(exc)) from None
    for folder, what in ((study_dir, "study folder"), (out_dir, "output folder")):
        if not isinstance(folder, (str, os.PathLike)):
            # None had raised os.fspath's bare TypeError.
            raise StudyLayoutError(f"the {what} must be a path (str or pathlib.Path), not "
                                   f"{type(folder).__name__}.")
    _check_out_dir(study_dir, out_dir)
    out_dir = os.path.abspath(os.fspath(out_dir))
    study = discover_study(study_dir, exclude=(out_dir,))
    study = replace(study, patients=tuple(map(_one_patients_scans, study.patients)))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise StudyLayoutError(f"cannot create the output folder {out_dir} "
                               f"({exc.strerror}).") from exc
    with _output_lock(out_dir):
        _remove_stale_temp_files(out_dir)
        log_file = os.path.join(out_dir, "batch.log")
        handler = _log_to(log_file)
        try:
            log.info("run started: flr-volumetry %s, study %s", _software_version(),
                     os.path.abspath(os.fspath(study_dir)))
            return _run(study, out_dir, options, log_file)
        except BaseException as exc:
            # The tables are still the last finished run's: the log says this one did not end.
            # Its finished timepoints' masks (masks/) and cache entries are written: a
            # reviewer opening a mask named in the old tables would see this run's.
            log.warning("run stopped before writing its tables (%s); the tables in %s are "
                        "those of the last finished run, while masks/ may hold this run's "
                        "finished timepoints: run again with --resume to bring them "
                        "together.", type(exc).__name__, out_dir)
            raise
        finally:
            log.removeHandler(handler)
            log.propagate = True
            handler.close()


_LOCK_FILE = ".flr-batch.lock"


@contextmanager
def _output_lock(out_dir):
    """Hold OUT for this run: a second run into it (which had replaced the first's log, and
    removed its temporary files mid-write) is refused while the first is alive."""
    path = os.path.join(out_dir, _LOCK_FILE)
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None:
                raise StudyLayoutError(
                    f"another batch run ({owner}) is writing into {out_dir}; wait for it to "
                    f"end or choose another output folder (if it was stopped on another "
                    f"computer, delete {path}).")
            try:
                os.unlink(path)  # a killed run's lock
            except FileNotFoundError:
                pass
            continue
        except OSError as exc:
            # A read-only folder (or file system) is said in a sentence, not as a crash.
            raise StudyLayoutError(f"cannot write into the output folder {out_dir} "
                                   f"({exc.strerror}); check its permissions, or choose "
                                   f"another output folder.") from exc
        with os.fdopen(fd, "w") as fh:
            fh.write(me + "\n")
        break
    try:
        yield
    finally:
        try:
            with open(path) as fh:
                if fh.read().strip() == me:
                    os.unlink(path)
        except OSError:
            pass


def _lock_owner(path):
    """'process N on HOST' of a live lock, or None when the run that held it is gone."""
    try:
        with open(path) as fh:
            pid_text, _, host = fh.read().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None  # unreadable or half-written: a run killed while taking it
    if host != socket.gethostname():
        return f"process {pid} on {host}"  # cannot be checked from here
    if pid == os.getpid():
        return None  # a killed run's, its number given again (a restarted container)
    return f"process {pid}" if _process_alive(pid) else None


def _check_out_dir(study_dir, out_dir):
    """Refuse an output folder that would mix the results with the study's own files.

    A folder of its own inside the study is fine (discovery skips it), but
    not the study folder itself, nor a folder holding the study, nor a
    patient's folder or a folder inside one (discovery would skip that
    patient, and the results would mix with its files).
    """
    for name, path in (("study", study_dir), ("output", out_dir)):
        if not os.fspath(path).strip():
            raise StudyLayoutError(f"the {name} folder name is empty.")
    study = os.path.realpath(os.fspath(study_dir))
    out = os.path.realpath(os.fspath(out_dir))
    if out == study:
        raise StudyLayoutError("the output folder is the study folder; write the results to a "
                               "folder of their own.")
    if not os.path.relpath(study, out).startswith(os.pardir):
        # The batch replaces and prunes its own files in OUT/masks and OUT/cache: a study
        # inside them had its masks deleted as an earlier run's.
        raise StudyLayoutError(f"the output folder {out_dir} holds the study folder; write the "
                               f"results to a folder of their own, beside the study or in it.")
    rel = os.path.relpath(out, study)
    if rel.startswith(os.pardir):
        return  # beside the study: nothing to mix
    top = rel.split(os.sep)[0]
    if is_patient_folder(os.path.join(study, top)):
        raise StudyLayoutError(f"the output folder {out_dir} lies in the data of patient "
                               f"{top}/; write the results to a folder of their own.")


def _run(study, out_dir, options, log_file):
    tasks = _tasks(study, out_dir, options)
    mode = (f"Dask scheduler {options.scheduler}" if options.scheduler
            else f"{options.workers} worker process(es)" if options.workers > 1 else "serially")
    log.info("flr-volumetry %s: %d patients, %d timepoints, %s%s", _software_version(),
             len(study.patients), len(tasks), mode, ", resuming" if options.resume else "")
    for w in study.warnings:
        log.warning("%s", w)
    if options.scheduler:
        runner = _run_dask(tasks, options.scheduler, options.scheduler_timeout_s)
    elif options.workers > 1 and len(tasks) > 1:
        runner = _run_processes(tasks, options.workers)
    else:
        runner = _run_serial(tasks)
    records = {}
    bar = _progress(len(tasks), options.progress)
    t0 = time.perf_counter()
    try:
        for rec in runner:
            records[(rec["patient_id"], rec["timepoint"])] = rec
            bar.update(1)
            if rec["status"] == "ok":
                log.info("%s/%s: ok%s (%.2f s)", rec["patient_id"], rec["timepoint"],
                         ", unchanged, skipped" if rec.get("resumed") else "",
                         rec.get("seconds") or 0.0)
            else:
                log.error("%s/%s: failed: %s", rec["patient_id"], rec["timepoint"],
                          rec["error"])
    finally:
        bar.close()
    wall_s = time.perf_counter() - t0

    patients = []
    for p in study.patients:
        recs = [records[(p.patient_id, tp.name)] for tp in p.timepoints]
        entry = analyse_patient(p, recs, from_baseline_date=options.from_baseline_date)
        patients.append(entry)
        if entry["status"] != "ok":
            log.error("%s: failed: %s", p.patient_id, entry["error"])
    all_recs = [r for p in patients for r in p["timepoints"]]
    _prune_removed_timepoints(out_dir, all_recs)
    summary = {
        "patients": len(patients),
        "patients_ok": sum(p["status"] == "ok" for p in patients),
        "patients_failed": sum(p["status"] != "ok" for p in patients),
        "timepoints": len(all_recs),
        "timepoints_ok": sum(r["status"] == "ok" for r in all_recs),
        "timepoints_failed": sum(r["status"] != "ok" for r in all_recs),
        "timepoints_resumed": sum(bool(r.get("resumed")) for r in all_recs),
        "wall_seconds": wall_s,
    }
    results = {
        "schema": RESULTS_SCHEMA, "schema_version": RESULTS_SCHEMA_VERSION,
        "software_version": _software_version(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "study": study.path,
        "options": {"workers": options.workers, "scheduler": options.scheduler,
                    "resume": options.resume, "bsa_formula": options.volumetry.bsa_formula,
                    "telv_formula": options.volumetry.telv_formula,
                    "from_baseline_date": options.from_baseline_date,
                    "figures": options.figures},
        "summary": summary, "warnings": list(study.warnings), "patients": patients,
    }
    paths = {name: os.path.join(out_dir, name) for name in
             ("timepoints.csv", "patients.csv", "results.json", "report.html")}
    try:
        # Its chart cache is written too: a full disk or a permission is said as for the rest.
        report_html = render_report_html(results, out_dir, figures=options.figures,
                                         chart_cache=os.path.join(out_dir, "cache", "charts"))
        # All four or none: a disk filling up on the report (the largest, written last) had
        # left new tables beside the previous run's report.
        with all_or_none(list(paths.values())) as staged:
            tmp = dict(zip(paths, staged))
            write_csv_atomic([_timepoint_row(r) for r in all_recs], TIMEPOINT_COLUMNS,
                             tmp["timepoints.csv"])
            write_csv_atomic([p["summary"] for p in patients], PATIENT_COLUMNS,
                             tmp["patients.csv"])
            write_json_atomic(results, tmp["results.json"])
            write_text_atomic(report_html, tmp["report.html"])
    except OSError as exc:
        raise InputError(f"cannot write the outputs in {out_dir} ({exc}); check the folder's "
                         f"permissions and free space.") from exc
    result = BatchResult(out_dir=out_dir, results=results, timepoints_csv=paths["timepoints.csv"],
                         patients_csv=paths["patients.csv"], results_json=paths["results.json"],
                         report_html=paths["report.html"], log_file=log_file)
    log.info("%s", result.summary_line())
    return result
