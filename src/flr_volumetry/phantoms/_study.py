"""Writing phantom patients as a study folder, with their exact truth; the sample study."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError, as_path
from ..hypertrophy import hypertrophy
from ..io import atomic_file, write_json_atomic, write_mask
from ..io._writers import write_scan
from ..volumetry import Patient, measure
from ._anatomy import SEGMENT_LABELS, Grid, landmarks_mm
from ._generator import REMNANT_SEGMENTS, make_patient, render_timepoint

__all__ = ["GENERATOR_VERSION", "GRID_PRESETS", "grid_preset", "write_patient", "write_study",
           "sample_study", "INPUT_MASKS", "TRUTH_MASKS"]


def _source_digest():
    # Any edit to the generator's code changes the version, so a cached sample
    # study can never silently come from an older generator.
    h = hashlib.sha1()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


#: Generator version: a release number plus a digest of the generator's source.
#: Cached sample studies made by another version are regenerated.
GENERATOR_VERSION = f"1+{_source_digest()}"

#: Grids (size x, y, z; spacing mm) by name and modality. MR has thicker slices.
GRID_PRESETS = {
    ("small", "ct"): Grid((128, 128, 56), (3.0, 3.0, 5.0)),
    ("sample", "ct"): Grid((256, 256, 112), (1.5, 1.5, 2.5)),
    ("full", "ct"): Grid((512, 512, 300), (0.78125, 0.78125, 1.0)),
    ("small", "mr"): Grid((128, 128, 40), (3.0, 3.0, 7.0)),
    ("sample", "mr"): Grid((256, 256, 48), (1.5, 1.5, 6.0)),
    ("full", "mr"): Grid((384, 384, 56), (1.0, 1.0, 5.0)),
}

#: Masks that can be shipped as inputs next to the image, and the truth masks.
INPUT_MASKS = ("liver", "tumor", "segments")
TRUTH_MASKS = ("liver", "tumor", "segments", "vessels", "flr")


def grid_preset(size="sample", modality="ct"):
    """The grid of a named size ('small', 'sample', 'full') for a modality.

    Examples
    --------
    >>> grid_preset("full").size
    (512, 512, 300)
    >>> grid_preset("sample", "mr").spacing_mm
    (1.5, 1.5, 6.0)
    """
    key = (str(size).lower(), str(modality).lower())
    if key not in GRID_PRESETS:
        raise InputError(f"unknown phantom size {size!r} for modality {modality!r}; choose "
                         f"small, sample or full, and ct or mr.")
    return GRID_PRESETS[key]


def to_image(array, grid, pixel_type=None):
    """A rendered (z, y, x) array as a SimpleITK image on the phantom's grid.

    Examples
    --------
    >>> import numpy as np
    >>> from flr_volumetry.phantoms import Grid
    >>> g = Grid((16, 16, 8), (2.0, 2.0, 4.0))
    >>> img = to_image(np.zeros(g.shape_zyx, np.uint8), g)
    >>> img.GetSize(), img.GetOrigin()[2]
    ((16, 16, 8), -14.0)
    """
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in grid.spacing_mm))
    img.SetOrigin(tuple(float(o) for o in grid.origin_mm))
    return img if pixel_type is None else sitk.Cast(img, pixel_type)


def repositioned(arrays, grid, *, rotation_deg=(3.0, 0.0, 4.0), shift_mm=(12.0, -8.0, 20.0)):
    """A rendered timepoint as if the patient lay differently on the table.

    The image, liver and segment map are rotated (degrees about x, y, z,
    around the grid's centre) and shifted, then resampled onto the same grid:
    the image linearly, the labels by nearest neighbour (count the truth on
    the returned segments). Two real scans of a patient never line up; this
    is the known motion that registration must undo.

    Returns
    -------
    dict
        ``"image"``, ``"liver"``, ``"segments"``: SimpleITK images.
    """
    move = sitk.Euler3DTransform()
    move.SetCenter(tuple(float(o) + 0.5 * n * s for o, n, s in
                         zip(grid.origin_mm, grid.size, grid.spacing_mm)))
    move.SetRotation(*(float(np.deg2rad(a)) for a in rotation_deg))
    move.SetTranslation(tuple(float(t) for t in shift_mm))
    out = {}
    for name in ("image", "liver", "segments"):
        img = to_image(arrays[name], grid)
        interp = sitk.sitkLinear if name == "image" else sitk.sitkNearestNeighbor
        fill = -1000.0 if name == "image" else 0
        out[name] = sitk.Resample(img, img, move, interp, fill)
    return out


def _uid(*parts):
    from pydicom.uid import generate_uid

    # Deterministic UIDs: the same phantom always gets the same series UIDs.
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _write_image(image, folder, *, fmt, modality, patient, timepoint, study_seed):
    if fmt == "nifti":
        write_scan(image, os.path.join(folder, "image.nii.gz"))
        return "image.nii.gz"
    try:
        from ..io import write_dicom_series
    except ImportError:
        try:
            from ..io._dicom_write import write_dicom_series
        except ImportError as exc:  # pragma: no cover - only before the writer existed
            raise InputError("DICOM output needs flr_volumetry.io.write_dicom_series, which "
                             "this installation lacks; use --format nifti.") from exc
    target = os.path.join(folder, "image")
    write_dicom_series(
        image, target, modality=modality.upper(), study_date=timepoint.scan_date,
        series_description=f"phantom {modality.upper()} {timepoint.name}",
        patient_id=patient.patient_id,
        # The grid is part of what a series is: the small and sample presets of one
        # patient had shared their UIDs, and read together one was taken for scouts.
        study_instance_uid=_uid("study", study_seed, patient.patient_id, timepoint.name,
                                *image.GetSize(), *image.GetSpacing()),
        series_instance_uid=_uid("series", study_seed, patient.patient_id, timepoint.name,
                                 modality, *image.GetSize(), *image.GetSpacing()),
        patient_height_cm=patient.height_cm, patient_weight_kg=patient.weight_kg,
    )
    return "image/"


def _counts(arrays, grid, remnant_segments):
    v = grid.voxel_volume_ml
    seg_counts = np.bincount(arrays["segments"].ravel(), minlength=9)
    n = {k: int(np.count_nonzero(arrays[k])) for k in ("liver", "tumor", "vessels", "flr")}
    # The remnant with the tumour it keeps: resected is the liver outside it (the FLR mask
    # leaves that tumour out, which would count it as resected).
    remnant = np.isin(arrays["segments"], remnant_segments) & (arrays["liver"] != 0)
    return {
        "voxel_volume_ml": v,
        "voxel_counts": dict(n, segments={str(s): int(seg_counts[s]) for s in SEGMENT_LABELS}),
        "total_liver_ml": n["liver"] * v,
        "tumor_ml": n["tumor"] * v,
        "functional_liver_ml": (n["liver"] - n["tumor"]) * v,
        "flr_ml": n["flr"] * v,
        "resected_ml": (n["liver"] - int(np.count_nonzero(remnant))) * v,
        "vessels_ml": n["vessels"] * v,
        "segments_ml": {str(s): int(seg_counts[s]) * v for s in SEGMENT_LABELS},
    }


def _check_liver_fits(liver, grid, patient, timepoint):
    # A phantom whose liver the field of view cuts would teach every user of
    # it the wrong volume: refuse the grid instead.
    edges = (liver[0], liver[-1], liver[:, 0], liver[:, -1], liver[:, :, 0], liver[:, :, -1])
    if any(e.any() for e in edges):
        ext = " x ".join(f"{e:g}" for e in grid.extent_mm)
        raise InputError(
            f"the liver of phantom {patient.patient_id} ({timepoint.name}) does not fit in a "
            f"{ext} mm field of view; use a grid of at least 380 x 380 x 260 mm.")


def _remove_stale_inputs(tp_dir):
    # Writing again into a study folder (another format, no masks) must not
    # leave the inputs of the previous run next to the new ones.
    for name in ("image.nii.gz", "plan.json") + tuple(f"{k}.nii.gz" for k in INPUT_MASKS):
        path = os.path.join(tp_dir, name)
        if os.path.isfile(path):
            os.remove(path)
    if os.path.isdir(os.path.join(tp_dir, "image")):
        shutil.rmtree(os.path.join(tp_dir, "image"))


def _patient_facts(patient, input_masks):
    """``patient.json`` (and the ``study.csv`` row) of a patient.

    Without a segment map among the inputs, the remnant is not given as
    ``resection`` here (batch would find no segments to select) but by a
    ``plan.json`` in each timepoint folder: see :func:`_landmark_plan`.
    """
    facts = patient.patient_json()
    if "segments" not in input_masks:
        del facts["resection"]
    return facts


def _landmark_plan(patient, state):
    """The remnant plan of a timepoint without a segment map: the resection, and the
    Couinaud landmarks of this scan (those of ``truth/landmarks.json``).

    A study without masks is there to exercise automatic segmentation, so it ships only
    what a clinic would have besides the images: the planned resection and the landmarks
    a radiologist clicks on each scan (hepatic veins, IVC, portal bifurcation). A segment
    map would not do: its labels cover exactly the liver, and would hand over the very
    mask the segmentation is to find. The landmarks define the phantom's segment planes
    exactly, so the FLR measured differs from the truth only by the segmented liver.
    Each scan carries its own landmarks (no registration between timepoints).
    """
    from ..remnant import RemnantPlan

    return RemnantPlan(
        resection=patient.resection, landmarks=landmarks_mm(patient.anatomy, state),
        note="phantom: the Couinaud landmarks of this scan (no segment map shipped)",
    ).to_dict()


def _check_masks_for_modality(modality, input_masks):
    if modality == "mr" and "liver" not in input_masks:
        # Automatic MR segmentation needs seed points inside the liver, which a study
        # folder cannot give: every timepoint of such a study would fail in batch.
        raise InputError("an MR phantom study needs its liver masks (input_masks with "
                         "'liver'): batch segments MR only from seed points, which a study "
                         "folder cannot give; use modality 'ct' to exercise automatic "
                         "segmentation.")


def write_patient(patient, folder, grid, *, modality="ct", fmt="nifti",
                  input_masks=INPUT_MASKS, study_seed=0):
    """Write one phantom patient in the study layout, with its truth.

    Parameters
    ----------
    patient : PhantomPatient
    folder : str or os.PathLike
        The patient folder (e.g. ``STUDY/P001``).
    grid : Grid
    modality : {'ct', 'mr'}
    fmt : {'nifti', 'dicom'}
        The image format; masks are always NIfTI on the image's grid.
    input_masks : sequence of str
        Masks shipped next to the image as inputs (subset of ``INPUT_MASKS``).
        The truth masks are always written, under ``<timepoint>/truth/``.
        Without ``segments``, each timepoint gets a ``plan.json`` (the resection
        and that scan's Couinaud landmarks) instead of ``resection`` in
        ``patient.json``. MR needs ``liver`` (batch segments MR only from seeds).

    Returns
    -------
    dict
        The patient's truth (also written to ``truth.json``).
    """
    _check_masks_for_modality(modality, input_masks)
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(_patient_facts(patient, input_masks),
                      os.path.join(folder, "patient.json"))
    person = Patient(patient.height_cm, patient.weight_kg, patient.liver_condition)
    truths, measurements = [], []
    for t_index, tp in enumerate(patient.timepoints):
        arrays = render_timepoint(patient, t_index, grid, modality=modality)
        _check_liver_fits(arrays["liver"], grid, patient, tp)
        tp_dir = os.path.join(folder, tp.name)
        truth_dir = os.path.join(tp_dir, "truth")
        os.makedirs(truth_dir, exist_ok=True)
        _remove_stale_inputs(tp_dir)
        image = to_image(arrays["image"], grid)
        image_name = _write_image(image, tp_dir, fmt=fmt, modality=modality, patient=patient,
                                  timepoint=tp, study_seed=study_seed)
        masks = {k: to_image(arrays[k], grid) for k in TRUTH_MASKS}
        for k in TRUTH_MASKS:
            write_mask(masks[k], os.path.join(truth_dir, f"{k}.nii.gz"))
        for k in input_masks:
            write_mask(masks[k], os.path.join(tp_dir, f"{k}.nii.gz"))
        if "segments" not in input_masks:
            write_json_atomic(_landmark_plan(patient, tp.state),
                              os.path.join(tp_dir, "plan.json"))
        write_json_atomic({"scan_date": tp.scan_date.isoformat()},
                          os.path.join(tp_dir, "timepoint.json"))
        m = measure(masks["liver"], tumor=masks["tumor"], flr=masks["flr"],
                    segments=masks["segments"], patient=person, scan_date=tp.scan_date)
        counts = _counts(arrays, grid, REMNANT_SEGMENTS[patient.resection])
        tp_truth = {
            "timepoint": tp.name, "scan_date": tp.scan_date.isoformat(),
            "days_after_procedure": tp.days_after_procedure, "image": image_name,
            "modality": modality, "grid": {"size": list(grid.size),
                                           "spacing_mm": list(grid.spacing_mm),
                                           "origin_mm": list(grid.origin_mm)},
            **counts,
            "remnant_segments": list(REMNANT_SEGMENTS[patient.resection]),
            "sflr_pct": m.sflr_pct, "measured_flr_pct": m.measured_flr_pct,
            "telv_ml": m.telv_ml, "bsa_m2": m.bsa_m2, "sflr_adequate": m.sflr_adequate,
            "target_flr_ml": tp.target_flr_ml, "target_resected_ml": tp.target_resected_ml,
            "liver_state": {"scale_flr": tp.state.scale_flr,
                            "scale_resected": tp.state.scale_resected,
                            "transection_mm": tp.state.transection_mm},
            "warnings": list(m.warnings),
        }
        write_json_atomic(tp_truth, os.path.join(truth_dir, "truth.json"))
        write_json_atomic(landmarks_mm(patient.anatomy, tp.state),
                          os.path.join(truth_dir, "landmarks.json"))
        truths.append(tp_truth)
        measurements.append(m)
    growth = []
    for tp, m in zip(patient.timepoints[1:], measurements[1:]):
        h = hypertrophy(measurements[0], m, procedure_date=patient.procedure_date)
        growth.append({"timepoint": tp.name, **h.to_dict()})
    last = growth[-1] if growth else {}
    g = patient.growth
    truth = {
        "patient_id": patient.patient_id, "kind": patient.kind,
        "generator_version": GENERATOR_VERSION, "seed": patient.seed,
        **patient.patient_json(),
        "remnant_segments": list(REMNANT_SEGMENTS[patient.resection]),
        "bsa_formula": "mosteller", "telv_formula": "vauthey",
        "telv_ml": measurements[0].telv_ml,
        "growth_model": {"kgr_pct_per_week": g.kgr_pct_per_week,
                         "reference_days": g.reference_days, "tau_days": g.tau_days,
                         "resected_change_pct": g.resected_change_pct},
        "expected": {
            "sflr_baseline_pct": measurements[0].sflr_pct,
            "sflr_followup_pct": measurements[-1].sflr_pct,
            "interval_days": last.get("interval_days"),
            "dh_pct_points": last.get("dh_pct_points"),
            "kgr_pct_per_week": last.get("kgr_pct_per_week"),
            "kgr_meets_2pct": last.get("kgr_meets_2pct"),
            "gr_pct_per_week": last.get("gr_pct_per_week"),
            "gr_meets_2_66pct": last.get("gr_meets_2_66pct"),
            "sflr_adequate": measurements[-1].sflr_adequate,
        },
        "timepoints": truths,
        "hypertrophy": growth,
        "note": "truth.json and truth/ folders are ground truth, never inputs.",
    }
    write_json_atomic(truth, os.path.join(folder, "truth.json"))
    return truth


def _check_out_dir(out_dir):
    """The output folder: new, empty, or a phantom study written before (it is replaced
    whole); any other folder holds someone's files, and is refused."""
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder; choose another output folder.")
    if out.is_dir() and any(out.iterdir()) and _marker(out) is None:
        raise InputError(f"{out} holds files that are not a phantom study; choose a new or "
                         f"empty folder (a phantom study written there before is replaced).")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out if _in_place(out) else out.parent,
                                            prefix=".probe-")
        probe.close()
    except OSError as exc:
        raise InputError(f"cannot write the study into {out} ({exc.strerror or exc}); "
                         f"choose a writable folder.") from exc
    return out


def _in_place(out):
    """Whether the study must be written into ``out`` itself, not aside and renamed: a
    mount point or the current folder cannot be renamed, nor can a folder whose parent
    is read-only."""
    return out.is_dir() and (os.path.ismount(out) or out == Path.cwd().absolute()
                             or not os.access(out.parent, os.W_OK))


def _clear_study(out):
    """Remove a phantom study written before into ``out`` (only its own entries)."""
    for entry in out.iterdir():
        if entry.is_dir() and entry.name.startswith("P") and entry.name[1:].isdigit():
            shutil.rmtree(entry)
        elif entry.name in ("study.csv", "truth_study.json"):
            entry.unlink()


def _publish(tmp, out):
    """Put the finished study ``tmp`` in place of ``out`` (renames: all or nothing)."""
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".old-{out.name}-"))
        os.replace(out, old / out.name)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out)


