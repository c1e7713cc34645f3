"""The remnant from a Couinaud segment map (labels 1-8)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError
from ..io import as_image, grid_description, same_grid
from ..volumetry import check_mask, segment_map_warnings, voxel_volume_ml
from ._plan import RESECTIONS, as_flag, remnant_segments_of, resection_key

__all__ = ["flr_from_segments", "needed_segments"]


def needed_segments(resection=None, remnant_segments=None, resect_caudate=False):
    """Segments a map must contain for this selection to mean what it says.

    A named resection needs every segment it keeps *and* removes (a map
    without segment 4 would silently shrink a right hepatectomy's remnant);
    an explicit list needs the listed segments.

    Examples
    --------
    >>> needed_segments("left_lateral_sectionectomy")
    (1, 2, 3, 4, 5, 6, 7, 8)
    >>> needed_segments(remnant_segments=(2, 3))
    (2, 3)
    """
    keep = remnant_segments_of(resection, remnant_segments, resect_caudate)
    if resection is None:
        return keep
    return tuple(sorted(set(keep) | set(RESECTIONS[resection_key(resection)])
                        | ({1} if resect_caudate else set())))


def _as_mask_array(image):
    return np.asarray(sitk.GetArrayViewFromImage(image)) != 0


def flr_from_segments(segments, liver, *, resection=None, remnant_segments=None,
                      resect_caudate=False, missing="error"):
    """FLR mask = liver voxels whose segment label is in the remnant.

    Parameters
    ----------
    segments : SimpleITK.Image or Mask
        Couinaud label map (1-8) on the liver mask's grid.
    liver : SimpleITK.Image or Mask
        Liver mask; segment voxels outside it are not counted.
    resection : str, optional
        A name from :data:`RESECTIONS`.
    remnant_segments : sequence of int, optional
        Explicit remnant segments (instead of ``resection``).
    resect_caudate : bool
        With a named resection, also remove segment 1 (True/False, 1/0 or
        their text; anything else is refused).
    missing : {'error', 'warn'}
        What to do when the map lacks a segment the selection needs (a
        warning suits maps built from landmarks, whose planes may leave a
        small segment empty).

    Returns
    -------
    flr : SimpleITK.Image
        uint8 mask on the liver's grid.
    warnings : list of str

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> lab = np.repeat(np.arange(1, 9, dtype=np.uint8), 2)[None, None, :]
    >>> seg = sitk.GetImageFromArray(lab)
    >>> liver = sitk.GetImageFromArray((lab > 0).astype(np.uint8))
    >>> flr, warnings = flr_from_segments(seg, liver, resection="right_hepatectomy")
    >>> sitk.GetArrayFromImage(flr).ravel().tolist()
    [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    segments, liver = as_image(segments, "segment map"), as_image(liver, "liver mask")
    # As measure and load_label_map: a map resampled with linear interpolation holds
    # x.5 values that rounding would give to other segments, without a word.
    check_mask(segments, "segment map")
    if missing not in ("error", "warn"):
        raise InputError(f"missing must be 'error' or 'warn', not {missing!r}.")
    # As RemnantPlan reads it: the text "false" (a JSON or YAML file) is a true value, which
    # had resected the caudate without a word.
    resect_caudate = as_flag(resect_caudate, "resect_caudate")
    if resection is None and remnant_segments is None:
        raise InputError("say which segments remain: give a resection (e.g. "
                         "'right_hepatectomy') or remnant_segments (e.g. [2, 3]).")
    if not same_grid(segments, liver):
        raise GeometryError(
            f"the segment map ({grid_description(segments)}) is not on the liver mask's grid "
            f"({grid_description(liver)}); load it with load_label_map(path, reference=scan)."
        )
    keep = remnant_segments_of(resection, remnant_segments, resect_caudate)
    need = needed_segments(resection, remnant_segments, resect_caudate)
    seg = np.asarray(sitk.GetArrayViewFromImage(segments))
    if seg.dtype.kind == "f":
        # Whole numbers stored as float (CHAOS): rounded once, for counting and selecting
        # alike (1.0001 had been counted as 1 and not selected as 1).
        seg = np.rint(seg)
    liver_arr = _as_mask_array(liver)
    inside = seg[liver_arr]
    if inside.size and inside.min() < 0:
        raise InputError("the segment map holds negative labels; Couinaud labels are 1-8.")
    counts = np.bincount(inside.astype(np.int64).ravel(), minlength=1)
    present = set(np.flatnonzero(counts).tolist()) - {0}
    absent = [s for s in need if s not in present]
    warnings = []
    if absent:
        what = f"the {resection_key(resection).replace('_', ' ')}" if resection else "this remnant"
        message = (f"the segment map has no voxel of segment(s) {', '.join(map(str, absent))} "
                   f"inside the liver, which {what} needs")
        if missing == "error":
            raise InputError(f"{message}; check the map (labels 1-8, Couinaud) or plan with "
                             f"explicit --remnant-segments.")
        warnings.append(f"{message}; check the landmarks.")
    v_ml = voxel_volume_ml(liver)
    outside = int(np.count_nonzero((seg != 0) & ~liver_arr))
    if outside:
        warnings.append(
            f"{outside * v_ml:.1f} mL of the segment map lies outside the liver mask and was "
            f"not counted (segments are restricted to the liver)."
        )
    # The same sentences as measure's, which drops the repeats.
    warnings += segment_map_warnings({str(k): int(n) * v_ml for k, n in enumerate(counts) if k},
                                     int(counts[0]) * v_ml, absent=False)
    flr = (np.isin(seg, np.asarray(keep)) & liver_arr).astype(np.uint8)
    out = sitk.GetImageFromArray(flr)
    out.CopyInformation(liver)
    return out, warnings
