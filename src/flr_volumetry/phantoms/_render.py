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


def _smooth_field(z_mm, y_mm, x_mm, phases):
    """A smooth positive field (mean about 1) from a few long waves, for MR bias."""
    field = np.zeros((len(z_mm), len(y_mm), len(x_mm)), np.float32)
    for k, ph in phases:
        field += (np.sin(k[0] * z_mm + ph[0])[:, None, None]
                  * np.cos(k[1] * y_mm + ph[1])[None, :, None]
                  * np.cos(k[2] * x_mm + ph[2])[None, None, :])
    np.multiply(field, 0.17, out=field)
    np.exp(field, out=field)
    return field


_SLAB = 16
_SIGMA_VOXELS = (0.42, 0.55, 0.55)


def _taps(sigma):
    # The 3-tap normalised Gaussian: enough for sub-voxel widths.
    w = math.exp(-0.5 / sigma**2)
    return np.float32(1.0 / (1.0 + 2.0 * w)), np.float32(w / (1.0 + 2.0 * w))


def render_image(labels, spacing_zyx_mm, rng, *, modality="ct", noise_sd=12.0):
    """Render a tissue label volume as a CT (HU, int16) or T1 MR (int16) image.

    Partial volume is a Gaussian blur of the tissue values whose width
    follows the voxel size (three taps per axis, sigma about half a voxel);
    CT noise is Gaussian, MR noise Rician on top of a smooth multiplicative
    bias field. The volume is processed slab by slab (with one slice of halo
    for the blur along z) so that the work stays in cache and memory stays
    at the size of the output.

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

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.full((4, 8, 8), TISSUE["liver"], np.uint8)
    >>> img = render_image(lab, (2.5, 1.0, 1.0), np.random.default_rng(0), noise_sd=0.0)
    >>> int(img.min()), int(img.max())
    (105, 105)
    """
    lut = _lut(CT_HU if modality == "ct" else MR_T1)
    nz = labels.shape[0]
    out = np.empty(labels.shape, np.int16)
    cz, wz = _taps(_SIGMA_VOXELS[0])
    sd = np.float32(noise_sd)
    if modality != "ct":
        axes = [np.arange(n, dtype=np.float32) * np.float32(s)
                for n, s in zip(labels.shape, spacing_zyx_mm)]
        phases = [(2 * math.pi / 250.0 * rng.uniform(0.5, 1.2, size=3),
                   rng.uniform(0, 2 * math.pi, size=3)) for _ in range(3)]
    for k0 in range(0, nz, _SLAB):
        k1 = min(k0 + _SLAB, nz)
        # One slice of halo each side, mirrored at the volume's ends (scipy's 'reflect').
        idx = np.clip(np.arange(k0 - 1, k1 + 1), 0, nz - 1)
        img = lut[labels[idx]]
        for axis in (1, 2):
            ndimage.gaussian_filter1d(img, _SIGMA_VOXELS[axis], axis=axis, output=img,
                                      truncate=2.0)
        slab = img[1:-1] * cz
        slab += (img[:-2] + img[2:]) * wz
        if modality == "ct":
            slab += rng.standard_normal(slab.shape, dtype=np.float32) * sd
            np.clip(slab, -1024, 3071, out=slab)
        else:
            slab *= _smooth_field(axes[0][k0:k1], axes[1], axes[2], phases)
            slab += rng.standard_normal(slab.shape, dtype=np.float32) * sd
            im = rng.standard_normal(slab.shape, dtype=np.float32) * sd
            slab = np.sqrt(slab * slab + im * im)
            np.clip(slab, 0, 4095, out=slab)
        np.rint(slab, out=slab)
        out[k0:k1] = slab
    return out
