"""From files to a Measurement: the one function the CLI, batch and napari call.

It reads the scan and masks (``io``), fills in what the header knows (date,
height, weight), segments the liver when no mask is given, and measures
(``volumetry``).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import replace

import SimpleITK as sitk

from ._options import as_options
from .errors import GeometryError, InputError
from .io import Mask, as_image, load_image, load_label_map, load_mask, same_grid
from .volumetry import Patient, VolumetryOptions, measure, scan_circle_warnings

__all__ = ["measure_files"]


def _patient_with_header(patient, scan, warnings):
    """``patient`` completed from the DICOM header's height and weight, as said in
    ``warnings``; values given by the user are never replaced."""
    patient = as_options(patient, Patient, "patient")
    header_cm, header_kg = scan.patient_height_cm, scan.patient_weight_kg
    if patient.height_cm is not None:
        if patient.weight_kg is None and header_kg:
            warnings.append(f"weight {header_kg:g} kg was taken from the DICOM header (with "
                            f"the height given, {patient.height_cm:g} cm).")
            patient = replace(patient, weight_kg=header_kg)
        return patient
    if patient.weight_kg is not None:
        if header_cm:
            warnings.append(f"height {header_cm:g} cm was taken from the DICOM header (with "
                            f"the weight given, {patient.weight_kg:g} kg).")
            patient = replace(patient, height_cm=header_cm)
        return patient
    if header_cm and header_kg:
        warnings.append(f"height {header_cm:g} cm and weight {header_kg:g} kg were taken from "
                        f"the DICOM header.")
        patient = replace(patient, height_cm=header_cm, weight_kg=header_kg)
    elif header_kg:
        # A weight alone gives FLR/body weight; BSA (TELV, sFLR) needs the height too.
        warnings.append(f"weight {header_kg:g} kg was taken from the DICOM header, which gives "
                        f"no height; give the height (--height-cm, or height_cm in "
                        f"patient.json) for BSA, TELV and sFLR.")
        patient = replace(patient, weight_kg=header_kg)
    elif header_cm:
        # No formula takes a height alone; said, not dropped unsaid.
        warnings.append("the DICOM header gives the patient's height but no weight, so it was "
                        "not used; give both (--height-cm and --weight-kg, or height_cm and "
                        "weight_kg in patient.json).")
    return patient


def _on_scan_grid(image, scan, what):
    """A mask given as an image (not a file): on the scan's grid, or refused."""
    if not same_grid(image, scan.image):
        raise GeometryError(f"the {what} given as an image is not on the scan's grid; give its "
                            f"file, or load it with load_mask(path, scan), to resample it.")
    return image


# Segment names that say which of a file's segments is the liver, tumour or FLR mask.
_ROLE_NAMES = {"liver mask": ("liver",), "tumour mask": ("tumor", "tumour", "tumors", "tumours"),
               "FLR mask": ("flr", "remnant", "future liver remnant")}


def _named_for(role, names):
    """The segment names among ``names`` that name ``role`` ('tumour mask'), or []
    when none or several different ones do."""
    wanted = _ROLE_NAMES.get(role, ())
    named = list(dict.fromkeys(n for n in names if n.strip().lower() in wanted))
    return named if len({n.strip().lower() for n in named}) == 1 else []


def _load_mask(spec, scan, also_tumour=False, **kwargs):
    """:func:`load_mask` of a specification, or a mask already loaded (Mask or image).

    A segmentation file of several segments given without a selection (a
    timepoint's liver.seg.nrrd holding Liver and Tumor, where a study folder
    has no way to select one) gives the segment named for the role, said.
    With ``also_tumour`` (the liver, no tumour mask given), returns
    ``(mask, tumour specification or None)``: the file's segment named for
    the tumour, which belongs to the whole liver.
    """
    from .io._segfiles import SegmentChoiceNeeded

    tumour_spec = None
    if isinstance(spec, (str, os.PathLike)):
        try:
            m = load_mask(spec, scan, **kwargs)
        except SegmentChoiceNeeded as exc:
            named = _named_for(kwargs.get("what"), exc.names)
            if not named:
                raise
            m = load_mask(f"{os.fspath(spec)}:{','.join(named)}", scan, **kwargs)
            tumour = _named_for("tumour mask", exc.names) if also_tumour else []
            if tumour:
                # Drawn in Slicer's default overwrite mode, the tumour segment leaves its
                # hole in the liver segment: taken alone, the liver lacked it (1889.6 mL of
                # 1993.1), and no tumour was measured.
                tumour_spec = f"{os.fspath(spec)}:{','.join(tumour)}"
            others = [n for n in dict.fromkeys(exc.names) if n not in named + tumour]
            said = (f"{os.fspath(spec)} holds {len(exc.names)} segments: "
                    f"{' and '.join(repr(n) for n in named)} was taken as the "
                    f"{kwargs['what']}"
                    + (f" and {' and '.join(repr(n) for n in tumour)} as the tumour mask"
                       if tumour else "")
                    + (f", not {', '.join(repr(n) for n in others)}" if others else "") + ".")
            m = Mask(image=m.image, source=m.source, warnings=(said, *m.warnings))
        return (m, tumour_spec) if also_tumour else m
    what = kwargs.get("what", "mask")
    image = _on_scan_grid(as_image(spec, what), scan, what)
    m = Mask(image=image, source=getattr(spec, "source", "image given"),
             warnings=tuple(getattr(spec, "warnings", ())))
    return (m, None) if also_tumour else m