def write_study(out_dir, *, n_patients=3, seed=0, modality="ct", fmt="nifti", size="sample",
                grid=None, input_masks=INPUT_MASKS, progress=None):
    """Write ``n_patients`` phantom patients as a study folder (batch layout) with truth.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Created if needed. Patients go to ``P001/``, ``P002/``, ...
    n_patients : int
        At least 1. Patients cycle through adequate PVE, inadequate PVE and
        ALPPS; seed 0 gives the three reference cases of the sample study.
    seed : int
    modality : {'ct', 'mr'}
    fmt : {'nifti', 'dicom'}
    size : {'small', 'sample', 'full'}
        Grid preset (see ``GRID_PRESETS``); ignored when ``grid`` is given.
    grid : Grid, optional
    input_masks : sequence of str
        Masks shipped as inputs next to each image.
    progress : callable, optional
        Called with each patient ID once it is written.

    Returns
    -------
    list of dict
        Each patient's truth.
    """
    try:
        n_patients = int(n_patients)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the number of patients must be a whole number, got "
                         f"{n_patients!r}.") from exc
    if n_patients < 1:
        raise InputError(f"the number of patients must be at least 1, got {n_patients}.")
    modality = str(modality).lower()
    if modality not in ("ct", "mr"):
        raise InputError(f"modality must be 'ct' or 'mr', got {modality!r}.")
    fmt = str(fmt).lower()
    if fmt not in ("nifti", "dicom"):
        raise InputError(f"format must be 'nifti' or 'dicom', got {fmt!r}.")
    unknown = set(input_masks) - set(INPUT_MASKS)
    if unknown:
        raise InputError(f"unknown input mask(s) {sorted(unknown)}; choose from "
                         f"{', '.join(INPUT_MASKS)}.")
    _check_masks_for_modality(modality, input_masks)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the seed must be a whole number of at least 0, got {seed!r}.")
    size = "custom" if grid is not None else str(size).lower()
    grid = grid or grid_preset(size, modality)
    out = _check_out_dir(out_dir)
    if _in_place(out):
        _clear_study(out)  # its other patients must not linger beside the new ones
        return _write_study_into(out, n_patients, seed, modality, fmt, size, grid,
                                 input_masks, progress)
    # Written aside and renamed into place: a failure leaves no half study, and a study
    # written there before is replaced whole (its other patients do not linger).
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".tmp-{out.name}-"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        truths = _write_study_into(tmp, n_patients, seed, modality, fmt, size, grid,
                                   input_masks, progress)
        _publish(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write the study into {out} ({exc.strerror or exc}); "
                         f"choose a writable folder.") from exc
    except InputError as exc:
        # A writer's own refusal (a full disk) names the study's temporary folder.
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(str(exc).replace(str(tmp), str(out))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return truths


def _write_study_into(out, n_patients, seed, modality, fmt, size, grid, input_masks,
                      progress):
    truths = []
    # Without a segment map the remnant is in each timepoint's plan.json, not a column.
    columns = ("height_cm", "weight_kg", "liver_condition", "procedure", "procedure_date") \
        + (("resection",) if "segments" in input_masks else ())
    rows = [",".join(("patient_id",) + columns)]
    for i in range(n_patients):
        patient = make_patient(i, seed)
        truths.append(write_patient(patient, out / patient.patient_id, grid, modality=modality,
                                    fmt=fmt, input_masks=input_masks, study_seed=seed))
        pj = _patient_facts(patient, input_masks)
        rows.append(",".join([patient.patient_id] + [str(pj[k]) for k in columns]))
        if progress is not None:
            progress(patient.patient_id)
    with atomic_file(out / "study.csv", ".csv") as tmp:
        Path(tmp).write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_json_atomic({
        "generator": "flr_volumetry.phantoms", "generator_version": GENERATOR_VERSION,
        "seed": seed, "n_patients": n_patients, "modality": modality, "fmt": fmt, "size": size,
        "grid": {"size": list(grid.size), "spacing_mm": list(grid.spacing_mm)},
        "input_masks": list(input_masks),
        "created": _dt.date.today().isoformat(),
        "truth": "P###/truth.json and P###/<timepoint>/truth/ hold the ground truth; "
                 "they are not inputs.",
    }, out / "truth_study.json")
    return truths


#: The bundled sample study: three CT patients (adequate PVE, inadequate PVE, ALPPS).
SAMPLE_SETTINGS = {"n_patients": 3, "seed": 0, "modality": "ct", "fmt": "nifti",
                   "size": "sample", "input_masks": INPUT_MASKS}


def _default_sample_path():
    env = os.environ.get("FLR_SAMPLE_STUDY")
    if env:
        return Path(env)
    repo_sample = Path(__file__).resolve().parents[3] / "sample_data"
    if repo_sample.is_dir():
        return repo_sample / "generated" / "study"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "flr-volumetry" / "sample_study"


def _marker(path):
    import json

    try:
        with open(Path(path) / "truth_study.json", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _is_current(path):
    m = _marker(path)
    return bool(m) and m.get("generator_version") == GENERATOR_VERSION and all(
        m.get(k) == SAMPLE_SETTINGS[k] for k in ("n_patients", "seed", "modality", "fmt", "size")
    ) and m.get("input_masks") == list(SAMPLE_SETTINGS["input_masks"])


def sample_study(path=None, *, force=False):
    """The bundled sample study, generated on first use and cached.

    Three CT patients in the batch layout (see ``sample_data/README.md``):
    ``P001`` adequate PVE (KGR >= 2 %/week, adequate sFLR), ``P002``
    inadequate PVE (KGR < 2 %/week), ``P003`` ALPPS stage 1 with a visible
    transection. Each timepoint ships ``image.nii.gz``, ``liver``, ``tumor``
    and ``segments`` masks and ``timepoint.json``; the truth lies in
    ``P###/truth.json`` and ``P###/<timepoint>/truth/``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Where the study lives. Default: ``$FLR_SAMPLE_STUDY``, else
        ``sample_data/generated/study`` in a source checkout, else
        ``~/.cache/flr-volumetry/sample_study``.
    force : bool
        Regenerate even when a current copy exists.

    Returns
    -------
    pathlib.Path
        The study folder. It is regenerated only when missing, made by
        another generator version, or ``force`` is given; it appears
        complete or not at all (written aside, then renamed).
    """
    # (a number or an image had raised pathlib's bare TypeError)
    path = Path(as_path(path, "sample_study writes the study into a folder")) \
        if path is not None else _default_sample_path()
    if not force and _is_current(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".tmp-{path.name}-"))
    try:
        os.chmod(tmp, 0o755)   # mkdtemp makes it private; the sample study is for everyone
        write_study(tmp, **SAMPLE_SETTINGS)
        if not force and _is_current(path):
            # Another process published a current study while we generated: keep
            # theirs rather than pull it from under its readers.
            shutil.rmtree(tmp, ignore_errors=True)
            return path
        try:
            _publish(tmp, path)
        except OSError:
            # Another process published a study meanwhile; keep theirs if it is current.
            if not _is_current(path):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
