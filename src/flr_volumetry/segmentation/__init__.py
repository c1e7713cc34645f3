"""Liver and tumour segmentation on CT and MRI.

The default backend is an image-analysis pipeline (SimpleITK, scipy,
scikit-image) that needs no model weights: automatic on contrast-enhanced
CT, seeded (one click inside the liver, optional exclude points) on CT and
MRI. TotalSegmentator is used instead when asked for and installed.

Examples
--------
>>> from flr_volumetry.segmentation import SegmentationOptions
>>> SegmentationOptions(backend="totalsegmentator").backend
'totalsegmentator'
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .._options import as_options
from ..io import as_image
from ..io._images import scalar_volume
from ..volumetry import (_edges_touched, field_of_view_warnings, mask_volume_ml,
                         scan_circle_warnings)
from ._classic import AIR_HU, MR_BODY_FRACTION, check_ct_intensities
from ._common import (ADULT_LIVER_ML, PART_WARN_ML, PARTS_SAID, SegmentationOptions,
                      SegmentationResult, check_modality, check_points, separate_parts_warning)
from ._common import parts_ml as parts_of
from ._totalseg import liver_from_totalsegmentator_output

__all__ = [
    "SegmentationOptions",
    "SegmentationResult",
    "check_ct_intensities",
    "couinaud_segments",
    "liver_from_totalsegmentator_output",
    "segment_liver",
]


# A mask whose centre lies this far (mm) on the patient's left of the body's centre is not
# where a liver lies (its centre is some 50 mm right of the midline).
LEFT_OF_MIDLINE_WARN_MM = 20.0


def _plausibility_warnings(image, liver, volume_ml, seeds, modality, cut_by_fov):
    """What says that a mask may not be the liver: its volume, seeds it left out, its side.

    A seed in the spleen, a kidney or a muscle grows that organ; nothing in the growth
    knows. These checks cannot prove a mask is the liver, only catch what it cannot be.
    """
    warnings = []
    # Cut by the field of view, a seeded mask is small for a reason its own warning gives;
    # it is never too large for that reason.
    too_small = volume_ml < ADULT_LIVER_ML[0] and not (seeds and cut_by_fov)
    if too_small or volume_ml > ADULT_LIVER_ML[1]:
        warnings.append(
            f"the {'seeded' if seeds else 'automatic'} liver volume {volume_ml:.0f} mL is "
            f"outside the adult range {ADULT_LIVER_ML[0]:.0f}-{ADULT_LIVER_ML[1]:.0f} mL: check "
            + ("that the seeds lie in the liver, and the mask, " if seeds else "the mask ")
            + "before using it."
        )
    arr = sitk.GetArrayViewFromImage(liver)
    for seed in seeds:
        if not arr[seed[2], seed[1], seed[0]]:
            grown = ("did not join the liver grown from the other seeds" if len(seeds) > 1
                     else "differs from the mask grown around it")
            warnings.append(
                f"seed {','.join(map(str, seed))} lies outside the mask: the tissue there "
                f"{grown} (another organ, or a vessel or lesion); check it."
            )
    warnings += _extent_warnings(liver, arr, bool(seeds))

    left_mm = _left_of_body_centre_mm(image, liver, arr, modality)
    if left_mm is not None and left_mm > LEFT_OF_MIDLINE_WARN_MM:
        warnings.append(
            f"the mask's centre lies {left_mm:.0f} mm on the patient's left of the body's "
            f"centre, where the spleen and stomach lie, not the liver (unless situs inversus, "
            f"or a left remnant after a right hepatectomy): check "
            + ("the seeds, and " if seeds else "")
            + "that the scan's left-right orientation is right."
        )
    return warnings


# Livers rarely span more than this along the patient's axes (the shared livers: 152-261
# mm; large normal livers reach ~250 mm across, ~200 mm head to feet). A seed in the back
# muscles had grown a 390 mm long 'liver' of 1.8 L, said in no warning; so had a header
# giving 5 mm slices for 2.5 mm ones (315 mm, 4.3 L), and a seed in the real MR's body wall
# a 3.9 L ring around the abdomen (319 mm across), said only to touch the field of view.
# A very large liver (polycystic, tumour-laden) passes it: the warning says so.
LIVER_MAX_EXTENT_MM = 300.0


def _extent_warnings(liver, arr, seeded):
    """Warn of a mask longer than any liver along one of the patient's axes."""
    arr = np.asarray(arr, bool)
    rows = arr.any(axis=2)
    if not rows.any():
        return []
    # A linear function (a physical coordinate) is extreme over a row of voxels at the
    # row's first or last voxel: those two per row suffice (all voxels: 0.5 s on 512^2).
    z, y = np.nonzero(rows)
    first = arr.argmax(axis=2)[z, y]
    last = arr.shape[2] - 1 - arr[:, :, ::-1].argmax(axis=2)[z, y]
    index = np.stack([np.concatenate([first, last]), np.tile(y, 2), np.tile(z, 2)],
                     axis=1).astype(float)
    direction = np.array(liver.GetDirection(), float).reshape(3, 3)
    physical = (index * np.array(liver.GetSpacing(), float)) @ direction.T
    extent = physical.max(axis=0) - physical.min(axis=0)  # (L-R, P-A, I-S) in mm
    axis = int(np.argmax(extent))
    if extent[axis] <= LIVER_MAX_EXTENT_MM:
        return []
    name = ("from right to left", "from front to back", "from head to feet")[axis]
    return [f"the mask spans {extent[axis]:.0f} mm {name}, more than livers usually do (up "
            f"to about {LIVER_MAX_EXTENT_MM:.0f} mm): unless this liver is very large, "
            + ("a seed may lie in a muscle or another organ, " if seeded else "the mask may "
               "hold other organs or muscle, ")
            + "or the header's voxel size is wrong; check it before using it."]


