"""Reading a DICOM series: flr_volumetry.load_image against SimpleITK's series reader.

``load_image`` does more than SimpleITK's ImageSeriesReader: it reads every
header first to pick the series, drop scout slices and refuse gaps, then the
pixels. This prints what that care costs on a 512x512x200 CT series (written
here with ``write_dicom_series``), best of three runs each, and checks that
both readers give the same voxels and geometry.

Run: .venv/bin/python benchmarks/dicom_read.py
"""

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry.io import write_dicom_series

SHAPE_ZYX = (200, 512, 512)
SPACING_MM = (0.78, 0.78, 1.25)


def _best_of(fn, repeats=3):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _sitk_read(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def main():
    rng = np.random.default_rng(0)
    ct = rng.normal(40, 12, SHAPE_ZYX).astype(np.int16)
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing(SPACING_MM)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        t0 = time.perf_counter()
        write_dicom_series(img, folder, study_date="2024-01-01")
        t_write = time.perf_counter() - t0
        t_sitk, ref = _best_of(lambda: _sitk_read(folder))
        t_ours, scan = _best_of(lambda: flr.load_image(folder))
        same = (np.array_equal(sitk.GetArrayViewFromImage(ref), sitk.GetArrayViewFromImage(scan.image))
                and np.allclose(ref.GetSpacing(), scan.image.GetSpacing())
                and np.allclose(ref.GetOrigin(), scan.image.GetOrigin()))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"DICOM series {SHAPE_ZYX[2]}x{SHAPE_ZYX[1]}x{SHAPE_ZYX[0]} ({SHAPE_ZYX[0]} files), "
          f"written in {t_write:.2f} s")
    print(f"SimpleITK ImageSeriesReader : {t_sitk:.2f} s")
    print(f"flr_volumetry.load_image    : {t_ours:.2f} s  (ratio {t_ours / t_sitk:.2f}x)")
    print(f"same voxels and geometry    : {same}")
    print(f"peak memory                 : {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
