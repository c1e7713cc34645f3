"""The embedded liver segmentation: image analysis only, no model weights.

Outline (all distances in mm, so the same parameters hold on any grid):

1. Reorient to LPS and average down to a coarse grid (~3 mm) for speed,
   then a median against noise (in-plane only when the slices are kept as
   they are: thick MR, 2-3 mm CT).
2. CT: find the body (> -500 HU), the lungs (air inside the body with lung
   density that reaches the top of the scan or is large; colon gas is not
   lung) and the diaphragm (no liver above the lungs' under-surface).
3. Liver intensity model: automatic CT samples the tissue 1-5 cm under the
   right lung dome (the liver fills it in every phase); seeded mode samples
   a ball around the seeds, near the clicked voxels' own values. The model
   is the histogram mode and a robust standard deviation (MAD), so vessels
   and lesions in the sample do not shift it. MR re-estimates it from a
   first, conservative region (coil bias).
4. Candidates = body voxels inside the intensity window, below the
   diaphragm. Bridges to other organs are cut with a marker watershed on
   the distance map: thick cores flood the candidates, the liver's regions
   absorb neighbours they touch broadly (a thin lobe) but not organs joined
   by a narrow neck, nor neighbours whose fine texture (measured on the
   full-resolution image) is much rougher than the liver's; tissue on an
   exclude point's side of the thinnest section between it and the seeds
   is cut off, and on CT thin sheets of muscle out of reach of a liver core
   are dropped. The mask never holds an exclude point.
5. Vessels and embedded lesions are filled (holes and closing pockets
   that hold no fat), the boundary is re-decided at full resolution in a
   band around the coarse boundary, drawn onto the nearest intensity edge
   by a short geodesic active contour and smoothed (MR: then decided by a
   random walker between the mask's core and what lies clearly outside
   it), and the mask is put back on the input grid. Hypo-attenuating regions inside the liver are the
   CT tumour candidates; lesions can also be grown from clicks.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..errors import InputError
from ._common import (
    array,
    dilate_mm,
    distance_inside_mm,
    distance_outside_mm,
    erode_mm,
    fill_holes_2d,
    largest_component,
    parts_holding,
    like,
    robust_mode,
    robust_sigma,
    spacing_zyx,
)

AIR_HU = -500.0
# MR body: voxels above this fraction of the bright tissue level (the 99th percentile).
MR_BODY_FRACTION = 0.08
SOFT_TISSUE_HU = (-50.0, 250.0)
# Gaussian width (mm) of the full-resolution image on which the boundary is decided.
REFINE_SIGMA_MM = 1.0
# A seeded lesion must come this close (mm) to the liver mask: it lies in or on the liver.
LESION_TOUCH_MM = 5.0
# Necks (radius, mm) at which a seeded lesion is cut from what it touches.
LESION_NECK_MM = 2.0
# Finest in-plane grid (mm) on which the surface is snapped to the edges (slices are kept).
EDGE_GRID_MM = 1.5
# Smallest edge contrast K of the active contour, as a fraction of the 1-99 % intensity range.
EDGE_K_FLOOR = 0.002
# Scale (mm) of the fine texture (:func:`local_sd`): the grid it is measured on, and its window.
TEXTURE_MM = 1.5
# Tumour candidates holding this fraction of fat-density voxels are fat (on the real CT, 2.5
# of its 3.1 mL of candidates: fissure and hilar fat, 6 and 24 % of their voxels below -30
# HU on the lightly smoothed image; a 3-voxel fat sheet blurred into the liver, 4 %), not
# a lesion: a cyst at 0 HU has 0.1 % there at a smoothed noise SD of 10 HU.
FAT_CANDIDATE_FRACTION = 0.02
# A candidate holding fat may still hold a lesion that merely touches fat (a lesion at the
# surface, next to fat the liver mask enclosed at its mouth): its part farther than
# FAT_MARGIN_MM from the fat is kept when it is solid, holding a voxel LESION_CORE_MM deep
# (a 113 mL metastasis touching the surface of the real CT, merged with 8 mL of fat, had
# been dropped whole; the partial-volume rim of a fat sheet is thinner than this).
FAT_MARGIN_MM = 3.0
LESION_CORE_MM = 4.0
# CT lesions at the liver's surface, which the liver's intensity window leaves out: blobs of
# tissue darker than the window yet denser than fluid (bile, effusion and cysts lie below
# FLUID_HU), with a core SURFACE_LESION_CORE_MM deep (no sheet of muscle or bowel wall), at
# least SURFACE_LESION_MIN_ML, and SURFACE_LESION_MIN_CONTACT of their border on the liver.
# On the real CT and the phantoms, the blobs that were liver touched it over 0.47-0.88 of
# their border, every other blob over 0.29 or less.
FLUID_HU = 20.0
SURFACE_LESION_CORE_MM = 6.0
SURFACE_LESION_MIN_ML = 5.0
SURFACE_LESION_MIN_CONTACT = 0.4
# The densest median of the air below AIR_HU that is still lung: lung bases, averaged with
# the diaphragm in thick or soft-kernel slices, measure -600 HU or more (the real CT's:
# -618, and -598 smoothed by 2 mm, where a bound of -600 had lost them).
LUNG_MAX_MEDIAN_HU = -520.0


# --------------------------------------------------------------------- input checks
def check_ct_intensities(arr, advice="Use --modality mr with one or more --seed points inside "
                                     "the liver."):
    """Raise InputError when intensities do not look like Hounsfield units.

    A CT in HU has air at about -1000 HU around the body; MR intensities are
    non-negative (often floats rescaled to 0-1000 or so). ``advice`` ends the
    message (what to do with an MR scan).

    Examples
    --------
    >>> import numpy as np
    >>> check_ct_intensities(np.array([-1000.0, 0.0, 60.0]))
    >>> check_ct_intensities(np.array([0.0, 40.0, 855.0]))
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the intensities range from 0 to 855, not like a CT in Hounsfield units (no air at about -1000 HU): is this an MR scan? Use --modality mr with one or more --seed points inside the liver.
    """
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if lo > -800.0:
        # Air stored near 0 and bone above 1500: HU + 1024, a CT whose rescale intercept was
        # dropped on export. (An MR may look alike: both are said.)
        offset = (" Or is it a CT stored without its rescale intercept (air near 0 instead "
                  "of -1000 HU)? Then subtract 1024 from its values." if -50.0 <= lo <= 50.0
                  and hi >= 1500.0 else "")

        def shown(v):
            # Whole numbers hid a scan rescaled to 0-1: "range from 0 to 0" on a scan that
            # is not blank; small values keep three significant digits.
            return f"{v:.0f}" if abs(v) >= 10 else f"{v:.3g}"

        raise InputError(
            f"the intensities range from {shown(lo)} to {shown(hi)}, not like a CT in Hounsfield "
            f"units (no air at about -1000 HU): is this an MR scan? {advice}{offset}"
        )


# --------------------------------------------------------------------- geometry
def to_lps(image):
    """Image reoriented so that array axes run x to patient left, y posterior, z superior.

    Returns (image, its original orientation code). The voxels keep their
    pixel type, and an LPS image is returned as it is: a float copy of a
    whole thin-slice CT would hold 4 bytes per voxel for the whole run, so
    each step casts only what it reads (:func:`as_float32`).
    """
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())
    return (image if code == "LPS" else sitk.DICOMOrient(image, "LPS")), code


def as_float32(img):
    """``img`` as 32-bit float (itself when it already is)."""
    return img if img.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(img, sitk.sitkFloat32)


def back_to_input_grid(mask_lps, image, code):
    """Put a mask made on the LPS-reoriented grid back on ``image``'s grid, exactly."""
    m = mask_lps if code == "LPS" else sitk.DICOMOrient(mask_lps, code)
    same = (m.GetSize() == image.GetSize()
            and np.allclose(m.GetOrigin(), image.GetOrigin(), atol=1e-3)
            and np.allclose(m.GetDirection(), image.GetDirection(), atol=1e-6)
            and np.allclose(m.GetSpacing(), image.GetSpacing(), atol=1e-6))
    if same:
        m.CopyInformation(image)
        return sitk.Cast(m, sitk.sitkUInt8)
    # Voxel centres coincide after a permutation of axes; nearest neighbour is exact.
    return sitk.Cast(sitk.Resample(m, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0),
                     sitk.sitkUInt8)