def measure_files(image, *, liver=None, tumor=None, flr=None, segments=None, patient=None,
                  options=None, series_uid=None, scan_date=None, modality=None,
                  masks_out=None, plan=None, plan_baseline=None, registration=None):
    """Measure one scan from files.

    Parameters
    ----------
    image : str or os.PathLike or Scan
        Scan file or DICOM folder (see :func:`flr_volumetry.load_image`), or
        a scan already loaded.
    liver, tumor, flr : str, os.PathLike, Mask or SimpleITK.Image, optional
        Mask specifications (see :func:`flr_volumetry.load_mask`), or masks
        already loaded on the scan's grid. Without ``liver`` the liver is
        segmented automatically.
    segments : str, os.PathLike, Mask or SimpleITK.Image, optional
        Couinaud label map (labels 1-8), for per-segment volumes.
    patient : Patient or dict, optional
        Height and weight default to the DICOM header's when present.
    options : VolumetryOptions or dict, optional
    series_uid : str, optional
        Which series of a DICOM folder holding several.
    scan_date : date or str, optional
        Overrides the header's study date.
    modality : {'ct', 'mr'}, optional
        For automatic segmentation; defaults to the header's modality, else CT.
    masks_out : dict, optional
        A dict (not a folder) filled with the masks the measurement used, as SimpleITK images on
        the scan's grid: ``"liver"``, and ``"tumor"``, ``"flr"``,
        ``"segments"`` when present (e.g. for the batch to save the masks it
        made for review).
    plan : RemnantPlan, dict or str, optional
        A remnant plan (or its JSON file) that defines the FLR instead of an
        FLR mask (see :func:`flr_volumetry.remnant.flr_from_plan`): segment
        plans use ``segments`` or the plan's landmarks, cut plans the liver
        mask. Giving both ``plan`` and ``flr`` is an error.
    plan_baseline : (image, liver), optional
        The scan (file, DICOM folder or Scan) and liver mask specification
        (None: segmented automatically) the plan was placed on, when that is
        another scan: the plan is first
        carried to this scan (:func:`flr_volumetry.registration.carry_plan`)
        and the registration's Dice goes to ``methods["registration"]``.
    registration : RegistrationOptions, optional
        For ``plan_baseline`` (e.g. the Dice below which it refuses).

    Returns
    -------
    Measurement
    """
    from .io import Scan

    if plan is not None and flr is not None:
        raise InputError("give either an FLR mask or a remnant plan, not both: the plan "
                         "defines the FLR.")
    if plan_baseline is not None and plan is None:
        raise InputError("a plan baseline scan was given without a plan to carry from it.")
    if masks_out is not None and not isinstance(masks_out, MutableMapping):
        # A folder (as batch's masks/ is) had failed with an AttributeError after the whole
        # measurement: masks_out is a dict the caller reads the images from.
        raise InputError(f"masks_out must be a dict, filled with the masks used (write them "
                         f"with write_mask), not {type(masks_out).__name__}.")
    if modality is not None:
        from .segmentation._common import check_modality

        # Checked whether or not the liver is segmented: 'xray' had passed unsaid.
        modality = check_modality(str(modality))
    scan = image if isinstance(image, Scan) else load_image(image, series_uid=series_uid)
    options = as_options(options, VolumetryOptions, "volumetry options")
    warnings = list(scan.warnings)
    methods = {"image": _describe_scan(scan)}
    patient = _patient_with_header(patient, scan, warnings)
    ref = scan.image
    if liver is None:
        liver_img, seg_warnings, seg_methods = _auto_liver(scan, modality)
        warnings += seg_warnings
        methods["liver_mask"] = "automatic segmentation"
        methods["segmentation"] = seg_methods
        if masks_out is not None:
            # At once: a later step may fail (a plan's landmark outside a poor mask), and
            # the mask that made it fail is what the user must see.
            masks_out["liver"] = liver_img
    else:
        if tumor is None:
            m, tumor = _load_mask(liver, scan, also_tumour=True, what="liver mask")
        else:
            m = _load_mask(liver, scan, what="liver mask")
        liver_img = m.image
        warnings += m.warnings
        methods["liver_mask"] = m.source
    tumor_img = flr_img = seg_img = None
    if tumor is not None:
        m = _load_mask(tumor, scan, structure="liver_tumor", what="tumour mask",
                       whole_liver=False)
        tumor_img, warnings = m.image, warnings + list(m.warnings)
        methods["tumor_mask"] = m.source
    if flr is not None:
        m = _load_mask(flr, scan, what="FLR mask", whole_liver=False)
        flr_img, warnings = m.image, warnings + list(m.warnings)
        methods["flr_mask"] = m.source
    if segments is not None:
        if isinstance(segments, (str, os.PathLike)):
            seg_img, seg_warn = load_label_map(segments, ref, what="segment map")
            warnings += seg_warn
            methods["segment_map"] = str(segments)
        else:
            seg_img = _on_scan_grid(as_image(segments, "segment map"), scan, "segment map")
            methods["segment_map"] = "image given"
    if plan is not None:
        flr_img, seg_img, plan_warnings, plan_methods = _flr_from_plan(
            plan, liver_img, seg_img, tumor_img, scan, plan_baseline, registration)
        warnings += plan_warnings
        methods.update(plan_methods)
    if masks_out is not None:
        masks_out.update({k: v for k, v in (("liver", liver_img), ("tumor", tumor_img),
                                             ("flr", flr_img), ("segments", seg_img))
                          if v is not None})
    if liver is not None:  # (a segmented liver was checked by segment_liver)
        whole = liver_img if tumor_img is None else sitk.Or(
            sitk.Cast(liver_img != 0, sitk.sitkUInt8), sitk.Cast(tumor_img != 0, sitk.sitkUInt8))
        warnings += scan_circle_warnings(whole, ref)
    date = scan_date if scan_date is not None else scan.study_date
    return measure(liver_img, tumor=tumor_img, flr=flr_img, segments=seg_img, patient=patient,
                   options=options, scan_date=date,
                   extra_warnings=warnings, extra_methods=methods)


