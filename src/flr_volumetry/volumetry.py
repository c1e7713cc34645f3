"""Masks to millilitres on the scan's grid, and the clinical numbers on top.

Volumes are voxel counts times the voxel volume of the scan's own grid
(spacing product; the direction matrix is orthonormal and does not change
volume). Nothing is interpolated here: masks on another grid are resampled,
with a warning (none for the same voxels stored in another axis order, placed
exactly), by :func:`flr_volumetry.io.load_mask` before they get here,
and :func:`measure` refuses masks whose grid differs from the liver's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import SimpleITK as sitk

from . import clinical
from ._options import as_options
from .errors import GeometryError, InputError
from .hypertrophy import parse_date
from .io import as_image, grid_description, same_grid
from .io._masks import MAX_LABELS

SCHEMA_VERSION = "1.0"

__all__ = [
    "Patient",
    "VolumetryOptions",
    "Measurement",
    "voxel_volume_ml",
    "check_mask",
    "mask_volume_ml",
    "label_volumes_ml",
    "field_of_view_warnings",
    "measure",
]


@dataclass(frozen=True)
class Patient:
    """Body size and liver state of one patient (no name, ever).

    Parameters
    ----------
    height_cm : float, optional
        Height in centimetres (numbers written as text, numpy numbers too);
        outside 100-250 cm (a height in metres) a
        :class:`~flr_volumetry.ClinicalInputError` is raised.
    weight_kg : float, optional
        Weight in kilograms; outside 25-350 kg (grams, most pounds) refused
        alike. BSA, TELV and sFLR need both; FLR/body weight the weight alone.
    liver_condition : str
        One of ``clinical.LIVER_CONDITIONS`` ('normal', 'chemotherapy',
        'steatosis', 'cirrhosis', 'fibrosis'; any case), which sets the sFLR
        threshold (20, 30 or 40 %).

    Examples
    --------
    >>> Patient(height_cm=170, weight_kg=70).liver_condition
    'normal'
    >>> Patient(height_cm=1.70, weight_kg=70)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.ClinicalInputError: height 1.7 cm is implausible for an adult (expected 100-250 cm); give the height in centimetres.
    """

    height_cm: float | None = None
    weight_kg: float | None = None
    liver_condition: str = "normal"

    def __post_init__(self):
        for name in ("height_cm", "weight_kg"):
            value = getattr(self, name)
            if value is None:
                continue
            # Values read from a CSV arrive as text: stored as numbers, or refused.
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit int
                number = None
            if number is None:
                raise InputError(f"{name} must be a number, got {value!r}.")
            object.__setattr__(self, name, number)
        # A height alone computes nothing (no formula takes it alone, as measure says), but
        # is kept: a DICOM header's weight completes it, as its height completes a weight.
        if self.height_cm is not None:
            clinical.check_height(self.height_cm)
        if self.weight_kg is not None:
            clinical.check_weight(self.weight_kg)
        object.__setattr__(self, "liver_condition", str(self.liver_condition).strip().lower())
        clinical.sflr_threshold_pct(self.liver_condition)


@dataclass(frozen=True)
class VolumetryOptions:
    """Formula choices; every result records the ones used.

    ``bsa_formula`` defaults to Mosteller because the BSA formula of
    Vauthey's TELV derivation is not confirmed (see ``../shared/CLINICAL.md``).

    Parameters
    ----------
    bsa_formula : str
        One of ``clinical.BSA_FORMULAS`` ('mosteller', 'dubois', 'haycock',
        'gehan_george', 'boyd'); the TELV formulas derived with a BSA formula
        of their own (the Korean ones) use theirs, with a warning.
    telv_formula : str
        One of ``clinical.TELV_FORMULAS`` ('vauthey', 'urata', 'heinemann',
        'yu', 'korean_dubois', 'korean_mosteller', 'feng'). Names are stored
        in this canonical form ('Korean-Dubois' gives 'korean_dubois'); an
        unknown one raises :class:`~flr_volumetry.ClinicalInputError`.

    Examples
    --------
    >>> VolumetryOptions(telv_formula="Korean-Dubois").telv_formula
    'korean_dubois'
    """

    bsa_formula: str = "mosteller"
    telv_formula: str = "vauthey"

    def __post_init__(self):
        clinical.telv_bsa_formula(self.telv_formula, self.bsa_formula)
        # Recorded as the canonical names: a cohort grouped by them must not split.
        for name in ("bsa_formula", "telv_formula"):
            object.__setattr__(self, name, clinical.formula_key(getattr(self, name)))


@dataclass(frozen=True)
class Measurement:
    """Volumes and ratios of one scan. ``to_dict()`` gives the JSON form.

    A figure that cannot be computed (no FLR, no height or weight) is None,
    never 0; ``warnings`` says why.

    Attributes
    ----------
    total_liver_ml : float
        TLV: liver mask united with the tumour mask (intra-hepatic vessels included).
    tumor_ml : float or None
        Tumour volume inside the liver; None without a tumour mask.
    functional_liver_ml : float
        FLV = TLV - tumour; the whole liver without a tumour mask
        (``methods["functional_liver"]`` says which).
    flr_ml, resected_ml : float or None
        The remnant (tumour excluded) and the liver outside it.
    bsa_m2, telv_ml : float or None
        Body surface area and total estimated liver volume (formulas in ``methods``).
    sflr_pct : float or None
        Standardized FLR = FLR / TELV x 100.
    measured_flr_pct : float or None
        FLR / FLV x 100 (Leung's measured ratio).
    flr_bw_ratio_pct : float or None
        FLR (mL, taken as g) / body weight (g) x 100.
    sflr_threshold_pct, sflr_adequate : float, bool or None
        The adequacy threshold for ``liver_condition`` and whether sFLR reaches it.
    flr_bw_adequate : bool or None
        Whether FLR/body weight is above 0.5 %.
    flr_outside_liver_ml : float or None
        FLR voxels outside the liver (reported, not counted).
    segments_ml : dict or None
        Volume of each Couinaud segment label present, in mL.
    scan_date, height_cm, weight_kg, liver_condition
        The facts the figures were computed with.
    warnings : tuple of str
        Everything the reader of the figures should know, one sentence each.
    methods : dict
        Conventions and formulas used (what was excluded, BSA and TELV formulas...).
    schema_version : str
    """

    total_liver_ml: float
    tumor_ml: float | None
    functional_liver_ml: float
    flr_ml: float | None
    resected_ml: float | None
    bsa_m2: float | None
    telv_ml: float | None
    sflr_pct: float | None
    measured_flr_pct: float | None
    flr_bw_ratio_pct: float | None
    sflr_threshold_pct: float
    sflr_adequate: bool | None
    flr_bw_adequate: bool | None = None
    flr_outside_liver_ml: float | None = None
    segments_ml: dict | None = None
    scan_date: str | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    liver_condition: str = "normal"
    warnings: tuple[str, ...] = ()
    methods: dict = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION

    def to_dict(self):
        """Plain JSON-ready dict (warnings as a list)."""
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def voxel_volume_ml(image):
    """Volume of one voxel of ``image`` in mL (spacing in mm).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> img = sitk.Image([2, 2, 2], sitk.sitkUInt8)
    >>> img.SetSpacing((0.5, 0.5, 2.0))
    >>> voxel_volume_ml(img)
    0.0005
    """
    return float(np.prod(as_image(image).GetSpacing(), dtype=np.float64)) / 1000.0


def _array(mask):
    return sitk.GetArrayViewFromImage(mask)


def check_mask(mask, what="mask"):
    """Refuse, in one sentence, an image that cannot be counted as a mask or label map.

    Volumes are voxel counts times the voxel volume, so the image must be a
    3-D scalar SimpleITK image on an orthonormal grid whose values are
    whole numbers of at least 0 (0/1, 0/255, labels 1-8) and at most 255
    different ones, as :func:`flr_volumetry.load_mask` requires of a file: a
    scan passed by mistake, a probability map or NaN voxels would otherwise
    be counted as whole voxels. Cheap (a min/max pass; values are counted
    only above 255): it runs on every measurement.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> check_mask(sitk.GetImageFromArray(np.zeros((2, 2, 2), np.uint8)))
    >>> check_mask(sitk.GetImageFromArray(np.full((2, 2, 2), 0.3)), "liver mask")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the liver mask holds fractional values (e.g. 0.3); a mask holds whole numbers (0/1 or labels): is it a probability map or a scan?
    """
    mask = as_image(mask, what)
    if mask.GetDimension() != 3 or mask.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"the {what} must be a 3-D single-value image, not "
                         f"{mask.GetDimension()}-D with {mask.GetNumberOfComponentsPerPixel()} "
                         f"value(s) per voxel.")
    d = np.array(mask.GetDirection(), np.float64).reshape(3, 3)
    # 1e-3: DICOM orientations written with few decimals are rotations all the same.
    if not np.allclose(d @ d.T, np.eye(3), atol=1e-3):
        raise InputError(f"the {what}'s direction matrix is not a rotation (its axes are not "
                         f"unit length and perpendicular), so its voxel volume is undefined.")
    arr = _array(mask)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InputError(f"the {what} holds NaN or infinite values.")
        frac = np.abs(arr - np.rint(arr))
        if frac.max(initial=0.0) > 1e-3:
            raise InputError(f"the {what} holds fractional values (e.g. "
                             f"{arr.flat[int(np.argmax(frac))]:g}); a mask holds whole numbers "
                             f"(0/1 or labels): is it a probability map or a scan?")
    if arr.size and arr.min() < 0:
        raise InputError(f"the {what} holds negative values (down to {arr.min():g}): is it a "
                         f"scan?")
    # An MR scan (whole, positive numbers) passed as a mask had been measured as one huge
    # liver (23 L); load_mask refuses such a file by counting its values, as done here.
    # Values up to MAX_LABELS cannot be more labels than that: uint8 masks (most) and 0/255
    # masks cost nothing more.
    if arr.size and not (arr.dtype.kind in "ui" and arr.dtype.itemsize == 1):
        high = float(arr.max())
        if high > 65535:
            raise InputError(f"the {what} holds values up to {high:.0f}: is it a scan?")
        if high > MAX_LABELS:
            values = arr[arr != 0]
            n_values = np.count_nonzero(np.bincount(np.rint(values).astype(np.int64)))
            if n_values > MAX_LABELS:
                raise InputError(f"the {what} holds {n_values} different values, no mask or "
                                 f"label map does: is it a scan?")


def mask_volume_ml(mask):
    """Volume (mL) of the non-zero voxels of ``mask`` (checked by :func:`check_mask`).

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> m = sitk.GetImageFromArray(np.ones((10, 10, 10), np.uint8))
    >>> m.SetSpacing((2.0, 2.0, 2.5))
    >>> mask_volume_ml(m)
    10.0
    """
    mask = as_image(mask, "mask")
    check_mask(mask)
    return int(np.count_nonzero(_array(mask))) * voxel_volume_ml(mask)


def label_volumes_ml(label_map, within=None):
    """Volume (mL) of each non-zero label, as {"label": mL}.

    Parameters
    ----------
    label_map : SimpleITK.Image
        Integer labels (e.g. Couinaud segments 1-8).
    within : SimpleITK.Image, optional
        Count only voxels where this mask is non-zero.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> lab = sitk.GetImageFromArray(np.array([[[1, 1, 2, 0]]], np.uint8))
    >>> label_volumes_ml(lab)
    {'1': 0.002, '2': 0.001}
    """
    label_map = as_image(label_map, "label map")
    check_mask(label_map, "label map")
    arr = np.asarray(_array(label_map)).ravel()
    if within is not None:
        within = as_image(within, "mask")
        check_mask(within, "mask")
        _check_grid(within, label_map, "mask", "the label map")
        arr = arr[np.asarray(_array(within)).ravel() != 0]
    arr = arr[arr != 0]
    if arr.dtype.kind == "f":
        arr = np.rint(arr)  # whole numbers stored as float (0.99999 for 1): never truncated
    arr = arr.astype(np.int64)
    counts = np.bincount(arr[arr > 0]) if np.any(arr > 0) else np.zeros(1, np.int64)
    v = voxel_volume_ml(label_map)
    return {str(lab): int(n) * v for lab, n in enumerate(counts) if lab > 0 and n > 0}


COUINAUD_SEGMENTS = (1, 2, 3, 4, 5, 6, 7, 8)


def segment_map_warnings(label_ml, unlabelled_ml, absent=True):
    """What a Couinaud map (labels 1-8) gets wrong about a liver mask, as sentences.

    Liver without a label, labels other than 1-8 (a map numbered 0-7 or
    1-9, or of other organs) and, with ``absent``, segments with no voxel in
    the liver. ``label_ml`` gives the volume (mL) of each non-zero label
    inside the liver, as :func:`label_volumes_ml` does; ``unlabelled_ml`` the
    liver's volume with label 0.

    Examples
    --------
    >>> # A map numbered 0-7: segment 1 is called 0, and there is no 8.
    >>> for w in segment_map_warnings({str(k): 9.5 for k in range(1, 8)}, unlabelled_ml=9.5):
    ...     print(w)
    9.5 mL of the liver has no segment label: it is in no segment (nor in a remnant of segments).
    the segment map has no voxel of segment(s) 8 inside the liver.
    """
    present = {int(k) for k, ml in label_ml.items() if ml > 0}
    warnings = []
    if unlabelled_ml > 0:
        warnings.append(f"{unlabelled_ml:.1f} mL of the liver has no segment label: it is in "
                        f"no segment (nor in a remnant of segments).")
    missing = [s for s in COUINAUD_SEGMENTS if s not in present]
    if absent and missing and present:
        warnings.append(f"the segment map has no voxel of segment(s) "
                        f"{', '.join(map(str, missing))} inside the liver.")
    other = sorted(present - set(COUINAUD_SEGMENTS))
    if other:
        warnings.append(f"the segment map holds labels {other} besides Couinaud 1-8 (is it "
                        f"numbered 0-7 or 1-9?): they are no segment (nor in a remnant).")
    return warnings


# The patient's side at the low and the high end of each LPS axis (x, y, z).
_LPS_ENDS = (("right", "left"), ("anterior", "posterior"), ("inferior", "superior"))


def _edges_touched(mask):
    """(SimpleITK index axis, 0 or -1) of each side of the field of view ``mask`` reaches."""
    arr = _array(mask)
    return [(axis, index) for axis in range(3) for index in (0, -1)
            if np.any(np.take(arr, index, axis=2 - axis))]


# CT scanners write a constant below air (-2048, -3024 HU) outside the circle they
# reconstruct; air itself measures about -1000.
SCAN_CIRCLE_PADDING_BELOW_HU = -1024.0


def scan_circle_warnings(mask, image, what="liver"):
    """A warning when ``mask`` touches the padding outside a CT's reconstructed circle.

    The array's edges are :func:`field_of_view_warnings`'s; inside them, a
    scanner reconstructs a circle and pads the corners with a constant below
    air. A patient wider than that circle is cut by it: a liver reaching it
    had been measured 8 % too small without a word. The padding is the image's
    lowest value when that lies below ``SCAN_CIRCLE_PADDING_BELOW_HU`` and
    fills at least 1 % of the image (noise in air reaches below -1024 in a
    few voxels only); ``mask`` is on ``image``'s grid.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> ct = np.full((4, 20, 20), -1000, np.int16); ct[:, :, :3] = -3024
    >>> a = np.zeros(ct.shape, np.uint8); a[1:3, 5:10, 3:9] = 1
    >>> scan_circle_warnings(sitk.GetImageFromArray(a), sitk.GetImageFromArray(ct))[0][:73]
    "the liver touches the edge of the scan's reconstructed circle in 2 slices"
    >>> a[:, :, 3] = 0
    >>> scan_circle_warnings(sitk.GetImageFromArray(a), sitk.GetImageFromArray(ct))
    []
    """
    from scipy import ndimage as ndi

    m = np.asarray(_array(mask)) != 0
    arr = sitk.GetArrayViewFromImage(image)
    if not m.any() or arr.shape != m.shape:
        return []
    low = float(arr.min())
    if low >= SCAN_CIRCLE_PADDING_BELOW_HU:
        return []
    if np.count_nonzero(arr == low) < 0.01 * arr.size:
        return []
    # Within the mask's box, one voxel wider in-plane: a 512 x 512 x 500 scan is not
    # dilated whole. In-plane neighbours: the circle is the same in every slice.
    z, y, x = (np.flatnonzero(m.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    box = (slice(z[0], z[-1] + 1), slice(max(y[0] - 1, 0), y[-1] + 2),
           slice(max(x[0] - 1, 0), x[-1] + 2))
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = True
    touching = ndi.binary_dilation(arr[box] == low, in_plane) & m[box]
    if not touching.any():
        return []
    slices = int(np.count_nonzero(touching.any(axis=(1, 2))))
    return [f"the {what} touches the edge of the scan's reconstructed circle in {slices} "
            f"slice{'s' if slices > 1 else ''} (outside it the scanner wrote {low:g}, no "
            f"data): part of it may lie outside the scan, so its volume may be too small."]


def field_of_view_warnings(mask, what="liver"):
    """Warnings when ``mask`` touches an edge of the field of view, named by the patient's
    side (superior, inferior, right, left, anterior, posterior), however the scan is stored.

    A structure cut by the field of view would be measured too small without
    anyone noticing; this names the edges it touches.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((5, 6, 6), np.uint8); a[0:3, 2:4, 2:4] = 1
    >>> field_of_view_warnings(sitk.GetImageFromArray(a))
    ['the liver touches the inferior end of the field of view: it may be cut there, so its volume may be too small.']
    """
    import itertools

    touched = _edges_touched(mask)
    direction = np.abs(np.asarray(mask.GetDirection(), float).reshape(3, 3))
    # Each index axis names one patient axis, one to one: the assignment nearest the
    # direction matrix (an oblique scan's largest components may share a patient axis).
    lps_of = max(itertools.permutations(range(3)),
                 key=lambda p: sum(direction[p[axis], axis] for axis in range(3)))
    signed = np.asarray(mask.GetDirection(), float).reshape(3, 3)
    along, across = [], []
    for axis in range(3):  # SimpleITK's index axes; numpy's are reversed
        lps = lps_of[axis]
        low, high = _LPS_ENDS[lps] if signed[lps, axis] > 0 else _LPS_ENDS[lps][::-1]
        for side, index in ((low, 0), (high, -1)):
            if (axis, index) in touched:
                (along if lps == 2 else across).append(side)
    out = []
    for side in sorted(along, key=("superior", "inferior").index):
        out.append(f"the {what} touches the {side} end of the field of view: it may be cut "
                   f"there, so its volume may be too small.")
    if across:
        edges = "edge" if len(across) == 1 else "edges"
        out.append(f"the {what} touches the {' and '.join(across)} {edges} of the field of "
                   f"view: part of it may lie outside the scan, so its volume may be too small.")
    return out


def _check_grid(mask, reference, what, reference_what="the liver mask"):
    if not same_grid(mask, reference):
        # (reference_what: label_volumes_ml's reference is a label map, not a liver mask)
        raise GeometryError(
            f"the {what} ({grid_description(mask)}) is not on {reference_what}'s grid "
            f"({grid_description(reference)}); load it with load_mask(..., reference=scan) "
            f"to resample it knowingly."
        )


# Measured functional liver / TELV beyond which the body size given is doubted: TELV
# formulas err by about 15-25 % on a normal liver, a liver full of tumour (without a
# tumour mask) or a regenerating one lies further off, but not 2.5 times (a child's
# height and weight typed for an adult's liver: sFLR over 100 %). A liver far below its
# TELV is not said here: cut by the field of view, cirrhotic or a test's box, it is small
# for reasons said elsewhere or none of the body size's.
TELV_RATIO_MAX = 2.5


def _telv_plausibility(functional_ml, telv_ml):
    """A warning when the liver measured is far larger than the TELV of the body size."""
    if not telv_ml or telv_ml <= 0 or functional_ml / telv_ml <= TELV_RATIO_MAX:
        return []
    return [f"the liver measured (FLV {functional_ml:.0f} mL) is {functional_ml / telv_ml:.1f} "
            f"times the total liver volume estimated from height and weight (TELV "
            f"{telv_ml:.0f} mL): check the height and weight (cm, kg) and the liver mask; "
            f"sFLR rests on them."]


def _warning_list(extra_warnings):
    # a lone sentence is one warning: list("abc") would split it into letters
    if isinstance(extra_warnings, str):
        return [extra_warnings]
    warnings = list(extra_warnings or ())
    if not all(isinstance(w, str) for w in warnings):
        raise InputError("extra_warnings must be text or a list of text.")
    return warnings


def measure(liver, *, tumor=None, flr=None, segments=None, patient=None, options=None,
            scan_date=None, extra_warnings=(), extra_methods=None):
    """Measure liver, tumour and FLR volumes and the clinical ratios.

    Parameters
    ----------
    liver : SimpleITK.Image or Mask
        Liver mask (non-zero inside) on the scan's grid.
    tumor : SimpleITK.Image or Mask, optional
        Tumour mask on the same grid. The total liver is the union of liver
        and tumour masks, so a liver mask that leaves tumours out (parenchyma
        only) and one that includes them give the same total.
    flr : SimpleITK.Image or Mask, optional
        Future liver remnant. Only its part inside the liver counts, and
        tumour inside it is excluded; what lies outside the liver is reported.
    segments : SimpleITK.Image or Mask, optional
        Couinaud label map; per-label volumes inside the liver go to
        ``segments_ml``.
    patient : Patient, optional
        Height and weight (for BSA, TELV, sFLR) and liver condition.
    options : VolumetryOptions, optional
    scan_date : datetime.date or str, optional
    extra_warnings : str or sequence of str
        Warnings from earlier steps (loading, resampling), carried into the result
        (one text is one warning).
    extra_methods : dict, optional
        Method facts from earlier steps (e.g. how the liver was segmented).

    Returns
    -------
    Measurement

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((20, 20, 20), np.uint8); a[2:18, 2:18, 2:18] = 1
    >>> liver = sitk.GetImageFromArray(a); liver.SetSpacing((5.0, 5.0, 5.0))
    >>> f = a.copy(); f[:, :, 10:] = 0
    >>> flr = sitk.GetImageFromArray(f); flr.CopyInformation(liver)
    >>> m = measure(liver, flr=flr, patient=Patient(170, 70))
    >>> m.total_liver_ml, m.flr_ml, round(m.sflr_pct, 2)
    (512.0, 256.0, 16.96)
    """
    patient = as_options(patient, Patient, "patient")
    options = as_options(options, VolumetryOptions, "volumetry options")
    if liver is None:
        # The one mask measure needs: None had passed the optional masks' "None: not given"
        # and failed deep in SimpleITK (an AttributeError).
        raise InputError("measure needs the liver mask (the first argument), not None.")
    liver, tumor, flr, segments = (
        None if image is None else as_image(image, what)
        for image, what in ((liver, "liver mask"), (tumor, "tumour mask"), (flr, "FLR mask"),
                            (segments, "segment map")))
    for image, what in ((liver, "liver mask"), (tumor, "tumour mask"), (flr, "FLR mask"),
                        (segments, "segment map")):
        if image is not None:
            check_mask(image, what)
    warnings = _warning_list(extra_warnings)
    if extra_methods is not None and not isinstance(extra_methods, dict):
        raise InputError(f"extra_methods must be a dict of method facts, not "
                         f"{type(extra_methods).__name__}.")
    liver_arr = np.asarray(_array(liver)) != 0
    if not liver_arr.any():
        raise InputError("the liver mask is empty: it has no non-zero voxel.")
    v_ml = voxel_volume_ml(liver)

    tumor_ml = None
    if tumor is not None:
        _check_grid(tumor, liver, "tumour mask")
        tumor_arr = np.asarray(_array(tumor)) != 0
        outside = np.count_nonzero(tumor_arr & ~liver_arr)
        if outside:
            warnings.append(
                f"{outside * v_ml:.1f} mL of the tumour mask lies outside the liver mask and was "
                f"added to the total liver volume (total liver = liver mask + tumour mask; as "
                f"meant when the liver mask holds the parenchyma only)."
            )
            liver_arr = liver_arr | tumor_arr
        tumor_ml = int(np.count_nonzero(tumor_arr)) * v_ml
    else:
        tumor_arr = None

    total_ml = int(np.count_nonzero(liver_arr)) * v_ml
    functional_ml = total_ml - (tumor_ml or 0.0)
    if tumor_arr is not None and not np.any(liver_arr & ~tumor_arr):
        # Most often a liver-and-tumour label map given whole as the tumour too: FLV 0 mL
        # and no word had followed.
        raise InputError(
            f"the tumour mask covers the whole liver ({tumor_ml:.1f} mL), leaving no "
            f"functional liver: give the tumour's own label (e.g. labels.nii.gz:2, or "
            f"load_mask(\"labels.nii.gz:2\") in Python), not the whole liver's file.")
    whole_liver = sitk.GetImageFromArray(liver_arr.view(np.uint8))
    whole_liver.CopyInformation(liver)
    warnings += field_of_view_warnings(whole_liver)

    flr_ml = resected_ml = outside_ml = None
    if flr is not None:
        _check_grid(flr, liver, "FLR mask")
        flr_arr = np.asarray(_array(flr)) != 0
        if not flr_arr.any():
            raise InputError("the FLR mask is empty: it has no non-zero voxel.")
        outside_n = int(np.count_nonzero(flr_arr & ~liver_arr))
        outside_ml = outside_n * v_ml
        if outside_n:
            pct = 100.0 * outside_n / np.count_nonzero(flr_arr)
            warnings.append(
                f"{outside_ml:.{1 if outside_ml >= 0.1 else 3}f} mL ({pct:.1f} %) of the FLR mask "
                f"lies outside the liver and "
                f"was not counted."
            )
        remnant = flr_arr & liver_arr
        # Liver outside the remnant, with its tumour; tumour the plan leaves in the remnant
        # is not resected (nor counted in the FLR).
        resected_ml = total_ml - int(np.count_nonzero(remnant)) * v_ml
        if tumor_arr is not None:
            remnant &= ~tumor_arr
        flr_ml = int(np.count_nonzero(remnant)) * v_ml
        if flr_ml == 0:
            raise InputError(
                "the FLR mask holds only tumour: the remnant is empty." if (flr_arr & liver_arr).any()
                else "the FLR mask does not overlap the liver mask: the remnant is empty.")

    segments_ml = None
    if segments is not None:
        _check_grid(segments, liver, "segment map")
        segments_ml = label_volumes_ml(segments, within=whole_liver)
        labelled = int(round(sum(segments_ml.values()) / v_ml))  # voxels, from the counts
        unlabelled_ml = (int(np.count_nonzero(liver_arr)) - labelled) * v_ml
        warnings += segment_map_warnings(segments_ml, unlabelled_ml)

    bsa = telv = sflr = bw = None
    if patient.height_cm is not None and patient.weight_kg is not None:
        bsa_formula = clinical.telv_bsa_formula(options.telv_formula, options.bsa_formula)
        # Said whether the BSA formula was chosen or the default: the options name one
        # formula, the numbers use another.
        if bsa_formula != options.bsa_formula:  # (VolumetryOptions holds canonical names)
            warnings.append(f"the {options.telv_formula} TELV formula was derived with the "
                            f"{bsa_formula} BSA, which is used instead of "
                            f"{options.bsa_formula}.")
        bsa = clinical.bsa_m2(patient.height_cm, patient.weight_kg, bsa_formula)
        telv = clinical.telv_ml(patient.height_cm, patient.weight_kg, options.telv_formula,
                                options.bsa_formula)
        if flr_ml is not None:
            sflr = clinical.sflr_pct(flr_ml, telv)
        warnings += _telv_plausibility(functional_ml, telv)
    elif flr_ml is not None and patient.weight_kg is not None:
        warnings.append("no height: BSA, TELV and sFLR are not computed (FLR/body weight is, "
                        "from the weight).")
    elif flr_ml is not None and patient.height_cm is not None:
        warnings.append("no weight: BSA, TELV, sFLR and FLR/body weight are not computed (no "
                        "formula takes a height alone).")
    elif flr_ml is not None:
        warnings.append("no height and weight: BSA, TELV, sFLR and FLR/body weight are not computed.")
    if flr_ml is not None and patient.weight_kg is not None:
        bw = clinical.flr_bw_ratio_pct(flr_ml, patient.weight_kg)
    measured = None
    if flr_ml is not None and functional_ml > 0:
        measured = clinical.measured_flr_pct(flr_ml, functional_ml)
        if clinical.after_resection(measured):
            warnings.append(
                f"the FLR holds {measured:.0f} % of the functional liver, which leaves no "
                f"liver to resect: check that the FLR mask is the remnant and not the whole "
                f"liver (or that the scan was taken before the resection)."
            )
    threshold = clinical.sflr_threshold_pct(patient.liver_condition)

    methods = {
        "volume": "voxel count x voxel volume on the scan grid",
        "total_liver": "liver mask united with tumour mask; intra-hepatic vessels included",
        "tumor_excluded_from_flr": tumor is not None,
        # CLINICAL.md: every result records whether tumours were excluded. Without a
        # tumour mask FLV is the whole liver, and FLR/FLV (Leung's ratio) counts any tumour.
        "tumor_excluded_from_functional_liver": tumor is not None,
        "functional_liver": ("total liver minus the tumour mask" if tumor is not None else
                             "total liver: no tumour mask was given, so tumours are not "
                             "excluded"),
        "gallbladder_ivc_extrahepatic_portal_vein": "excluded only if the liver mask excludes them",
        "bsa_formula": clinical.telv_bsa_formula(options.telv_formula, options.bsa_formula)
        if bsa is not None else None,
        "telv_formula": options.telv_formula if telv is not None else None,
        "telv_citation": clinical.TELV_FORMULAS[options.telv_formula][2]
        if telv is not None else None,
        "sflr_threshold_source": f"{patient.liver_condition} liver: >= {threshold:g} %",
    }
    methods.update(extra_methods or {})
    # Checked now, not when a follow-up is compared with this measurement months later.
    scan_date = parse_date(scan_date, "scan date")
    scan_date = None if scan_date is None else scan_date.isoformat()
    return Measurement(
        total_liver_ml=total_ml, tumor_ml=tumor_ml, functional_liver_ml=functional_ml,
        flr_ml=flr_ml, resected_ml=resected_ml, bsa_m2=bsa, telv_ml=telv, sflr_pct=sflr,
        measured_flr_pct=measured, flr_bw_ratio_pct=bw, sflr_threshold_pct=threshold,
        sflr_adequate=None if sflr is None else clinical.meets(sflr, threshold),
        flr_bw_adequate=None if bw is None else clinical.flr_bw_adequate(bw),
        flr_outside_liver_ml=outside_ml, segments_ml=segments_ml, scan_date=scan_date,
        height_cm=patient.height_cm, weight_kg=patient.weight_kg,
        liver_condition=patient.liver_condition,
        # The same fact may come from two steps (the segmentation and this check of the
        # field of view): say it once.
        warnings=tuple(dict.fromkeys(warnings)), methods=methods,
    )