# A liver fills at most about a third of its own bounding box (0.24-0.34 for the livers of
# the shared scans and of the phantom), so a mask filling more than half the field of view
# is no liver, even on a scan cropped to the liver: the growth met no boundary (noise
# around one value, or no contrast between the liver and its surroundings).
MAX_FIELD_OF_VIEW_FRACTION = 0.5
# The coarse grid is 3 mm: a thinner scan is a few of its voxels thick, and no liver.
MIN_EXTENT_MM = 20.0


# A transection (ALPPS stage 1) leaves its two sides a few mm apart; an organ a seed was
# put in by mistake (the spleen) lies farther from the liver, as a rule.
SEPARATE_PART_MAX_GAP_MM = 15.0


def _gap_mm(whole, part, reference):
    """The shortest distance (mm) from the mask ``whole`` to the mask ``part``."""
    from scipy import ndimage as ndi

    spacing = np.asarray(reference.GetSpacing()[::-1], float)
    return float(ndi.distance_transform_edt(~whole, sampling=spacing)[part].min())


def _same_tissue(methods, part_methods, modality):
    """Whether a part grown on its own has the liver's CT level (its intensity mode inside
    the liver's window): both sides of a transection are one organ, enhanced alike; a
    seed put in the stomach wall or a muscle beside the liver is not. (MR levels drift with
    the coil's field across one liver: not compared.)"""
    if modality != "ct":
        return True
    window = (methods.get("parameters") or {}).get("intensity_window")
    mode = (part_methods.get("parameters") or {}).get("liver_intensity_mode")
    return window is None or mode is None or window[0] <= mode <= window[1]