def to_index(points, source, target):
    """(i, j, k) indices of ``source`` as (z, y, x) indices of ``target`` (clipped)."""
    size = target.GetSize()
    out = []
    for p in points:
        phys = source.TransformIndexToPhysicalPoint(tuple(int(v) for v in p))
        c = target.TransformPhysicalPointToContinuousIndex(phys)
        ijk = [min(max(int(round(v)), 0), n - 1) for v, n in zip(c, size)]
        out.append((ijk[2], ijk[1], ijk[0]))
    return out


def correct_bias(img, shrink_mm=6.0, iterations=(50, 40, 30)):
    """MR intensity inhomogeneity removed with N4 (estimated on a ~6 mm grid).

    The coil's smooth multiplicative bias makes one organ brighter on one
    side than the other; N4 estimates it inside the body (Otsu) on a small
    copy, and the field is divided out of the full-resolution image.
    """
    img = as_float32(img)
    factors = [max(1, int(round(shrink_mm / s))) for s in img.GetSpacing()]
    small = sitk.Shrink(img, factors)
    mask = sitk.OtsuThreshold(small, 0, 1, 200)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    n4.Execute(small, mask)
    log_field = n4.GetLogBiasFieldAsImage(img)
    return sitk.Cast(img / sitk.Exp(log_field), sitk.sitkFloat32)


def _bin_factors(img, spacing_mm):
    """Whole factors (x, y, z) by which :func:`_bin_shrink` averages ``img``."""
    return [max(1, int(round(spacing_mm / s))) for s in img.GetSpacing()]


def voxels_averaged(img, spacing_mm):
    """How many voxels of ``img`` one voxel of its average down to about ``spacing_mm``
    holds (:func:`coarse_grid`, :func:`local_sd`): the noise of that average is the
    voxels' own over the square root of this number."""
    return int(np.prod(_bin_factors(img, spacing_mm)))


def _bin_shrink(img, spacing_mm):
    """Average down (BinShrink) to about ``spacing_mm``; anti-aliased and fast (float32)."""
    img = as_float32(img)  # an integer BinShrink would round the averages
    factors = _bin_factors(img, spacing_mm)
    return sitk.BinShrink(img, factors) if any(f > 1 for f in factors) else img


def coarse_grid(img, spacing_mm):
    """Average down to about ``spacing_mm``, then a median against noise.

    The median is 3 voxels wide along every axis but the slice axis of an
    anisotropic scan (its largest spacing, more than 1.5x the smallest), and
    along that one only when several slices were averaged into each coarse
    voxel. Across the scanner's own slices -- thick MR slices, or the
    2-3 mm slices of a CT kept as they are -- a median spans three slices
    that show other anatomy, and carries tissue across a surface lying
    nearly in the slice plane: on the shared CT (2.5 mm slices) it bridged
    the faint interface between the liver and the heart above it.
    """
    small = _bin_shrink(img, spacing_mm)
    # The median removes the remaining noise and speckle without blurring edges.
    sp = img.GetSpacing()
    slice_axis = int(np.argmax(sp)) if max(sp) > 1.5 * min(sp) else None
    radius = [1 if f > 1 or (axis != slice_axis and s <= 1.5 * spacing_mm) else 0
              for axis, (f, s) in enumerate(zip(_bin_factors(img, spacing_mm),
                                                small.GetSpacing()))]
    return sitk.Median(small, radius) if any(radius) else small


def local_sd(img, coarse, sigma_mm=TEXTURE_MM):
    """Fine-scale texture: the local standard deviation of the full-resolution image.

    Measured within the slices (Gaussian window of ``sigma_mm``; thick
    slices show other anatomy) on the image averaged to about ``sigma_mm`` voxels (finer
    voxels add time, not information), and put on the ``coarse`` grid, whose
    median filter has removed this texture from the intensities. Liver
    parenchyma is smooth at this scale; bowel with its contents and
    mesentery, stomach wall, and muscle with fat are not.
    """
    fine = _bin_shrink(img, sigma_mm)
    a = array(fine, np.float32)
    sp = spacing_zyx(fine)
    # Not across thick slices (the largest spacing, when clearly larger), whatever
    # their orientation (axial CT, coronal MR).
    thick_axis = int(np.argmax(sp)) if sp.max() > 1.5 * sp.min() else None
    sigma = [0.0 if axis == thick_axis else sigma_mm / s for axis, s in enumerate(sp)]
    mean = ndi.gaussian_filter(a, sigma, truncate=2.5)
    mean_sq = ndi.gaussian_filter(a * a, sigma, truncate=2.5)
    sd = like(np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)), fine, np.float32)
    return array(sitk.Resample(sd, coarse, sitk.Transform(), sitk.sitkLinear, 0.0), np.float32)


# --------------------------------------------------------------------- anatomy (CT)
def body_mask(arr):
    body = largest_component(arr > AIR_HU)
    return fill_holes_2d(body)


def lung_mask(arr, body, ref):
    """Large air regions inside the body whose density is that of lung, not gas."""
    voxel_ml = float(np.prod(spacing_zyx(ref))) / 1000.0
    air = body & (arr < AIR_HU)
    lab, n = ndi.label(air)
    if n == 0:
        return np.zeros_like(body)
    sizes = np.bincount(lab.ravel())
    keep = np.zeros(n + 1, bool)
    # Median density separates aerated lung (about -850 HU) from bowel gas (about -1000 HU).
    big = np.flatnonzero(sizes * voxel_ml >= 30.0)
    big = big[big > 0]
    if big.size:
        med = ndi.median(arr, lab, big)
        objs = ndi.find_objects(lab)
        # The top of the body, not of the array: a blank slice padded on top had lost the
        # lung bases that reach it.
        top = int(np.flatnonzero(body.any(axis=(1, 2)))[-1]) + 1
        for lbl, m in zip(big, np.atleast_1d(med)):
            # In an abdominal scan only the lung bases show, cut by the top of the field
            # of view; colon gas of lung-like density lies lower. Whole lungs are large.
            reaches_top = objs[lbl - 1][0].stop >= top
            keep[lbl] = (-975.0 < m < LUNG_MAX_MEDIAN_HU
                         and (reaches_top or sizes[lbl] * voxel_ml >= 500.0))
    lungs = keep[lab]
    if lungs.any():
        # Lungs lie above the abdomen: drop candidates entirely below the lowest large one's top.
        lab2, n2 = ndi.label(lungs)
        zs = ndi.find_objects(lab2)
        tops = np.array([s[0].stop for s in zs])
        top = tops.max()
        for i, s in enumerate(zs, start=1):
            if s[0].stop < top - 150.0 / spacing_zyx(ref)[0]:
                lungs[lab2 == i] = False
    return lungs


