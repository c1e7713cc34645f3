"""How well a baseline plan gives the follow-up FLR, on the synthetic PVE/ALPPS phantoms.

For each phantom patient (exact truth: the follow-up FLR is segments 1-4 of
the follow-up segment map) a right-hepatectomy plan is placed on the
baseline scan in two ways:

- ``landmarks``: Couinaud landmarks derived from the baseline segment map
  (as a radiologist would place them on the baseline scan);
- ``surface``: a thin-plate-spline cut through 9 points on the baseline
  boundary between segments 1-4 and 5-8, kept on the segment-3 side;

then carried to every follow-up scan with :func:`carry_plan` (both
registration methods), and the follow-up FLR from the carried plan is
compared with the truth. Each follow-up is used as rendered (same patient
position) and repositioned (a known rotation and shift, as between two
real scans). Prints one row per patient, timepoint, plan and
method, and the worst error per method. Target: within 5 %.

Run: ``python benchmarks/registration_accuracy.py [small|sample] [N_PATIENTS] [--timing]``
(``--timing`` adds the time of one rigid registration on the full-size CT).
"""

import sys
import time

import numpy as np
import SimpleITK as sitk

from flr_volumetry import phantoms
from flr_volumetry.remnant import RemnantPlan, flr_from_plan, landmarks_from_segments
from flr_volumetry.remnant._landmarks import _boundary_points, _quadrant_points
from flr_volumetry.remnant._surface import physical_points
from flr_volumetry.registration import RegistrationOptions, carry_plan

REMNANT = [1, 2, 3, 4]


def _image(array, grid):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in grid.spacing_mm))
    img.SetOrigin(tuple(float(o) for o in grid.origin_mm))
    return img


def repositioned(arrays, grid):
    """The follow-up as if the patient lay differently: rotated 4 deg about z and 3 deg
    about x, shifted (12, -8, 20) mm, resampled onto the same grid (labels by nearest
    neighbour; the truth is counted on the resampled segments)."""
    move = sitk.Euler3DTransform()
    move.SetCenter(tuple(float(o) + 0.5 * n * s for o, n, s in
                         zip(grid.origin_mm, grid.size, grid.spacing_mm)))
    move.SetRotation(np.deg2rad(3.0), 0.0, np.deg2rad(4.0))
    move.SetTranslation((12.0, -8.0, 20.0))
    out = {}
    for name in ("image", "liver", "segments"):
        img = _image(arrays[name], grid)
        interp = sitk.sitkLinear if name == "image" else sitk.sitkNearestNeighbor
        fill = -1000.0 if name == "image" else 0
        out[name] = sitk.GetArrayFromImage(sitk.Resample(img, img, move, interp, fill))
    return out


def baseline_plans(segments):
    """The two right-hepatectomy plans placed on the baseline scan."""
    seg = sitk.GetArrayFromImage(segments)
    boundary = physical_points(segments, _boundary_points(seg, REMNANT, [5, 6, 7, 8]))
    keep = physical_points(segments, np.argwhere(seg == 3))
    keep = keep[np.argmin(np.linalg.norm(keep - keep.mean(axis=0), axis=1))]
    return {
        "landmarks": RemnantPlan(resection="right_hepatectomy",
                                 landmarks=landmarks_from_segments(segments)),
        "surface": RemnantPlan(surface_points=_quadrant_points(boundary, 3), keep_point=keep),
    }


def _count(image):
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(image)))


def main(size="small", n_patients=4):
    grid = phantoms.grid_preset(size)
    print(f"phantom grid {size}: {grid.size} voxels of {grid.spacing_mm} mm; plan: right "
          f"hepatectomy (FLR = segments 1-4)")
    print(f"{'patient':8} {'proc':5} {'timepoint':14} {'plan':9} {'method':10} "
          f"{'truth mL':>9} {'carried mL':>10} {'error %':>8} {'base err %':>10} "
          f"{'Dice':>6} {'time s':>6}")
    worst = {}
    for index in range(n_patients):
        patient = phantoms.make_patient(index)
        arrays = [phantoms.render_timepoint(patient, i, grid)
                  for i in range(len(patient.timepoints))]
        v_ml = grid.voxel_volume_ml
        base = arrays[0]
        b_img, b_liver = _image(base["image"], grid), _image(base["liver"], grid)
        plans = baseline_plans(_image(base["segments"], grid))
        b_truth = int(np.isin(base["segments"], REMNANT).sum())
        follow_ups = [(t, "", arrays[t]) for t in range(1, len(arrays))]
        follow_ups += [(t, " moved", repositioned(arrays[t], grid)) for t in range(1, len(arrays))]
        for t, moved, fu in follow_ups:
            f_img, f_liver = _image(fu["image"], grid), _image(fu["liver"], grid)
            truth = int(np.isin(fu["segments"], REMNANT).sum())
            for plan_name, plan in plans.items():
                b_err = 100 * (_count(flr_from_plan(plan, b_liver)[0]) / b_truth - 1)
                for method in ("rigid", "deformable"):
                    t0 = time.perf_counter()
                    carried, report = carry_plan(plan, b_img, b_liver, f_img, f_liver,
                                                 options=RegistrationOptions(method=method))
                    flr_n = _count(flr_from_plan(carried, f_liver)[0])
                    dt = time.perf_counter() - t0
                    err = 100 * (flr_n / truth - 1)
                    worst[method] = max(worst.get(method, 0.0), abs(err))
                    print(f"{patient.patient_id:8} {patient.procedure:5} "
                          f"{patient.timepoints[t].name + moved:14} {plan_name:9} {method:10} "
                          f"{truth * v_ml:9.1f} {flr_n * v_ml:10.1f} {err:8.1f} {b_err:10.1f} "
                          f"{report.dice:6.3f} {dt:6.1f}")
    default = RegistrationOptions().method
    for method, w in worst.items():
        role = "the default" if method == default else "an option, not the default"
        print(f"worst |error| with {method} registration ({role}): {w:.1f} % (target 5 %: "
              f"{'met' if w <= 5 else 'NOT met'})")


def full_grid_timing():
    """Seconds of one rigid registration on the full 512x512x300 CT phantom."""
    from flr_volumetry.registration import register_scans

    grid = phantoms.grid_preset("full")
    patient = phantoms.make_patient(0)
    arrays = [phantoms.render_timepoint(patient, i, grid) for i in (0, 1)]
    t0 = time.perf_counter()
    _, report = register_scans(*(_image(arrays[i][k], grid) for i, k in
                                 ((0, "image"), (0, "liver"), (1, "image"), (1, "liver"))))
    print(f"rigid registration on the full grid {grid.size}: "
          f"{time.perf_counter() - t0:.1f} s (Dice {report.dice:.3f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "small",
         int(sys.argv[2]) if len(sys.argv) > 2 else 4)
    if "--timing" in sys.argv:
        full_grid_timing()
