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
        base = {k: phantoms.to_image(arrays[0][k], grid) for k in ("image", "liver", "segments")}
        b_img, b_liver = base["image"], base["liver"]
        plans = baseline_plans(base["segments"])
        b_truth = int(np.isin(arrays[0]["segments"], REMNANT).sum())
        follow_ups = [(t, "", {k: phantoms.to_image(arrays[t][k], grid)
                               for k in ("image", "liver", "segments")})
                      for t in range(1, len(arrays))]
        follow_ups += [(t, " moved", phantoms.repositioned(arrays[t], grid))
                       for t in range(1, len(arrays))]
        for t, moved, fu in follow_ups:
            f_img, f_liver = fu["image"], fu["liver"]
            truth = int(np.isin(sitk.GetArrayViewFromImage(fu["segments"]), REMNANT).sum())
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
    _, report = register_scans(*(phantoms.to_image(arrays[i][k], grid) for i, k in
                                 ((0, "image"), (0, "liver"), (1, "image"), (1, "liver"))))
    print(f"rigid registration on the full grid {grid.size}: "
          f"{time.perf_counter() - t0:.1f} s (Dice {report.dice:.3f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "small",
         int(sys.argv[2]) if len(sys.argv) > 2 else 4)
    if "--timing" in sys.argv:
        full_grid_timing()