def diaphragm_height(lungs):
    """Per column (y, x), the z index of the lungs' under-surface (nz where none).

    Liver lies below the lungs in every column that holds lung. Columns
    without lung get no limit: interpolating the surface under the heart was
    tried and cut off the liver dome in scans whose top slice crosses the
    lung bases (the dome sits between them), while the neck-cutting watershed
    already keeps the heart out.
    """
    has = lungs.any(axis=0)
    bottom = np.argmax(lungs, axis=0)
    return np.where(has, bottom, lungs.shape[0]).astype(np.float32)


def dome_sample(arr, body, lungs, ref):
    """Voxels 1-5 cm below the dome of the right lung (the liver in every phase)."""
    sp = spacing_zyx(ref)
    zc, yc, xc = np.argwhere(body).mean(axis=0)
    right = lungs.copy()
    right[:, :, int(xc):] = False  # LPS: low x is the patient's right
    if right.sum() * np.prod(sp) / 1000.0 < 20.0:
        return None
    has = right.any(axis=0)
    bottom = np.argmax(right, axis=0)
    heights = bottom[has]
    dome = has & (bottom >= np.percentile(heights, 60))
    z = np.arange(arr.shape[0])[:, None, None]
    b = bottom[None]
    below = dome[None] & (z <= b - 10.0 / sp[0]) & (z >= b - 50.0 / sp[0])
    sample = below & body & ~dilate_mm(lungs, ref, 5.0)
    sample &= (arr > SOFT_TISSUE_HU[0]) & (arr < SOFT_TISSUE_HU[1])
    return sample if sample.sum() >= 20 else None


def thickest_right_upper(arr, body, ref, radius_mm=15.0):
    """Without a lung base: a ball around the thickest soft tissue of the upper right abdomen.

    The liver is by far the thickest solid organ on the patient's right in
    the upper half of the body's extent (its right lobe is 10 cm across;
    kidney and back muscles half that). Soft tissue here is above 20 HU and
    below 250 HU (vessels and lesions count: the region is the organ, not
    its parenchyma only). Returns None when there is none.
    """
    zs = np.flatnonzero(body.any(axis=(1, 2)))
    if zs.size == 0:
        return None
    _, _, xc = np.argwhere(body).mean(axis=0)
    region = body & (arr > 20.0) & (arr < SOFT_TISSUE_HU[1])
    region[: int((zs[0] + zs[-1]) / 2)] = False  # LPS: high z is superior
    region[:, :, int(xc):] = False  # LPS: low x is the patient's right
    if not region.any():
        return None
    depth = distance_inside_mm(region, ref)
    centre = np.unravel_index(int(np.argmax(depth)), depth.shape)
    if depth[centre] < radius_mm:
        return None
    return seed_ball(arr.shape, [centre], ref, radius_mm) & region


# --------------------------------------------------------------------- intensity model
def intensity_model(values, lo, hi, k, min_half_width, max_half_width):
    """Window (low, high, centre, sigma) from the histogram mode and a robust sigma."""
    # 400 bins over the range, whatever the units: an absolute floor (0.5) had made MR
    # masks depend on the intensities' scale (x1 and x100 gave Dice 0.88 to each other).
    mode = robust_mode(values, lo, hi, bin_width=(hi - lo) / 400.0)
    if mode is None:
        return None
    sigma = robust_sigma(values, mode, max_half_width)
    if sigma is None:
        sigma = max_half_width / k
    half = float(np.clip(k * sigma, min_half_width, max_half_width))
    return mode - half, mode + half, mode, sigma


def seed_ball(shape, seeds_zyx, ref, radius_mm):
    m = np.zeros(shape, bool)
    for s in seeds_zyx:
        m[s] = True
    return dilate_mm(m, ref, radius_mm) if radius_mm > 0 else m


# --------------------------------------------------------------------- region growing
def _interfaces_mm2(labels, target, ref):
    """Contact area (mm^2; mm in 2D) between region ``target`` and every other label."""
    sp = spacing_zyx(ref)
    face = [float(np.prod(sp)) / s for s in sp]
    n = int(labels.max()) + 1
    area = np.zeros(n)
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        lo, hi = a[:-1], a[1:]
        for x, y in ((lo, hi), (hi, lo)):
            other = y[(x == target) & (y != target) & (y > 0)]
            area += np.bincount(other.ravel(), minlength=n)[:n] * face[axis]
    return area


def split_by_necks(cand, ref, liver_marker, exclude_marker, neck_radius_mm, merge_ratio,
                   reach_mm=None, texture=None, texture_ratio=None, notes=None, speckled=False):
    """Keep the part of ``cand`` that belongs with the liver marker.

    Thick cores (farther than ``neck_radius_mm`` from the candidate edge)
    each flood the candidate region along the distance map (marker
    watershed), so regions meet at the narrowest necks. The liver's regions
    then absorb every neighbour they touch broadly -- contact area at least
    ``merge_ratio`` x the neighbour's volume^(2/3): parts of the same organ,
    such as a thin left lobe -- while organs touching only through a narrow
    neck (spleen, stomach, kidney, bowel) stay out. With exclude points,
    the thick tissue on their side of the thinnest section between them
    and the liver marker is excluded and never absorbed (see
    :func:`_closer_through_thick`); the volume this takes from the seeds'
    own cores goes to ``notes["cut_from_seed_cores_ml"]`` when ``notes`` is
    a dict. With a ``texture`` map (see
    :func:`local_sd`), a neighbour of more than ``SMALL_BASIN_ML`` whose
    median texture exceeds ``texture_ratio`` x the liver's is not absorbed
    either, however broad the contact: bowel, stomach wall or muscle lying
    flat against the liver with the liver's mean intensity. ``speckled``
    candidates (MR grown in a narrow window on noisy voxels) are pitted with
    one-voxel gaps that leave almost no thick core: their thickness -- which
    decides the cores and the thinnest section towards an exclude point -- is
    then measured with those gaps closed in-plane.
    """
    from skimage.segmentation import watershed

    # Thickness is measured with the holes of each slice filled, so that vessels
    # crossing the parenchyma do not cut it into thin pieces.
    dist = distance_inside_mm(cand, ref)
    solid = cand
    if speckled:
        # One-voxel gaps of noisy MR candidates split the liver into crumbs a few voxels
        # thick: its cores were then scattered islands that bowel lying on the liver
        # flooded into (CHAOS case 2), while the liver's own thick parts had no core.
        solid = ndi.binary_closing(cand, _IN_PLANE_CROSS) | cand
    if cand.ndim == 3:
        thick = np.where(cand, distance_inside_mm(fill_holes_2d(solid), ref), 0.0)
    else:
        thick = dist
    core = (thick > neck_radius_mm) & cand
    lab, n = ndi.label(core)
    markers = lab.copy()
    liver_ids = _cores_of(liver_marker, core, lab, ref, neck_radius_mm)
    liver_label, excl_label = n + 1, n + 2
    markers[np.isin(lab, liver_ids)] = liver_label
    if (exclude_marker & cand).any() and (liver_marker & cand).any():
        # Everything thick on the exclude points' side of the thinnest section
        # between them and the seeds is excluded, whichever cores it belongs to:
        # an organ the liver touches broadly is cut off where the contact is thinnest.
        to_liver = _closer_through_thick(cand, thick, liver_marker & cand,
                                         exclude_marker & cand, ref)
        markers[core & ~to_liver] = excl_label
        if notes is not None:
            cut = np.count_nonzero(np.isin(lab, liver_ids) & ~to_liver)
            notes["cut_from_seed_cores_ml"] = cut * float(np.prod(spacing_zyx(ref))) / 1000.0
    elif notes is not None:
        notes["cut_from_seed_cores_ml"] = 0.0
    markers[liver_marker & cand] = liver_label
    markers[exclude_marker & cand] = excl_label
    ws = watershed(-dist, markers=markers, mask=cand)
    vol = np.bincount(ws.ravel(), minlength=n + 3) * float(np.prod(spacing_zyx(ref)))
    blocked = np.zeros(n + 3, bool)
    blocked[excl_label] = True
    blocked[np.unique(ws[exclude_marker & cand])] = True
    blocked[[0, liver_label]] = True
    if texture is not None and texture_ratio is not None:
        blocked |= _rougher_than_liver(ws, cand, texture, liver_label, vol, texture_ratio)
    while True:
        area = _interfaces_mm2(ws, liver_label, ref)
        ratio = np.zeros_like(area)
        ok = vol[: area.size] > 0
        ratio[ok] = area[ok] / vol[: area.size][ok] ** ((cand.ndim - 1.0) / cand.ndim)
        ratio[blocked[: area.size]] = 0
        merge = np.flatnonzero(ratio >= merge_ratio)
        if merge.size == 0:
            break
        ws[np.isin(ws, merge)] = liver_label
        blocked[merge] = True
    region = ws == liver_label
    if reach_mm is not None:
        # Opening by reconstruction: thin sheets (abdominal wall, diaphragm) that touch
        # the liver broadly have no core of their own; keep only what lies within
        # reach of a liver core.
        liver_core = core & region
        if liver_core.any():
            region &= distance_outside_mm(liver_core, ref) <= reach_mm
    return region


