"""Between SimpleITK images and napari layers: axis order, orientation, grid.

No Qt here. A SimpleITK array is indexed (z, y, x) while the image's
geometry is given in (x, y, z) order, with a direction matrix that may flip
or permute axes (CHAOS MRI has its y axis flipped). To show scan and masks
in the same place, every image is first reoriented to LPS (a lossless
permutation/flip of voxels, no interpolation), and then shown with
``scale`` = spacing and ``translate`` = origin, both reversed to (z, y, x).
A residual rotation (oblique scans only) goes to the layer's ``rotate``.
World coordinates in napari are therefore physical LPS millimetres in
(z, y, x) order, for every layer this plugin opens.

The geometry of the file (``original``) and of the displayed array
(``display``) are kept in ``layer.metadata["flr_geometry"]`` so that a
painted Labels layer can be written back voxel for voxel on the scan's grid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from flr_volumetry import GeometryError, InputError
from flr_volumetry.io import grid_description, same_grid

__all__ = [
    "DISPLAY_ORIENTATION",
    "geometry_of",
    "to_display",
    "display_kwargs",
    "layer_image",
    "to_original",
    "metadata_geometry",
]

#: Orientation of every displayed array: identity direction in LPS.
DISPLAY_ORIENTATION = "LPS"


def geometry_of(image):
    """The grid of ``image`` as a JSON-ready dict (x, y, z order, as SimpleITK).

    Examples
    --------
    >>> img = sitk.Image([4, 3, 2], sitk.sitkUInt8)
    >>> img.SetSpacing((0.5, 0.5, 2.0))
    >>> geometry_of(img)["spacing"]
    [0.5, 0.5, 2.0]
    """
    return {
        "size": [int(s) for s in image.GetSize()],
        "spacing": [float(s) for s in image.GetSpacing()],
        "origin": [float(o) for o in image.GetOrigin()],
        "direction": [float(d) for d in image.GetDirection()],
    }


def _apply_geometry(image, geometry):
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    return image


def to_display(image):
    """Reorient ``image`` to LPS and return ``(array_zyx, geometry)``.

    ``geometry`` holds the ``original`` grid (the file's) and the
    ``display`` grid (the array's); the array is a copy indexed (z, y, x).

    Examples
    --------
    >>> a = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    >>> img = sitk.GetImageFromArray(a)
    >>> img.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))   # y flipped, as in CHAOS
    >>> arr, geo = to_display(img)
    >>> arr[0].tolist()                                  # rows swapped
    [[2, 3], [0, 1]]
    >>> geo["display"]["direction"] == [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    True
    """
    if image.GetDimension() != 3:
        raise InputError(f"only 3-D images can be shown; this one is {image.GetDimension()}-D.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        # A mask stored one channel per label (one-hot, X x Y x Z x C) is read by ITK as a
        # vector image: shown, it became a 4-D layer placed with 3-D geometry, and napari
        # failed with a bare "operands could not be broadcast".
        raise InputError(f"only single-channel images can be shown; this one holds "
                         f"{image.GetNumberOfComponentsPerPixel()} values per voxel (a mask "
                         f"with one channel per label?); save it as one label map.")
    original = geometry_of(image)
    shown = sitk.DICOMOrient(image, DISPLAY_ORIENTATION)
    return sitk.GetArrayFromImage(shown), {"original": original, "display": geometry_of(shown)}


def display_kwargs(geometry):
    """napari layer keyword arguments placing the array at its physical position.

    Returns ``scale``, ``translate`` and, for oblique scans only, ``rotate``,
    all in (z, y, x) order, in millimetres.

    Examples
    --------
    >>> geo = {"display": {"size": [4, 4, 2], "spacing": [0.5, 0.75, 2.0],
    ...        "origin": [10.0, 20.0, 30.0], "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}
    >>> display_kwargs(geo)
    {'scale': (2.0, 0.75, 0.5), 'translate': (30.0, 20.0, 10.0)}
    """
    d = geometry["display"]
    kwargs = {
        "scale": tuple(float(s) for s in d["spacing"][::-1]),
        "translate": tuple(float(o) for o in d["origin"][::-1]),
    }
    direction = np.asarray(d["direction"], dtype=float).reshape(3, 3)
    if not np.allclose(direction, np.eye(3), atol=1e-6):
        # world (z,y,x) = R o + (R D R) diag(s_zyx) idx_zyx, with R the axis reversal.
        kwargs["rotate"] = direction[::-1, ::-1].copy()
    return kwargs


def metadata_geometry(layer):
    """The ``flr_geometry`` of a napari layer, or a plain-words error."""
    geo = getattr(layer, "metadata", {}).get("flr_geometry")
    if geo is None:
        raise InputError(
            f"the layer '{layer.name}' has no scan geometry (it was not opened by the "
            f"flr-volumetry reader); open the scan and masks with File > Open."
        )
    return geo


def layer_image(data, geometry):
    """A SimpleITK image of ``data`` (z, y, x) on the displayed grid.

    Volumes on this grid equal volumes on the file's grid: the display grid
    differs only by a permutation or flip of the axes.
    """
    arr = np.asarray(data)
    shape = list(arr.shape[::-1])
    if shape != list(geometry["display"]["size"]):
        raise GeometryError(
            f"the layer's shape {tuple(arr.shape)} does not match its scan grid "
            f"{tuple(geometry['display']['size'][::-1])}."
        )
    return _apply_geometry(sitk.GetImageFromArray(arr), geometry["display"])


def to_original(data, geometry):
    """Put a displayed (z, y, x) array back on the file's grid, voxel for voxel.

    Examples
    --------
    >>> img = sitk.GetImageFromArray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    >>> img.SetDirection((-1, 0, 0, 0, 0, 1, 0, 1, 0))   # permuted and flipped
    >>> arr, geo = to_display(img)
    >>> back = to_original(arr, geo)
    >>> bool((sitk.GetArrayFromImage(back) == sitk.GetArrayFromImage(img)).all())
    True
    >>> back.GetDirection() == img.GetDirection()
    True
    """
    shown = layer_image(data, geometry)
    original = geometry["original"]
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(original["direction"])
    back = sitk.DICOMOrient(shown, code)
    reference = _apply_geometry(sitk.Image(original["size"], sitk.sitkUInt8), original)
    if not same_grid(back, reference):
        raise GeometryError(
            f"the layer cannot be put back on its scan's grid ({grid_description(back)} vs "
            f"{grid_description(reference)})."
        )
    back.CopyInformation(reference)  # drop float round-off of the reorientation
    return back
