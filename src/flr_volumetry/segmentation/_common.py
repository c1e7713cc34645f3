"""Options, result type and small image helpers shared by the segmentation backends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from .._options import check_field_types
from ..errors import InputError

__all__ = ["SegmentationOptions", "SegmentationResult"]

BACKENDS = ("classic", "totalsegmentator")
MODALITIES = ("ct", "mr")
# Whole adult livers measure within this range (mL); outside it a mask is checked.
ADULT_LIVER_ML = (500.0, 5000.0)


# The coarsest grid the liver is grown on that still resolves its lobes.
MAX_COARSE_SPACING_MM = 20.0


@dataclass(frozen=True)
class SegmentationOptions:
    """How the liver is segmented.

    Parameters
    ----------
    backend : {'classic', 'totalsegmentator'}
        ``classic``: the embedded image-analysis pipeline (no model weights).
        ``totalsegmentator``: its Python API, when installed with its weights.
    coarse_spacing_mm : float
        Grid on which the liver is found before the boundary is refined at
        full resolution; coarser is faster.
    neck_radius_mm : float
        Bridges of liver-like tissue thinner than twice this radius (to the
        heart, stomach, spleen, kidney, bowel) are cut.
    reach_extra_mm : float or None
        The liver keeps only voxels within ``neck_radius_mm`` + this of its
        thick core (opening by reconstruction: drops thin sheets of muscle
        lying on it). None: 8 mm on CT, unlimited on MR, whose thick slices
        make thin sheets indistinguishable.
    merge_ratio : float
        Regions split off at a neck rejoin the liver when their contact area
        with it is at least this fraction of their volume^(2/3) (a broad
        contact: the same organ).
    merge_texture_ratio : float or None
        A neighbour split off at a neck does not rejoin the liver, however
        broad the contact, when its fine-scale texture (median local standard
        deviation at full resolution) exceeds this multiple of the liver's:
        bowel, stomach wall or muscle with the liver's mean intensity. None
        turns the test off. On the shared real scans the liver's own
        neighbouring regions measured 0.7-1.26x the liver's texture and the
        bowel and stomach that leaked in 1.44-1.75x.
    window_k : float
        Half-width of the liver intensity window in robust standard
        deviations of the liver's own intensities.
    pocket_radius_mm : float
        Lesions bulging at the liver surface are added when a closing of
        this radius embeds them in the liver (CT; 0 turns it off).
    smooth_mm : float
        Gaussian width (mm) with which the final surface is smoothed (0: off).
    edge_iterations : int
        Iterations of a short geodesic active contour that moves the refined
        surface onto the nearest intensity edge (0: off).
    mr_bias_correction : bool
        MR: remove the coil's smooth intensity bias with N4 first (slower, a few
        seconds; off by default: on the CHAOS T2 cases it did not help).
    mr_two_pass : bool
        MR: re-estimate the intensity model from a first, conservative
        region (grown with ``mr_first_pass_k`` sigmas), then grow again.
    mr_first_pass_k : float
    ct_two_pass : bool
        CT: re-estimate the intensity model from the interior of the first
        grown region and grow again from the seeds (or the automatic
        sample), so the result does not depend on where the seed was
        clicked (a click beside a vessel or the hilum widens the first
        window) nor on what else the automatic sample under the lung dome
        held.
    mr_adaptive : bool
        MR: when the two-pass region is smaller than 800 mL (one
        window cannot span a strong coil bias), grow again against the local
        liver intensity instead; below 1500 mL too when the region grown so
        continues the window's without an edge (the window, not the anatomy,
        had stopped it).
    mr_refine_band_mm : float or None
        MR: width of the band around the coarse boundary re-decided at full
        resolution. None: 1.5 coarse voxels of the largest spacing, which on
        thick-slice MR (7.7 mm) is an 11.6 mm band in-plane that also carries
        a leak outwards. 8 mm was chosen on the CHAOS cases and MR phantoms:
        narrower bands (3.75, 6 mm) lose liver at the tip.
    mr_random_walker_beta : float or None
        MR: the boundary is decided last by a random walker between the mask's
        core and what lies clearly outside it
        (:func:`~flr_volumetry.segmentation._classic.random_walker_boundary`),
        with this edge weight. None: off.
    tumors : bool
        Also look for hypo-attenuating lesions inside the liver (CT only).
    min_tumor_ml : float
        Smallest tumour candidate reported.
    fast : bool
        TotalSegmentator's ``fast`` (3 mm) model.

    Examples
    --------
    >>> SegmentationOptions().backend
    'classic'
    >>> SegmentationOptions(backend="deep")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: unknown segmentation backend 'deep'; choose classic or totalsegmentator.
    """

    backend: str = "classic"
    coarse_spacing_mm: float = 3.0
    neck_radius_mm: float = 6.0
    window_k: float = 2.5
    merge_ratio: float = 0.2
    merge_texture_ratio: float | None = 1.4
    reach_extra_mm: float | None = None
    pocket_radius_mm: float = 10.0
    smooth_mm: float = 2.0
    edge_iterations: int = 20
    mr_bias_correction: bool = False
    mr_two_pass: bool = True
    mr_adaptive: bool = True
    mr_first_pass_k: float = 1.5
    mr_refine_band_mm: float | None = 8.0
    mr_random_walker_beta: float | None = 40.0
    ct_two_pass: bool = True
    tumors: bool = True
    min_tumor_ml: float = 0.5
    fast: bool = False

    def __post_init__(self):
        # tumors="false" (from a JSON or YAML file) had segmented tumours: a string is true.
        check_field_types(self, "segmentation options")
        if self.backend not in BACKENDS:
            raise InputError(
                f"unknown segmentation backend {self.backend!r}; choose "
                f"{' or '.join(BACKENDS)}."
            )
        if self.reach_extra_mm is not None and self.reach_extra_mm < 0:
            raise InputError("segmentation option reach_extra_mm must be positive or None.")
        if self.merge_texture_ratio is not None and not self.merge_texture_ratio > 0:
            raise InputError("segmentation option merge_texture_ratio must be positive or None.")
        if self.mr_random_walker_beta is not None and not self.mr_random_walker_beta > 0:
            # Negative, the weights overflow and the whole band goes to the background.
            raise InputError("segmentation option mr_random_walker_beta must be positive or "
                             "None (None: no random walker).")
        if isinstance(self.edge_iterations, bool) or not (
                isinstance(self.edge_iterations, (int, np.integer)) and self.edge_iterations >= 0):
            raise InputError("segmentation option edge_iterations must be a whole number, 0 or "
                             "more (0: no edge snapping).")
        # merge_ratio 0 or below had never stopped merging: segment_liver hung.
        for name in ("coarse_spacing_mm", "neck_radius_mm", "window_k", "merge_ratio"):
            if not getattr(self, name) > 0:
                raise InputError(f"segmentation option {name} must be positive.")
        for name in ("pocket_radius_mm", "smooth_mm", "min_tumor_ml"):
            if not getattr(self, name) >= 0:
                raise InputError(f"segmentation option {name} must be 0 or more.")
        if self.coarse_spacing_mm > MAX_COARSE_SPACING_MM:
            # (1000 mm had failed inside SimpleITK, 60 mm as "no soft tissue around the seeds")
            raise InputError(f"segmentation option coarse_spacing_mm must be at most "
                             f"{MAX_COARSE_SPACING_MM:g} mm: a coarser grid cannot follow a "
                             f"liver 150-200 mm across.")


@dataclass(frozen=True)
class SegmentationResult:
    """A liver (and tumour) segmentation on the input grid.

    Attributes
    ----------
    liver : SimpleITK.Image
        uint8 mask (1 = liver, tumours inside it included).
    tumor : SimpleITK.Image or None
        uint8 mask of tumour candidates inside the liver, or None when not
        searched.
    warnings : tuple of str
        Things a reader must know (volume outside the adult range, mask at
        the field-of-view edge, ...).
    methods : dict
        Algorithm, parameters and backend, recorded in the measurement JSON.
    """

    liver: sitk.Image
    tumor: sitk.Image | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    methods: dict = field(default_factory=dict)


def check_modality(modality):
    if modality is not None and not isinstance(modality, str):
        # segment_liver(image, [(i, j, k)]): the seeds had landed here, "'list' object has
        # no attribute 'lower'".
        raise InputError(f"modality must be 'ct' or 'mr', not {type(modality).__name__}; give "
                         f"seed points by name: seeds=[(i, j, k)].")
    m = (modality or "ct").lower()
    if m == "mri":
        m = "mr"
    if m not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}; use ct or mr.")
    return m


def check_points(points, image, what="seed"):
    """Validate (i, j, k) voxel indices against ``image``; returns a list of int tuples."""
    if points is None:
        return []
    out = []
    size = image.GetSize()
    for p in points:
        try:
            idx = tuple(int(round(float(v))) for v in p)
        except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400, infinity
            raise InputError(f"{what} {p!r} is not three voxel indices I,J,K.") from None
        if len(idx) != 3:
            raise InputError(f"{what} {p!r} is not three voxel indices I,J,K.")
        if any(i < 0 or i >= n for i, n in zip(idx, size)):
            raise InputError(
                f"{what} {idx[0]},{idx[1]},{idx[2]} lies outside the image, whose voxel indices "
                f"run from 0,0,0 to {size[0] - 1},{size[1] - 1},{size[2] - 1} (I,J,K in "
                f"SimpleITK x,y,z order)."
            )
        out.append(idx)
    return out


def array(image, dtype=None):
    a = sitk.GetArrayFromImage(image)
    return a if dtype is None else a.astype(dtype, copy=False)


def like(arr, reference, dtype=np.uint8):
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr, dtype=dtype))
    img.CopyInformation(reference)
    return img


def spacing_zyx(image):
    return np.array(image.GetSpacing()[::-1], dtype=float)


def distance_inside_mm(mask_arr, reference):
    """Distance (mm) of every voxel of a mask to the nearest background voxel (0 outside)."""
    img = like(mask_arr, reference)
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=True, squaredDistance=False,
                                     useImageSpacing=True)
    return np.maximum(array(d, np.float32), 0)


def distance_outside_mm(mask_arr, reference):
    """Distance (mm) of every voxel to the nearest voxel of the mask (0 inside)."""
    img = like(mask_arr, reference)
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False,
                                     useImageSpacing=True)
    return np.maximum(array(d, np.float32), 0)


def dilate_mm(mask_arr, reference, radius_mm):
    if not mask_arr.any():
        return mask_arr.astype(bool)
    return distance_outside_mm(mask_arr, reference) <= radius_mm


def erode_mm(mask_arr, reference, radius_mm):
    return distance_inside_mm(mask_arr, reference) > radius_mm


def fill_holes_2d(mask_arr):
    """Fill holes in every axial slice (vessels and lesions enclosed by parenchyma)."""
    from scipy import ndimage as ndi

    out = mask_arr.astype(bool, copy=True)
    for z in np.flatnonzero(out.any(axis=(1, 2))):
        out[z] = ndi.binary_fill_holes(out[z])
    return out


PARTS_SAID = "separate parts"  # in the one warning about a liver in several parts
# Parts of the liver this large are said (smaller ones are crumbs of the boundary).
PART_WARN_ML = 20.0


def parts_ml(mask_arr, voxel_ml):
    """Volumes (mL, largest first) of the connected parts of ``mask_arr`` of PART_WARN_ML
    or more.

    Examples
    --------
    >>> m = np.zeros((1, 1, 40), bool); m[..., :25] = m[..., 27:30] = m[..., 32:] = True
    >>> parts_ml(m, voxel_ml=1.0)
    [25.0]
    """
    from scipy import ndimage as ndi

    lab, _ = ndi.label(mask_arr)
    ml = np.bincount(lab.ravel())[1:] * float(voxel_ml)
    return sorted((float(v) for v in ml if v >= PART_WARN_ML), reverse=True)


def separate_parts_warning(volumes_ml, seeded):
    """The warning for a liver kept in several parts (``volumes_ml``, largest first)."""
    parts = f"{len(volumes_ml)} {PARTS_SAID}"
    return ((f"the seeds grew {parts} of liver" if seeded else f"the liver found is in {parts}")
            + f" ({', '.join(f'{v:.0f}' for v in volumes_ml)} mL; no tissue of the liver's "
              f"intensity joins them: a transection, as after ALPPS stage 1?); check that "
              f"each part is liver.")


def parts_holding(mask_arr, core):
    """The connected parts of ``mask_arr`` that hold voxels of ``core`` (the largest part
    when none does): a liver divided by a transection keeps each side.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1, 0, 1]], bool)
    >>> parts_holding(m, np.array([[0, 1, 0, 1, 0, 0]], bool)).astype(int).tolist()
    [[1, 1, 0, 1, 0, 0]]
    """
    from scipy import ndimage as ndi

    lab, n = ndi.label(mask_arr)
    if n <= 1:
        return mask_arr.astype(bool)
    ids = np.unique(lab[core & (lab > 0)])
    return np.isin(lab, ids) if ids.size else largest_component(mask_arr)


def largest_component(mask_arr):
    from scipy import ndimage as ndi

    lab, n = ndi.label(mask_arr)
    if n <= 1:
        return mask_arr.astype(bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def robust_mode(values, lo, hi, bin_width=2.0, smooth_bins=5):
    """Mode of ``values`` within [lo, hi]: smoothed-histogram peak, refined by mean shift.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.random.default_rng(0).normal(56.0, 4.0, 20000)
    >>> round(robust_mode(v, -50.0, 250.0, bin_width=2.0), 1)  # bins centred on odd HU
    56.0
    """
    v = values[(values >= lo) & (values <= hi)]
    if v.size == 0:
        return None
    bins = np.arange(lo, hi + bin_width, bin_width)
    h, edges = np.histogram(v, bins=bins)
    kernel = np.ones(smooth_bins) / smooth_bins
    hs = np.convolve(h, kernel, mode="same")
    i = int(np.argmax(hs))
    mode = float(0.5 * (edges[i] + edges[i + 1]))
    # Mean shift within the smoothing width: the mode to a fraction of a bin, so the
    # window does not jump by a bin between two samples of the same tissue.
    h = 0.5 * smooth_bins * bin_width
    for _ in range(20):
        near = v[np.abs(v - mode) <= h]
        if near.size == 0:
            break
        shifted = float(near.mean())
        if abs(shifted - mode) < 1e-3 * bin_width:
            break
        mode = shifted
    return mode


def robust_sigma(values, center, half_width):
    """1.4826 x median absolute deviation of the values near ``center``."""
    v = values[np.abs(values - center) <= half_width]
    if v.size < 10:
        return None
    return float(1.4826 * np.median(np.abs(v - np.median(v))))