def _cores_of(marker, core, lab, ref, neck_radius_mm):
    """Labels of the thick cores ``marker`` lies in.

    A point next to a vessel or lesion lies in a thin part of the
    candidates: the nearest core within a few neck radii is then its core.
    """
    ids = np.unique(lab[marker & core])
    ids = ids[ids > 0]
    if ids.size == 0 and marker.any() and core.any():
        d = distance_outside_mm(marker, ref)
        near = core & (d <= 3.0 * neck_radius_mm)
        if near.any():
            ids = np.array([lab[near][np.argmin(d[near])]])
    return ids.astype(int)


def _closer_through_thick(cand, thick, liver_points, exclude_points, ref):
    """Where in ``cand`` the liver points are nearer than the exclude points.

    Nearer along paths inside ``cand`` whose steps cost 1 / thickness^2
    (``thick``: the thickness with vessels filled, in mm): passing a narrow
    part is dear, so the two sides meet where the region between them is
    thinnest.
    """
    from skimage.graph import MCP_Geometric

    costs = np.where(cand, 1.0 / np.maximum(thick, 1.0) ** 2, -1.0)
    reach = []
    for points in (liver_points, exclude_points):
        mcp = MCP_Geometric(costs, sampling=tuple(spacing_zyx(ref)))
        cumulative, _ = mcp.find_costs([tuple(p) for p in np.argwhere(points)])
        reach.append(cumulative)
    return reach[0] <= reach[1]


SMALL_BASIN_ML = 2.0
# Closing element for one-voxel gaps within each slice (not across thick MR slices).
_IN_PLANE_CROSS = np.zeros((3, 3, 3), bool)
_IN_PLANE_CROSS[1] = ndi.generate_binary_structure(2, 1)


def _rougher_than_liver(ws, cand, texture, liver_label, vol_mm3, ratio):
    """Basins whose median texture exceeds ``ratio`` x the liver basin's.

    Medians are taken away from the candidates' edge, where the texture map
    sees the neighbouring tissue. Small basins are never flagged: their
    statistics are noisy and they change the volume little.
    """
    n = vol_mm3.size
    inner = ndi.binary_erosion(cand)
    labels = np.where(inner, ws, 0)
    counts = np.bincount(labels.ravel(), minlength=n)[:n]
    # Basins with too few inner voxels are measured over all their voxels.
    in_few = np.isin(ws, np.flatnonzero(counts < 10))
    labels[in_few] = ws[in_few]
    med = np.zeros(n)
    ids = np.flatnonzero(np.bincount(labels.ravel(), minlength=n)[:n])
    ids = ids[ids > 0]
    if ids.size:
        med[ids] = ndi.median(texture, labels, ids)
    if med[liver_label] <= 0:
        # A noise-free (synthetic) liver has no texture to compare with.
        return np.zeros(n, bool)
    rough = (med > ratio * med[liver_label]) & (vol_mm3 / 1000.0 > SMALL_BASIN_ML)
    rough[liver_label] = False
    return rough


def grow(arr, window, allowed, ref, liver_marker, exclude_marker, options, reach_extra_mm=None,
         texture=None, notes=None, speckled=False):
    """The liver region on the coarse grid: voxels of ``arr`` inside the intensity
    ``window`` (low, high) and ``allowed``, connected to ``liver_marker``, cut at necks
    from what lies beyond them (:func:`split_by_necks`).

    ``ref`` is the coarse grid (its spacing turns the mm options into voxels);
    ``exclude_marker`` the balls around exclude points; ``reach_extra_mm`` how far
    beyond the neck radius the region may reach from a thick liver core (None:
    unlimited); ``texture`` the fine-scale texture map keeping out rough
    neighbours; ``notes`` a dict that receives what the neck analysis cut from the
    seeds' own cores; ``speckled`` candidates (noisy MR) are closed in-plane before
    their thickness is measured. Returns a boolean array on the coarse grid.
    """
    cand = allowed & (arr >= window[0]) & (arr <= window[1])
    # A small opening removes single-voxel threads before the neck analysis.
    cand = ndi.binary_opening(cand, iterations=1) | (cand & liver_marker)
    lab, _ = ndi.label(cand)
    ids = np.unique(lab[liver_marker & cand])
    cand = np.isin(lab, ids[ids > 0])
    if not cand.any():
        return cand
    region = split_by_necks(cand, ref, liver_marker & cand, exclude_marker,
                            options.neck_radius_mm, options.merge_ratio,
                            None if reach_extra_mm is None
                            else options.neck_radius_mm + reach_extra_mm,
                            texture, options.merge_texture_ratio, notes, speckled)
    if not region.any():
        return region
    lab, n = ndi.label(region)
    if n > 1:
        ids = np.unique(lab[liver_marker & region])
        ids = ids[ids > 0]
        region = np.isin(lab, ids) if ids.size else largest_component(region)
    return region


