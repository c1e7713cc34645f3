"""The future liver remnant: from a surgical plan to an FLR mask.

A :class:`RemnantPlan` says how the remnant is defined (a named resection or
segment list on Couinaud segments, which come from a segment map or from
landmarks; or a cut plane/surface with a keep point). :func:`flr_from_plan`
turns it into a mask on a scan's liver; the same plan applies to every
timepoint (geometric plans through
:func:`flr_volumetry.registration.carry_plan`).

Examples
--------
>>> import numpy as np, SimpleITK as sitk
>>> liver = sitk.GetImageFromArray(np.ones((4, 4, 10), np.uint8))
>>> plan = RemnantPlan(surface_points=[(2.5, 0, 0), (2.5, 9, 0), (2.5, 0, 9)],
...                    keep_point=(8, 1, 1))
>>> flr, warnings, methods = flr_from_plan(plan, liver)
>>> int(sitk.GetArrayViewFromImage(flr).sum()), methods["remnant"]["surface"]
(112, 'plane')
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError
from ..io import as_image, grid_description, same_grid
from ..volumetry import voxel_volume_ml
from ._landmarks import (
    LANDMARK_NAMES,
    REQUIRED_LANDMARKS,
    landmarks_from_segments,
    read_landmarks,
    segments_from_landmarks,
)
from ._plan import (
    PLAN_SCHEMA_VERSION,
    RESECTIONS,
    SEGMENTS,
    RemnantPlan,
    parse_point,
    parse_points,
    remnant_segments_of,
)
from ._segments import flr_from_segments, needed_segments
from ._surface import cut_surface, split_liver

__all__ = [
    "LANDMARK_NAMES",
    "PLAN_SCHEMA_VERSION",
    "REQUIRED_LANDMARKS",
    "RESECTIONS",
    "SEGMENTS",
    "RemnantPlan",
    "cut_surface",
    "flr_from_plan",
    "flr_from_segments",
    "landmarks_from_segments",
    "needed_segments",
    "parse_point",
    "parse_points",
    "read_landmarks",
    "remnant_segments_of",
    "segments_from_landmarks",
    "split_liver",
]


def _check_tumor_grid(tumor, liver):
    if not same_grid(tumor, liver):
        raise GeometryError(f"the tumour mask ({grid_description(tumor)}) is not on the liver "
                            f"mask's grid ({grid_description(liver)}).")


def _tumor_warning(flr, tumor):
    if tumor is None:
        return []
    inside = int(np.count_nonzero((sitk.GetArrayViewFromImage(flr) != 0)
                                  & (sitk.GetArrayViewFromImage(tumor) != 0)))
    if not inside:
        return []
    return [f"{inside * voxel_volume_ml(flr):.1f} mL of tumour lies inside the planned remnant; "
            f"it is excluded from the FLR volume, but the plan leaves tumour behind."]


def flr_from_plan(plan, liver, segments=None, tumor=None, *, return_segments=False):
    """The FLR mask of ``plan`` on one scan's liver.

    Parameters
    ----------
    plan : RemnantPlan
    liver : SimpleITK.Image or Mask
        Liver mask of this scan.
    segments : SimpleITK.Image or Mask, optional
        Couinaud label map on the liver's grid. Segment plans need it, or
        landmarks in the plan (used only when no map is given).
    tumor : SimpleITK.Image or Mask, optional
        Tumour mask. The plan divides liver and tumour together (the liver
        mask may hold the parenchyma only); the FLR mask keeps the tumour
        voxels of the remnant (the volume computation,
        :func:`flr_volumetry.measure`, excludes them) and a warning gives
        their volume.
    return_segments : bool
        Also return the segment map used (the one built from landmarks, or
        ``segments``), e.g. for per-segment volumes.

    Returns
    -------
    flr : SimpleITK.Image
        uint8 mask on the liver's grid, inside liver and tumour.
    warnings : list of str
    methods : dict
        ``{"remnant": {...}}``: how the remnant was defined.
    segments : SimpleITK.Image or None
        Only with ``return_segments``.
    """
    if not isinstance(plan, RemnantPlan):
        raise InputError("flr_from_plan needs a RemnantPlan (RemnantPlan.from_dict reads a "
                         "dict, RemnantPlan.load a file).")
    liver = as_image(liver, "liver mask")
    segments = None if segments is None else as_image(segments, "segment map")
    tumor = None if tumor is None else as_image(tumor, "tumour mask")
    liver = sitk.Cast(liver != 0, sitk.sitkUInt8) if liver.GetPixelID() != sitk.sitkUInt8 \
        else liver
    if not np.any(sitk.GetArrayViewFromImage(liver)):
        raise InputError("the liver mask is empty: it has no non-zero voxel.")
    if tumor is not None:
        # The total liver is liver + tumour (a liver mask may hold the parenchyma only, as
        # in measure): the plan divides both, so tumour left in the remnant is seen.
        _check_tumor_grid(tumor, liver)
        liver_arr = sitk.GetArrayViewFromImage(liver) != 0
        tumor_arr = sitk.GetArrayViewFromImage(tumor) != 0
        if np.any(tumor_arr & ~liver_arr):
            whole = sitk.GetImageFromArray((liver_arr | tumor_arr).astype(np.uint8))
            whole.CopyInformation(liver)
            liver = whole
    methods = plan.describe()
    warnings = []
    if plan.kind == "surface":
        flr, warnings = split_liver(liver, plan.surface_points, plan.keep_point)
        methods["keep_point_mm"] = list(plan.keep_point)
    else:
        if segments is None and plan.landmarks is None:
            raise InputError(
                "the plan selects Couinaud segments, but there is neither a segment map "
                "(measure --segments; segments.nii.gz in a study's timepoint folder) nor "
                "landmarks (--landmarks; in the plan) to find them."
            )
        missing = "error"
        if segments is None:
            segments = segments_from_landmarks(liver, plan.landmark_dict)
            methods["segments_from"] = "landmarks (Couinaud planes)"
            missing = "warn"
            if plan.resect_caudate:
                warnings.append(_landmark_caudate_warning(segments, liver))
        else:
            methods["segments_from"] = "segment map"
            if plan.landmarks is not None:
                warnings.append("the plan's landmarks were not used: the segment map given "
                                "defines the segments.")
        flr, seg_warnings = flr_from_segments(
            segments, liver, resection=plan.resection, remnant_segments=plan.remnant_segments,
            resect_caudate=plan.resect_caudate, missing=missing)
        warnings += seg_warnings
    warnings += _tumor_warning(flr, tumor)
    out = (flr, warnings, {"remnant": methods})
    return out + (segments if plan.kind == "segments" else None,) if return_segments else out


def _landmark_caudate_warning(segments, liver):
    """The landmark model's caudate is a coarse wedge, often far too small (3D-IRCADb:
    0.5-9 mL against 39-79 mL with the required landmarks only): resected, the rest of
    the caudate stays in the FLR (+7 to +95 %)."""
    seg = sitk.GetArrayViewFromImage(segments)
    caudate = np.count_nonzero(seg == 1)
    caudate_pct = 100.0 * caudate / max(np.count_nonzero(seg), 1)
    return (f"the caudate (segment 1) built from landmarks holds "
            f"{caudate * voxel_volume_ml(liver):.1f} mL ({caudate_pct:.1f} % of the liver; "
            f"a caudate is usually 2-5 %): the landmark model's caudate is coarse, so with "
            f"the caudate resected the FLR may hold part of it; check segment 1, or give a "
            f"Couinaud segment map.")
