"""Writing results: masks and JSON, always atomically."""

from __future__ import annotations

import json
import os
import tempfile

import SimpleITK as sitk

from ..errors import InputError


def _atomic_target(path):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return path, folder


def write_json_atomic(data, path):
    """Write ``data`` as JSON so that ``path`` is either complete or absent.

    A run killed half-way leaves the previous file (or none), never half a file.
    """
    path, folder = _atomic_target(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_mask(mask, path):
    """Write a mask or label map (NIfTI, NRRD, MHA: by suffix) atomically.

    Parameters
    ----------
    mask : SimpleITK.Image
        Written with its own geometry, compressed.
    path : str or os.PathLike
    """
    path, folder = _atomic_target(path)
    name = os.path.basename(path)
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else os.path.splitext(name)[1]
    if suffix.lower() not in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        raise InputError(f"cannot write a mask as {name}; use .nii.gz, .nrrd or .mha.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        sitk.WriteImage(mask, tmp, useCompression=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