def fill_liver(region, ref, fat=None, pocket_radius_mm=0.0, min_contact=0.65,
               max_fat_fraction=0.1):
    """Add vessels and lesions enclosed by (or embedded in) the parenchyma.

    Candidates are the holes of ``region`` (in 3D and in each axial slice)
    and, with ``pocket_radius_mm``, the pockets its closing adds (a lesion
    bulging at the surface). Each candidate is added when at most
    ``max_fat_fraction`` of it is fat (the hilum and fissures hold fat and
    are not liver) and at least ``min_contact`` of its border touches the
    liver (a pocket open to the outside over a wide mouth is not embedded).
    """
    filled = fill_holes_2d(ndi.binary_fill_holes(region))
    if pocket_radius_mm > 0 and region.any():
        closed = ~dilate_mm(~dilate_mm(region, ref, pocket_radius_mm), ref, pocket_radius_mm)
        filled |= fill_holes_2d(closed | region)
    cand = filled & ~region
    lab, n = ndi.label(cand)
    keep = np.zeros(n + 1, bool)
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        comp = lab[grown] == i
        if fat is not None and np.mean(fat[grown][comp]) > max_fat_fraction:
            continue
        border = ndi.binary_dilation(comp) & ~comp
        touching = np.count_nonzero(border & region[grown])
        keep[i] = touching >= min_contact * max(np.count_nonzero(border), 1)
    # Every part of the region stays: which parts are liver was decided where they were
    # grown (keeping the largest alone, the phantom's automatic post-ALPPS liver lost the
    # remnant beyond the transection, 472 mL of 2006, with no warning).
    return region | keep[lab]


def surface_lesions(liver, arr, allowed, ref, window_low, exclude_marker=None):
    """Blobs of lesion-density tissue embedded at the surface of ``liver`` (CT, coarse grid).

    Candidates are the voxels ``allowed`` outside the liver and off
    ``exclude_marker`` between FLUID_HU and ``window_low``; they are split
    into blobs at their necks (marker watershed on the distance map from
    cores SURFACE_LESION_CORE_MM deep, so thinner tissue forms none), and a
    blob is kept when it holds SURFACE_LESION_MIN_ML or more and
    SURFACE_LESION_MIN_CONTACT of its border lies on the liver: a lesion the
    liver wraps, not a neighbour it merely touches. Beyond the scan (or the
    box worked on) counts as not liver, and a blob touching
    ``exclude_marker`` (what the user said is not liver) is never kept.
    """
    from skimage.segmentation import watershed

    out = np.zeros_like(liver, dtype=bool)
    if not liver.any():
        return out
    # Only tissue near the liver can share a border with it: work on its box plus a margin.
    sp = spacing_zyx(ref)
    pad = np.ceil(4 * SURFACE_LESION_CORE_MM / np.asarray(sp)).astype(int)
    idx = np.argwhere(liver)
    box = tuple(slice(max(a - p, 0), b + p + 1) for a, b, p in zip(idx.min(0), idx.max(0), pad))
    cand = allowed[box] & ~liver[box] & (arr[box] >= FLUID_HU) & (arr[box] < window_low)
    if exclude_marker is not None:
        cand &= ~exclude_marker[box]
    cand = ndi.binary_opening(cand)
    dist = ndi.distance_transform_edt(cand, sampling=sp)
    markers, n = ndi.label(dist >= SURFACE_LESION_CORE_MM)
    if n == 0:
        return out
    blobs = watershed(-dist, markers=markers, mask=cand)
    # Padded by one voxel of "not liver": a blob's face cut by the scan's edge or by the
    # box is no contact (a neighbour cut by the field of view had measured 0.47, not 0.24).
    blobs_p = np.pad(blobs, 1)
    liver_p = np.pad(liver[box], 1)
    shell = ndi.binary_dilation(liver_p) & ~liver_p
    refused = np.zeros(n + 1, bool)
    if exclude_marker is not None and exclude_marker[box].any():
        refused[np.unique(blobs_p[ndi.binary_dilation(np.pad(exclude_marker[box], 1))])] = True
    voxel_ml = float(np.prod(sp)) / 1000.0
    keep = np.zeros(n + 1, bool)
    for i in np.unique(blobs_p[shell]):
        if i == 0 or refused[i]:
            continue
        blob = blobs_p == i
        if np.count_nonzero(blob) * voxel_ml < SURFACE_LESION_MIN_ML:
            continue
        border = ndi.binary_dilation(blob) & ~blob
        contact = np.count_nonzero(border & liver_p) / max(np.count_nonzero(border), 1)
        keep[i] = contact >= SURFACE_LESION_MIN_CONTACT
    out[box] = keep[blobs]
    return out


