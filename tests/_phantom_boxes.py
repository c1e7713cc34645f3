"""Tiny images with exactly known volumes, for unit tests of I/O and volumetry."""

import numpy as np
import SimpleITK as sitk

SPACING_MM = (0.7, 0.9, 2.5)
#: A rotation about z by 30 degrees (orthonormal, so volumes are unchanged).
ROTATED = (0.8660254037844387, -0.5, 0.0, 0.5, 0.8660254037844387, 0.0, 0.0, 0.0, 1.0)


def image_like(array, spacing=SPACING_MM, origin=(-50.0, 20.0, -300.0), direction=None):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def box_case(direction=None):
    """A scan with a liver box, a tumour inside it and an FLR half, and their voxel counts.

    Array order is (z, y, x). The liver spans slices 2..11 of 14, so it
    touches no edge of the field of view.
    """
    shape = (14, 30, 40)
    ct = np.full(shape, -100, np.int16)
    liver = np.zeros(shape, np.uint8)
    liver[2:12, 5:25, 5:35] = 1           # 10 * 20 * 30 = 6000 voxels
    tumor = np.zeros(shape, np.uint8)
    tumor[4:8, 10:14, 8:12] = 1           # 4 * 4 * 4 = 64 voxels, inside the FLR half
    flr = np.zeros(shape, np.uint8)
    flr[2:12, 5:25, 5:20] = 1             # 10 * 20 * 15 = 3000 voxels
    ct[liver > 0] = 100
    ct[tumor > 0] = 40
    images = {name: image_like(a, direction=direction)
              for name, a in (("ct", ct), ("liver", liver), ("tumor", tumor), ("flr", flr))}
    voxel_ml = float(np.prod(SPACING_MM)) / 1000.0
    counts = {"liver": 6000, "tumor": 64, "flr": 3000}
    return images, counts, voxel_ml
