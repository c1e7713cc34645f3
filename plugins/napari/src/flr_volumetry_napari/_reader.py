"""Reader: scans, masks, DICOM series folders and study folders as napari layers.

Every file is read by ``flr_volumetry`` (``load_image``, ``load_mask``,
``load_label_map``); this module only turns the SimpleITK images into layer
data placed at their physical position (see :mod:`._geometry`).

Layer metadata keys (read by the widgets and the writer):

``flr_geometry``  grid of the file and of the displayed array
``flr_role``      'scan', 'liver', 'tumor', 'flr', 'segments' or 'mask'
``flr_timepoint`` key grouping a scan with its masks (folder path, or the scan's file when
                  its folder holds several scans)
``flr_label``     short name of the timepoint shown to the user
``flr_patient``   pseudonymous patient ID (study folders, and their timepoint folders opened
                  on their own)
``flr_scan``      header facts of a scan (date, height, weight, modality, DICOM PatientID)
``flr_patient_facts``  patient.json facts (study folders only)
``flr_source``    the path read
``flr_scan_source`` the scan (file or DICOM folder) a mask belongs to, when known
``flr_scan_series_uid`` that scan's SeriesInstanceUID (DICOM), for the SEG writer
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from flr_volumetry import InputError, load_image, load_label_map, load_mask
from flr_volumetry.io import (IMAGE_SUFFIXES, holds_dicom, is_dicom_file, is_image_file,
                              scan_patient_id)

from ._geometry import display_kwargs, to_display
from ._model import data_digest

__all__ = [
    "napari_get_reader",
    "mask_role",
    "read_path",
    "scan_layer",
    "mask_layer",
    "read_timepoint_folder",
    "read_patient",
]

# Colours of the binary masks (label 1) so that the overlays read at a glance.
ROLE_COLORS = {"liver": "#d98c3a", "tumor": "#e03030", "flr": "#30c060", "mask": "#3a8fd9"}


def _stem(path):
    name = os.path.basename(os.fspath(path).rstrip("/\\"))
    low = name.lower()
    for s in sorted(IMAGE_SUFFIXES + (".dcm",), key=len, reverse=True):
        if low.endswith(s):
            return name[: -len(s)]
    return name


def mask_role(path):
    """Which role a file plays, judged by its name; None for a scan.

    Examples
    --------
    >>> [mask_role(p) for p in ("ct.nii.gz", "liver.nii.gz", "liver_seg.nrrd",
    ...  "tumor.nii.gz", "FLR.mha", "segments.nii.gz", "case1_mask.nii.gz", "totalseg.nii.gz",
    ...  "segmentation.nrrd")]
    [None, 'liver', 'liver', 'tumor', 'flr', 'segments', 'mask', 'mask', 'mask']
    """
    stem = _stem(path).lower()
    words = set(re.split(r"[^a-z0-9]+", stem))
    if words & {"segment", "segments", "couinaud"} or "couinaud" in stem:
        return "segments"
    if words & {"tumor", "tumour", "tumors", "tumours", "lesion", "lesions"}:
        return "tumor"
    if words & {"flr", "remnant"}:
        return "flr"
    if "liver" in words:
        return "liver"
    if words & {"mask", "label", "labels", "seg"} or "seg" in stem or stem.startswith("label"):
        return "mask"
    return None


def _folder_kind(folder):
    """'patient', 'study', 'timepoint', 'dicom' or None for a folder."""
    folder = Path(folder)
    entries = _entries(folder)
    if entries is None:
        return None
    names = {e.name for e in entries}
    if "patient.json" in names:
        return "patient"
    if _is_timepoint(folder, entries):
        return "timepoint"
    subdirs = _visible_dirs(entries)
    if "study.csv" in names or any((d / "patient.json").exists() for d in subdirs):
        return "study"
    if any(_is_timepoint(d) for d in subdirs[:20]):
        return "patient"
    # Patients without patient.json (height and weight then come from the DICOM header
    # or nowhere, as in the batch): a folder of folders of timepoints.
    if any(_is_timepoint(t) for d in subdirs[:20] for t in _subdirs(d)[:20]):
        return "study"
    if _holds_dicom([e for e in entries if e.is_file()]):
        return "dicom"
    # Exports often put the slices a few folders down (DICOM/<study>/<series>/...): the
    # core reads a folder recursively, so the reader claims it too.
    if holds_dicom(folder, recursive=True):
        return "dicom"
    return None


def _entries(folder):
    """The folder's entries, sorted; None when it cannot be listed."""
    try:
        return sorted(Path(folder).iterdir())
    except OSError:
        return None


