"""Geometry of the phantom: a torso with its organs and a Couinaud-segmented liver.

Coordinates are physical millimetres in the LPS convention SimpleITK uses:
``x`` grows towards the patient's left, ``y`` towards the back, ``z``
towards the head. Arrays are indexed ``(z, y, x)``.

The liver is built in a *material* frame whose origin, the anchor, sits on
the axis of the inferior vena cava (IVC) at the height of the portal
bifurcation. The hepatic-vein planes contain the IVC axis and the portal
plane is horizontal through the anchor, so every Couinaud boundary is a plane
through the anchor. Growth and atrophy are a radial scaling about the anchor
whose factor depends only on the azimuth around the IVC axis: such a map is
a bijection that keeps every segment boundary in place, scales the volume of
each wedge by the cube of its factor, and so shrinks the right liver and
enlarges the left one without tearing or overlap.

Everything is vectorised; work is done slab by slab (a few dozen slices at a
time) to bound memory, never voxel by voxel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Grid", "Anatomy", "LiverState", "Tumor", "TISSUE", "SEGMENT_LABELS",
           "standard_liver_extent_mm", "liver_labels", "paint_body", "liver_box",
           "landmarks_mm"]

#: Tissue codes of the label volume the images are rendered from.
TISSUE = {
    "air": 0, "fat": 1, "muscle": 2, "bowel": 3, "cortical_bone": 4, "cancellous_bone": 5,
    "lung": 6, "heart": 7, "spleen": 8, "kidney": 9, "stomach": 10, "gas": 11, "aorta": 12,
    "ivc": 13, "portal_vein": 14, "liver": 15, "hepatic_vein": 16, "portal_branch": 17,
    "tumor": 18, "transection": 19, "skin": 20, "csf": 21, "disc": 22, "gallbladder": 23,
    "kidney_pelvis": 24, "myocardium": 25,
}
N_TISSUES = max(TISSUE.values()) + 1

#: Couinaud segments 1-8 (segment 4 is not split into 4a/4b).
SEGMENT_LABELS = tuple(range(1, 9))


@dataclass(frozen=True)
class Grid:
    """Voxel grid of a phantom: size (x, y, z) and spacing (mm), centred on the body.

    Examples
    --------
    >>> g = Grid((64, 64, 32), (6.0, 6.0, 8.0))
    >>> g.shape_zyx, g.origin_mm[2]
    ((32, 64, 64), -124.0)
    """

    size: tuple[int, int, int] = (256, 256, 112)
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 2.5)

    def __post_init__(self):
        if len(self.size) != 3 or min(self.size) < 8:
            raise ValueError(f"a phantom grid needs three sizes of at least 8, got {self.size}.")
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise ValueError(f"spacing must be three positive numbers, got {self.spacing_mm}.")

    @property
    def shape_zyx(self):
        return (self.size[2], self.size[1], self.size[0])

    @property
    def origin_mm(self):
        # Voxel centres symmetric about 0: the body axis is the grid's centre line.
        return tuple(-(n - 1) / 2.0 * s for n, s in zip(self.size, self.spacing_mm))

    @property
    def voxel_volume_ml(self):
        return float(np.prod(self.spacing_mm, dtype=np.float64)) / 1000.0

    def axis_mm(self, i):
        """Physical coordinates of the voxel centres along axis ``i`` (0=x, 1=y, 2=z)."""
        return (self.origin_mm[i] + self.spacing_mm[i] * np.arange(self.size[i])).astype(
            np.float32)

    @property
    def extent_mm(self):
        return tuple(n * s for n, s in zip(self.size, self.spacing_mm))


@dataclass(frozen=True)
class Tumor:
    """A metastasis in material coordinates (mm from the anchor, standard liver)."""

    center_mm: tuple[float, float, float]
    radius_mm: float
    lobulation: float = 0.15
    phase: float = 0.0


@dataclass(frozen=True)
class LiverState:
    """The liver at one timepoint: radial scale of the remnant and resected wedges.

    ``scale_flr`` applies to the azimuths of segments 1-4 (the remnant of a
    right hepatectomy), ``scale_resected`` to those of segments 5-8.
    ``transection_mm`` > 0 cuts an ALPPS parenchymal transection of that
    width along the middle hepatic vein plane.
    """

    scale_flr: float = 1.0
    scale_resected: float = 1.0
    transection_mm: float = 0.0


# Standard liver (before scaling), in mm from the anchor: smooth union of
# ellipsoids (centre, semi-axes). Right lobe, medial dome (segments 4/8),
# left lateral tongue, caudate lobe next to the IVC.
_LOBES = (
    ((-64.0, -8.0, -8.0), (52.0, 64.0, 80.0)),
    ((-20.0, -40.0, 18.0), (52.0, 40.0, 42.0)),
    ((40.0, -42.0, 6.0), (62.0, 32.0, 24.0)),
    ((14.0, -14.0, 2.0), (15.0, 15.0, 28.0)),
)
_CAUDATE = _LOBES[3]
_SOFTMIN_TAU = 0.06
_BLEND_DEG = 8.0
_IVC_RADIUS_MM = 11.0


def standard_liver_extent_mm():
    """Bounding box (lo, hi) of the standard liver in material coordinates."""
    c = np.array([lobe[0] for lobe in _LOBES])
    a = np.array([lobe[1] for lobe in _LOBES])
    return (c - a).min(axis=0), (c + a).max(axis=0)


@dataclass(frozen=True)
class Anatomy:
    """Body and liver geometry of one phantom patient (no time dependence).

    All lengths in mm. The body is an elliptic cylinder (semi-axes
    ``body_a_mm`` left-right, ``body_b_mm`` front-back) around the z axis;
    ``anchor_mm`` is the IVC axis at the portal bifurcation; hepatic-vein
    azimuths are degrees of ``atan2(y, x)`` around the IVC axis.
    """

    body_a_mm: float = 160.0
    body_b_mm: float = 115.0
    fat_mm: float = 15.0
    anchor_mm: tuple[float, float, float] = (-18.0, 30.0, 0.0)
    rhv_deg: float = 200.0
    mhv_deg: float = 250.0
    lhv_deg: float = 292.0
    deform_mm: float = 5.0
    deform_waves: tuple = ()
    tumors: tuple[Tumor, ...] = ()
    texture_phases: tuple = field(default=(0.0,) * 12)

    @property
    def wall_mm(self):
        """Thickness of subcutaneous fat plus abdominal-wall muscle."""
        return self.fat_mm + 12.0

    @property
    def spine_y_mm(self):
        return self.body_b_mm - 45.0


def _wrap_deg(a):
    return (a + 180.0) % 360.0 - 180.0


def _flr_weight(phi_deg, anat):
    """Smooth weight (0..1) of the remnant (segments 1-4) wedge at azimuth ``phi_deg``.

    The remnant wedge runs from the middle hepatic vein (Cantlie's line)
    through the left liver round to straight behind the IVC (90 degrees).
    """
    start, stop = anat.mhv_deg, 450.0
    mid, half = (start + stop) / 2.0, (stop - start) / 2.0
    inside = half - np.abs(_wrap_deg(phi_deg - mid))
    return 0.5 * (1.0 + np.tanh(inside / _BLEND_DEG))


def _segment_of(phi_deg, z_mm, anat):
    """Couinaud segment (2-8) from azimuth and height above the portal plane."""
    phi = np.mod(phi_deg, 360.0)
    sup = z_mm >= 0
    seg = np.where(sup, 2, 3).astype(np.uint8)                     # left lateral
    seg = np.where((phi >= anat.mhv_deg) & (phi < anat.lhv_deg), 4, seg)
    seg = np.where((phi >= anat.rhv_deg) & (phi < anat.mhv_deg), np.where(sup, 8, 5), seg)
    seg = np.where((phi >= 90.0) & (phi < anat.rhv_deg), np.where(sup, 7, 6), seg)
    return seg.astype(np.uint8)


def _deform(q, anat):
    """Low-frequency smooth displacement of the liver surface (material frame)."""
    if not anat.deform_waves or anat.deform_mm == 0:
        return q
    out = [q[0], q[1], q[2]]
    for axis, (kx, ky, kz, ph) in enumerate(anat.deform_waves[:3]):
        out[axis] = q[axis] + anat.deform_mm * np.sin(kx * q[0] + ky * q[1] + kz * q[2] + ph)
    return out


def _ellipsoid_r(q, center, axes):
    return np.sqrt(((q[0] - center[0]) / axes[0]) ** 2 + ((q[1] - center[1]) / axes[1]) ** 2
                   + ((q[2] - center[2]) / axes[2]) ** 2)


def _liver_field(qd):
    """Soft union of the lobes: < 1 inside the standard liver."""
    acc = None
    for center, axes in _LOBES:
        e = np.exp(-_ellipsoid_r(qd, center, axes) / _SOFTMIN_TAU)
        acc = e if acc is None else acc + e
    return -_SOFTMIN_TAU * np.log(np.maximum(acc, 1e-30))


def _segment_point(p0, p1, r0, r1):
    return (np.asarray(p0, np.float32), np.asarray(p1, np.float32), float(r0), float(r1))


def _polar(d, phi_deg, z):
    a = math.radians(phi_deg)
    return (d * math.cos(a), d * math.sin(a), z)


def vessel_tree(anat):
    """Intra-hepatic vessels as tapered tubes (p0, p1, r0, r1) in material mm.

    Hepatic veins lie in their planes (from the IVC confluence, fanning
    forward and down); portal branches run from the bifurcation to each
    segment's centre.
    """
    hv_top = (0.0, 0.0, 48.0)
    hv = [
        _segment_point(hv_top, _polar(105.0, anat.rhv_deg, -45.0), 6.0, 2.0),
        _segment_point(hv_top, _polar(95.0, anat.mhv_deg, -40.0), 5.5, 2.0),
        _segment_point(hv_top, _polar(80.0, anat.lhv_deg, 5.0), 5.0, 2.0),
    ]
    bif = (-12.0, -22.0, 0.0)
    r_trunk, l_trunk = (-42.0, -18.0, 0.0), (14.0, -34.0, 2.0)
    ra, rp = (-62.0, -40.0, 2.0), (-80.0, 12.0, -4.0)
    pv = [
        _segment_point((-2.0, -18.0, -60.0), bif, 7.0, 7.0),
        _segment_point(bif, r_trunk, 6.0, 5.0),
        _segment_point(r_trunk, ra, 4.5, 3.5),
        _segment_point(r_trunk, rp, 4.5, 3.5),
        _segment_point(ra, (-60.0, -38.0, 45.0), 3.5, 1.8),     # 8
        _segment_point(ra, (-66.0, -50.0, -50.0), 3.5, 1.8),    # 5
        _segment_point(rp, (-92.0, 22.0, 45.0), 3.5, 1.8),      # 7
        _segment_point(rp, (-96.0, 18.0, -55.0), 3.5, 1.8),     # 6
        _segment_point(bif, l_trunk, 5.0, 4.5),
        _segment_point(l_trunk, (30.0, -62.0, 0.0), 4.5, 3.5),  # umbilical portion
        _segment_point(l_trunk, (72.0, -34.0, 16.0), 3.5, 1.8),  # 2
        _segment_point((30.0, -62.0, 0.0), (72.0, -56.0, -8.0), 3.0, 1.8),  # 3
        _segment_point((30.0, -62.0, 0.0), (-8.0, -68.0, 10.0), 3.0, 1.8),  # 4
    ]
    return hv, pv


def landmarks_mm(anat, state):
    """Couinaud landmarks of the liver in ``state``, in physical LPS mm.

    The names follow :mod:`flr_volumetry.remnant` (``ivc``, the three hepatic
    veins as points along them, ``portal_bifurcation``): the planes they
    define are exactly the segment boundaries of the phantom.
    """
    anchor = np.asarray(anat.anchor_mm, float)

    def to_image(q):
        q = np.asarray(q, float)
        phi = math.degrees(math.atan2(q[1], q[0])) if np.hypot(q[0], q[1]) > 1e-9 \
            else anat.mhv_deg
        w = float(_flr_weight(np.float64(phi), anat))
        sc = state.scale_resected + (state.scale_flr - state.scale_resected) * w
        return [round(float(v), 3) for v in anchor + sc * q]

    hv, pv = vessel_tree(anat)
    out = {"ivc": to_image((0.0, 0.0, 48.0))}
    for name, (p0, p1, _, _) in zip(("right_hepatic_vein", "middle_hepatic_vein",
                                     "left_hepatic_vein"), hv):
        pts = [p0 + t * (p1 - p0) for t in np.linspace(0.15, 0.95, 9)]
        # Only points inside the parenchyma: a radiologist clicks on the vein in the liver.
        inside = [q for q in pts if float(_liver_field(_deform(
            [np.float32(q[0]), np.float32(q[1]), np.float32(q[2])], anat))) < 0.9]
        out[name] = [to_image(q) for q in (inside or pts)[:: max(1, len(inside) // 3)]]
    out["portal_bifurcation"] = to_image(pv[0][1])
    return out


def _tube_mask(q, tubes):
    hit = np.zeros(q[0].shape, bool)
    for p0, p1, r0, r1 in tubes:
        v = p1 - p0
        vv = float(v @ v)
        t = ((q[0] - p0[0]) * v[0] + (q[1] - p0[1]) * v[1] + (q[2] - p0[2]) * v[2]) / vv
        np.clip(t, 0.0, 1.0, out=t)
        d2 = ((q[0] - p0[0] - t * v[0]) ** 2 + (q[1] - p0[1] - t * v[1]) ** 2
              + (q[2] - p0[2] - t * v[2]) ** 2)
        r = r0 + (r1 - r0) * t
        hit |= d2 < r * r
    return hit


def _tumor_mask(q, anat):
    hit = np.zeros(q[0].shape, bool)
    for tum in anat.tumors:
        dx, dy, dz = (q[0] - tum.center_mm[0], q[1] - tum.center_mm[1],
                      q[2] - tum.center_mm[2])
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        # Lobulated blob: the radius varies smoothly with direction.
        safe = np.maximum(d, 1e-3)
        lob = 1.0 + tum.lobulation * np.sin(3.0 * dx / safe + tum.phase) * np.cos(
            2.0 * dz / safe + 0.5 * tum.phase)
        hit |= d < tum.radius_mm * lob
    return hit


def _gallbladder(anat):
    x, y, _ = _polar(75.0, anat.mhv_deg, 0.0)
    return (x, y, -48.0), (14.0, 16.0, 30.0)


def liver_box(anat, state, grid, margin_mm=8.0):
    """Index slices (z, y, x) of the grid box that can hold the liver in ``state``."""
    lo, hi = standard_liver_extent_mm()
    s = max(state.scale_flr, state.scale_resected)
    lo = np.asarray(anat.anchor_mm) + s * (lo - anat.deform_mm) - margin_mm
    hi = np.asarray(anat.anchor_mm) + s * (hi + anat.deform_mm) + margin_mm
    out = []
    for axis in (2, 1, 0):
        c = grid.axis_mm(axis)
        i0 = int(np.searchsorted(c, lo[axis]))
        i1 = int(np.searchsorted(c, hi[axis]))
        out.append(slice(max(i0, 0), min(i1, len(c))))
    return tuple(out)


def liver_labels(anat, state, x_mm, y_mm, z_mm, *, details=True):
    """Liver tissue codes and Couinaud segments on a block of voxel centres.

    Parameters
    ----------
    anat : Anatomy
    state : LiverState
    x_mm, y_mm, z_mm : 1-D arrays
        Voxel-centre coordinates of the block along x, y and z.
    details : bool
        Also compute vessels (not needed to count volumes).

    Returns
    -------
    dict
        ``tissue`` (uint8 codes, 0 where the liver leaves the voxel to other
        organs), ``segments`` (uint8 0-8, non-zero exactly on liver voxels),
        ``tumor`` and ``vessels`` (bool), arrays shaped ``(z, y, x)``.
    """
    ax, ay, az = anat.anchor_mm
    px = (np.asarray(x_mm, np.float32) - ax)[None, None, :]
    py = (np.asarray(y_mm, np.float32) - ay)[None, :, None]
    pz = (np.asarray(z_mm, np.float32) - az)[:, None, None]
    shape = (pz.shape[0], py.shape[1], px.shape[2])
    phi = np.degrees(np.arctan2(py, px)).astype(np.float32)        # (1, ny, nx)
    w = _flr_weight(phi, anat)
    s = (state.scale_resected + (state.scale_flr - state.scale_resected) * w).astype(np.float32)
    q = [np.broadcast_to(px / s, shape), np.broadcast_to(py / s, shape),
         np.broadcast_to(pz / s, shape)]
    qd = _deform(q, anat)
    inside = _liver_field(qd) < 1.0
    # The abdominal cavity bounds the liver: it never leaves the body wall.
    ca, cb = anat.body_a_mm - anat.wall_mm - 2.0, anat.body_b_mm - anat.wall_mm - 2.0
    cav = ((px + ax) / ca) ** 2 + ((py + ay) / cb) ** 2 < 1.0
    inside &= cav
    gb_c, gb_a = _gallbladder(anat)
    gb = inside & (_ellipsoid_r(q, gb_c, gb_a) < 1.0)
    ivc = np.broadcast_to(px * px + py * py < _IVC_RADIUS_MM**2, shape)
    liver = inside & ~gb & ~ivc
    gap = np.zeros(shape, bool)
    if state.transection_mm > 0:
        a = math.radians(anat.mhv_deg)
        dist = np.abs(-math.sin(a) * px + math.cos(a) * py)
        along = math.cos(a) * px + math.sin(a) * py
        gap = np.broadcast_to((dist < state.transection_mm / 2.0)
                              & (along > _IVC_RADIUS_MM + 2.0), shape) & liver
        liver &= ~gap

    tissue = np.zeros(shape, np.uint8)
    segments = np.zeros(shape, np.uint8)
    tumor = np.zeros(shape, bool)
    vessels = np.zeros(shape, bool)
    tissue[gb] = TISSUE["gallbladder"]
    tissue[gap] = TISSUE["transection"]
    idx = np.nonzero(liver)
    if idx[0].size == 0:
        return {"tissue": tissue, "segments": segments, "tumor": tumor, "vessels": vessels}
    qi = [np.ascontiguousarray(c[idx]) for c in q]
    phi_i = np.broadcast_to(phi, shape)[idx]
    seg = _segment_of(phi_i, qi[2], anat)
    seg[_ellipsoid_r(qi, *_CAUDATE) < 1.0] = 1
    segments[idx] = seg
    tum = _tumor_mask(qi, anat)
    tumor[idx] = tum
    lab = np.full(seg.shape, TISSUE["liver"], np.uint8)
    if details:
        hv, pv = vessel_tree(anat)
        hv_hit = _tube_mask(qi, hv)
        pv_hit = _tube_mask(qi, pv)
        lab[hv_hit] = TISSUE["hepatic_vein"]
        lab[pv_hit] = TISSUE["portal_branch"]
        vessels[idx] = (hv_hit | pv_hit) & ~tum
    lab[tum] = TISSUE["tumor"]
    tissue[idx] = lab
    return {"tissue": tissue, "segments": segments, "tumor": tumor, "vessels": vessels}


# --- the rest of the body -------------------------------------------------------------


def _waves(anat, x, y, z, k0, offset):
    """A smooth random field in about [-1, 1]: oblique in-plane waves times slow z waves.

    Each term is a 2-D plane wave (any direction) times a 1-D wave along z,
    so it costs one 2-D array per term, not a 3-D one.
    """
    ph = anat.texture_phases
    f = None
    for i in range(4):
        j = (offset + 3 * i) % len(ph)
        ang = ph[j] + i * math.pi / 4
        k = k0 * (1.0 + 0.3 * i)
        # Two crossing oblique waves make rounded cells rather than stripes.
        plane = (np.sin(k * (math.cos(ang) * x[None, :] + math.sin(ang) * y[:, None])
                        + ph[(j + 1) % len(ph)])
                 * np.sin(1.3 * k * (math.cos(ang + 1.2) * x[None, :]
                                     + math.sin(ang + 1.2) * y[:, None])))
        zz = np.cos(0.6 * k * z + ph[(j + 2) % len(ph)])
        term = plane[None] * zz[:, None, None]
        f = term if f is None else f + term
    return f / 2.0


def _diaphragm_z(anat, x, y, liver_top_mm):
    """Height of the diaphragm dome over (x, y): higher on the right, lower at the back."""
    xr = (x[None, :] / anat.body_a_mm)
    yr = (y[:, None] / anat.body_b_mm)
    dome = liver_top_mm + 6.0 - 30.0 * (xr + 0.35) ** 2 - 12.0 * yr ** 2
    return dome - 12.0 * np.clip(xr, 0, None) - 20.0 * np.clip(yr, 0, None)


@dataclass(frozen=True)
class _BodyTemplate:
    """The z-invariant part of the torso on one slice grid, computed once per image."""

    base: np.ndarray            # (ny, nx) codes: air, skin, fat, wall muscle, cavity marker
    cavity: np.ndarray          # (ny, nx) bool
    cav_box: tuple              # (slice y, slice x) bounding the cavity
    overlay: tuple              # ((ny, nx) bool, code) painted over the cavity content
    vertebra: np.ndarray        # (ny, nx) bool: vertebral bodies (discs vary with z)
    psoas: np.ndarray           # (ny, nx) bool
    shell_idx: tuple            # (iy, ix) of the rib shell
    shell_sin: np.ndarray       # sin(theta) on the shell, for the rib slope
    lung_ok: np.ndarray         # (ny, nx) bool: cavity without mediastinum and spine


def body_template(anat, grid):
    """Precompute the slice pattern of the torso (everything that does not vary with z)."""
    x, y = grid.axis_mm(0), grid.axis_mm(1)
    X, Y = x[None, :], y[:, None]
    a, b = anat.body_a_mm, anat.body_b_mm
    rb = np.sqrt((X / a) ** 2 + (Y / b) ** 2)
    body = rb < 1.0
    wall_in = 1.0 - anat.fat_mm / b
    cav_r = 1.0 - anat.wall_mm / b
    base = np.zeros(rb.shape, np.uint8)
    base[body] = TISSUE["fat"]
    base[body & (rb > 1.0 - 2.5 / b)] = TISSUE["skin"]
    base[body & (rb < wall_in) & (rb >= cav_r)] = TISSUE["muscle"]
    cavity = rb < cav_r
    iy, ix = np.nonzero(cavity)
    cav_box = (slice(iy.min(), iy.max() + 1), slice(ix.min(), ix.max() + 1))

    sy = anat.spine_y_mm
    rv = np.sqrt(X**2 + (Y - sy) ** 2)
    vertebra = rv < 19.0
    rc_ = np.sqrt(X**2 + (Y - sy - 30.0) ** 2)
    canal = rc_ < 8.0
    arch = ((rc_ >= 8.0) & (rc_ < 13.0) & (Y > sy + 12.0)) | (
        (np.abs(X) < 4.0) & (Y > sy + 38.0) & (Y < sy + 62.0))
    para = body & (((np.abs(X) - 38.0) / 26.0) ** 2 + ((Y - sy - 38.0) / 22.0) ** 2 < 1.0)
    aorta = (X - 18.0) ** 2 + (Y - (sy - 36.0)) ** 2 < 12.0**2
    overlay = (
        (para, TISSUE["muscle"]),
        (aorta, TISSUE["aorta"]),
        (vertebra & (rv >= 16.0), TISSUE["cortical_bone"]),
        (vertebra & (rv < 16.0), TISSUE["cancellous_bone"]),
        (arch, TISSUE["cortical_bone"]),
        (canal, TISSUE["csf"]),
    )
    psoas = cavity & (((np.abs(X) - 42.0) / 20.0) ** 2 + ((Y - sy + 5.0) / 18.0) ** 2 < 1.0)
    theta = np.arctan2(Y / b, X / a)
    shell = (rb > cav_r - 0.02) & (rb < wall_in + 0.01) & ~((np.abs(X) < 45.0) & (Y < 0))
    shell_idx = np.nonzero(shell)
    hy = -0.25 * b
    lung_ok = cavity & ~((np.abs(X) < 30.0) & (Y > hy)) & ~(rv < 26.0) & ~aorta
    return _BodyTemplate(base, cavity, cav_box, overlay, vertebra, psoas, shell_idx,
                         np.sin(theta)[shell_idx].astype(np.float32), lung_ok)


def paint_body(labels, anat, grid, z_index, liver_top_mm, template=None):
    """Paint everything but the liver into ``labels[z_index]`` (a slab of slices).

    Most of the torso does not vary with z and comes from ``template``; only
    bowel, lungs, heart, organs, discs and ribs are computed per slab, each
    within its own bounding box.
    """
    t = template if template is not None else body_template(anat, grid)
    x, y = grid.axis_mm(0), grid.axis_mm(1)
    z = grid.axis_mm(2)[z_index]
    out = labels[z_index]
    out[...] = t.base
    a, b = anat.body_a_mm, anat.body_b_mm
    ay_, az_ = anat.anchor_mm[1], anat.anchor_mm[2]

    # Abdominal content in the cavity: bowel loops in mesenteric fat, a little gas.
    by, bx = t.cav_box
    tex = _waves(anat, x[bx], y[by], z, 2 * math.pi / 70.0, 0)
    content = np.where(tex > -0.05, TISSUE["bowel"], TISSUE["fat"]).astype(np.uint8)
    content[tex > 0.55] = TISSUE["gas"]
    np.copyto(out[:, by, bx], content, where=t.cavity[by, bx][None])

    # Lungs above the diaphragm dome, the heart in front of them.
    dz = _diaphragm_z(anat, x, y, liver_top_mm)          # (ny, nx)
    zt = z >= dz[by, bx].min()
    if zt.any():
        zs = _zrange(zt)
        thorax = (z[zs][:, None, None] > dz[by, bx][None]) & t.lung_ok[by, bx][None]
        np.copyto(out[zs, by, bx], np.uint8(TISSUE["lung"]), where=thorax)
        hx, hy, hz = 25.0, -0.25 * b, liver_top_mm + 55.0
        _ellipsoid_paint(out, x, y, z, (hx, hy, hz), (75.0, 0.55 * b, 60.0),
                         TISSUE["myocardium"], inner=(0.55, TISSUE["heart"]),
                         diaphragm=dz, above=True)

    # Abdominal organs below the diaphragm.
    sy = anat.spine_y_mm
    organs = (
        ("spleen", (0.62 * a, 0.38 * b, az_ + 20.0), (26.0, 0.42 * b, 55.0), None),
        ("stomach", (0.32 * a, -0.15 * b, az_ + 5.0), (48.0, 0.34 * b, 55.0), None),
        ("kidney", (-65.0, sy - 20.0, az_ - 105.0), (28.0, 24.0, 52.0),
         (0.2, TISSUE["kidney_pelvis"])),
        ("kidney", (65.0, sy - 20.0, az_ - 72.0), (28.0, 24.0, 52.0),
         (0.2, TISSUE["kidney_pelvis"])),
    )
    for name, c, r, inner in organs:
        gas_y = c[1] - 0.2 * b if name == "stomach" else None
        _ellipsoid_paint(out, x, y, z, c, r, TISSUE[name], inner=inner, diaphragm=dz,
                         above=False, gas_front_of=gas_y)

    # IVC (up to the heart), extra-hepatic portal and splenic veins.
    ax_ = anat.anchor_mm[0]
    ivc = (x[None, :] - ax_) ** 2 + (y[:, None] - ay_) ** 2 < _IVC_RADIUS_MM**2
    zi = z <= liver_top_mm + 30.0
    if zi.any():
        out[_zrange(zi)][:, ivc] = TISSUE["ivc"]
    _line(out, x, y, z, (0.3 * a, 0.25 * b, az_ - 40.0), (ax_ + 14.0, ay_ - 18.0, az_ - 60.0),
          5.0, TISSUE["portal_vein"])
    _line(out, x, y, z, (ax_ + 14.0, ay_ - 18.0, az_ - 60.0),
          (ax_ - 2.0, ay_ - 18.0, az_ - 20.0), 7.0, TISSUE["portal_vein"])

    # Spine, paraspinal muscles, aorta over everything in the cavity; discs; psoas.
    for mask, code in t.overlay:
        out[:, mask] = code
    disc = np.mod(z, 32.0) < 6.0
    if disc.any():
        sub = out[disc]
        sub[:, t.vertebra] = TISSUE["disc"]
        out[disc] = sub
    low = z < az_ - 60.0
    if low.any():
        out[_zrange(low)][:, t.psoas] = TISSUE["muscle"]

    # Ribs: oblique bands in the body wall, lower in front, absent at the midline cartilage.
    iy, ix = t.shell_idx
    zp = z[:, None] + 35.0 * t.shell_sin[None, :]
    ribs = (np.cos(2 * math.pi * zp / 30.0) > 0.72) & (zp > az_ - 40.0)
    shell_vals = out[:, iy, ix]
    shell_vals[ribs] = TISSUE["cortical_bone"]
    out[:, iy, ix] = shell_vals
    return out


def _zrange(mask):
    """The slice spanned by a contiguous run of True (z is sorted, so thresholds give runs)."""
    idx = np.nonzero(mask)[0]
    return slice(idx[0], idx[-1] + 1)


def _ellipsoid_paint(out, x, y, z, c, r, code, *, inner=None, diaphragm=None, above=False,
                     gas_front_of=None):
    """Paint an axis-aligned ellipsoid into the slab, within its bounding box only.

    ``diaphragm`` (heights over the (ny, nx) grid) limits the painting to
    above or below the dome; ``inner`` = (r2 threshold, code) paints a core;
    ``gas_front_of`` paints gas in front of that y (a supine gas cap).
    """
    ix = np.nonzero(np.abs(x - c[0]) < r[0])[0]
    iy = np.nonzero(np.abs(y - c[1]) < r[1])[0]
    iz = np.nonzero(np.abs(z - c[2]) < r[2])[0]
    if not (ix.size and iy.size and iz.size):
        return
    sz, sy_, sx = (slice(iz[0], iz[-1] + 1), slice(iy[0], iy[-1] + 1),
                   slice(ix[0], ix[-1] + 1))
    r2 = ((((x[sx] - c[0]) / r[0]) ** 2)[None, None, :]
          + (((y[sy_] - c[1]) / r[1]) ** 2)[None, :, None]
          + (((z[sz] - c[2]) / r[2]) ** 2)[:, None, None])
    m = r2 < 1.0
    if diaphragm is not None:
        over = z[sz][:, None, None] > diaphragm[sy_, sx][None]
        m &= over if above else ~over
    box = out[sz, sy_, sx]
    box[m] = code
    if inner is not None:
        box[m & (r2 < inner[0])] = inner[1]
    if gas_front_of is not None:
        box[m & (y[sy_] < gas_front_of)[None, :, None]] = TISSUE["gas"]


def _line(out, x, y, z, p0, p1, r, code):
    """Paint a straight tube from p0 to p1 (mm) into the slab ``out``."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    lo, hi = np.minimum(p0, p1) - r, np.maximum(p0, p1) + r
    ix = np.nonzero((x >= lo[0]) & (x <= hi[0]))[0]
    iy = np.nonzero((y >= lo[1]) & (y <= hi[1]))[0]
    iz = np.nonzero((z >= lo[2]) & (z <= hi[2]))[0]
    if not (ix.size and iy.size and iz.size):
        return
    sl = (slice(iz[0], iz[-1] + 1), slice(iy[0], iy[-1] + 1), slice(ix[0], ix[-1] + 1))
    q = [x[sl[2]][None, None, :], y[sl[1]][None, :, None], z[sl[0]][:, None, None]]
    shape = (sl[0].stop - sl[0].start, sl[1].stop - sl[1].start, sl[2].stop - sl[2].start)
    q = [np.broadcast_to(c, shape) for c in q]
    hit = _tube_mask(q, [(p0, p1, r, r)])
    out[sl][hit] = code
