"""Live-table recomputation time on a 512x512x300 scan (prints milliseconds).

What the volumetry widget does after each brush stroke: ``LiveMeasure``
crops the liver, tumour and FLR layers to where they are non-zero and calls
``flr_volumetry.measure``. Compared with ``measure`` on the whole arrays
wrapped with ``SimpleITK.GetImageFromArray``. Target: < 100 ms.

Run: ``.venv/bin/python plugins/napari/benchmarks/live_table.py``
"""

import time
from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk


def _phantom(radii_zyx, shape=(300, 512, 512)):
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    # An ellipsoid liver at 0.8 x 0.8 x 1.0 mm, a tumour and a left-side FLR.
    rz, ry, rx = radii_zyx
    liver = (((z - 150) / rz) ** 2 + ((y - 250) / ry) ** 2
             + ((x - 200) / rx) ** 2 < 1).astype(np.uint8)
    tumor = np.zeros(shape, np.uint8)
    tumor[140:170, 230:270, 150:190] = 1
    flr = liver.copy()
    flr[:, :, 230:] = 0
    return liver, tumor, flr


def _layer(arr, name, geometry):
    return SimpleNamespace(data=arr, name=name, metadata={"flr_geometry": geometry})


def main(repeats=7):
    # A typical adult liver (about 2 L) and a very large one (about 4.6 L: the biggest crop).
    for radii in ((70.0, 95.0, 110.0), (95.0, 120.0, 150.0)):
        run(radii, repeats)


def run(radii, repeats):
    import flr_volumetry as flr
    from flr_volumetry_napari._model import LiveMeasure

    liver, tumor, flr_arr = _phantom(radii)
    spacing = [0.8, 0.8, 1.0]
    disp = {"size": list(liver.shape[::-1]), "spacing": spacing, "origin": [0.0, 0.0, 0.0],
            "direction": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]}
    geo = {"original": disp, "display": disp}
    layers = [_layer(a, n, geo) for a, n in ((liver, "liver"), (tumor, "tumor"), (flr_arr, "flr"))]
    patient = flr.Patient(170, 70)
    live = LiveMeasure()

    t = time.perf_counter()
    for layer in layers:
        live.box(layer)
    first_ms = (time.perf_counter() - t) * 1e3

    def paint():
        # One brush stroke of radius 10 voxels on the FLR, as napari reports it.
        zz, yy, xx = np.mgrid[150:151, 300:320, 100:120]
        idx = (zz.ravel(), yy.ravel(), xx.ravel())
        layers[2].data[idx] = 1
        live.painted(layers[2], [(idx, None, 1)])

    times = []
    for _ in range(repeats):
        paint()
        t = time.perf_counter()
        m = live.measure(layers[0], tumor=layers[1], flr=layers[2], patient=patient)
        times.append((time.perf_counter() - t) * 1e3)

    def full():
        imgs = []
        for a in (liver, tumor, flr_arr):
            im = sitk.GetImageFromArray(a)
            im.SetSpacing(spacing)
            imgs.append(im)
        return flr.measure(imgs[0], tumor=imgs[1], flr=imgs[2], patient=patient)

    full_times = []
    for _ in range(max(2, repeats // 2)):
        t = time.perf_counter()
        mf = full()
        full_times.append((time.perf_counter() - t) * 1e3)
    assert abs(mf.flr_ml - m.flr_ml) < 1e-9 and abs(mf.total_liver_ml - m.total_liver_ml) < 1e-9
    assert mf.warnings == m.warnings
    print(f"scan 512x512x300 ({liver.size / 1e6:.1f} M voxels), liver {m.total_liver_ml:.1f} mL, "
          f"FLR {m.flr_ml:.1f} mL")
    print(f"bounding boxes, once per opened layer: {first_ms:.0f} ms")
    print(f"live table after a brush stroke (cropped measure): median "
          f"{np.median(times):.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms "
          f"(target < 100 ms)")
    print(f"measure on the whole arrays (GetImageFromArray): median {np.median(full_times):.0f} ms")
    crop = live.box(layers[0])
    print("results identical: yes; liver box "
          + "x".join(str(b - a) for a, b in zip(crop.lo, crop.hi)) + " voxels (z, y, x)\n")


if __name__ == "__main__":
    main()