def _check_one_patient(base_scan, scan):
    """Refuse a plan baseline of another patient, when both scans' DICOM headers say so.

    The registration cannot: another patient's liver outlines had matched at Dice 0.848.
    """
    from .io import scan_patient_id

    base_id, here_id = scan_patient_id(base_scan), scan_patient_id(scan)
    if base_id is not None and here_id is not None and base_id != here_id:
        raise InputError("the plan baseline is another patient's scan (its DICOM PatientID "
                         "differs from this scan's): a plan is carried only between scans "
                         "of one patient.")


def _flr_from_plan(plan, liver_img, seg_img, tumor_img, scan, plan_baseline, registration):
    from .io import Scan
    from .remnant import RemnantPlan, flr_from_plan
    from .remnant._plan import placed_on_scan

    image = scan.image
    methods = {}
    warnings = []
    if isinstance(plan, dict):
        plan = RemnantPlan.from_dict(plan)
    elif not isinstance(plan, RemnantPlan):
        methods["plan_file"] = str(plan)
        plan = RemnantPlan.load(plan)
    if plan_baseline is not None:
        from .registration import carry_plan

        try:
            base_image, base_liver = plan_baseline
        except (TypeError, ValueError):
            raise InputError("plan_baseline must be the pair (baseline scan, baseline liver "
                             "mask).") from None
        if base_liver is None:
            # The plan's scan has no liver mask: segment it as measure does.
            base_scan, base_liver_img, seg_warnings = _segmented_plan_baseline(base_image)
            warnings += [f"plan baseline: {w}" for w in seg_warnings]
            base_liver_source = "automatic segmentation"
        else:
            base_scan = base_image if isinstance(base_image, Scan) else load_image(base_image)
            base_mask = load_mask(base_liver, base_scan, what="baseline liver mask")
            warnings += [f"plan baseline: {w}" for w in base_mask.warnings]
            base_liver_img, base_liver_source = base_mask.image, base_mask.source
        _check_one_patient(base_scan, scan)
        if plan.placed_on_another_scan(base_scan.image):
            warnings.append("the plan's points were placed on another scan than the plan "
                            "baseline given: check that it is the scan the plan was made on.")
        plan, report = carry_plan(plan, base_scan.image, base_liver_img, image, liver_img,
                                  options=registration)
        warnings += list(report.warnings)
        methods["registration"] = {**report.to_dict(), "baseline_scan": base_scan.source,
                                   "baseline_liver_mask": base_liver_source}
        methods["plan_carried"] = plan.to_dict()
    # This scan's grid and voxel digest, computed once for the check and the record.
    here = placed_on_scan(image) if plan.in_scan_coordinates else None
    other_scans_points = (plan_baseline is None and here is not None
                          and plan.placed_on_another_scan(here))
    if other_scans_points:
        # Points of another scan used as they are: right only if the patient lay exactly
        # as then, which a follow-up scan never does.
        warnings.append("the plan's points were placed on another scan and are used here "
                        "as they are, not carried by registration: give the scan they were "
                        "placed on as the plan baseline (--plan-baseline) to carry them.")
    if plan.in_scan_coordinates:
        # The plan as applied, its points those of this scan (saved by --save-plan). Not
        # when they are another scan's, used as they are: saved again, they stay that
        # scan's, or the next use of the copy would not be warned about.
        if not other_scans_points:
            plan = replace(plan, placed_on=here)
        methods["plan_applied"] = plan.to_dict()
    had_map = seg_img is not None
    flr_img, plan_warnings, plan_methods, used_segments = flr_from_plan(
        plan, liver_img, segments=seg_img, tumor=tumor_img, return_segments=True)
    if not sitk.GetArrayViewFromImage(flr_img).any():
        # Said here, with the plan's own notes (a segment its landmarks left empty), not as
        # measure's "the FLR mask is empty" of a mask nobody gave.
        notes = "".join(f"; {w.rstrip('.')}" for w in plan_warnings)
        raise InputError(f"the plan leaves no remnant on this liver (the FLR it defines is "
                         f"empty{notes}).")
    warnings += plan_warnings
    methods.update(plan_methods)
    if used_segments is not None and not had_map:
        seg_img = used_segments
        methods["segment_map"] = "built from the plan's landmarks"
    return flr_img, seg_img, warnings, methods


