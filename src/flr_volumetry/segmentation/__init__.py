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
from ..volumetry import field_of_view_warnings, mask_volume_ml
from ._classic import check_ct_intensities
from ._common import (ADULT_LIVER_ML, SegmentationOptions, SegmentationResult, check_modality,
                      check_points)
from ._totalseg import liver_from_totalsegmentator_output

__all__ = [
    "SegmentationOptions",
    "SegmentationResult",
    "check_ct_intensities",
    "liver_from_totalsegmentator_output",
    "segment_liver",
]


def _check_image(image):
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"the image must be a 3D scalar volume; it is {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)."
        )
    if min(image.GetSize()) < 3:
        raise InputError(f"the image ({image.GetSize()}) is too small to segment a liver.")


def segment_liver(image, modality="ct", seeds=None, exclude=None, options=None, *,
                  tumor_seeds=None):
    """Segment the liver (and CT tumour candidates) of one scan.

    Parameters
    ----------
    image : SimpleITK.Image or Scan
        The scan (CT in Hounsfield units, or MR), any orientation.
    modality : {'ct', 'mr'}
        MR needs ``seeds`` with the classic backend.
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
    modality = check_modality(modality)
    image = as_image(image, "scan")
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
    tumor = None
    if options.backend == "totalsegmentator":
        from ._totalseg import segment_totalsegmentator

        if seeds or exclude or tumor_seeds:
            raise InputError("seeds, exclude points and tumour seeds are for the classic "
                             "backend only.")
        liver, warnings, methods = segment_totalsegmentator(image, modality, options)
    else:
        from ._pipeline import segment_classic

        liver, tumor, warnings, methods = segment_classic(image, modality, seeds, exclude,
                                                          options, tumor_seeds)
    methods = {**methods, "backend": options.backend}
    volume_ml = mask_volume_ml(liver)
    if volume_ml <= 0:
        raise InputError("no liver found: the segmentation is empty; give a --seed inside the "
                         "liver or check the modality.")
    warnings = list(warnings)
    cut_by_fov = field_of_view_warnings(liver, "liver")
    # A seeded mask cut by the field of view is small for a reason its own warning gives;
    # one that is whole and small (or huge) may have grown from a seed in another organ.
    if not (ADULT_LIVER_ML[0] <= volume_ml <= ADULT_LIVER_ML[1]) and not (seeds and cut_by_fov):
        warnings.append(
            f"the {'seeded' if seeds else 'automatic'} liver volume {volume_ml:.0f} mL is "
            f"outside the adult range {ADULT_LIVER_ML[0]:.0f}-{ADULT_LIVER_ML[1]:.0f} mL: check "
            + ("that the seeds lie in the liver, and the mask, " if seeds else "the mask ")
            + "before using it."
        )
    warnings += cut_by_fov
    if tumor is not None and not np.any(sitk.GetArrayViewFromImage(tumor)):
        tumor = sitk.Image(tumor)  # empty but present: searched and none found
    return SegmentationResult(liver=liver, tumor=tumor, warnings=tuple(warnings),
                              methods=methods)
