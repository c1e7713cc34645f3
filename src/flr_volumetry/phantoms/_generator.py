"""Phantom patients: anatomy from a seed, growth over time, and one timepoint's arrays."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, replace

import numpy as np

from .. import clinical
from ._anatomy import (
    Anatomy,
    LiverState,
    Tumor,
    _liver_field,
    _segment_of,
    body_template,
    liver_box,
    liver_labels,
    paint_body,
    standard_liver_extent_mm,
)
from ._render import render_image

__all__ = ["GrowthModel", "PhantomPatient", "PhantomTimepoint", "KINDS", "make_patient",
           "render_timepoint", "liver_volumes_ml", "REMNANT_SEGMENTS"]

#: Segments kept by the planned resection (right hepatectomy, caudate kept; CLINICAL.md).
REMNANT_SEGMENTS = {"right_hepatectomy": (1, 2, 3, 4)}
_SLAB = 24


@dataclass(frozen=True)
class GrowthModel:
    """Saturating growth of the remnant after PVE or ALPPS stage 1.

    sFLR(t) = sFLR_0 + g0 * (tau / 7) * (1 - exp(-t / tau)) with t in days
    after the procedure; ``g0`` (points/week at t = 0) is chosen so that the
    kinetic growth rate measured at ``reference_days`` equals
    ``kgr_pct_per_week``. The resected (embolised) liver changes by
    ``resected_change_pct`` at ``reference_days`` with the same time constant.

    Examples
    --------
    >>> g = GrowthModel(kgr_pct_per_week=3.0, reference_days=28, tau_days=30.0)
    >>> round(g.sflr_gain_pct_points(28) / (28 / 7), 6)
    3.0
    >>> g.sflr_gain_pct_points(0)
    0.0
    """

    kgr_pct_per_week: float
    reference_days: int
    tau_days: float = 30.0
    resected_change_pct: float = -12.0

    def _shape(self, days):
        return 1.0 - math.exp(-days / self.tau_days)

    def sflr_gain_pct_points(self, days):
        """Degree of hypertrophy (sFLR points) ``days`` after the procedure."""
        if days <= 0:
            return 0.0
        total = self.kgr_pct_per_week * self.reference_days / 7.0
        return total * self._shape(days) / self._shape(self.reference_days)

    def resected_factor(self, days):
        """Volume factor of the resected liver ``days`` after the procedure."""
        if days <= 0:
            return 1.0
        return 1.0 + self.resected_change_pct / 100.0 * self._shape(days) / self._shape(
            self.reference_days)


@dataclass(frozen=True)
class PhantomTimepoint:
    """One scan of a phantom patient: its name, date and liver state."""

    name: str
    scan_date: _dt.date
    days_after_procedure: int | None
    state: LiverState
    target_flr_ml: float
    target_resected_ml: float


@dataclass(frozen=True)
class PhantomPatient:
    """A phantom patient: body, anatomy, procedure and timepoints (pseudonymous ID only)."""

    patient_id: str
    kind: str
    height_cm: float
    weight_kg: float
    liver_condition: str
    procedure: str
    procedure_date: _dt.date
    resection: str
    anatomy: Anatomy
    growth: GrowthModel
    timepoints: tuple[PhantomTimepoint, ...]
    diaphragm_mm: float
    seed: int

    @property
    def telv_ml(self):
        return clinical.telv_ml(self.height_cm, self.weight_kg)

    def patient_json(self):
        """The facts a clinic would record (``patient.json`` of the study layout)."""
        return {
            "height_cm": self.height_cm, "weight_kg": self.weight_kg,
            "liver_condition": self.liver_condition, "procedure": self.procedure,
            "procedure_date": self.procedure_date.isoformat(), "resection": self.resection,
        }


# Three kinds of patient, the sample study's three cases. sflr0: baseline sFLR
# target (%); tlv: baseline total liver volume / TELV; tumours: (segment, radius mm).
KINDS = {
    "pve_adequate": dict(
        height_cm=178.0, weight_kg=84.0, liver_condition="normal", procedure="PVE",
        sflr0=18.0, tlv=1.12, kgr=3.2, days=28, tau=30.0, resected=-12.0, transection=0.0,
        tumors=((7, 22.0), (6, 14.0), (5, 10.0)), timepoint="post_pve"),
    "pve_inadequate": dict(
        height_cm=165.0, weight_kg=62.0, liver_condition="chemotherapy", procedure="PVE",
        sflr0=21.0, tlv=1.05, kgr=1.1, days=35, tau=30.0, resected=-6.0, transection=0.0,
        tumors=((8, 26.0), (6, 16.0), (4, 9.0)), timepoint="post_pve"),
    "alpps": dict(
        height_cm=172.0, weight_kg=76.0, liver_condition="normal", procedure="ALPPS",
        sflr0=15.0, tlv=1.15, kgr=9.0, days=10, tau=8.0, resected=-4.0, transection=5.0,
        tumors=((8, 18.0), (7, 15.0), (5, 12.0), (6, 10.0), (3, 7.0)),
        timepoint="post_alpps"),
}
_KIND_ORDER = ("pve_adequate", "pve_inadequate", "alpps")


def _coarse_grid(anat, state, spacing_mm):
    lo, hi = standard_liver_extent_mm()
    s = max(state.scale_flr, state.scale_resected)
    lo = np.asarray(anat.anchor_mm) + s * (lo - anat.deform_mm) - 4.0
    hi = np.asarray(anat.anchor_mm) + s * (hi + anat.deform_mm) + 4.0
    return [np.arange(lo[i], hi[i], spacing_mm, dtype=np.float32) for i in range(3)]


def liver_volumes_ml(anat, state, *, spacing_mm=2.0, resection="right_hepatectomy"):
    """Approximate volumes (mL) of the liver in ``state`` on an isotropic grid.

    Used to calibrate scale factors before rendering; the truth of a written
    phantom always comes from counting its masks.
    """
    x, y, z = _coarse_grid(anat, state, spacing_mm)
    keep = np.zeros(9, bool)
    keep[list(REMNANT_SEGMENTS[resection])] = True
    n_total = n_flr = n_tum = 0
    top = -np.inf
    for k in range(0, len(z), _SLAB):
        r = liver_labels(anat, state, x, y, z[k:k + _SLAB], details=False)
        seg = r["segments"]
        n_total += int(np.count_nonzero(seg))
        n_flr += int(np.count_nonzero(keep[seg] & ~r["tumor"]))
        n_tum += int(np.count_nonzero(r["tumor"]))
        zz = np.nonzero(seg.any(axis=(1, 2)))[0]
        if zz.size:
            top = max(top, float(z[k + zz[-1]]))
    v = spacing_mm**3 / 1000.0
    return {"total_ml": n_total * v, "flr_ml": n_flr * v, "tumor_ml": n_tum * v,
            "resected_ml": (n_total - n_flr) * v, "top_mm": top}


def _calibrate(anat, state, flr_ml, resected_ml, *, iterations=4, spacing_mm=2.0):
    """Scale factors giving the wanted remnant and resected volumes (within ~1 %)."""
    for _ in range(iterations):
        v = liver_volumes_ml(anat, state, spacing_mm=spacing_mm)
        state = replace(state,
                        scale_flr=state.scale_flr * (flr_ml / v["flr_ml"]) ** (1 / 3),
                        scale_resected=state.scale_resected
                        * (resected_ml / v["resected_ml"]) ** (1 / 3))
    return state


def _place_tumors(anat, specs, rng):
    """Tumour centres inside the standard liver, in the requested segments, away from the IVC."""
    lo, hi = standard_liver_extent_mm()
    out = []
    for segment, radius in specs:
        for _ in range(50):
            pts = rng.uniform(lo, hi, size=(4000, 3)).astype(np.float32)
            q = [pts[:, 0], pts[:, 1], pts[:, 2]]
            depth_ok = _liver_field(q) < 1.0 - (radius + 8.0) / 55.0
            phi = np.degrees(np.arctan2(q[1], q[0]))
            seg_ok = _segment_of(phi, q[2], anat) == segment
            # Keep the tumour clear of the IVC axis and the portal plane (z = 0); a large
            # one may still reach into the next segment, as real ones do (P002's and P003's
            # segment-8 tumours cross Cantlie's line into segment 4).
            axis_ok = np.hypot(q[0], q[1]) > radius + 20.0
            z_ok = np.abs(q[2]) > 0.5 * radius
            clear = np.ones(len(pts), bool)
            for t in out:
                clear &= np.linalg.norm(pts - np.asarray(t.center_mm), axis=1) > (
                    radius + t.radius_mm + 6.0)
            ok = np.nonzero(depth_ok & seg_ok & axis_ok & z_ok & clear)[0]
            if ok.size:
                c = pts[ok[0]]
                out.append(Tumor(tuple(float(v) for v in c), float(radius),
                                 float(rng.uniform(0.08, 0.18)), float(rng.uniform(0, 6.28))))
                break
    return tuple(out)


def make_patient(index, seed=0, kind=None):
    """A phantom patient, deterministic from ``seed`` and its ``index`` in the study.

    Parameters
    ----------
    index : int
        0-based position in the study (``P001`` is index 0).
    seed : int
        Study seed; each patient draws from ``default_rng([seed, index])``.
    kind : {'pve_adequate', 'pve_inadequate', 'alpps'}, optional
        Defaults to cycling through the three kinds.

    Returns
    -------
    PhantomPatient
    """
    kind = kind or _KIND_ORDER[index % len(_KIND_ORDER)]
    spec = KINDS[kind]
    rng = np.random.default_rng([int(seed), int(index)])
    first = index < len(_KIND_ORDER) and seed == 0
    jit = 0.0 if first else 1.0   # the sample study's patients are the kinds as written
    height = round(spec["height_cm"] + jit * rng.uniform(-6, 6), 1)
    weight = round(spec["weight_kg"] + jit * rng.uniform(-7, 7), 1)
    bmi = weight / (height / 100.0) ** 2
    a = 165.0 + 0.8 * (weight - 70.0)
    b = 110.0 + 0.6 * (weight - 70.0)
    fat = max(6.0, 10.0 + 1.5 * (bmi - 24.0))
    waves = tuple((float(k[0]), float(k[1]), float(k[2]), float(p)) for k, p in zip(
        rng.normal(0, 2 * math.pi / 160.0, size=(3, 3)), rng.uniform(0, 2 * math.pi, 3)))
    anat = Anatomy(
        body_a_mm=a, body_b_mm=b, fat_mm=fat, anchor_mm=(-18.0, b - 85.0, 5.0),
        rhv_deg=200.0 + rng.uniform(-4, 4), mhv_deg=250.0 + rng.uniform(-4, 4),
        lhv_deg=292.0 + rng.uniform(-4, 4), deform_mm=float(rng.uniform(3.0, 6.0)),
        deform_waves=waves, texture_phases=tuple(float(v) for v in rng.uniform(0, 6.28, 12)),
    )
    # Tumour burden varies between patients (the reference cases keep theirs).
    tumors = tuple((seg, radius * (1.0 + jit * rng.uniform(-0.3, 0.3)))
                   for seg, radius in spec["tumors"])
    anat = replace(anat, tumors=_place_tumors(anat, tumors, rng))
    telv = clinical.telv_ml(height, weight)
    sflr0 = spec["sflr0"] + jit * rng.uniform(-1.5, 1.5)
    kgr = spec["kgr"] * (1.0 + jit * rng.uniform(-0.1, 0.1))
    flr0 = sflr0 / 100.0 * telv
    res0 = (spec["tlv"] + jit * rng.uniform(-0.08, 0.08)) * telv - flr0
    base = _calibrate(anat, LiverState(), flr0, res0)
    growth = GrowthModel(kgr_pct_per_week=kgr, reference_days=spec["days"],
                         tau_days=spec["tau"], resected_change_pct=spec["resected"])

    base_date = _dt.date(2024, 1, 8) + _dt.timedelta(days=int(rng.integers(0, 300)))
    procedure_date = base_date + _dt.timedelta(days=int(rng.integers(5, 12)))
    tps = [PhantomTimepoint("baseline", base_date, None, base, flr0, res0)]
    days = spec["days"]
    flr_t = flr0 + growth.sflr_gain_pct_points(days) / 100.0 * telv
    res_t = res0 * growth.resected_factor(days)
    post = _calibrate(anat, replace(base, transection_mm=spec["transection"]), flr_t, res_t)
    tps.append(PhantomTimepoint(spec["timepoint"], procedure_date + _dt.timedelta(days=days),
                                days, post, flr_t, res_t))
    top = liver_volumes_ml(anat, base)["top_mm"]
    return PhantomPatient(
        patient_id=f"P{index + 1:03d}", kind=kind, height_cm=height, weight_kg=weight,
        liver_condition=spec["liver_condition"], procedure=spec["procedure"],
        procedure_date=procedure_date, resection="right_hepatectomy", anatomy=anat,
        growth=growth, timepoints=tuple(tps), diaphragm_mm=top, seed=int(seed),
    )


def render_timepoint(patient, timepoint, grid, *, modality="ct", rng=None):
    """Arrays of one timepoint on ``grid``: image and truth masks, shaped (z, y, x).

    Parameters
    ----------
    patient : PhantomPatient
    timepoint : PhantomTimepoint or int
        The timepoint or its position in ``patient.timepoints``.
    grid : Grid
    modality : {'ct', 'mr'}
    rng : numpy.random.Generator, optional
        For the noise; by default derived from the patient's seed, index and
        timepoint, so the same call gives the same image.

    Returns
    -------
    dict
        ``image`` (int16), ``labels`` (tissue codes), ``liver``, ``tumor``,
        ``vessels``, ``flr`` (uint8 0/1) and ``segments`` (uint8 0-8).
    """
    if isinstance(timepoint, int):
        t_index, timepoint = timepoint, patient.timepoints[timepoint]
    else:
        t_index = patient.timepoints.index(timepoint)
    if modality not in ("ct", "mr"):
        raise ValueError(f"modality must be 'ct' or 'mr', got {modality!r}.")
    if rng is None:
        rng = np.random.default_rng([patient.seed, int(patient.patient_id[1:]), t_index,
                                     0 if modality == "ct" else 1])
    anat, state = patient.anatomy, timepoint.state
    shape = grid.shape_zyx
    labels = np.empty(shape, np.uint8)
    segments = np.zeros(shape, np.uint8)
    tumor = np.zeros(shape, bool)
    vessels = np.zeros(shape, bool)
    template = body_template(anat, grid)
    for k in range(0, shape[0], _SLAB):
        paint_body(labels, anat, grid, slice(k, min(k + _SLAB, shape[0])), patient.diaphragm_mm,
                   template)
    bz, by, bx = liver_box(anat, state, grid)
    x, y, z = grid.axis_mm(0)[bx], grid.axis_mm(1)[by], grid.axis_mm(2)
    for k in range(bz.start, bz.stop, _SLAB):
        zs = slice(k, min(k + _SLAB, bz.stop))
        r = liver_labels(anat, state, x, y, z[zs])
        box = (zs, by, bx)
        t = r["tissue"]
        sub = labels[box]
        np.copyto(sub, t, where=t > 0)
        segments[box] = r["segments"]
        tumor[box] = r["tumor"]
        vessels[box] = r["vessels"]
    image = render_image(labels, tuple(reversed(grid.spacing_mm)), rng, modality=modality,
                         noise_sd=12.0 if modality == "ct" else 18.0)
    keep = np.zeros(9, bool)
    keep[list(REMNANT_SEGMENTS[patient.resection])] = True
    liver = segments > 0
    return {
        "image": image, "labels": labels, "segments": segments,
        "liver": liver.view(np.uint8), "tumor": tumor.view(np.uint8),
        "vessels": vessels.view(np.uint8),
        "flr": (keep[segments] & ~tumor).view(np.uint8),
    }
