"""Synthetic abdominal CT and MR phantoms with exact truth, before and after PVE or ALPPS.

A phantom patient has a torso (skin, fat, muscle, spine, ribs), lungs, the
base of the heart, spleen, kidneys, stomach, bowel, aorta, IVC and portal
vein, and a liver shaped like a liver (large right lobe, left lateral
tongue, caudate lobe next to the IVC) divided into Couinaud segments 1-8 by
the hepatic-vein planes and the portal plane, with enhancing hepatic and
portal veins and hypo-attenuating metastases.

After the procedure (right PVE, or ALPPS stage 1 with its parenchymal
transection) the remnant (segments 1-4) grows and the resected liver
(segments 5-8) shrinks, following :class:`GrowthModel`; growth is a radial
scaling about the IVC that keeps every segment boundary a plane. The truth
always comes from counting the masks as written, never from the intended
numbers; ``truth.json`` also holds the expected sFLR, DH, KGR and GR
computed by :func:`flr_volumetry.measure` and :func:`flr_volumetry.hypertrophy`.

Everything is deterministic from a seed and vectorised (one 512x512x300 CT
timepoint in a few seconds; see ``benchmarks/phantom_speed.py``).

Examples
--------
>>> from flr_volumetry import phantoms
>>> p = phantoms.make_patient(0)
>>> p.patient_id, p.procedure, [t.name for t in p.timepoints]
('P001', 'PVE', ['baseline', 'post_pve'])
>>> arrays = phantoms.render_timepoint(p, 0, phantoms.grid_preset("small"))
>>> arrays["image"].shape, arrays["image"].dtype.name
((56, 128, 128), 'int16')
>>> bool((arrays["segments"] > 0).sum() == arrays["liver"].sum())
True
"""

from ._anatomy import SEGMENT_LABELS, TISSUE, Anatomy, Grid, LiverState, Tumor
from ._generator import (
    KINDS,
    REMNANT_SEGMENTS,
    GrowthModel,
    PhantomPatient,
    PhantomTimepoint,
    liver_volumes_ml,
    make_patient,
    render_timepoint,
)
from ._render import CT_HU, MR_T1
from ._study import (
    GENERATOR_VERSION,
    GRID_PRESETS,
    INPUT_MASKS,
    TRUTH_MASKS,
    grid_preset,
    repositioned,
    sample_study,
    to_image,
    write_patient,
    write_study,
)

__all__ = [
    "Anatomy",
    "CT_HU",
    "GENERATOR_VERSION",
    "GRID_PRESETS",
    "Grid",
    "GrowthModel",
    "INPUT_MASKS",
    "KINDS",
    "LiverState",
    "MR_T1",
    "PhantomPatient",
    "PhantomTimepoint",
    "REMNANT_SEGMENTS",
    "SEGMENT_LABELS",
    "TISSUE",
    "TRUTH_MASKS",
    "Tumor",
    "grid_preset",
    "liver_volumes_ml",
    "make_patient",
    "render_timepoint",
    "repositioned",
    "sample_study",
    "to_image",
    "write_patient",
    "write_study",
]
