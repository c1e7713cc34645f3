"""Measuring with given masks must cost at most 2x reading the files (the I/O floor).

Writes a 512x512x320 CT and liver, tumour and FLR masks as compressed NIfTI,
then times (a) reading the four files with SimpleITK and (b)
``flr_volumetry.measure_files`` on them, and prints the ratio.
Run: .venv/bin/python benchmarks/measure_vs_io.py
"""

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

import flr_volumetry as flr

SHAPE_ZYX = (320, 512, 512)
SPACING_MM = (0.78, 0.78, 1.0)


def _write(folder):
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:SHAPE_ZYX[0], :SHAPE_ZYX[1], :SHAPE_ZYX[2]]
    liver = (((z - 160) / 110.0) ** 2 + ((y - 250) / 150.0) ** 2 + ((x - 200) / 170.0) ** 2) < 1
    tumor = (((z - 150) / 20.0) ** 2 + ((y - 240) / 20.0) ** 2 + ((x - 260) / 20.0) ** 2) < 1
    flr_mask = liver & (x > 230)
    ct = rng.normal(40, 12, SHAPE_ZYX).astype(np.int16)
    ct[liver] += 60
    paths = {}
    for name, arr in (("ct", ct), ("liver", liver.astype(np.uint8)),
                      ("tumor", tumor.astype(np.uint8)), ("flr", flr_mask.astype(np.uint8))):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(SPACING_MM)
        paths[name] = str(folder / f"{name}.nii.gz")
        sitk.WriteImage(img, paths[name], useCompression=True)
    return paths


def _best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    with tempfile.TemporaryDirectory() as d:
        paths = _write(Path(d))
        read_s = _best_of(lambda: [sitk.ReadImage(p) for p in paths.values()])
        measure_s = _best_of(lambda: flr.measure_files(
            paths["ct"], liver=paths["liver"], tumor=paths["tumor"], flr=paths["flr"],
            patient=flr.Patient(175, 80)))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"scan {SHAPE_ZYX[2]}x{SHAPE_ZYX[1]}x{SHAPE_ZYX[0]}, 4 compressed NIfTI files")
    print(f"read with SimpleITK (I/O floor): {read_s:.2f} s")
    print(f"measure_files:                   {measure_s:.2f} s")
    print(f"ratio measure / I/O floor:       {measure_s / read_s:.2f} (target <= 2.0)")
    print(f"peak memory:                     {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