def _separate_parts(image, modality, seeds, exclude, options, liver, warnings, methods):
    """The liver united with the parts grown from seeds the first growth left out.

    After ALPPS stage 1 (or a resection) the transection separates the remnant from the
    rest: no tissue of the liver's intensity joins them, so one growth keeps one part.
    A user who clicks in each part means both; each left-out seed group is grown on its
    own and added when it lies within ``SEPARATE_PART_MAX_GAP_MM`` of the rest (a seed in
    the spleen, farther off, is left out and said, as before).
    """
    from ._pipeline import segment_classic

    whole = sitk.GetArrayFromImage(liver) > 0
    outside = [s for s in seeds if not whole[s[2], s[1], s[0]]]
    if not outside:
        return liver, warnings
    voxel_ml = float(np.prod(liver.GetSpacing())) / 1000.0
    # The first growth's parts (it may hold several; its whole when none is large).
    parts_ml = parts_of(whole, voxel_ml) or [np.count_nonzero(whole) * voxel_ml]
    united_any = False
    while outside:
        try:
            part_img, _, _, part_methods = segment_classic(image, modality, outside, exclude,
                                                           options)
        except InputError:
            break  # the seeds left out are said below, as before
        part = sitk.GetArrayFromImage(part_img) > 0
        grown = [s for s in outside if part[s[2], s[1], s[0]]]
        if (not grown or _gap_mm(whole, part, liver) > SEPARATE_PART_MAX_GAP_MM
                or not _same_tissue(methods, part_methods, modality)):
            break  # a seed in another organ (the spleen, the stomach): not united
        added_ml = np.count_nonzero(part & ~whole) * voxel_ml  # each growth's own
        if added_ml >= PART_WARN_ML:
            parts_ml.append(added_ml)
        else:
            parts_ml[0] += added_ml  # a crumb, or a part the others nearly held
        whole |= part
        united_any = True
        outside = [s for s in outside if not whole[s[2], s[1], s[0]]]
    if not united_any:
        return liver, warnings
    united = sitk.GetImageFromArray(whole.astype(np.uint8))
    united.CopyInformation(liver)
    if len(parts_ml) < 2:
        return united, warnings
    methods["separate_parts"] = len(parts_ml)
    # One warning for the parts: the pipeline's, of the parts its growth held, is replaced.
    return united, [w for w in warnings if PARTS_SAID not in w] + [
        separate_parts_warning(sorted(parts_ml, reverse=True), seeded=True)]