def _visible_dirs(entries):
    return [e for e in entries if e.is_dir() and not e.name.startswith((".", "_"))]


def _subdirs(folder):
    return _visible_dirs(_entries(folder) or [])


def _holds_dicom(files):
    """Whether any of the first 20 ``files`` is DICOM (by suffix or by its header)."""
    return any(e.suffix.lower() == ".dcm" or is_dicom_file(e) for e in files[:20])


def _is_timepoint(folder, entries=None):
    """A timepoint folder of the study layout, judged from its own entries only: an
    image.* file or image/ folder, or DICOM files with a timepoint.json beside them (a bare
    DICOM folder alone may be any export). ``entries``: the folder's, when already listed."""
    entries = _entries(folder) if entries is None else entries
    if entries is None:
        return False
    if any(e.is_file() and _stem(e.name) == "image" and is_image_file(e.name) for e in entries) \
            or (Path(folder) / "image").is_dir():
        return True
    files = [e for e in entries if e.is_file()]
    return any(e.name == "timepoint.json" for e in files) and _holds_dicom(files)


def napari_get_reader(path):
    """npe2 reader hook: a reader function when the path is ours, else None."""
    if isinstance(path, list):
        if not path or not all(_claims(p) for p in path):
            return None
        return read_path
    return read_path if _claims(path) else None


