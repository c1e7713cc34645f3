"""Writer: a Labels layer back to a mask file on its scan's grid.

The layer's ``metadata["flr_geometry"]`` (set by the reader and the
widgets) says how the displayed array maps onto the file's grid; the mask is
written voxel for voxel on that grid by ``flr_volumetry`` (atomically: the
file is complete or absent): NIfTI, NRRD and MHA label maps by
``write_mask``, Slicer ``.seg.nrrd`` by ``write_seg_nrrd`` and DICOM SEG
(``.dcm``, for scans read from a DICOM folder) by ``write_dicom_seg``; these
two hold one segment per label value.
"""

from __future__ import annotations

import os

import numpy as np
from flr_volumetry import InputError, write_mask

from ._geometry import to_original

__all__ = ["MASK_SUFFIXES", "LayerWriteError", "labels_image", "segments_of", "write_labels"]


class LayerWriteError(RuntimeError):
    """Why a layer could not be written, in one sentence.

    Not an InputError: that is a ValueError, and napari's writer lookup
    takes a ValueError for "this plugin cannot write it", so the user saw only
    "No data written! A plugin could not be found...".
    """

MASK_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".mha", ".dcm")


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


def segments_of(image, role=None):
    """Named binary masks, one per label value of ``image``: {name: SimpleITK.Image}.

    A binary liver, tumour or FLR mask is named by its role; Couinaud maps
    give ``segment_1`` ... ``segment_8``; other labels ``label_N``.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> img = sitk.GetImageFromArray(np.array([[[0, 2, 3, 3]]], np.uint8))
    >>> sorted(segments_of(img, "segments"))
    ['segment_2', 'segment_3']
    >>> list(segments_of(sitk.GetImageFromArray(np.array([[[0, 1]]], np.uint8)), "liver"))
    ['liver']
    """
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(image)
    values = [int(v) for v in np.unique(arr) if v != 0]
    if not values:
        raise InputError("the layer is empty: there is no label to write as a segment.")
    out = {}
    for v in values:
        if role in ("liver", "tumor", "flr") and values == [1]:
            name = role
        elif role == "segments":
            name = f"segment_{v}"
        else:
            name = f"label_{v}"
        mask = sitk.GetImageFromArray((arr == v).astype(np.uint8))
        mask.CopyInformation(image)
        out[name] = mask
    return out


def write_labels(path, data, meta):
    """npe2 writer hook: write one Labels layer; returns the paths written.

    Raises
    ------
    LayerWriteError
        With the sentence saying why (no scan geometry, not writable, ...).
    """
    try:
        return _write_labels(path, data, meta)
    except InputError as exc:
        raise LayerWriteError(str(exc)) from None


def _write_labels(path, data, meta):
    from flr_volumetry.io import write_dicom_seg, write_seg_nrrd

    path = os.fspath(path)
    low = path.lower()
    if not low.endswith(MASK_SUFFIXES):
        raise InputError(f"cannot write labels as {os.path.basename(path)}; use one of "
                         f"{', '.join(MASK_SUFFIXES)}.")
    metadata = meta.get("metadata") or {}
    name = meta.get("name", "labels")
    image = labels_image(data, metadata, name)
    if low.endswith(".seg.nrrd"):
        write_seg_nrrd(segments_of(image, metadata.get("flr_role")), path)
    elif low.endswith(".dcm"):
        series = metadata.get("flr_scan_source")
        if not series or not os.path.isdir(series):
            raise InputError(
                f"a DICOM SEG must reference its DICOM series, but the scan of '{name}' was not "
                f"read from a DICOM folder; save it as .nii.gz or .seg.nrrd instead.")
        segs = segments_of(image, metadata.get("flr_role"))
        # The series the scan was read from, not the folder's default (it may hold several).
        write_dicom_seg(list(segs.values()), series, path, segment_names=list(segs),
                        series_uid=metadata.get("flr_scan_series_uid"))
    else:
        write_mask(image, path)
    return [path]