def _left_of_body_centre_mm(image, liver, liver_arr, modality):
    """How far (mm) the mask's centre lies on the patient's left (+) of the body's centre,
    along the patient's left-right axis; None when the body cannot be told from air."""
    # A coarse copy is enough for a centre, and 16x cheaper on a thin-slice CT.
    small = sitk.Shrink(image, [max(1, s // 128) for s in image.GetSize()[:2]] + [1])
    values = sitk.GetArrayViewFromImage(small)
    # The thresholds of the pipeline's own body masks (without their clean-up: a centre).
    if modality == "ct":
        body = values > AIR_HU
    else:
        body = values > MR_BODY_FRACTION * float(np.percentile(values, 99))
    if not body.any() or not liver_arr.any():
        return None

    def centre_x_mm(ref, mask):
        mask = np.asarray(mask, dtype=bool)
        # Mean index along each axis from that axis' profile: three cheap sums, where
        # scipy's center_of_mass makes a float copy of the whole volume.
        zyx = [float(np.dot(np.arange(n), np.count_nonzero(mask, axis=tuple(
               a for a in range(3) if a != axis))) / np.count_nonzero(mask))
               for axis, n in enumerate(mask.shape)]
        return ref.TransformContinuousIndexToPhysicalPoint(zyx[::-1])[0]

    # LPS physical x runs to the patient's left, however the scan is stored.
    return centre_x_mm(liver, liver_arr) - centre_x_mm(small, body)


def _check_exclude_away_from_seeds(image, seeds, exclude):
    """Refuse an exclude point whose ball overlaps a seed's: the seed is then cut out of
    its own region (one voxel apart: a 299 mL mask beside the seed, exit 0, said only to
    have left the seed out)."""
    from ._pipeline import POINT_RADIUS_MM

    for e in exclude:
        pe = np.array(image.TransformIndexToPhysicalPoint([int(v) for v in e]))
        for s in seeds:
            ps = np.array(image.TransformIndexToPhysicalPoint([int(v) for v in s]))
            gap_mm = float(np.linalg.norm(pe - ps))
            if gap_mm < 2 * POINT_RADIUS_MM:
                raise InputError(
                    f"the exclude point {','.join(map(str, e))} lies {gap_mm:.1f} mm from the "
                    f"seed {','.join(map(str, s))}, within the {POINT_RADIUS_MM:g} mm each "
                    f"keeps around it: put exclude points outside the liver, at least "
                    f"{2 * POINT_RADIUS_MM:g} mm from the seeds."
                )


def _check_image(image):
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"the image must be a 3D scalar volume; it is {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)."
        )
    if min(image.GetSize()) < 3:
        raise InputError(f"the image ({' x '.join(map(str, image.GetSize()))} voxels) is too "
                         f"small to segment a liver.")
    extent_mm = [n * s for n, s in zip(image.GetSize(), image.GetSpacing())]
    thin_axis = int(np.argmin(extent_mm))
    if extent_mm[thin_axis] < MIN_EXTENT_MM:
        # A slab of a few slices (a DICOM export of 3 slices) had been grown on a coarse
        # grid one voxel thick and refused as "smaller than 50 mL (0 mL)", whatever the seed.
        raise InputError(
            f"the scan covers only {extent_mm[thin_axis]:.3g} mm along its {'ijk'[thin_axis]} "
            f"axis ({image.GetSize()[thin_axis]} voxels of {image.GetSpacing()[thin_axis]:.3g} "
            f"mm): "
            f"too thin to segment a liver, which spans 100 mm or more; segment a scan that "
            f"covers the liver, or measure this slab's own mask with --liver."
        )
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    if stats.GetMinimum() == stats.GetMaximum():
        # A blank image has no liver to find; seeded on MR it had grown into the whole field
        # of view (4.4 L written, exit 0), and on CT it was called "an MR scan?".
        raise InputError(
            f"every voxel of the image has the same value ({stats.GetMinimum():g}): there is "
            f"nothing to segment in it."
        )


def couinaud_segments(image, modality="ct"):
    """Couinaud segments 1-8 of the liver from TotalSegmentator's ``liver_segments`` task
    (``liver_segments_mr`` for MR), when it is installed with its weights.

    The embedded pipeline has no segment model: without TotalSegmentator, segments
    come from landmarks or a cut surface (:mod:`flr_volumetry.remnant`).

    Parameters
    ----------
    image : SimpleITK.Image or Scan
    modality : {'ct', 'mr'}

    Returns
    -------
    segments : SimpleITK.Image
        Label map on the input grid (1-8: segments I-VIII, 0 elsewhere).
    warnings : list of str

    Raises
    ------
    InputError
        TotalSegmentator or the task's weights missing, or its run failing, in one
        sentence; MR intensities passed as CT.
    """
    from ._totalseg import segments_from_totalsegmentator

    modality = check_modality(modality)
    image = scalar_volume(as_image(image, "scan"), "the scan")
    _check_image(image)
    if modality == "ct":
        _refuse_mr_for_totalsegmentator_ct(image)
    return segments_from_totalsegmentator(image, modality)


def _refuse_mr_for_totalsegmentator_ct(image):
    """TotalSegmentator's CT tasks run on MR intensities too and return some "liver": the
    classic pipeline's check, before the long run, with this backend's advice."""
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    check_ct_intensities(np.array([stats.GetMinimum(), stats.GetMaximum()]),
                         advice="Use --modality mr (TotalSegmentator's MR task).")


def segment_liver(image, modality=None, seeds=None, exclude=None, options=None, *,
                  tumor_seeds=None):
    """Segment the liver (and CT tumour candidates) of one scan.

    Parameters
    ----------
    image : SimpleITK.Image or Scan
        The scan (CT in Hounsfield units, or MR), any orientation.
    modality : {'ct', 'mr'}, optional
        MR needs ``seeds`` with the classic backend. None: the header's modality
        of a :class:`~flr_volumetry.io.Scan` (as ``load_image`` returns), else CT.
    seeds : sequence of (i, j, k), optional
        Voxel indices inside the liver, in SimpleITK (x, y, z) order. Without
        seeds, CT is segmented automatically.
    exclude : sequence of (i, j, k), optional
        Voxel indices outside the liver that the region must not reach (e.g.
        in the stomach or heart where it leaked).
    options : SegmentationOptions, optional
    tumor_seeds : sequence of (i, j, k), optional
        Voxel indices inside lesions (classic backend): each lesion is grown
        from its click, added to the tumour mask and, when it bulges out of
        the liver surface, to the liver.

    Returns
    -------
    SegmentationResult
        Masks on the input grid, warnings and the methods used.

    Raises
    ------
    InputError
        No liver found, a seed outside the image or in air, MR intensities
        passed as CT, a missing TotalSegmentator.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.full((40, 60, 60), -1000, np.int16)
    >>> a[5:35, 5:55, 5:55] = 40                   # body: soft tissue
    >>> a[10:30, 15:45, 10:35] = 110               # liver
    >>> img = sitk.GetImageFromArray(a); img.SetSpacing((3.0, 3.0, 3.0))
    >>> r = segment_liver(img, seeds=[(20, 30, 20)])
    >>> found = sitk.GetArrayViewFromImage(r.liver) > 0
    >>> truth = a == 110
    >>> bool(2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.98)
    True
    >>> r.methods["backend"]
    'classic'
    """
    options = as_options(options, SegmentationOptions, "segmentation options")
    if modality is None and hasattr(image, "ct_or_mr"):
        # An MR DICOM series loaded with load_image had been segmented as CT (refused).
        modality = image.ct_or_mr
    modality = check_modality(modality)
    image = scalar_volume(as_image(image, "scan"), "the scan")
    _check_image(image)
    seeds = check_points(seeds, image, "seed")
    exclude = check_points(exclude, image, "exclude point")
    tumor_seeds = check_points(tumor_seeds, image, "tumour seed")
    both = sorted(set(seeds) & set(exclude))
    if both:
        raise InputError(
            f"the point {','.join(map(str, both[0]))} is both a seed and an exclude point; "
            f"seeds go inside the liver, exclude points outside it."
        )
    _check_exclude_away_from_seeds(image, seeds, exclude)
    tumor = None
    liver_seeds = seeds  # the seeds that stand for liver tissue (not a clicked lesion)
    if options.backend == "totalsegmentator":
        from ._totalseg import segment_totalsegmentator

        if seeds or exclude or tumor_seeds:
            raise InputError("seeds, exclude points and tumour seeds are for the classic "
                             "backend only.")
        if modality == "ct":
            _refuse_mr_for_totalsegmentator_ct(image)
        liver, warnings, methods = segment_totalsegmentator(image, modality, options)
    else:
        from ._pipeline import segment_classic

        liver, tumor, warnings, methods = segment_classic(image, modality, seeds, exclude,
                                                          options, tumor_seeds)
        in_lesion = {tuple(s) for s in methods.get("seeds_in_a_lesion", ())}
        liver_seeds = [s for s in seeds if tuple(s) not in in_lesion]
        liver, warnings = _separate_parts(image, modality, liver_seeds, exclude, options, liver,
                                          warnings, methods)
    methods = {**methods, "backend": options.backend}
    volume_ml = mask_volume_ml(liver)
    if volume_ml <= 0:
        raise InputError("no liver found: the segmentation is empty; give a --seed inside the "
                         "liver or check the modality.")
    filled = volume_ml / (float(np.prod(image.GetSize())) * float(np.prod(image.GetSpacing()))
                          / 1000.0)
    if filled > MAX_FIELD_OF_VIEW_FRACTION:
        # Had been written with exit 0, said only to touch the field of view's edges
        # ("its volume may be too small"): 4.2-4.4 L masks of noise images.
        raise InputError(
            f"no liver found: the {'region grown from the seeds' if seeds else 'segmentation'} "
            f"fills {100 * filled:.0f} % of the field of view ({volume_ml:.0f} mL), which no "
            f"liver does; the image shows no boundary around it (check that it is the scan "
            f"and the modality"
            + (", and that the seeds lie in the liver)." if seeds else ").")
        )
    sides = len(_edges_touched(liver)) if options.backend == "classic" else 0
    if volume_ml > ADULT_LIVER_ML[1] and sides >= 4:
        # A CT segmented as MR from a seed had grown through the body: 17.5 L written, exit
        # 0, with warnings only. A region growing larger than any adult liver and reaching
        # past the scan on four sides met no boundary. (No absolute limit: polycystic
        # livers pass 10 L.)
        raise InputError(
            f"no liver found: the {'region grown from the seeds' if seeds else 'segmentation'} "
            f"({volume_ml:.0f} mL, more than any adult liver, reaching {sides} of the 6 sides "
            f"of the field of view) grew through the body: check the modality"
            + (", and that the seeds lie in the liver." if seeds else ".")
        )
    warnings = list(warnings)
    cut_by_fov = field_of_view_warnings(liver, "liver") + scan_circle_warnings(liver, image)
    warnings += _plausibility_warnings(image, liver, volume_ml, liver_seeds, modality,
                                       cut_by_fov)
    warnings += cut_by_fov
    if tumor is not None and not np.any(sitk.GetArrayViewFromImage(tumor)):
        tumor = sitk.Image(tumor)  # empty but present: searched and none found
    return SegmentationResult(liver=liver, tumor=tumor, warnings=tuple(warnings),
                              methods=methods)
