"""Speed of the phantom generator: one 512x512x300 CT timepoint (target < 10 s).

Prints the seconds to build the patient (calibration), to render one
timepoint (labels, masks, blur, noise), to write it as NIfTI, and the peak
resident memory. Also times the bundled sample study (3 patients, 2
timepoints each, 256x256x112).

Run: ``.venv/bin/python benchmarks/phantom_speed.py [--skip-write] [--skip-sample]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _peak_mb():
    # ru_maxrss is in kB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-write", action="store_true", help="do not time the NIfTI writing")
    ap.add_argument("--skip-sample", action="store_true", help="do not time the sample study")
    ap.add_argument("--repeat", type=int, default=2, help="renders of the full grid (best kept)")
    args = ap.parse_args(argv)

    from flr_volumetry import phantoms
    from flr_volumetry.volumetry import field_of_view_warnings
    from flr_volumetry.phantoms import to_image

    grid = phantoms.grid_preset("full", "ct")
    print(f"grid {grid.size[0]}x{grid.size[1]}x{grid.size[2]} at "
          f"{'x'.join(f'{s:g}' for s in grid.spacing_mm)} mm "
          f"({np.prod(grid.size) / 1e6:.1f} M voxels)")
    t0 = time.perf_counter()
    patient = phantoms.make_patient(0)
    t_patient = time.perf_counter() - t0
    print(f"make_patient (anatomy + growth calibration, 2 timepoints): {t_patient:.2f} s")

    best = best_cpu = None
    for _ in range(max(1, args.repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        arrays = phantoms.render_timepoint(patient, 0, grid)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    # CPU seconds too: on a shared machine the wall clock also counts other people's work.
    print(f"render one CT timepoint (best of {max(1, args.repeat)}): {best:.2f} s wall, "
          f"{best_cpu:.2f} s CPU (target < 10 s: {'met' if best < 10 else 'NOT met'})")
    print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    liver = to_image(arrays["liver"], grid)
    print(f"liver {arrays['liver'].sum() * grid.voxel_volume_ml:.1f} mL; field-of-view "
          f"warnings: {field_of_view_warnings(liver) or 'none'}")
    if not args.skip_write:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            from flr_volumetry.io import write_mask
            from flr_volumetry.io._writers import write_scan

            write_scan(to_image(arrays["image"], grid), Path(d) / "image.nii.gz")
            for k in phantoms.TRUTH_MASKS:
                write_mask(to_image(arrays[k], grid), Path(d) / f"{k}.nii.gz")
            print(f"write image + 5 masks as NIfTI (gzip): {time.perf_counter() - t0:.2f} s")
    print(f"peak resident memory: {_peak_mb():.0f} MB")

    if not args.skip_sample:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            phantoms.sample_study(Path(d) / "study", force=True)
            print(f"sample study (3 patients x 2 timepoints, 256x256x112, written): "
                  f"{time.perf_counter() - t0:.2f} s")
        print(f"peak resident memory: {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
