"""Writer: a Labels layer back to a mask file on its scan's grid.

The layer's ``metadata["flr_geometry"]`` (set by the reader and the
widgets) says how the displayed array maps onto the file's grid; the mask is
written voxel for voxel on that grid by ``flr_volumetry.write_mask``
(atomically: the file is complete or absent).
"""

from __future__ import annotations

import os

import numpy as np
from flr_volumetry import InputError, write_mask

from ._geometry import to_original

__all__ = ["MASK_SUFFIXES", "labels_image", "write_labels"]

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def labels_image(data, metadata, name="labels"):
    """The SimpleITK label image (uint8 or uint16) of a Labels layer, on the file's grid."""
    geometry = (metadata or {}).get("flr_geometry")
    if geometry is None:
        raise InputError(
            f"the layer '{name}' has no scan geometry, so it cannot be put on a scan's grid; "
            f"paint into a layer created by the flr-volumetry widgets or opened by its reader."
        )
    arr = np.asarray(data)
    if arr.dtype.kind not in "iub":
        raise InputError(f"the layer '{name}' does not hold integer labels.")
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise InputError(f"the layer '{name}' holds labels outside 0-65535.")
    top = int(arr.max()) if arr.size else 0
    arr = arr.astype(np.uint8 if top < 256 else np.uint16, copy=False)
    return to_original(arr, geometry)


def write_labels(path, data, meta):
    """npe2 writer hook: write one Labels layer; returns the paths written."""
    path = os.fspath(path)
    if not path.lower().endswith(MASK_SUFFIXES):
        raise InputError(f"cannot write labels as {os.path.basename(path)}; use one of "
                         f"{', '.join(MASK_SUFFIXES)}.")
    image = labels_image(data, meta.get("metadata"), meta.get("name", "labels"))
    write_mask(image, path)
    return [path]