# --------------------------------------------------------------------- full-resolution refinement
def refine(full, coarse_liver, coarse_ref, window_full, allowed_full_fn, band_mm, fat_level=None,
           pocket_radius_mm=0.0, smooth_mm=0.0, edge_iterations=0, bias=None, include=(),
           include_mm=0.0):
    """Re-decide voxels within ``band_mm`` of the coarse boundary on the full grid.

    Works on the bounding box of the liver only, so memory and time do not
    grow with the field of view; the box also takes in ``include_mm``
    around each physical point of ``include`` (tumour seeds: a lesion
    bulging out of the liver is grown on the same crop).
    """
    sd = sitk.SignedMaurerDistanceMap(like(coarse_liver, coarse_ref), insideIsPositive=True,
                                      squaredDistance=False, useImageSpacing=True)
    # Bounding box (full-grid indices) of the coarse liver plus the band.
    idx = np.argwhere(coarse_liver)
    lo_c = idx.min(axis=0)[::-1].tolist()
    hi_c = idx.max(axis=0)[::-1].tolist()
    p0 = coarse_ref.TransformIndexToPhysicalPoint([int(v) for v in lo_c])
    p1 = coarse_ref.TransformIndexToPhysicalPoint([int(v) for v in hi_c])
    c0 = np.array(full.TransformPhysicalPointToContinuousIndex(p0))
    c1 = np.array(full.TransformPhysicalPointToContinuousIndex(p1))
    margin = (band_mm + 2 * max(coarse_ref.GetSpacing())) / np.array(full.GetSpacing())
    size = np.array(full.GetSize())
    lo_f, hi_f = np.minimum(c0, c1) - margin, np.maximum(c0, c1) + margin
    reach = include_mm / np.array(full.GetSpacing())
    for point in include:
        c = np.array(full.TransformPhysicalPointToContinuousIndex(point))
        lo_f, hi_f = np.minimum(lo_f, c - reach), np.maximum(hi_f, c + reach)
    lo = np.clip(np.floor(lo_f), 0, size - 1).astype(int)
    hi = np.clip(np.ceil(hi_f), 0, size - 1).astype(int)
    crop = as_float32(sitk.RegionOfInterest(full, (hi - lo + 1).tolist(), lo.tolist()))
    sdf = array(sitk.Resample(sd, crop, sitk.Transform(), sitk.sitkLinear, -1e3, sitk.sitkFloat32))
    smooth = array(sitk.SmoothingRecursiveGaussian(crop, REFINE_SIGMA_MM))
    inside = sdf > band_mm
    band = np.abs(sdf) <= band_mm
    w_lo, w_hi = window_full
    if bias is not None:
        # The window follows the liver's own slow intensity drift (MR coil bias).
        f = array(sitk.Resample(bias, crop, sitk.Transform(), sitk.sitkLinear, 1.0,
                                sitk.sitkFloat32))
        w_lo, w_hi = w_lo * f, w_hi * f
    liver = inside | (band & (smooth >= w_lo) & (smooth <= w_hi))
    liver &= allowed_full_fn(crop)
    # Each part holding the coarse liver's interior stays (after ALPPS stage 1 the
    # transection divides it; the largest alone lost a side): crumbs of the band go.
    liver = parts_holding(ndi.binary_opening(liver, iterations=1) | inside, inside)
    crop_fat = None if fat_level is None else smooth < fat_level
    liver = fill_liver(liver, crop, crop_fat, pocket_radius_mm)
    if edge_iterations > 0 and liver.any():
        liver = snap_to_edges(liver, crop, edge_iterations, core=inside)
    if smooth_mm > 0:
        # The surface is smoothed at the scale of a few voxels (Gaussian of the mask at
        # 0.5, which keeps flat boundaries in place): voxel-wise decisions leave a
        # ragged edge that no reader draws.
        sigma_vox = [smooth_mm / s for s in spacing_zyx(crop)]
        soft = ndi.gaussian_filter(liver.astype(np.float32), sigma_vox)
        liver = parts_holding(soft >= 0.5, inside)
    out = np.zeros(full.GetSize()[::-1], np.uint8)
    out[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = liver
    return out, (lo, hi), smooth, liver


def random_walk(data, labels, beta, step):
    """Probability that a random walk from each voxel reaches label 1 before label 2.

    The random walker of Grady (2006), solved for the unlabelled voxels only: a step
    between neighbours has weight exp(-beta g^2), g the change of ``data`` over the step
    divided by ``step`` (per axis; 1 for the finest), and the probabilities solve the
    graph's Dirichlet problem (conjugate gradients, Jacobi preconditioner). scikit-image's
    ``random_walker`` builds the graph of every voxel of the array: 7 GB for a 1 mm MR
    around a liver, where the unlabelled band needs a few hundred MB.

    Voxels held to the rest by edges alone (weights near 0) barely move the residual, so
    conjugate gradients leave them where they started: from 0 (scikit-image's start), a
    relative residual of 1e-3 put 1,578 voxels of CHAOS case 1 (16 mL) on the background
    side that an exact solve puts in the liver. Started from 0.5 and run to 1e-5, 35
    voxels differ from the exact solve (in 0.7 s; the exact solve took 2.7 s). An island
    joined to everything by such edges only stays at 0.5, undecided: not liver, unless the
    liver encloses it (its holes are filled).

    Parameters
    ----------
    data : ndarray of float
    labels : ndarray of int
        0 unlabelled, 1 and 2 the two labels.
    beta : float
    step : sequence of float
        The voxel size along each axis over the smallest.

    Returns
    -------
    ndarray of float or None
        1 on label 1, 0 on label 2, the probability between; None when the solver did not
        converge.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.zeros((1, 1, 5)); data[..., 3:] = 10.0        # an edge before voxel 3
    >>> labels = np.array([[[1, 0, 0, 0, 2]]])
    >>> p = random_walk(data, labels, beta=1.0, step=(1, 1, 1))
    >>> [round(float(v), 3) for v in p.ravel()]
    [1.0, 1.0, 1.0, 0.0, 0.0]
    """
    from scipy import sparse
    from scipy.sparse.linalg import LinearOperator, cg

    labels = np.asarray(labels)
    unknown = labels == 0
    out = (labels == 1).astype(np.float64)
    if not unknown.any():
        return out
    if not (labels > 0).any():
        return out  # no walk ends anywhere (every other unlabelled part touches a label)
    n = int(unknown.sum())
    index = np.full(labels.shape, -1, np.int64)
    index[unknown] = np.arange(n)
    rows, cols, weights = [], [], []
    diagonal = np.zeros(n)
    rhs = np.zeros(n)
    data = np.asarray(data, np.float64)
    for axis in range(data.ndim):
        lo = [slice(None)] * data.ndim
        hi = [slice(None)] * data.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        # Only steps that leave an unlabelled voxel enter the system.
        keep = unknown[lo] | unknown[hi]
        g = (data[hi][keep] - data[lo][keep]) / float(step[axis])
        w = np.exp(-beta * g * g) + 1e-10
        i, j = index[lo][keep], index[hi][keep]
        li, lj = labels[lo][keep], labels[hi][keep]
        both = (i >= 0) & (j >= 0)
        rows += [i[both], j[both]]
        cols += [j[both], i[both]]
        weights += [-w[both], -w[both]]
        for a, b in ((i, lj), (j, li)):
            # Each unlabelled end: its degree, and its pull towards a labelled neighbour.
            mine = a >= 0
            np.add.at(diagonal, a[mine], w[mine])
            to_liver = mine & (b == 1)
            np.add.at(rhs, a[to_liver], w[to_liver])
    rows, cols, weights = (np.concatenate(x) for x in (rows, cols, weights))
    matrix = sparse.csr_array((weights, (rows, cols)), shape=(n, n))
    matrix = matrix + sparse.diags_array(diagonal)
    jacobi = LinearOperator((n, n), matvec=lambda v: v / diagonal, dtype=np.float64)
    x, info = cg(matrix, rhs, x0=np.full(n, 0.5), rtol=1e-5, maxiter=20 * int(n ** 0.5) + 1000,
                 M=jacobi)
    if info != 0:
        return None
    out[unknown] = np.clip(x, 0.0, 1.0)
    return out


def random_walker_boundary(crop, liver, inside=None, outside=None, beta=40.0, core_mm=6.0,
                           band_mm=8.0, far_k=5.0):
    """Re-decide the boundary of a liver mask (MR) with a random walker.

    Voxels deeper than ``core_mm`` inside the mask are liver, voxels farther
    than ``band_mm`` outside it and voxels of the band more than ``far_k``
    robust SDs from the liver's level are not; each voxel between goes to
    the side a random walk from it most likely reaches first, moving freely
    within even tissue and hardly across edges (weights exp(-beta g^2), g the
    step's intensity change in liver SDs per in-plane voxel). Unlike a window
    it keeps liver whose level drifts (the dark dome, a coil's fall-off) when
    nothing but the liver lies between, and a leak into bowel of the liver's
    level, reached through a narrow contact but surrounded by darker or
    brighter content, goes to the background.

    Parameters
    ----------
    crop : SimpleITK.Image
        The full-resolution image around the liver.
    liver : ndarray of bool
        The mask on ``crop``'s grid (z, y, x).
    inside, outside : ndarray of bool, optional
        Voxels that must stay liver (seed balls) or background (exclude points).

    Returns
    -------
    ndarray of bool
        The new mask: the walker's parts that hold liver voxels, holes filled.
        The very object given (``liver``) when the walker did not run: no voxel deeper
        than ``core_mm``, nothing clearly outside, or no convergence.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.full((12, 60, 60), 50.0, np.float32)
    >>> a[:, 10:50, 10:50] = 300.0                      # the liver
    >>> a += np.random.default_rng(0).normal(0, 10, a.shape).astype(np.float32)
    >>> img = sitk.GetImageFromArray(a); img.SetSpacing((1.25, 1.25, 5.0))
    >>> rough = np.zeros(a.shape, bool); rough[:, 13:47, 13:47] = True   # 3 voxels in
    >>> new = random_walker_boundary(img, rough)
    >>> int(rough[6].sum()), bool(new[6].sum() > 0.97 * 1600)    # of the 40 x 40 square
    (1156, True)
    >>> bool(new[6, 10:50, 10:50].sum() == new[6].sum())         # none outside it
    True
    """
    sp = np.array(spacing_zyx(crop), float)
    core = distance_inside_mm(liver, crop) > core_mm
    if inside is not None:
        core |= inside
    if not core.any():
        return liver
    # A median against the speckle, not across thick slices (their voxels are no neighbours).
    radius_xyz = [0 if s > 1.5 * sp.min() else 1 for s in sp[::-1]]
    arr = array(sitk.Median(as_float32(crop), radius_xyz), np.float32)
    values = arr[core]
    level = float(np.median(values))
    sd = max(1.4826 * float(np.median(np.abs(values - level))), 1e-6 * max(abs(level), 1.0))
    data = (arr - level) / sd
    labels = np.zeros(arr.shape, np.int8)
    labels[core] = 1
    labels[distance_outside_mm(liver, crop) > band_mm] = 2
    labels[~core & (np.abs(data) > far_k)] = 2
    if outside is not None:
        labels[outside] = 2
    if not (labels == 2).any():
        return liver
    liver_prob = random_walk(data, labels, beta, sp / sp.min())
    if liver_prob is None:
        return liver
    new = ndi.binary_fill_holes(liver_prob > 0.5)
    lab, n = ndi.label(new)
    keep = np.unique(lab[core & new])
    return np.isin(lab, keep[keep > 0])


def snap_to_edges(liver, crop, iterations, contrast_k=3.0, curvature=1.0, core=None):
    """A short geodesic active contour: the surface moves onto the nearest strong edge.

    Voxel-wise window decisions leave the surface wherever a boundary voxel's
    partial-volume mix happens to cross the window limit: too far in against
    dark fat, too far out into tissue of liver-like intensity. The contour
    starts from that surface and, for a few iterations (no balloon force),
    is drawn by the image gradient onto the edge -- the steepest change,
    i.e. the half-way level between the liver and its surroundings -- while
    a curvature term keeps it smooth. The edge-stopping image is
    1 / (1 + (|grad| / K)^2), with K = ``contrast_k`` times the median
    gradient more than 5 mm inside the mask (its noise level; the whole
    crop's for an object too small to have such an inside), so it adapts to
    CT and MR intensity scales alike; K is at least ``EDGE_K_FLOOR`` of the
    1-99 % intensity range. ``curvature`` weighs the smoothing term (0 for
    objects a few voxels wide, which it would shrink). The largest part of the
    result is returned, or with ``core`` each part holding its voxels. A crop thinner than
    4 voxels along an axis is returned unchanged.
    """
    if min(crop.GetSize()) < 4:
        # The recursive Gaussian derivative needs 4 voxels along every axis.
        return liver
    # Run on a grid of at least EDGE_GRID_MM in-plane (a 512x512 scan is averaged 2x2):
    # the time stays that of a 256x256 scan, and the level set is interpolated back.
    sx, sy, _ = crop.GetSpacing()
    factors = [max(1, int(round(EDGE_GRID_MM / s))) for s in (sx, sy)] + [1]
    img = as_float32(crop)
    # Level set negative inside, in voxels of the crop; the -0.5 puts the zero level
    # half-way between the last voxel inside and the first outside, along every axis.
    init = sitk.SignedMaurerDistanceMap(like(liver, crop), insideIsPositive=False,
                                        squaredDistance=False, useImageSpacing=False)
    init = sitk.Cast(init, sitk.sitkFloat32) - 0.5
    shrunk = any(f > 1 for f in factors)
    if shrunk:
        # Padded to whole bins (edge values repeated), so that no row is dropped; the
        # distance is interpolated, not thresholded, so the start surface keeps its
        # sub-bin position.
        pad = [(-n) % f for n, f in zip(crop.GetSize(), factors)]
        img = sitk.BinShrink(sitk.ZeroFluxNeumannPad(img, [0, 0, 0], pad), factors)
        init = sitk.Resample(sitk.ZeroFluxNeumannPad(init, [0, 0, 0], pad), img,
                             sitk.Transform(), sitk.sitkLinear, 1e3, sitk.sitkFloat32)
    small = array(init) < 0
    g = array(sitk.GradientMagnitudeRecursiveGaussian(img, REFINE_SIGMA_MM), np.float32)
    inner = erode_mm(small, img, 5.0)
    k = contrast_k * float(np.median(g[inner] if inner.any() else g))
    # A noise-free image (synthetic) has no gradient inside: K then falls to a small
    # fraction of the intensity range, or every faint blur tail would stop the contour.
    # On the shared real scans K is 5-25x this floor, on the phantoms 3-11x.
    p1, p99 = np.percentile(array(img), [1, 99])
    k = max(k, EDGE_K_FLOOR * float(p99 - p1), 1e-6)
    feature = like(1.0 / (1.0 + (g / k) ** 2), img, np.float32)
    gac = sitk.GeodesicActiveContourLevelSetImageFilter()
    gac.SetPropagationScaling(0.0)
    gac.SetCurvatureScaling(float(curvature))
    gac.SetAdvectionScaling(1.0)
    gac.SetMaximumRMSError(0.002)
    gac.SetNumberOfIterations(int(iterations))
    level = gac.Execute(init, feature)
    if shrunk:
        level = sitk.Resample(level, crop, sitk.Transform(), sitk.sitkLinear, 1e3,
                              sitk.sitkFloat32)
    out = array(level) < 0
    if not out.any():
        return liver
    return largest_component(out) if core is None else parts_holding(out, core)


def local_level(arr, region, ref, sigma_mm=15.0, min_weight=0.05):
    """The Gaussian-weighted mean (``sigma_mm``) of ``arr`` over ``region`` at every voxel.

    Returns (level, known): ``known`` where the region's Gaussian weight
    exceeds ``min_weight`` (near enough to say), ``level`` 0 elsewhere.
    """
    sigma = [sigma_mm / s for s in spacing_zyx(ref)]
    w = ndi.gaussian_filter(region.astype(np.float32), sigma)
    m = ndi.gaussian_filter(np.where(region, arr, 0).astype(np.float32), sigma)
    known = w > min_weight
    return np.where(known, m / np.maximum(w, 1e-6), 0.0), known


def bias_field(arr, region, ref, sigma_mm=15.0, min_weight=0.05):
    """The liver's slow multiplicative intensity drift, as a factor around 1 (coarse grid).

    The :func:`local_level` of ``region`` divided by the region's median; 1
    where the region is too far away to say.
    """
    level, known = local_level(arr, region, ref, sigma_mm, min_weight)
    median = max(float(np.median(arr[region])), 1e-6)
    f = np.where(known, level / median, 1.0)
    return like(f.astype(np.float32), ref, np.float32)


def find_tumors(smooth_crop, liver_crop, model, ref_crop, min_ml, fat_level=None):
    """Hypo-attenuating regions inside the liver: well below the liver's own intensity.

    With ``fat_level`` (CT), a region with ``FAT_CANDIDATE_FRACTION`` or more of
    its voxels below it is fat in a fissure or at the hilum that the liver
    mask enclosed, not a lesion (a cyst, the darkest lesion, lies near 0-20
    HU); only its solid part farther than FAT_MARGIN_MM from the fat is kept
    (a lesion that touches such fat).
    """
    centre, sigma = model
    thr = centre - max(3.5 * sigma, 25.0)
    inner = erode_mm(liver_crop, ref_crop, 3.0)
    cand = liver_crop & (smooth_crop < thr)
    cand = ndi.binary_opening(cand, iterations=1)
    lab, n = ndi.label(cand)
    if n == 0:
        return cand
    voxel_ml = float(np.prod(ref_crop.GetSpacing())) / 1000.0
    sizes = np.bincount(lab.ravel()) * voxel_ml
    inner_count = np.bincount(lab.ravel(), weights=inner.ravel().astype(float), minlength=n + 1)
    keep = (sizes >= min_ml) & (inner_count > 0)
    fatty = np.zeros(n + 1, bool)
    if fat_level is not None:
        fat = smooth_crop < fat_level
        fat_count = np.bincount(lab.ravel(), weights=fat.ravel(), minlength=n + 1)
        count = np.bincount(lab.ravel(), minlength=n + 1)
        fatty = keep & (fat_count >= FAT_CANDIDATE_FRACTION * count)
        keep &= ~fatty
    keep[0] = fatty[0] = False
    found = keep[lab]
    if fatty.any():
        found |= _solid_parts(fatty[lab] & ~dilate_mm(fat, ref_crop, FAT_MARGIN_MM),
                                        ref_crop, min_ml, inner)
    return found


def _solid_parts(cand, ref, min_ml, inner):
    """The parts of ``cand`` of ``min_ml`` or more that hold a voxel LESION_CORE_MM deep."""
    lab, n = ndi.label(cand)
    if n == 0:
        return cand
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0
    deep = erode_mm(cand, ref, LESION_CORE_MM) & inner
    keep = ((np.bincount(lab.ravel(), minlength=n + 1) * voxel_ml >= min_ml)
            & (np.bincount(lab.ravel(), weights=deep.ravel(), minlength=n + 1) > 0))
    keep[0] = False
    return keep[lab]


def lesion_level(smooth_crop, ref_crop, seed_zyx, radius_mm=3.0):
    """(median intensity within ``radius_mm`` of a click, that ball as a mask): the
    level a lesion is grown from."""
    ball = np.zeros(smooth_crop.shape, bool)
    ball[seed_zyx] = True
    ball = dilate_mm(ball, ref_crop, radius_mm)
    return float(np.median(smooth_crop[ball])), ball


def grow_lesion(smooth_crop, liver_crop, ref_crop, seed_zyx, liver_centre, liver_sigma,
                margin_mm=20.0, min_half_width=15.0):
    """A lesion grown from a click inside it (CT or MR; darker or brighter than the liver).

    The lesion's intensity is the median within 3 mm of the click; the
    region takes the connected voxels within max(2.5 liver sigmas,
    ``min_half_width``) of it, never past the midpoint towards the liver's
    own intensity (so it stops at the parenchyma), inside the liver or
    within ``margin_mm`` of it -- or of the click, when the liver mask left
    out a large lesion bulging at the surface; a region that does not come
    within ``LESION_TOUCH_MM`` of the liver is not a liver lesion (empty
    result). The lesion is the part of that region holding the click after
    a small opening (or the region itself when the opening leaves the click
    only its own ball: a thin enhancing rim). Outside the liver mask, what
    it meets through a neck is cut off (:func:`_cut_lesion_at_necks`). Holes
    (necrosis, vessels inside the lesion) are filled, in 3D and in each
    slice.
    """
    level, ball = lesion_level(smooth_crop, ref_crop, seed_zyx)
    half = max(2.5 * liver_sigma, min_half_width)
    lo, hi = level - half, level + half
    mid = 0.5 * (level + liver_centre)
    if level < liver_centre:
        hi = min(hi, mid)
    else:
        lo = max(lo, mid)
    to_liver = distance_outside_mm(liver_crop, ref_crop)
    allowed = to_liver <= margin_mm + float(to_liver[seed_zyx])
    cand = allowed & (smooth_crop >= lo) & (smooth_crop <= hi)
    lab, _ = ndi.label(cand)
    if lab[seed_zyx] == 0:
        return np.zeros_like(cand)
    region = lab == lab[seed_zyx]
    # The part holding the click: the opening may cut a small lesion from vessels of its
    # level that it touched, and these, larger, are not what was clicked.
    parts, _ = ndi.label(ndi.binary_opening(region) | ball & region)
    lesion = parts == parts[seed_zyx]
    if not (lesion & ~ball).any():
        # The opening left the click only its ball: a rim thinner than the opening (an
        # enhancing rim around necrosis) is the lesion, as grown.
        lesion = region
    lesion = _cut_lesion_at_necks(lesion, ball, liver_crop, ref_crop, seed_zyx)
    if not lesion.any() or float(to_liver[lesion].min()) > LESION_TOUCH_MM:
        # Not a liver lesion (a click in the kidney or bowel beside the liver).
        return np.zeros_like(cand)
    return ndi.binary_fill_holes(fill_holes_2d(lesion))


def _cut_lesion_at_necks(lesion, ball, liver_crop, ref_crop, seed_zyx):
    """``lesion`` without the neighbours it meets through necks outside the liver mask.

    A neighbour of the lesion's level (the heart or the stomach wall beside an
    enhancing lesion at the surface) joins it through a neck: the lesion is
    split at necks (:func:`split_by_necks`: cores deeper than
    ``LESION_NECK_MM`` from its boundary voxels, neighbours rejoining on
    broad contact), and what was cut off comes back when at least half of it
    lies inside ``liver_crop`` -- a lobe of the lesion, not a neighbour. A
    click no deeper than a core cannot tell its own part: the lesion is kept
    whole. Works on the lesion's bounding box (the crop around the liver can
    be twenty times larger).
    """
    # Widened by a voxel within the crop: past its end, RegionOfInterest fails.
    box = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n))
                for s, n in zip(ndi.find_objects(lesion.astype(np.uint8))[0], lesion.shape))
    ref_box = sitk.RegionOfInterest(
        ref_crop, [s.stop - s.start for s in box[::-1]], [s.start for s in box[::-1]])
    part, click = lesion[box], tuple(c - s.start for c, s in zip(seed_zyx, box))
    if distance_inside_mm(fill_holes_2d(part), ref_box)[click] <= LESION_NECK_MM:
        return lesion
    kept = split_by_necks(part, ref_box, ball[box] & part, np.zeros_like(part),
                          LESION_NECK_MM, merge_ratio=0.2)
    pieces, n = ndi.label(part & ~kept)
    if n:
        inside = ndi.mean(liver_crop[box], pieces, np.arange(1, n + 1))
        kept |= np.isin(pieces, np.flatnonzero(np.asarray(inside) >= 0.5) + 1)
    out = np.zeros_like(lesion)
    out[box] = kept
    return out


def adaptive_candidates(arr, start, allowed, ref, rel_half_width, sigma_mm=15.0,
                        iterations=15):
    """Liver-like voxels connected to ``start``, judged against the local liver level.

    MR intensities drift smoothly across the liver (coil bias), so one global
    window either misses the darker side or takes in the neighbours of the
    brighter one. Here the expected liver intensity at each voxel is the
    :func:`local_level` (``sigma_mm``) of the region grown so far, and a
    voxel joins when it lies within ``rel_half_width`` of it (a fraction:
    the bias is multiplicative); the region grows by reconstruction until it
    stops changing.
    """
    region = start.copy()
    for _ in range(iterations):
        mu, known = local_level(arr, region, ref, sigma_mm)
        ok = known & allowed & (np.abs(arr - mu) <= rel_half_width * mu)
        lab, _ = ndi.label(ok | region)
        ids = np.unique(lab[region])
        grown = np.isin(lab, ids[ids > 0])
        if grown.sum() <= region.sum():
            break
        region = grown
    return region
