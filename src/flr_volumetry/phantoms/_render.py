"""From a tissue label volume to a CT or MR image: intensities, blur, bias, noise."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ._anatomy import N_TISSUES, TISSUE

__all__ = ["CT_HU", "MR_T1", "render_image"]

#: Portal-venous-phase CT attenuation (HU) per tissue.
CT_HU = {
    "air": -1000, "fat": -100, "muscle": 50, "bowel": 30, "cortical_bone": 900,
    "cancellous_bone": 400, "lung": -850, "heart": 140, "spleen": 115, "kidney": 170,
    "stomach": 25, "gas": -950, "aorta": 165, "ivc": 150, "portal_vein": 175, "liver": 105,
    "hepatic_vein": 160, "portal_branch": 175, "tumor": 50, "transection": 15, "skin": 60,
    "csf": 10, "disc": 80, "gallbladder": 10, "kidney_pelvis": 20, "myocardium": 110,
}

#: T1-weighted gradient echo, portal venous phase after gadolinium (arbitrary units).
MR_T1 = {
    "air": 0, "fat": 820, "muscle": 300, "bowel": 380, "cortical_bone": 30,
    "cancellous_bone": 520, "lung": 25, "heart": 700, "spleen": 480, "kidney": 620,
    "stomach": 200, "gas": 5, "aorta": 760, "ivc": 700, "portal_vein": 780, "liver": 560,
    "hepatic_vein": 720, "portal_branch": 780, "tumor": 260, "transection": 150, "skin": 450,
    "csf": 120, "disc": 250, "gallbladder": 90, "kidney_pelvis": 100, "myocardium": 420,
}


def _lut(table):
    lut = np.zeros(N_TISSUES, np.float32)
    for name, code in TISSUE.items():
        lut[code] = table[name]
    return lut


def _smooth_field(shape, spacing_mm, rng, wavelength_mm=250.0):
    """A smooth positive field (mean 1) from a few long sine waves, for MR bias."""
    axes = [np.arange(n, dtype=np.float32) * s for n, s in zip(shape, spacing_mm)]
    field = np.zeros(shape, np.float32)
    for _ in range(3):
        k = 2 * math.pi / wavelength_mm * rng.uniform(0.5, 1.2, size=3)
        ph = rng.uniform(0, 2 * math.pi, size=3)
        field += (np.sin(k[0] * axes[0] + ph[0])[:, None, None]
                  * np.cos(k[1] * axes[1] + ph[1])[None, :, None]
                  * np.cos(k[2] * axes[2] + ph[2])[None, None, :])
    np.multiply(field, 0.25 / 3 * 2, out=field)
    np.exp(field, out=field)
    return field


def render_image(labels, spacing_zyx_mm, rng, *, modality="ct", noise_sd=12.0):
    """Render a tissue label volume as a CT (HU, int16) or T1 MR (int16) image.

    Partial volume is a Gaussian blur whose width follows the voxel size
    (full width at half maximum about one slice thickness along z); CT noise
    is Gaussian, MR noise Rician on top of a smooth multiplicative bias field.

    Parameters
    ----------
    labels : ndarray of uint8, (z, y, x)
        Tissue codes (see ``TISSUE``).
    spacing_zyx_mm : tuple of float
    rng : numpy.random.Generator
    modality : {'ct', 'mr'}
    noise_sd : float
        Standard deviation of the noise (HU for CT, units of ``MR_T1`` for MR).

    Returns
    -------
    ndarray of int16
    """
    table = CT_HU if modality == "ct" else MR_T1
    img = _lut(table)[labels]
    sigma = (0.42, 0.55, 0.55)
    for axis, s in enumerate(sigma):
        ndimage.gaussian_filter1d(img, s, axis=axis, output=img, truncate=3.0)
    if modality == "ct":
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sd)
        np.clip(img, -1024, 3071, out=img)
    else:
        img *= _smooth_field(img.shape, spacing_zyx_mm, rng)
        re = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sd)
        im = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sd)
        img = np.sqrt(re * re + im * im)
        np.clip(img, 0, 4095, out=img)
    return np.rint(img).astype(np.int16)
