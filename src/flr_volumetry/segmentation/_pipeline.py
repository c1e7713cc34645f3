"""The classic pipeline, end to end: from a scan to liver and tumour masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError
from ..volumetry import SCAN_CIRCLE_PADDING_BELOW_HU
from ._classic import (
    AIR_HU,
    MR_BODY_FRACTION,
    REFINE_SIGMA_MM,
    SOFT_TISSUE_HU,
    TEXTURE_MM,
    adaptive_candidates,
    as_float32,
    back_to_input_grid,
    bias_field,
    body_mask,
    check_ct_intensities,
    coarse_grid,
    correct_bias,
    diaphragm_height,
    dome_sample,
    fill_liver,
    find_tumors,
    grow,
    grow_lesion,
    intensity_model,
    lesion_level,
    local_sd,
    lung_mask,
    random_walker_boundary,
    refine,
    seed_ball,
    snap_to_edges,
    split_by_necks,
    surface_lesions,
    thickest_right_upper,
    to_index,
    to_lps,
    voxels_averaged,
)
from ._common import (
    ADULT_LIVER_ML,
    array,
    dilate_mm,
    distance_outside_mm,
    erode_mm,
    fill_holes_2d,
    largest_component,
    like,
    parts_ml as parts_of,
    robust_sigma,
    separate_parts_warning,
    spacing_zyx,
)

SEED_SAMPLE_RADIUS_MM = 15.0
# Smaller than any liver: a region grown from the seeds (or found) below it is refused.
MIN_LIVER_ML = 50.0
# How the automatic CT search found its sample when the scan shows a right lung base.
DOME_METHOD = "automatic (right lung dome sample)"
# Air in Hounsfield units; lower values are padding (as the field-of-view warning reads them).
LOWEST_HU = SCAN_CIRCLE_PADDING_BELOW_HU
POINT_RADIUS_MM = 4.0
CT_REACH_EXTRA_MM = 8.0
# MR: a two-pass region smaller than nearly every adult liver (about the 1st
# percentile) is regrown bias-adaptively.
MR_ADAPTIVE_BELOW_ML = 800.0
# A region below this (about the median adult liver) is regrown bias-adaptively too when
# at least MR_SMOOTH_CONTACT_FRACTION of what that adds meets it without an edge.
MR_ADAPTIVE_CHECK_BELOW_ML = 1500.0
MR_SMOOTH_CONTACT_FRACTION = 0.6
# A contact differing from the region beside it by more than this many standard deviations
# of the coarse grid's noise is an edge (see _cut_by_window).
MR_EDGE_NOISE_SDS = 2.0
# With a bias field, the full-resolution window's half width is at least this many times
# the coarse window's (the field, estimated from the interior, is least sure at the edge).
MR_BIAS_MIN_HALF = 1.5
# Tissue of the seeds' own cores that exclude points may cut off before the user is told.
EXCLUDE_CUT_WARN_ML = 5.0
# How far (mm) from the liver found a tumour seed may lie, and the lesion around it reach.
TUMOR_SEED_REACH_MM = 50.0
# Smoothed CT below this is fat: holes and pockets holding fat (hilum, fissures) stay out.
FAT_HU = -30.0
# Lesion tissue grown outside the liver found from one tumour seed that is said (mL): a
# lesion bulging from the surface, or a neighbouring organ clicked by mistake.
TUMOR_OUTSIDE_WARN_ML = 5.0
# A tumour seed's tissue closer to the liver's level than this many of its SDs, growing
# into more than this share of the liver, is parenchyma.
LESION_MIN_CONTRAST_SDS = 2.0
LESION_MAX_LIVER_SHARE = 0.1
# The liver's share of the body's volume in the scan, above which the tissue found is no liver:
# 0.04 on the real whole-abdomen CT, 0.14 on its crop to the liver plus 25 mm, 0.24 on its
# crop to the liver's own bounding box (all body), 0.16 on the partial CT; a head CT gave 0.76.
MAX_BODY_SHARE = 0.6


def _fmt(p):
    return ",".join(str(int(v)) for v in p)


def _seeded_lesions(tumor_seeds, image, img, crop, bounds, smooth, liver_crop, model, options,
                    warnings, modality):
    """The lesions grown from the tumour seeds, on the full-resolution crop.

    ``image`` is the input (the seeds' grid), ``img`` the same scan in LPS
    order, ``bounds`` the crop's (lo, hi) x,y,z indices in ``img``;
    ``model`` is the liver's (lo, hi, centre, sigma) there, of the image as it
    is (not bias-divided). Warnings go to ``warnings``. A CT seed in fat or air
    is refused (InputError).
    """
    lo, hi = bounds
    lesions = np.zeros(liver_crop.shape, bool)
    voxel_ml = float(np.prod(crop.GetSpacing())) / 1000.0
    # segment_classic has refused seeds farther than TUMOR_SEED_REACH_MM from the liver,
    # and the crop reaches that far around each seed: every seed lies on it.
    for s, sc in zip(tumor_seeds, to_index(tumor_seeds, image, crop)):
        level, _ = lesion_level(smooth, crop, sc)
        if modality == "ct" and level < FAT_HU:
            # The window around a click in fat takes in the fat around the liver, and the
            # 'lesion' touching it was added to the liver (2 L on a 0.7 L liver).
            raise InputError(
                f"tumour seed {_fmt(s)} lies in fat or air ({level:.0f} HU within 3 mm "
                f"of it), not in a lesion of the liver; place tumour seeds inside lesions."
            )
        lesion = grow_lesion(smooth, liver_crop, crop, sc, model[2], model[3])
        share = np.count_nonzero(lesion & liver_crop) / max(np.count_nonzero(liver_crop), 1)
        if (abs(level - model[2]) < LESION_MIN_CONTRAST_SDS * model[3]
                and share > LESION_MAX_LIVER_SHARE):
            # Grown against the liver's own level, a click in the real CT's parenchyma (49
            # HU in liver of 57 +- 8) had given a 342 mL 'tumour' and 77 mL more liver;
            # its lesions measure 2 to 4.5 SDs from the liver, and hold 2 % of it.
            unit = " HU" if modality == "ct" else ""
            warnings.append(
                f"tumour seed {_fmt(s)} lies in tissue close to the liver's own level "
                f"({_significant(level, 3):g}{unit} against {_significant(model[2], 3):g}"
                f"{unit}), and what grows from it takes in {100 * share:.0f} % of the liver: "
                f"no lesion was grown from it; place tumour seeds in lesions darker or "
                f"brighter than the liver."
            )
            continue
        if lesion.any() and options.edge_iterations > 0:
            # A lesion of low contrast (an arterial-phase HCC a few tens of HU above the
            # liver) shares its window with bright parenchyma and vessels around it: the
            # edge, not the window, says where it ends. No curvature term: it shrinks a
            # lesion a few voxels wide. The snapped lesion must still hold the click.
            snapped = snap_to_edges(lesion, crop, options.edge_iterations, curvature=0.0)
            if snapped[sc]:
                lesion = snapped
        if lesion.any() and _touches_crop_edge(lesion, lo, hi, img):
            warnings.append(
                f"the lesion grown from tumour seed {_fmt(s)} reaches the edge of the region "
                f"searched ({TUMOR_SEED_REACH_MM:g} mm around the seed and the liver): it may "
                f"be cut there; check it."
            )
        if not lesion.any():
            warnings.append(f"no lesion in or on the liver could be grown from tumour seed "
                            f"{_fmt(s)}; check that it lies inside a lesion.")
        outside_ml = float(np.count_nonzero(lesion & ~liver_crop)) * voxel_ml
        if outside_ml >= TUMOR_OUTSIDE_WARN_ML:
            # Nothing in the image tells a lesion bulging from the surface from a kidney,
            # bowel loop or stomach lying on the liver: the reader must look.
            warnings.append(
                f"the lesion grown from tumour seed {_fmt(s)} adds {outside_ml:.1f} mL outside "
                f"the liver found to the liver: check that it is a lesion bulging from the "
                f"liver's surface, not a neighbouring organ (kidney, bowel, stomach)."
            )
        lesions |= lesion
    return lesions


def _touches_crop_edge(mask, lo, hi, image):
    """Whether ``mask`` (on the crop lo..hi, x,y,z indices) touches a crop face that is
    not also the image's."""
    size = image.GetSize()
    for axis_xyz in range(3):
        ax = 2 - axis_xyz
        if lo[axis_xyz] > 0 and np.take(mask, 0, axis=ax).any():
            return True
        if hi[axis_xyz] < size[axis_xyz] - 1 and np.take(mask, -1, axis=ax).any():
            return True
    return False


def _mr_body(arr):
    """MR body: above a low fraction of the bright tissue level, largest part, holes filled."""
    hi = np.percentile(arr, 99)
    return fill_holes_2d(largest_component(arr > MR_BODY_FRACTION * hi))


@dataclass
class _Growth:
    """The liver grown on the coarse grid, and how it was grown (for the methods record)."""

    region: np.ndarray
    model: tuple  # (window low, window high, mode, sigma)
    method: str
    reach_mm: float | None
    notes: dict = field(default_factory=dict)  # what split_by_necks did with exclude points
    ct_second_pass: bool = False
    adaptive: bool = False


def segment_classic(image, modality, seeds, exclude, options, tumor_seeds=()):
    """Run the classic pipeline; returns (liver, tumor or None, warnings, methods).

    The steps, each its own function: where the liver may lie
    (:func:`_anatomy`), a sample of its tissue and the intensity model
    (:func:`_liver_sample`, :func:`_liver_model`), the liver grown on the
    coarse grid (:func:`_grow_liver`), then its boundary re-decided at full
    resolution, the lesions, and the masks put back on the input grid.
    """
    warnings = []
    img, code = to_lps(image)
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(img)
    if modality == "ct":
        check_ct_intensities(np.array([stats.GetMinimum(), stats.GetMaximum()]))
        if stats.GetMinimum() < LOWEST_HU:
            # Padding below air (-3024, or float32's lowest outside the reconstruction
            # circle) is air: the lowest had overflowed the texture's squares, and the
            # real partial CT had lost 8.5 % of its liver.
            img = sitk.Clamp(img, lowerBound=LOWEST_HU, upperBound=stats.GetMaximum())
    elif stats.GetMinimum() < -800.0:
        # The reverse mistake: the MR pipeline runs (as asked) but is the weaker one here.
        warnings.append(
            f"the scan holds values down to {stats.GetMinimum():.0f}, like the air of a CT in "
            f"Hounsfield units (MR has none below 0): if it is a CT, --modality ct segments it "
            f"better."
        )
    offset = 0.0
    if modality == "mr" and stats.GetMinimum() != 0:
        # MR magnitudes start at 0 (no signal), and the bias-adaptive steps compare them as
        # ratios: a scan normalised to zero mean, or raised by an offset, is put back on a
        # scale starting at 0 (CHAOS case 2 z-scored: Dice 0.850; raised by 500: 0.761;
        # shifted: 0.887, as stored).
        offset = -stats.GetMinimum()
        img = sitk.ShiftScale(as_float32(img), offset, 1.0)
    if modality == "mr" and options.mr_bias_correction:
        img = correct_bias(img)
    coarse = coarse_grid(img, options.coarse_spacing_mm)
    arr = array(coarse, np.float32)
    texture = local_sd(img, coarse) if options.merge_texture_ratio is not None else None
    sp = spacing_zyx(coarse)
    seeds_c = to_index(seeds, image, coarse)
    excl_c = to_index(exclude, image, coarse)

    body, lungs, allowed, flipped = _anatomy(arr, coarse, modality, warnings)
    if not seeds_c and flipped == "certain":
        # The automatic sample is taken under the right lung dome: here, in the pelvis.
        raise InputError(UPSIDE_DOWN + ", so the automatic search, which starts under the "
                         "right lung, cannot run; fix the header, or give --seed points "
                         "inside the liver.")
    _check_seeds(seeds, seeds_c, arr, body, modality)
    seed_mark = seed_ball(arr.shape, seeds_c, coarse, POINT_RADIUS_MM) if seeds_c else None
    excl_mark = (seed_ball(arr.shape, excl_c, coarse, POINT_RADIUS_MM) if excl_c
                 else np.zeros(arr.shape, bool))
    sample, method = _liver_sample(arr, body, lungs, coarse, seeds_c, modality, warnings)
    mr_limits = _mr_model_limits(arr, body, options) if modality == "mr" else None
    model = _liver_model(arr, sample, seeds_c, modality, options, mr_limits)
    liver_marker = seed_mark if seed_mark is not None else _core_of(sample, arr, *model[:2])
    averaged = voxels_averaged(img, options.coarse_spacing_mm) / voxels_averaged(img, TEXTURE_MM)
    growth = _grow_liver(arr, allowed, coarse, model, liver_marker, excl_mark, texture,
                         modality, options, method, mr_limits, averaged)
    region = growth.region
    region_ml = region.sum() * float(np.prod(sp)) / 1000.0
    around_lesion = None
    if modality == "ct" and seeds_c and region_ml < ADULT_LIVER_ML[0]:
        around_lesion = _liver_around(region, seeds, seeds_c, arr, body, lungs, allowed, coarse,
                                      excl_mark, texture, options, averaged)
        if around_lesion is not None:
            growth, lesion_clicks, note = around_lesion
            warnings.append(note)
            region = growth.region
            region_ml = region.sum() * float(np.prod(sp)) / 1000.0
    _check_not_too_small(region_ml, image, seeds_c, excl_c)
    if not seeds_c and flipped == "suspected" and region_ml < ADULT_LIVER_ML[0]:
        raise InputError(UPSIDE_DOWN + f" (lung-like air lies there, and the tissue found "
                         f"holds only {region_ml:.0f} mL), so the automatic search, which "
                         f"starts under the right lung, found no liver; fix the header, or "
                         f"give --seed points inside the liver.")
    if (not seeds_c and not lungs.any() and region_ml < ADULT_LIVER_ML[0]
            and not _reaches_top(region, coarse)):
        # Without lungs the scan starts below the diaphragm, so a liver in it is cut by
        # the top of the field of view; smaller tissue found lower down is another organ.
        # (A whole liver, however, means lungs were missed: it stands.)
        raise InputError(
            "no liver found: the scan shows no lungs, so it starts below the diaphragm, yet "
            "the tissue found does not reach its top slices, as a liver would; check that "
            "the scan covers the upper abdomen, or give a --seed point inside the liver."
        )
    fat = arr < FAT_HU if modality == "ct" else None
    liver_c = fill_liver(region, coarse, fat)
    warnings += _check_body_share(liver_c, body, seeds_c)
    parts_ml = parts_of(liver_c, float(np.prod(sp)) / 1000.0)
    parts_ml = parts_ml if len(parts_ml) > 1 else []
    parts_at = None
    if parts_ml:
        # Each part is kept (fill_liver, refine), but so would be an organ of the liver's
        # intensity taken in beyond a gap: the reader checks. (Its volumes are those of
        # the final mask, put in below.)
        parts_at = len(warnings)
        warnings.append(separate_parts_warning(parts_ml, bool(seeds_c)))
    if modality == "ct" and around_lesion is None:  # (else the automatic liver holds them)
        # A lesion at the surface lies outside the liver's window, in too broad a pocket for
        # fill_liver's closing: it is found as a blob the liver wraps (inserted into the real
        # CT, a 113 mL lesion touching the surface had lost a quarter of its volume).
        liver_c, taken = _with_surface_lesions(liver_c, arr, allowed, coarse, growth.model[0],
                                               excl_mark, fat)
        if taken:
            growth.method += ", lesions at the surface taken in"
    if around_lesion is None:  # (else the seeds' level was said, and the window is not theirs)
        warnings += _seed_level_warnings(seeds, seeds_c, arr, region, coarse, modality)
    _check_tumor_seeds(tumor_seeds, image, coarse, liver_c)
    method = growth.method

    # --- full-resolution boundary
    allowed_img = like(allowed & ~excl_mark, coarse)

    def allowed_full(crop):
        r = sitk.Resample(allowed_img, crop, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        return array(r).astype(bool)

    band_mm = 1.5 * float(max(sp))
    if modality == "mr" and options.mr_refine_band_mm is not None:
        band_mm = float(options.mr_refine_band_mm)
    bias = None
    if growth.adaptive:
        # The region was grown against the local liver level: the boundary band is
        # decided against it too, or a bright lobe thinner than the band is cut off again.
        interior = _interior(region, coarse)
        bias = bias_field(arr, region if interior is None else interior, coarse)
    sample = _interior_sample(img, liver_c, coarse)
    full_window = _full_window(sample, growth.model, options, modality, bias)
    # Tumour seeds: a lesion may bulge out of the liver (or have been left out of it), so
    # the full-resolution crop reaches TUMOR_SEED_REACH_MM around each.
    tumor_points = [image.TransformIndexToPhysicalPoint([int(v) for v in s])
                    for s in tumor_seeds]
    liver_full, (lo, hi), smooth, liver_crop = refine(
        img, liver_c, coarse, full_window[:2], allowed_full, band_mm,
        fat_level=FAT_HU if modality == "ct" else None,
        pocket_radius_mm=options.pocket_radius_mm, smooth_mm=options.smooth_mm,
        edge_iterations=options.edge_iterations, bias=bias, include=tumor_points,
        include_mm=TUMOR_SEED_REACH_MM)
    tumor_img = None
    crop_ref = sitk.RegionOfInterest(img, (hi - lo + 1).tolist(), lo.tolist())
    walked = False
    if modality == "mr" and options.mr_random_walker_beta is not None:
        # Exclude points the growth cut off stay off; one the mask still holds is left to
        # _keep_off, which leaves out the ball around it and says the tissue was not cut
        # (as background here, the walker would hole it silently).
        cut_off = [p for p, q in zip(exclude or (), to_index(exclude or (), image, img))
                   if not liver_full[q]]
        seeds_crop, exclude_crop = (_ball_on(points, image, crop_ref) for points in (seeds, cut_off))
        walked_crop = random_walker_boundary(
            crop_ref, liver_crop, beta=options.mr_random_walker_beta,
            # A seed the mask left out (in the spleen, said) is no liver for the walker.
            inside=None if seeds_crop is None else seeds_crop & liver_crop,
            outside=exclude_crop)
        walked = walked_crop is not liver_crop  # the same object: it did not run
        if walked:
            # The walker decides by intensity alone: a lesion or vessel embedded in the
            # liver, which refine's fill took in, was left out again where it reaches the
            # band (the MR phantom P002's lesions: Dice 0.949, filled again 0.971).
            liver_crop = fill_liver(walked_crop, crop_ref, None, options.pocket_radius_mm)
            liver_full[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = liver_crop
            method += ", boundary decided by a random walker"
    # Lesions are grown against the liver's window of the image as it is: its spread, wide
    # where the liver drifts, is what a lesion's own window (2.5 sigmas, stopping halfway to
    # the liver) was made with (bias-divided, the phantom's MR lesions fell from 0.979 to 0.860).
    lesion_window = full_window if bias is None or not tumor_seeds else _full_window(
        sample, growth.model, options, modality)
    lesions = _seeded_lesions(tumor_seeds, image, img, crop_ref, (lo, hi), smooth, liver_crop,
                              lesion_window, options, warnings, modality)
    if lesions.any():
        # A lesion at the surface may have been left out of the liver: it belongs to it.
        liver_crop = liver_crop | lesions
        liver_full[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = liver_crop
        method += ", seeded lesions"
    liver_img = like(liver_full, img)
    if (options.tumors and modality == "ct") or lesions.any():
        t = lesions.copy()
        if options.tumors and modality == "ct":
            t |= find_tumors(smooth, liver_crop, full_window[2:], crop_ref, options.min_tumor_ml,
                             fat_level=FAT_HU)
        tarr = np.zeros_like(liver_full)
        tarr[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = t
        tumor_img = back_to_input_grid(like(tarr, img), image, code)
    liver_out = back_to_input_grid(liver_img, image, code)
    liver_out, tumor_img, kept_off = _keep_off(liver_out, tumor_img, exclude)
    # The boundary decided at full resolution may leave less than the coarse region held:
    # a seed in the gallbladder had given a 44 mL 'liver', exit 0.
    final = array(liver_out).astype(bool)
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    final_ml = np.count_nonzero(final) * voxel_ml
    _check_not_too_small(final_ml, image, seeds_c, excl_c)
    if parts_ml:
        # The coarse parts' volumes had been said (6153 and 3565 mL beside a 7721 mL mask
        # written): the parts of the mask written, while it is still in parts. (Joined by
        # the full-resolution boundary, as the phantom's two sides after ALPPS stage 1
        # are, the parts grown are said as grown: the reader still checks each is liver.)
        final_parts = parts_of(final, voxel_ml)
        if len(final_parts) > 1:
            warnings[parts_at] = separate_parts_warning(final_parts, bool(seeds_c))
    # Judged by its largest part: a second part kept beside the spleen of a mirrored scan
    # had lifted the whole over an adult liver's volume, and the mirroring went unsaid.
    largest_ml = min(final_ml, parts_ml[0]) if parts_ml else final_ml
    if not seeds_c and largest_ml < ADULT_LIVER_ML[0]:
        warnings += _mirrored_warning(arr, body, lungs, allowed, coarse, excl_mark, texture,
                                      modality, options, largest_ml)
    warnings += _exclude_warnings(growth.notes, kept_off,
                                  seeded=bool(seeds) and around_lesion is None)
    if offset:
        method += f", intensities shifted by {_significant(offset)} to start at 0"
    methods = _methods_record(method, growth, options, modality, coarse, band_mm, seeds,
                              exclude, tumor_seeds, walked, offset)
    if parts_ml:
        methods["separate_parts"] = len(parts_ml)
    if around_lesion is not None:
        # Clicks that stand for no tissue of the mask: not grown again as a separate part,
        # and not said to lie outside it (the boundary may leave a lesion's rim out).
        methods["seeds_in_a_lesion"] = [list(map(int, s)) for s in lesion_clicks]
    return liver_out, tumor_img, warnings, methods


def _liver_around(seeded, seeds, seeds_c, arr, body, lungs, allowed, coarse, excl_mark, texture,
                  options, averaged):
    """(growth, seeds clicked in a lesion, warning) of the automatic CT liver when the
    small region grown from the seeds is embedded in it -- the seeds were clicked in a
    lesion or vessel -- else None.

    The seeded window is centred on the clicked tissue: a click in a 33 mL lesion had
    been refused as no liver, one in a 113 mL lesion written as a 108 mL "liver". The
    automatic liver stands in only when the clicked tissue differs from its level as
    :func:`_seed_level_warnings` measures it (a small liver clicked in its parenchyma
    stands as grown), it is more than twice the seeds' region, and it holds every seed
    and most of their region -- the automatic liver as the automatic path makes it, a
    lesion at its surface taken in. A seed in the gallbladder or a kidney is left to the
    usual checks.
    """
    # Only a liver found under the right lung dome vouches for itself: without a lung base
    # the automatic sample is the thickest soft tissue, and a small liver clicked in a body
    # of other soft tissue had been replaced by that body (2011 mL).
    sample = dome_sample(arr, body, lungs, coarse)
    if sample is None:
        return None
    try:
        model = _liver_model(arr, sample, [], "ct", options)
        growth = _grow_liver(arr, allowed, coarse, model, _core_of(sample, arr, *model[:2]),
                             excl_mark, texture, "ct", options, DOME_METHOD, None, averaged)
    except InputError:
        return None
    fat = arr < FAT_HU
    # The automatic liver as the automatic path makes it: a lesion at its surface taken in.
    liver, taken = _with_surface_lesions(fill_liver(growth.region, coarse, fat), arr, allowed,
                                         coarse, growth.model[0], excl_mark, fat)
    measured = _level_and_limit(arr, liver, coarse, "ct")
    if measured is None or np.count_nonzero(liver) <= 2 * np.count_nonzero(seeded):
        return None
    level, limit = measured
    # Each seed's own tissue: with one seed in parenchyma and one in a lesion, only the
    # latter was clicked in a lesion.
    owns = [float(np.median(arr[seed_ball(arr.shape, [sc], coarse, 3.0)])) for sc in seeds_c]
    clicked = [(s, own) for s, own in zip(seeds, owns) if abs(own - level) > limit]
    if not clicked:
        return None
    # (A lesion smaller than the growth's opening grows nothing: its seeds speak alone.)
    inside = (np.count_nonzero(liver & seeded) / np.count_nonzero(seeded) if seeded.any()
              else 1.0)
    if inside < 0.5 or not all(liver[sc] for sc in seeds_c):
        return None
    growth.region = liver | seeded
    seeded_ml = np.count_nonzero(seeded) * float(np.prod(spacing_zyx(coarse))) / 1000.0
    grew = f"only {seeded_ml:.0f} mL" if seeded.any() else "no region"
    growth.method = (f"seeded: the seeds lay in a lesion or vessel ({grew}) of the liver found "
                     f"{growth.method.removeprefix('automatic ')}, which was grown instead"
                     + (", lesions at the surface taken in" if taken else ""))
    where = "; ".join(f"{_fmt(s)} in tissue of {own:.0f} HU" for s, own in clicked)
    return growth, [s for s, _ in clicked], (
        f"the seed{'s' if len(seeds) > 1 else ''} grew {grew} ({where}), embedded in the "
        f"liver that the automatic search found (tissue of {level:.0f} HU): a lesion or "
        f"vessel was clicked, so that liver was segmented instead; check the mask, or click "
        f"in the parenchyma."
    )


def _with_surface_lesions(liver_c, arr, allowed, coarse, window_low, excl_mark, fat):
    """(liver, whether any was taken): ``liver_c`` with the CT lesions at its surface
    (:func:`surface_lesions`), holes filled again."""
    lesions_c = surface_lesions(liver_c, arr, allowed, coarse, window_low, excl_mark)
    if not lesions_c.any():
        return liver_c, False
    return fill_liver(liver_c | lesions_c, coarse, fat), True


def _check_body_share(liver_c, body, seeds_c):
    """Refuse (automatic) or warn of (seeded) a liver filling most of the body in the scan.

    A head CT had given a 1947 mL "liver", 76 % of the body, exit 0 with only
    the no-lungs warnings; a block of 60 HU its whole self.
    """
    body_voxels = int(np.count_nonzero(body))
    share = np.count_nonzero(liver_c & body) / body_voxels if body_voxels else 0.0
    if share <= MAX_BODY_SHARE:
        return []
    said = (f"the tissue found fills {100 * share:.0f} % of the body in the scan, as no liver "
            f"does")
    if not seeds_c:
        raise InputError(f"no liver found: {said}; check that the scan is a CT of the upper "
                         f"abdomen, or give a --seed point inside the liver.")
    return [f"{said}: check that the seeds lie in the liver, and the mask, before using it."]


def _check_not_too_small(region_ml, image, seeds_c, excl_c):
    """Refuse a region smaller than MIN_LIVER_ML: no liver was found."""
    if region_ml >= MIN_LIVER_ML:
        return
    if seeds_c:
        advice = ("check the seeds (inside the liver parenchyma, not a vessel or lesion)"
                  + (", that no exclude point lies in the liver near them" if excl_c else "")
                  + ", the modality and the voxel size")
    else:
        advice = "check the modality and the voxel size, or give a --seed point inside the liver"
    raise InputError(
        "no liver found: the region grown from "
        + ("the seeds" if seeds_c else "under the right lung")
        + f" is smaller than {MIN_LIVER_ML:.0f} mL ({region_ml:.0f} mL; the scan's voxels "
          f"{_spacing_text(image)}); "
        + advice + "."
    )


def _mirrored_warning(arr, body, lungs, allowed, coarse, excl_mark, texture, modality,
                      options, region_ml):
    """A warning when the automatic search, run on the patient's other side, finds at
    least twice the liver-like tissue it found on the right (and an adult liver's volume).

    A scan mirrored left-right (flipped data, or a file without orientation) had its
    spleen written as the liver (340 mL, exit 0). A small liver beside a large spleen
    (cirrhosis) looks the same: said, not refused.
    """
    flip = (slice(None), slice(None), slice(None, None, -1))  # LPS: x runs to the left
    try:
        sample, method = _liver_sample(arr[flip], body[flip], lungs[flip], coarse, [],
                                       modality, [])
        sample = sample[flip]
        model = _liver_model(arr, sample, [], modality, options)
        growth = _grow_liver(arr, allowed, coarse, model, _core_of(sample, arr, *model[:2]),
                             excl_mark, texture, modality, options, method)
    except InputError:
        return []
    other_ml = growth.region.sum() * float(np.prod(spacing_zyx(coarse))) / 1000.0
    if other_ml < max(ADULT_LIVER_ML[0], 2.0 * region_ml):
        return []
    return [f"the liver found on the patient's right holds {region_ml:.0f} mL, while "
            f"{other_ml:.0f} mL of liver-like tissue lies on the left: is the scan mirrored "
            f"left-right (flipped data, or a file without orientation)? Then this mask is "
            f"probably the spleen: fix the orientation, or give a --seed point inside the "
            f"liver."]


def _ball_on(points, image, crop):
    """Balls of POINT_RADIUS_MM around the points (indices of ``image``) that lie in
    ``crop``, on its grid; None when none does (to_index would clip them to its edge)."""
    size = np.array(crop.GetSize())
    inside = [p for p in points or () if np.all(np.abs(np.array(
        crop.TransformPhysicalPointToContinuousIndex(image.TransformIndexToPhysicalPoint(
            [int(v) for v in p]))) - (size - 1) / 2) <= (size - 1) / 2 + 0.5)]
    if not inside:
        return None
    return seed_ball(crop.GetSize()[::-1], to_index(inside, image, crop), crop, POINT_RADIUS_MM)


def _spacing_text(image):
    return "x".join(f"{v:g}" for v in image.GetSpacing()) + " mm"


def _reaches_top(region, coarse, within_mm=30.0):
    """Whether ``region`` (LPS coarse grid: high z is superior) lies within ``within_mm``
    of the scan's top slice."""
    zs = np.flatnonzero(region.any(axis=(1, 2)))
    return zs.size > 0 and (region.shape[0] - 1 - zs[-1]) * spacing_zyx(coarse)[0] <= within_mm


def _exclude_warnings(notes, kept_off, seeded=True):
    """What the user should know about the exclude points: tissue they cut off the seeds'
    own cores, and points the mask still held (``kept_off``). Without seeds (automatic
    mode) the liver was grown from its own sample, not from seeds: said so."""
    grown = "grown from the seeds" if seeded else "found automatically"
    warnings = []
    cut_ml = notes.get("cut_from_seed_cores_ml", 0.0)
    if cut_ml >= EXCLUDE_CUT_WARN_ML:
        warnings.append(
            f"the exclude points cut {cut_ml:.0f} mL off the thick tissue {grown}: "
            f"if part of it is liver (a thin lobe lying on the excluded organ), add a seed there."
        )
    for p in kept_off:
        warnings.append(
            f"exclude point {_fmt(p)} lay inside the liver {grown} and could not "
            f"be cut off with the tissue around it; the mask leaves out {POINT_RADIUS_MM:g} mm "
            f"around it only: add exclude points further into that tissue, or more seeds."
        )
    return warnings


def _methods_record(method, growth, options, modality, coarse, band_mm, seeds, exclude,
                    tumor_seeds, walked=False, offset=0.0):
    """The methods record: the algorithm in words and every parameter that shaped the mask.

    ``offset`` was added to the intensities (MR below 0); the window is recorded in the
    scan's own values.
    """
    w_lo, w_hi, centre = (v - offset for v in growth.model[:3])
    return {
        "algorithm": f"classic: {method}, intensity window from histogram mode and MAD, "
                     f"neck-cutting marker watershed on the distance map (neighbours rejoin "
                     f"on broad contact and liver-like texture), hole filling, "
                     f"full-resolution boundary refinement"
                     + (" against the local liver level" if growth.adaptive else "")
                     + (", surface snapped to edges (geodesic active contour)"
                        if options.edge_iterations > 0 else ""),
        "parameters": {
            "modality": modality,
            "coarse_spacing_mm": [round(float(s), 3) for s in coarse.GetSpacing()],
            "neck_radius_mm": options.neck_radius_mm,
            "window_k": options.window_k,
            "mr_bias_correction": bool(modality == "mr" and options.mr_bias_correction),
            "ct_second_pass": growth.ct_second_pass,
            "reach_extra_mm": growth.reach_mm,
            "merge_ratio": options.merge_ratio,
            "merge_texture_ratio": options.merge_texture_ratio,
            "refine_band_mm": round(band_mm, 2),
            "edge_iterations": options.edge_iterations,
            "random_walker_beta": options.mr_random_walker_beta if walked else None,
            # Significant digits, not decimals: MR stored as 0-1 floats has no unit either.
            "intensity_window": [_significant(w_lo), _significant(w_hi)],
            "liver_intensity_mode": _significant(centre),
            "seeds": [list(map(int, s)) for s in seeds],
            "exclude": [list(map(int, s)) for s in exclude],
            "tumor_seeds": [list(map(int, s)) for s in tumor_seeds],
        },
    }


def _significant(value, digits=5):
    """``value`` rounded to ``digits`` significant digits, as a float.

    >>> _significant(230.15159), _significant(0.00023015159), _significant(55.5)
    (230.15, 0.00023015, 55.5)
    """
    return float(f"{float(value):.{digits}g}")


def _anatomy(arr, coarse, modality, warnings):
    """(body, lungs, allowed, flipped): where on the coarse grid the liver may lie, and
    whether the header looks flipped head to feet (see :func:`_lungs_at_the_feet`).

    CT: inside the body, off the lungs and below the diaphragm (the lungs'
    under-surface). MR: inside the body.
    """
    if modality != "ct":
        body = _mr_body(arr)
        return body, np.zeros_like(body), body, None
    body = body_mask(arr)
    if not body.any():
        raise InputError(
            f"no liver found: the scan holds no body (no voxel denser than {AIR_HU:.0f} HU); "
            f"check that it is a CT of the abdomen in Hounsfield units."
        )
    lungs = lung_mask(arr, body, coarse)
    flipped = _lungs_at_the_feet(arr, body, lungs, coarse)
    upside_down = flipped == "certain"
    if upside_down:
        lungs = np.zeros_like(lungs)  # "below the diaphragm" would be above it
    height = diaphragm_height(lungs)
    z = np.arange(arr.shape[0], dtype=np.float32)[:, None, None]
    allowed = body & ~dilate_mm(lungs, coarse, 2.0) & (z < height[None])
    if upside_down:
        warnings.append(UPSIDE_DOWN + ", so the diaphragm could not be used to keep the heart "
                        "out of the liver mask; fix the header, and check the mask's upper "
                        "border.")
    elif not lungs.any():
        warnings.append("no lung was found in the scan, so the diaphragm could not be used "
                        "to keep the heart out of the liver mask: check the upper border.")
    return body, lungs, allowed, flipped


UPSIDE_DOWN = ("the scan's lungs lie at its inferior end: its header's superior-inferior "
               "direction looks flipped (a wrong NIfTI header)")


def _lungs_at_the_feet(arr, body, lungs, coarse, min_ml=100.0, abdomen_mm=100.0):
    """'certain', 'suspected' or None: whether the lungs lie at the scan's inferior end,
    i.e. its header's superior-inferior direction is flipped.

    ``lungs`` are those :func:`lung_mask` found. Found, reaching the scan's
    inferior end but not its superior one, with ``abdomen_mm`` of body above
    them (a chest CT cutting the lung bases has none): certain. Not found,
    while lung-like air of ``min_ml`` shows when the scan is turned upside
    down (the real CT so flipped, whose lung bases are too small to be taken
    for whole lungs): only suspected, since gassy colon at the inferior end of
    an abdominal scan looks alike; the automatic path then refuses only a
    region too small for a liver (the real CT flipped: a 147 mL "liver" from
    a sample taken in the pelvis).
    """
    if lungs.any():
        zs = np.flatnonzero(lungs.any(axis=(1, 2)))
        body_top = np.flatnonzero(body.any(axis=(1, 2)))[-1]
        certain = (zs[0] == 0 and zs[-1] < arr.shape[0] - 1
                   and (body_top - zs[-1]) * spacing_zyx(coarse)[0] >= abdomen_mm)
        return "certain" if certain else None
    flipped = lung_mask(arr[::-1], body[::-1], coarse)
    voxel_ml = float(np.prod(spacing_zyx(coarse))) / 1000.0
    return "suspected" if flipped.sum() * voxel_ml >= min_ml else None


def _check_seeds(seeds, seeds_c, arr, body, modality):
    """Raise InputError for a seed in air (CT) or outside the body."""
    for s, sc in zip(seeds, seeds_c):
        if modality == "ct" and (arr[sc] < AIR_HU or not body[sc]):
            raise InputError(
                f"seed {_fmt(s)} lies in air ({arr[sc]:.0f} HU), outside the body or in the "
                f"lung or bowel gas; place seeds inside the liver."
            )
        if modality == "ct" and arr[sc] > SOFT_TISSUE_HU[1]:
            # Denser than any liver parenchyma, even in the portal venous phase: bone or a
            # contrast-filled vessel, whose growth would be a mask of the wrong structure.
            raise InputError(
                f"seed {_fmt(s)} lies in bone or a contrast-filled vessel ({arr[sc]:.0f} HU, "
                f"denser than liver tissue); place seeds in the liver parenchyma."
            )
        if modality == "mr" and not body[sc]:
            raise InputError(
                f"seed {_fmt(s)} lies in the dark background outside the body; place seeds "
                f"inside the liver."
            )


def _liver_sample(arr, body, lungs, coarse, seeds_c, modality, warnings):
    """(sample, method): voxels of liver tissue on the coarse grid, and how they were found.

    Seeded: a ball around the seeds. Automatic CT: under the right lung
    dome, or without a lung base the thickest soft tissue of the right
    upper abdomen (with a warning).
    """
    if seeds_c:
        sample = seed_ball(arr.shape, seeds_c, coarse, SEED_SAMPLE_RADIUS_MM) & body
        return sample, "seeded region growing"
    if modality != "ct":
        # A CT given as MR: its air had been seen (a warning) and then left unsaid here.
        ct_like = next((w for w in warnings if "like the air of a CT" in w), None)
        raise InputError(
            "automatic liver segmentation is only available for CT; segment MR from one "
            "or more seed points inside the liver (flr-volumetry segment --modality mr "
            "--seed I,J,K, then measure with --liver), or flr-volumetry segment --backend "
            "totalsegmentator." + ("" if ct_like is None else
                                   " The scan, however, holds values below -800, like a CT's "
                                   "air in Hounsfield units: if it is a CT, --modality ct "
                                   "segments it automatically.")
        )
    sample = dome_sample(arr, body, lungs, coarse)
    if sample is not None:
        return sample, DOME_METHOD
    # No lung base in the field of view (a scan starting below the diaphragm).
    sample = thickest_right_upper(arr, body, coarse)
    if sample is None:
        raise InputError(
            "no liver found: the scan shows neither a right lung base nor thick soft "
            "tissue in the right upper abdomen; give a --seed point inside the liver."
        )
    warnings.append(
        "the scan shows no right lung base: the liver was found as the thickest soft "
        "tissue of the right upper abdomen; check the mask, or give a --seed point."
    )
    return sample, "automatic (thickest soft tissue of the right upper abdomen)"


def _mr_model_limits(arr, body, options):
    """MR window parameters (k, min half-width, max half-width), scaled to the scan's
    bright tissue level (intensities have no fixed scale)."""
    # No absolute floor: one of 1.0 had widened every window of scans stored as 0-1
    # floats (CHAOS case 2 scaled so: Dice 0.887 -> 0.804).
    span = float(np.percentile(arr[body], 99))
    if not span > 0:
        raise InputError(
            "no liver found: the MR scan holds no positive intensities in the body (MR "
            "magnitudes are positive); check that the file is a magnitude image."
        )
    return options.window_k + 0.5, 0.06 * span, 0.25 * span


def _liver_model(arr, sample, seeds_c, modality, options, mr_limits=None):
    """The liver's intensity model (low, high, mode, sigma) from the sample.

    ``mr_limits`` are the MR window parameters of :func:`_mr_model_limits`.
    """
    values = arr[sample]
    if seeds_c:
        # The user clicked parenchyma: the model is the mode of the ball around the
        # seeds nearest to the seeds' own (median-filtered) values, so dense vessels or a
        # lesion filling much of the ball do not take over the model.
        own = np.array([arr[sc] for sc in seeds_c])
        # CT: 60 HU; MR: the widest window half-width allowed (a quarter of the bright level).
        reach = 60.0 if modality == "ct" else mr_limits[2]
        near = (values >= own.min() - reach) & (values <= own.max() + reach)
        if near.sum() >= 20:
            values = values[near]
    if modality == "ct":
        model = intensity_model(values, *SOFT_TISSUE_HU, options.window_k, 15.0, 60.0)
    else:
        lo, hi = np.percentile(values, [2, 98])
        model = intensity_model(values, float(lo), _inclusive(hi), *mr_limits)
    if model is None:
        raise InputError(
            "no liver found: no soft tissue around the seeds or under the right lung; check the "
            "seed positions and that the scan is a CT in Hounsfield units."
        )
    if modality == "ct" and not seeds_c and not (20.0 <= model[2] <= 250.0):
        raise InputError(
            f"no liver found: the tissue under the right lung measures {model[2]:.0f} HU, not "
            f"liver; give a --seed point inside the liver."
        )
    return model


def _grow_liver(arr, allowed, coarse, model, liver_marker, excl_mark, texture, modality,
                options, method, mr_limits=None, averaged=1.0):
    """The liver grown from the marker on the coarse grid, with the second passes.

    ``averaged``: how many voxels of the grid ``texture`` was measured on one
    coarse voxel averages (MR: see :func:`_cut_by_window`).
    """
    reach = options.reach_extra_mm
    if reach is None:
        reach = CT_REACH_EXTRA_MM if modality == "ct" else None
    notes = {}
    # MR candidates are speckled (noisy voxels, narrow window); CT's, on an averaged
    # 3 mm grid, are solid, and closing their gaps would move the cut of an exclude point.
    region = grow(arr, model[:2], allowed, coarse, liver_marker, excl_mark, options, reach,
                  texture, notes, speckled=modality == "mr")
    growth = _Growth(region=region, model=model, method=method, reach_mm=reach, notes=notes)
    if modality == "ct" and options.ct_two_pass:
        _ct_second_pass(growth, arr, allowed, coarse, liver_marker, excl_mark, texture, options)
    if modality == "mr" and options.mr_two_pass:
        _mr_passes(growth, arr, allowed, coarse, liver_marker, excl_mark, texture, options,
                   mr_limits, averaged)
    return growth


def _ct_second_pass(growth, arr, allowed, coarse, liver_marker, excl_mark, texture, options):
    """Regrow with the model of the first region's interior (CT), when that holds up."""
    core = _interior(growth.region, coarse)
    if core is None:
        return
    model2 = intensity_model(arr[core], *SOFT_TISSUE_HU, options.window_k, 15.0, 60.0)
    if model2 is None:
        return
    notes2 = {}
    region2 = grow(arr, model2[:2], allowed, coarse, liver_marker, excl_mark, options,
                   growth.reach_mm, texture, notes2)
    # The narrower window may miss the seeds' own voxels (a click in a heterogeneous
    # spot): the first region then stands.
    if region2.sum() >= 0.5 * growth.region.sum():
        growth.region, growth.model = region2, model2
        growth.notes.clear()
        growth.notes.update(notes2)
        growth.method += ", two-pass intensity model"
        growth.ct_second_pass = True


def _mr_passes(growth, arr, allowed, coarse, liver_marker, excl_mark, texture, options,
               mr_limits, averaged=1.0):
    """MR: a conservative first region, the model re-estimated from it, the liver regrown.

    MR intensities drift across the liver (coil bias): the ball around the seeds
    may sit in a darker or brighter part. A first, conservative region gives a
    larger sample of the liver; the model is re-estimated from it and the liver
    regrown from that region, against one global window or, when that gives a
    region smaller than nearly any adult liver, against the local liver level;
    below MR_ADAPTIVE_CHECK_BELOW_ML also when the local-level region goes on
    from the window's across a boundary without an edge (:func:`_cut_by_window`).
    """
    mr_k, min_half, max_half = mr_limits
    reach = growth.reach_mm
    first = grow(arr, _narrow(growth.model, mr_k, options.mr_first_pass_k), allowed,
                 coarse, liver_marker, excl_mark, options, reach, texture, growth.notes,
                 speckled=True)
    core = _interior(first, coarse)
    voxel_ml = float(np.prod(spacing_zyx(coarse))) / 1000.0
    if core is None and first.sum() * voxel_ml >= 20.0:
        # A speckled first region (noisy MR in a narrow window) keeps no interior
        # after erosion; its own voxels, all within the narrow window, are the sample.
        core = first
    if core is None:
        return
    lo, hi = np.percentile(arr[core], [1, 99])
    model2 = intensity_model(arr[core], float(lo), _inclusive(hi), mr_k, min_half, max_half)
    if model2 is None:
        return
    growth.model = model2
    w_lo, w_hi, centre, _ = model2
    growth.region = grow(arr, (w_lo, w_hi), allowed, coarse, liver_marker | core, excl_mark,
                         options, reach, texture, growth.notes, speckled=True)
    growth.method += ", two-pass intensity model"
    region_ml = growth.region.sum() * voxel_ml
    small = region_ml < MR_ADAPTIVE_BELOW_ML
    check = region_ml < MR_ADAPTIVE_CHECK_BELOW_ML and texture is not None
    if options.mr_adaptive and (small or check):
        # Smaller than nearly any adult liver: one window cannot span the liver's
        # intensities (strong coil bias); grow against the local level instead. A
        # smaller-than-usual liver is regrown so too when the window was seen to cut it.
        cand = adaptive_candidates(arr, first, allowed, coarse,
                                   (w_hi - w_lo) / 2.0 / max(centre, 1e-6), sigma_mm=15.0)
        cand = ndi.binary_opening(cand) | first
        notes = growth.notes if small else dict(growth.notes)
        adaptive = split_by_necks(
            cand, coarse, (liver_marker | core) & cand, excl_mark & cand,
            options.neck_radius_mm, options.merge_ratio,
            None if reach is None else options.neck_radius_mm + reach,
            texture, options.merge_texture_ratio, notes, speckled=True)
        if small or _cut_by_window(growth.region, adaptive, arr, texture, averaged):
            growth.region = adaptive
            growth.notes = notes
            growth.method += ", bias-adaptive region growing"
            growth.adaptive = True


def _cut_by_window(region, adaptive, arr, texture, averaged):
    """Whether the adaptive ``region`` continues ``region`` (the global window's) across
    a boundary without an edge, i.e. the window, not the anatomy, stopped ``region``.

    Where a window cuts through tissue whose level drifts (coil bias), the
    voxels the adaptive region adds next to the global one differ from their
    neighbours inside it by no more than the noise: the tissue goes on. Where
    the global region stopped at an organ boundary and the adaptive one
    crosses it anyway (partial volume, a neighbour of near-liver intensity),
    most of these contacts are edges.

    The noise is that of ``arr``, the coarse grid: the fine texture
    (``texture``, the local SD on the ~1.5 mm grid) over the square root of
    ``averaged``, the number of its voxels each coarse voxel averages. An
    edge is a step of more than MR_EDGE_NOISE_SDS of it. (The texture itself
    had been the limit: 2 SDs where a coarse voxel averages 4 fine ones, as
    on CHAOS T2 at 1.25-1.9 mm and the MR phantom at 1.5 mm, but 1 SD on
    scans of 2.5-3 mm pixels, where nothing is averaged and a window cut
    through drifting tissue was called an edge at half its contacts: a
    thick-slice MR phantom with 3 mm pixels lost its brighter half, Dice
    0.49-0.84 from 9 of 12 clicks.)
    """
    added = adaptive & ~region
    contact = added & ndi.binary_dilation(region)
    if not contact.any():
        return False
    cross = ndi.generate_binary_structure(3, 1).astype(np.float32)
    total = ndi.convolve(np.where(region, arr, 0).astype(np.float32), cross, mode="constant")
    count = ndi.convolve(region.astype(np.float32), cross, mode="constant")
    step = np.abs(arr - total / np.maximum(count, 1.0))[contact]
    noise = float(np.median(texture[region])) / np.sqrt(max(float(averaged), 1.0))
    return float(np.mean(step <= MR_EDGE_NOISE_SDS * noise)) >= MR_SMOOTH_CONTACT_FRACTION


def _check_tumor_seeds(tumor_seeds, image, coarse, liver_c):
    """Raise InputError for a tumour seed farther than TUMOR_SEED_REACH_MM from the liver."""
    to_liver_mm = distance_outside_mm(liver_c, coarse)
    for s, sc in zip(tumor_seeds, to_index(tumor_seeds, image, coarse)):
        if to_liver_mm[sc] > TUMOR_SEED_REACH_MM:
            raise InputError(
                f"tumour seed {_fmt(s)} lies {to_liver_mm[sc]:.0f} mm from the liver found; "
                f"place tumour seeds inside lesions of the liver."
            )


def _seed_level_warnings(seeds, seeds_c, arr, region, coarse, modality):
    """Warnings for seeds in tissue of another level than the liver grown from them.

    The window is centred on the seeds' surroundings: a click in a lesion or
    vessel centres it there, and the mask is then part liver, part lesion,
    with nothing else to say so (the real CT clicked in its HCC, 83 HU in
    liver of 57: 1377 mL of 2128, Dice 0.74, no warning). Different means
    more than 3 robust SDs of the region's interior, and more than 15 HU on
    CT or a tenth of the level on MR (its level drifts).
    """
    measured = _level_and_limit(arr, region, coarse, modality)
    if not seeds_c or measured is None:
        return []
    level, limit = measured

    def shown(v):
        return f"{v:.0f} HU" if modality == "ct" else f"{_significant(v, 3):g}"

    out = []
    for s, sc in zip(seeds, seeds_c):
        own = float(np.median(arr[seed_ball(arr.shape, [sc], coarse, 3.0)]))
        if abs(own - level) > limit and region[sc]:
            out.append(
                f"seed {_fmt(s)} lies in tissue {'brighter' if own > level else 'darker'} "
                f"than the liver grown from it ({shown(own)} against {shown(level)}): it "
                f"may lie in a lesion or vessel, on whose level the window was then "
                f"centred; check the mask, or click in the parenchyma."
            )
    return out


def _level_and_limit(arr, region, coarse, modality):
    """(level, limit): the median of ``region``'s interior, and how far from it other
    tissue lies -- more than 3 robust SDs, and more than 15 HU on CT or a tenth of the
    level on MR (its level drifts); None when the region has no interior."""
    interior = _interior(region, coarse)
    if interior is None:
        return None
    values = arr[interior]
    level = float(np.median(values))
    spread = robust_sigma(values, level, np.inf) or 0.0
    return level, max(3.0 * spread, 15.0 if modality == "ct" else 0.1 * abs(level))


def _interior(region, coarse, min_ml=20.0):
    """``region`` eroded by 1.5 in-plane voxels (a sample of its tissue away from the
    boundary), or None when less than ``min_ml`` is left to estimate a model from."""
    sp = spacing_zyx(coarse)
    core = erode_mm(region, coarse, 1.5 * float(max(sp[1:])))
    return core if core.sum() * float(np.prod(sp)) / 1000.0 >= min_ml else None


def _keep_off(liver, tumor, points):
    """``liver`` and ``tumor`` (or None) without a ball of POINT_RADIUS_MM around
    each point the liver contains; returns (liver, tumor, those points).

    The region growing keeps exclude points out; hole filling and the
    full-resolution boundary can still take one back when the tissue around
    it could not be separated. The promise to the user is that no mask holds
    an exclude point (a tumour voxel outside the liver would be added back to
    the total liver volume), so this is enforced here, and said.
    """
    arr = sitk.GetArrayFromImage(liver)
    inside = [p for p in points if arr[p[2], p[1], p[0]]]
    if not inside:
        return liver, tumor, []
    marks = np.zeros(arr.shape, bool)
    for i, j, k in inside:
        marks[k, j, i] = True
    keep = ~dilate_mm(marks, liver, POINT_RADIUS_MM)
    liver = like(arr.astype(bool) & keep, liver)
    if tumor is not None:
        tumor = like(sitk.GetArrayViewFromImage(tumor).astype(bool) & keep, tumor)
    return liver, tumor, inside


def _inclusive(hi):
    """The top of a histogram range that holds ``hi`` itself: a step relative to it (an
    absolute 1e-3 had been a third of the range of MR stored as 0-1e-3)."""
    hi = float(hi)
    return hi + 1e-6 * max(abs(hi), np.finfo(np.float32).tiny)


def _narrow(model, k, k_narrow):
    """The window of ``model`` (built with ``k`` sigmas) narrowed to ``k_narrow`` sigmas."""
    lo, hi, centre, _ = model
    half = (hi - lo) / 2.0 * k_narrow / k
    return centre - half, centre + half


def _core_of(sample, arr, lo, hi):
    """The in-window part of the automatic sample: the liver marker."""
    return sample & (arr >= lo) & (arr <= hi)


def _interior_sample(img, liver_c, coarse):
    """(the lightly smoothed full-resolution crop of the liver, its interior there as a
    mask): the sample :func:`_full_window` estimates a window from."""
    inner = erode_mm(liver_c, coarse, 2.0 * float(max(spacing_zyx(coarse))))
    if inner.sum() < 50:
        inner = liver_c
    smooth = sitk.SmoothingRecursiveGaussian(as_float32(_bbox_crop(img, liver_c, coarse)),
                                             REFINE_SIGMA_MM)
    inner_full = sitk.Resample(like(inner, coarse), smooth, sitk.Transform(),
                               sitk.sitkNearestNeighbor, 0)
    return smooth, array(inner_full).astype(bool)


def _full_window(sample, model, options, modality, bias=None):
    """Intensity window on the lightly smoothed full-resolution image (``sample``, from
    :func:`_interior_sample`).

    Noise is higher on the full grid than on the averaged coarse one, so
    the model is re-estimated from the liver's interior at full resolution.
    With ``bias`` (the liver's drift as a factor around 1, see
    :func:`bias_field`) the window is that of the bias-divided image, the
    one :func:`refine` scales back by the factor at each voxel: the model
    of the seeds (where the factor may be far from 1) would be scaled twice.
    """
    smooth, inner_full = sample
    vals = array(smooth)[inner_full]
    w_lo, w_hi, centre, sigma = model
    if bias is not None:
        f = array(sitk.Resample(bias, smooth, sitk.Transform(), sitk.sitkLinear, 1.0,
                                sitk.sitkFloat32))[inner_full]
        vals = vals / np.maximum(f, 1e-3)
        if vals.size >= 50:
            # The seeds' model, moved to the level where the factor is 1 (same relative width).
            scale = float(np.median(vals)) / max(centre, 1e-6)
            w_lo, w_hi, centre, sigma = w_lo * scale, w_hi * scale, centre * scale, sigma * scale
    vals = np.asarray(vals, np.float32)
    if vals.size < 50:
        return w_lo, w_hi, centre, sigma
    span = w_hi - w_lo
    if modality == "ct":
        m = intensity_model(vals, centre - span, centre + span, options.window_k, 15.0, 70.0)
    else:
        min_half = span / 3 if bias is None else MR_BIAS_MIN_HALF * span / 2
        m = intensity_model(vals, centre - span, centre + span, options.window_k + 0.5, min_half,
                            max(span, min_half))
    return m if m is not None else (w_lo, w_hi, centre, sigma)


def _bbox_crop(img, mask, ref):
    idx = np.argwhere(mask)
    p0 = ref.TransformIndexToPhysicalPoint([int(v) for v in idx.min(axis=0)[::-1]])
    p1 = ref.TransformIndexToPhysicalPoint([int(v) for v in idx.max(axis=0)[::-1]])
    c0 = np.array(img.TransformPhysicalPointToContinuousIndex(p0))
    c1 = np.array(img.TransformPhysicalPointToContinuousIndex(p1))
    size = np.array(img.GetSize())
    lo = np.clip(np.floor(np.minimum(c0, c1)) - 2, 0, size - 1).astype(int)
    hi = np.clip(np.ceil(np.maximum(c0, c1)) + 2, 0, size - 1).astype(int)
    return sitk.RegionOfInterest(img, (hi - lo + 1).tolist(), lo.tolist())
