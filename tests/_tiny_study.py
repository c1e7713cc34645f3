"""Tiny study folders with exactly known volumes, for the batch, study and report tests.

Every scan is 12 x 20 x 24 voxels (z, y, x) of 10 x 10 x 10 mm (1 mL per
voxel), so volumes are plain voxel counts.
"""

import json
import os

import numpy as np
import SimpleITK as sitk

SHAPE = (12, 20, 24)
SPACING_MM = (10.0, 10.0, 10.0)
VOXEL_ML = 1.0
LIVER_BOX = (slice(2, 10), slice(4, 16), slice(2, 22))   # 8 * 12 * 20 = 1920 voxels
LIVER_VOXELS = 1920


def _image(array, origin=(0.0, 0.0, 0.0)):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(SPACING_MM)
    img.SetOrigin(origin)
    return img


def flr_voxels(width):
    """FLR voxels of a timepoint whose FLR is the first ``width`` columns of the liver."""
    return 8 * 12 * width


def write_timepoint(folder, *, scan_date, flr_width, tumor=False, flr_origin=None,
                    write_date=True):
    """A timepoint folder: image, liver, FLR (and tumour) masks and timepoint.json."""
    os.makedirs(folder, exist_ok=True)
    liver = np.zeros(SHAPE, np.uint8)
    liver[LIVER_BOX] = 1
    ct = np.full(SHAPE, -100, np.int16)
    ct[liver > 0] = 60
    flr = np.zeros(SHAPE, np.uint8)
    flr[2:10, 4:16, 2:2 + flr_width] = 1
    sitk.WriteImage(_image(ct), os.path.join(folder, "image.nii.gz"))
    sitk.WriteImage(_image(liver), os.path.join(folder, "liver.nii.gz"))
    origin = flr_origin if flr_origin is not None else (0.0, 0.0, 0.0)
    sitk.WriteImage(_image(flr, origin), os.path.join(folder, "flr.nii.gz"))
    if tumor:
        t = np.zeros(SHAPE, np.uint8)
        t[4:6, 8:10, 14:16] = 1  # 8 voxels, outside the FLR
        sitk.WriteImage(_image(t), os.path.join(folder, "tumor.nii.gz"))
    if write_date:
        with open(os.path.join(folder, "timepoint.json"), "w") as fh:
            json.dump({"scan_date": scan_date}, fh)


def write_patient(study, pid, facts, timepoints):
    """``timepoints``: {folder name: keyword arguments of write_timepoint}."""
    folder = os.path.join(study, pid)
    os.makedirs(folder, exist_ok=True)
    if facts is not None:
        with open(os.path.join(folder, "patient.json"), "w") as fh:
            json.dump(facts, fh)
    for name, kw in timepoints.items():
        write_timepoint(os.path.join(folder, name), **kw)
    return folder


def good_study(study):
    """Three good patients; P002's folder names are not in date order; P003 has a tumour."""
    write_patient(study, "P001", {"height_cm": 170, "weight_kg": 70, "procedure": "PVE",
                                  "procedure_date": "2024-01-08",
                                  "liver_condition": "normal"},
                  {"baseline": dict(scan_date="2024-01-01", flr_width=4),
                   "post_pve": dict(scan_date="2024-02-05", flr_width=7)})
    write_patient(study, "P002", {"height_cm": 180, "weight_kg": 90, "procedure": "PVE+HVE",
                                  "procedure_date": "2024-03-04",
                                  "liver_condition": "chemotherapy"},
                  {"a_late": dict(scan_date="2024-04-29", flr_width=8),
                   "b_first": dict(scan_date="2024-02-26", flr_width=5),
                   "c_middle": dict(scan_date="2024-04-01", flr_width=6)})
    write_patient(study, "P003", {"height_cm": 160, "weight_kg": 60, "procedure": "ALPPS",
                                  "procedure_date": "2024-05-02",
                                  "liver_condition": "normal"},
                  {"pre": dict(scan_date="2024-04-30", flr_width=3, tumor=True),
                   "stage2": dict(scan_date="2024-05-12", flr_width=6, tumor=True)})
    return study