def _claims(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        return _folder_kind(path) is not None
    return is_image_file(path)


def _scan_facts(scan):
    return {
        "study_date": None if scan.study_date is None else scan.study_date.isoformat(),
        "height_cm": scan.patient_height_cm,
        "weight_kg": scan.patient_weight_kg,
        "modality": scan.modality,
        "series_description": scan.series_description,
        "patient_id": scan_patient_id(scan),
    }


def _base_metadata(role, geometry, source, timepoint, label):
    return {"flr_role": role, "flr_geometry": geometry, "flr_source": str(source),
            "flr_timepoint": str(timepoint), "flr_label": label}


def scan_layer(scan, *, timepoint, label, name=None, extra=None):
    """Layer data tuple of a :class:`flr_volumetry.Scan` (an Image layer)."""
    arr, geo = to_display(scan.image)
    meta = _base_metadata("scan", geo, scan.source, timepoint, label)
    meta["flr_scan_source"] = str(scan.source)
    meta["flr_scan_series_uid"] = scan.series_instance_uid
    meta["flr_scan"] = _scan_facts(scan)
    meta["flr_warnings"] = list(scan.warnings)
    meta.update(extra or {})
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    lo, hi = np.percentile(finite[:: max(1, finite.size // 200_000)], (0.5, 99.5))
    kwargs = {"name": name or f"{label} scan", "metadata": meta, "colormap": "gray",
              "contrast_limits": (float(lo), float(hi) if hi > lo else float(lo) + 1.0),
              **display_kwargs(geo)}
    if (scan.modality or "").upper() == "CT" or (lo < -200 and hi > 100):
        kwargs["contrast_limits"] = (-160.0, 240.0)  # abdominal soft-tissue window
    return (arr, kwargs, "image")


def mask_layer(image, role, *, timepoint, label, source, name=None, extra=None):
    """Layer data tuple of a mask or label map (a Labels layer)."""
    arr, geo = to_display(image)
    if arr.dtype.kind == "f":
        arr = np.rint(arr)
    top = int(arr.max()) if arr.size else 0
    arr = arr.astype(np.uint8 if top < 256 else np.uint16, copy=False)
    meta = _base_metadata(role, geo, source, timepoint, label)
    meta.update(extra or {})
    meta["flr_data_sha256"] = data_digest(arr)  # corrections are recorded at export
    kwargs = {"name": name or f"{label} {role}", "metadata": meta, "opacity": 0.45,
              **display_kwargs(geo)}
    if role in ROLE_COLORS:
        kwargs["colormap"] = {None: "transparent", 0: "transparent", 1: ROLE_COLORS[role]}
    if role == "segments":
        kwargs["opacity"] = 0.35
    return (arr, kwargs, "labels")


def _scans_beside(path):
    """The scan files (NIfTI, NRRD, ...: not masks, not DICOM slices) in ``path``'s folder."""
    folder = Path(path).resolve().parent
    return [e for e in _entries(folder) or []
            if e.is_file() and is_image_file(e.name) and mask_role(e.name) is None
            and not e.name.lower().endswith(".dcm")]


#: Metadata of a layer opened on its own (a file, a DICOM folder), outside the study layout:
#: its timepoint's label is a folder's or file's name, which the user did not choose as an
#: ID (hospital exports are often foldered by the patient's name), so the export does not
#: write it (see _export._export_label).
LONE = {"flr_label_from_path": True}


def _single_timepoint(path, role):
    """Timepoint key and label of a file opened on its own, and the scan file of that
    timepoint (None when unknown).

    A folder holding one scan is that scan's timepoint, so a mask opened from the same
    folder joins it. A folder holding several scans gives each scan its own timepoint
    (keyed by the file): they may be different patients or grids, and a mask made for one
    must never replace the other's. A mask there joins the scan its name starts with
    ('a_liver.nii.gz' with 'a.nii.gz'), else the folder.
    """
    folder = Path(path).resolve().parent
    if str(path).lower().endswith(".dcm"):
        return str(folder), folder.name, None
    scans = _scans_beside(path)
    if len(scans) <= 1:
        return str(folder), folder.name, (scans[0] if scans else None)
    if role is None:
        return str(Path(path).resolve()), _stem(path), Path(path).resolve()
    stem = _stem(path).lower()
    owners = [s for s in scans if stem.startswith(_stem(s.name).lower())]
    if owners:
        owner = max(owners, key=lambda s: len(_stem(s.name)))
        return str(owner.resolve()), _stem(owner.name), owner
    return str(folder), folder.name, None


def _scan_grid(scan_path):
    """An empty image on the grid of the scan file (read from its header), or None when the
    header cannot be read or is not 3-D."""
    header = sitk.ImageFileReader()
    header.SetFileName(str(scan_path))
    try:
        header.ReadImageInformation()
    except RuntimeError:
        return None
    if header.GetDimension() != 3:
        return None
    grid = sitk.Image([int(n) for n in header.GetSize()], sitk.sitkUInt8)
    grid.SetSpacing(header.GetSpacing())
    grid.SetOrigin(header.GetOrigin())
    grid.SetDirection(header.GetDirection())
    return grid


def _onto_scan_grid(image, scan_path, path, what):
    """``image`` on the grid of its timepoint's scan, and the warnings saying so.

    A mask opened on its own joins the timepoint of the scan beside it; on another grid (a
    Slicer .seg.nrrd cropped to the segment) it was counted on its own grid, whose edges
    the table took for the scan's field of view ('the liver touches the superior end...'),
    and the other masks of that scan were refused as 'not on the liver's grid'. It is
    resampled by nearest neighbour with a warning (volumes before and after), as when its
    timepoint folder is opened, or refused when it lies elsewhere than the scan.
    """
    from flr_volumetry.io import resample_mask_to, same_grid

    grid = None if scan_path is None else _scan_grid(scan_path)
    if grid is None or image.GetNumberOfComponentsPerPixel() != 1 or same_grid(image, grid):
        # (A multi-channel image is refused in words by to_display.)
        return image, []
    # The file's name only: its folders may bear the patient's name, and the warning is
    # exported with the measurement.
    _, warning = resample_mask_to(sitk.Cast(image > 0, sitk.sitkUInt8), grid,
                                  what=f"{what} {Path(path).name}")
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                         image.GetPixelID()), [warning] if warning else []


def _read_single(path):
    role = mask_role(path)
    timepoint, label, scan_path = _single_timepoint(path, role)
    if str(path).lower().endswith(".seg.nrrd"):
        from flr_volumetry.io import read_seg_nrrd

        try:
            image = read_seg_nrrd(path)
        except InputError as exc:
            raise InputError(f"{exc} In napari, import one segment with the Liver widget "
                             f"(Labels: the segment name).") from exc
        return [_single_mask_layer(image, role or "mask", path, timepoint, label, scan_path)]
    if role is None:
        scan = load_image(path)
        return [scan_layer(scan, timepoint=timepoint, label=label, name=_stem(path),
                           extra=LONE)]
    image, _ = load_label_map(path, what=f"{role} mask")
    return [_single_mask_layer(image, role, path, timepoint, label, scan_path)]


def _single_mask_layer(image, role, path, timepoint, label, scan_path):
    """The layer of a mask file opened on its own, on its timepoint's scan grid."""
    image, warnings = _onto_scan_grid(image, scan_path, path, f"{role} mask")
    for w in warnings:
        _notify(w, warning=True)
    return mask_layer(image, role, timepoint=timepoint, label=label, source=path,
                      name=_stem(path), extra={**LONE, "flr_warnings": warnings})


def read_timepoint_folder(folder, *, label=None, patient_id=None, scan_date=None, extra=None,
                          files=None):
    """Layers of one timepoint folder: ``image.*`` and the masks beside it.

    Masks are loaded onto the scan's grid by ``flr_volumetry.load_mask`` (a
    mask on another grid is resampled with a warning, or refused).
    """
    folder = Path(folder).resolve()
    label = label or folder.name
    files = files or _timepoint_files(folder)
    if files.get("image") is None:
        raise InputError(f"the timepoint folder {folder} holds no image.* file or image/ folder.")
    scan = load_image(files["image"])
    extra = dict(extra or {})
    if patient_id is not None:
        extra["flr_patient"] = patient_id
    layers = [scan_layer(scan, timepoint=folder, label=label, extra=extra)]
    meta = layers[0][1]["metadata"]
    if scan_date and not meta["flr_scan"]["study_date"]:
        meta["flr_scan"]["study_date"] = scan_date
    for role in ("liver", "tumor", "flr", "segments"):
        path = files.get(role)
        if path is None:
            continue
        if role == "segments":
            image, w = load_label_map(path, scan.image, what="segment map")
        else:
            m = load_mask(path, scan.image, what=f"{role} mask",
                          whole_liver=role == "liver")
            image, w = m.image, list(m.warnings)
        # On the mask's own layer: replaced (by a segmentation, a plan), its warnings go.
        mask_extra = {k: v for k, v in extra.items() if k in ("flr_patient",) + tuple(LONE)}
        mask_extra["flr_warnings"] = list(w)
        mask_extra["flr_scan_source"] = str(scan.source)
        mask_extra["flr_scan_series_uid"] = scan.series_instance_uid
        layers.append(mask_layer(image, role, timepoint=folder, label=label, source=path,
                                 extra=mask_extra))
    return layers


def _timepoint_files(folder):
    files = {}
    for e in sorted(Path(folder).iterdir()):
        stem = _stem(e.name).lower()
        if e.is_dir() and e.name == "image":
            files["image"] = str(e)
        elif e.is_file() and is_image_file(e.name) and stem in ("image", "liver", "tumor", "flr",
                                                                 "segments"):
            files[stem] = str(e)
    if "image" not in files and _is_timepoint(folder):
        files["image"] = str(folder)  # DICOM files straight in the timepoint folder
    tp_json = Path(folder) / "timepoint.json"
    if tp_json.exists():
        try:
            files["scan_date"] = json.loads(tp_json.read_text()).get("scan_date")
        except (OSError, ValueError) as exc:
            raise InputError(f"{tp_json} is not valid JSON ({exc}).") from exc
    return files


def read_patient(patient_folder):
    """Layers of every timepoint of one patient of a study folder.

    The folder layout is the batch's (``flr_volumetry.study``): patient.json
    plus one folder per timepoint. Timepoints are labelled
    ``<patient> <timepoint>``.
    """
    from flr_volumetry import study as _study

    patient_folder = Path(patient_folder).resolve()
    found = _study.discover_study(patient_folder.parent)
    patient = next((p for p in found.patients if p.patient_id == patient_folder.name), None)
    if patient is None:
        raise InputError(f"{patient_folder} is not a patient folder of a study (no timepoint "
                         f"folder with an image.* file).")
    if patient.error:
        raise InputError(f"patient {patient.patient_id}: {patient.error}")
    layers = []
    # In scan-date order, as the batch reads them (folder names need not sort by date).
    for tp in patient.timepoints_by_date():
        layers += _read_study_timepoint(patient, tp)
    # Show the last timepoint on top; hide the other scans so overlays stay readable.
    return layers


def _read_study_timepoint(patient, tp):
    """Layers of one timepoint of a study patient, labelled ``<patient> <timepoint>``."""
    if tp.error:
        raise InputError(f"patient {patient.patient_id}, timepoint {tp.name}: {tp.error}")
    files = {k: getattr(tp, k) for k in ("image", "liver", "tumor", "flr", "segments")}
    layers = read_timepoint_folder(
        tp.folder, label=f"{patient.patient_id} {tp.name}", patient_id=patient.patient_id,
        scan_date=tp.scan_date, files=files, extra={"flr_patient_facts": patient.facts()})
    if files["flr"] is None and patient.remnant_spec():
        layers += _flr_from_patient_plan(layers, patient.remnant_spec())
    return layers


def _study_timepoint(folder):
    """(patient, timepoint) of the study when ``folder`` is a timepoint folder of a patient
    folder with patient.json or of a study with study.csv, else None: such a folder opened
    on its own is still that patient's scan (its masks, size and growth are the patient's)."""
    from flr_volumetry import study as _study

    folder = Path(folder).resolve()
    patient_folder = folder.parent
    if not ((patient_folder / "patient.json").is_file()
            or (patient_folder.parent / "study.csv").is_file()):
        return None
    try:
        found = _study.discover_study(patient_folder.parent)
    except InputError:
        return None
    for patient in found.patients:
        if patient.patient_id != patient_folder.name or patient.error:
            continue
        for tp in patient.timepoints:
            if Path(tp.folder).resolve() == folder:
                return patient, tp
    return None


def _flr_from_patient_plan(tp_layers, spec):
    """The FLR layer of a timepoint without ``flr.*``, from the patient's plan (as the batch)."""
    try:
        from flr_volumetry import remnant
    except ImportError:
        return []
    from ._geometry import layer_image

    by_role = {kw["metadata"]["flr_role"]: (data, kw) for data, kw, _ in tp_layers}
    if "liver" not in by_role:
        return []
    if "plan" in spec:
        plan = remnant.RemnantPlan.load(spec["plan"])
    else:
        plan = remnant.RemnantPlan(**spec)
    geo = by_role["liver"][1]["metadata"]["flr_geometry"]
    images = {role: layer_image(by_role[role][0], geo) if role in by_role else None
              for role in ("liver", "segments", "tumor")}
    if plan.kind == "segments" and images["segments"] is None and plan.landmarks is None:
        return []
    flr, warnings, methods = remnant.flr_from_plan(plan, images["liver"],
                                                   segments=images["segments"],
                                                   tumor=images["tumor"])
    liver_kw = by_role["liver"][1]
    data = sitk.GetArrayFromImage(flr)
    meta = {**liver_kw["metadata"], "flr_role": "flr", "flr_plan": plan.to_dict(),
            "flr_methods": dict(methods), "flr_warnings": list(warnings),
            "flr_source": f"plan: {plan.resection or plan.segments}",
            "flr_data_sha256": data_digest(data)}
    kwargs = {**liver_kw, "metadata": meta, "name": f"{meta['flr_label']} flr",
              "colormap": {None: "transparent", 0: "transparent", 1: ROLE_COLORS["flr"]}}
    return [(data, kwargs, "labels")]


def _first_patient(study_folder):
    from flr_volumetry import study as _study

    found = _study.discover_study(study_folder)
    return Path(found.patients[0].folder), [p.patient_id for p in found.patients]


def read_path(path):
    """napari reader function: a list of layer data tuples."""
    if isinstance(path, list):
        return [layer for p in path for layer in read_path(p)]
    # Absolute: the export takes each file's folder out of the warnings it writes (a
    # folder may bear the patient's name), which it finds by the path its layers record.
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        kind = _folder_kind(path)
        if kind == "patient":
            return read_patient(path)
        if kind == "study":
            first, ids = _first_patient(path)
            if len(ids) > 1:
                _notify(f"this study holds {len(ids)} patients ({', '.join(ids)}); showing "
                        f"{ids[0]}. Open a patient's folder to see another one.")
            return read_patient(first)
        if kind == "timepoint":
            in_study = _study_timepoint(path)
            if in_study is not None:
                return _read_study_timepoint(*in_study)
            files = _timepoint_files(path)
            # Outside a study its name is no ID the user chose for the export (see LONE).
            return read_timepoint_folder(path, scan_date=files.get("scan_date"), files=files,
                                         extra=LONE)
        scan = load_image(path)
        return [scan_layer(scan, timepoint=Path(path).resolve(), label=Path(path).name,
                           extra=LONE)]
    return _read_single(path)


def _notify(message, warning=False):
    try:
        from napari.utils.notifications import show_info, show_warning
    except ImportError:  # pragma: no cover - napari is a dependency
        return
    (show_warning if warning else show_info)(message)