def _describe_scan(scan):
    d = {"source": scan.source, "size": list(scan.image.GetSize()),
         "spacing_mm": [round(s, 6) for s in scan.image.GetSpacing()]}
    if scan.modality:
        d["modality"] = scan.modality
    if scan.series_instance_uid:
        d["series_instance_uid"] = scan.series_instance_uid
    if scan.series_description:
        d["series_description"] = scan.series_description
    return d


# The last plan baseline segmented (its files' identity -> scan, liver, warnings): every
# follow-up of a patient carries the plan from the same baseline, which had been read and
# segmented again for each (26 s a time at 518 slices).
_SEGMENTED_BASELINE = {}


def _file_identity(path):
    """What changes when a file or a DICOM folder's files change: paths, inodes, sizes,
    modification and change times (the change time cannot be set back, as `cp -p` sets
    the modification time)."""
    def stat_of(p):
        st = os.stat(p)
        return p, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return path, tuple(stat_of(os.path.join(root, name))
                           for root, _, files in os.walk(path) for name in sorted(files))
    return stat_of(path)


def _segmented_plan_baseline(base_image):
    """(scan, automatic liver, warnings) of a plan's baseline scan, reused while its files
    are unchanged."""
    from .io import Scan

    if isinstance(base_image, Scan):
        return (base_image, *_auto_liver(base_image, None)[:2])
    key = _file_identity(base_image)
    # The entry is used as found or made, not read back: a script measuring in threads may
    # replace the one kept baseline between this thread's store and a read (a KeyError).
    entry = _SEGMENTED_BASELINE.get(key)
    if entry is None:
        scan = load_image(base_image)
        liver, seg_warnings, _ = _auto_liver(scan, None)
        entry = (scan, liver, tuple(seg_warnings))
        _SEGMENTED_BASELINE.clear()  # one baseline kept: a scan and its mask, not a study's
        _SEGMENTED_BASELINE[key] = entry
    scan, liver, seg_warnings = entry
    return scan, liver, list(seg_warnings)


def _auto_liver(scan, modality):
    from .segmentation import segment_liver

    try:
        result = segment_liver(scan.image, modality=modality or scan.ct_or_mr)
    except InputError as exc:
        if modality is None and scan.ct_or_mr == "mr":
            # A CT labelled MR: where the modality came from, and how to say otherwise.
            raise InputError(
                "the DICOM header gives the modality MR, and automatic segmentation is for CT "
                "only; if the scan is a CT, say so (measure --modality ct, or \"modality\": "
                "\"ct\" in timepoint.json), else segment it from seeds with flr-volumetry "
                "segment IMAGE --modality mr --seed I,J,K -o liver.nii.gz and give that mask as "
                "the liver.") from None
        # The segmentation's advice names segment's options (--seed, --modality), which
        # measure and batch do not have: say where they are.
        raise InputError(
            f"{str(exc).rstrip('.')}; measure and batch segment without seeds, so seed it with "
            f"flr-volumetry segment IMAGE --seed I,J,K -o liver.nii.gz (--modality mr for MR) "
            f"and give that mask as the liver (--liver, or liver.nii.gz in the timepoint "
            f"folder).") from None
    return result.liver, list(result.warnings), dict(result.methods)
