"""Speed and peak memory of automatic CT liver segmentation on a 512x512 scan.

The shared ``ct-whole-liver`` CT (256x256x207 at 1.5625 mm) is resampled to
0.78 mm in-plane (512x512x207), as a clinical scan comes off the scanner,
written to a temporary file, and segmented in a fresh process so that the
peak resident memory (RSS) is that of one segmentation. Targets (issue 4):
at most 20 s (aim 10 s) on the 2-core machine, peak RSS under 3 GB.

The same scan is then also resampled to 1 mm slices (512x512x518), as a
thin-slice reconstruction comes off a modern scanner, and segmented once:
the issue sets no target for it; it shows how time and memory grow with
the number of slices (it adds about 30 s to the run; ``--thin-mm 0`` skips it).

Seeded MR (no target in the issue): the MR phantom P001 resampled to 1 mm
voxels (384x384x288), as a 3D acquisition, one seed at its deepest voxel;
the worst case of the random-walker boundary, which solves for every voxel
of a band around the liver (``--no-mr`` skips it).

Usage::

    python benchmarks/segmentation_speed.py [--data DIR] [--repeat N] [--thin-mm MM (0: no)]
        [--no-mr]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource, sys, time
import SimpleITK as sitk
from flr_volumetry.segmentation import segment_liver
img = sitk.ReadImage(sys.argv[1])
modality = sys.argv[3] if len(sys.argv) > 3 else "ct"
seeds = [tuple(int(v) for v in sys.argv[4].split(","))] if len(sys.argv) > 4 else None
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    r = segment_liver(img, modality=modality, seeds=seeds)
    dt = time.perf_counter() - t0
    n = int(sitk.GetArrayViewFromImage(r.liver).sum())
    vol = n * img.GetSpacing()[0] * img.GetSpacing()[1] * img.GetSpacing()[2] / 1000.0
    print(f"time_s {dt:.2f} liver_ml {vol:.1f}")
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(f"rss_loaded_mb {rss_loaded:.0f} peak_rss_mb {rss:.0f}")
"""


def make_512(ct_path, out_path, slice_mm=None):
    """The scan resampled to 512x512 in-plane (and to ``slice_mm`` slices when given)."""
    img = sitk.ReadImage(str(ct_path))
    size = img.GetSize()
    spacing = img.GetSpacing()
    slice_mm = spacing[2] if slice_mm is None else float(slice_mm)
    n_slices = int(round(size[2] * spacing[2] / slice_mm))
    new_spacing = (spacing[0] * size[0] / 512.0, spacing[1] * size[1] / 512.0, slice_mm)
    ref = sitk.Image([512, 512, n_slices], img.GetPixelID())
    ref.SetSpacing(new_spacing)
    # Keep the physical extent: the first voxel centre moves by half the spacing change.
    origin = [o + 0.5 * (n - s) for o, s, n in zip(img.GetOrigin(), spacing, new_spacing)]
    ref.SetOrigin(origin)
    ref.SetDirection(img.GetDirection())
    big = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, -1024)
    sitk.WriteImage(big, str(out_path))
    return big


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path,
                   default=os.environ.get("FLR_SHARED_DATA", REPO.parent / "shared" / "data"))
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--thin-mm", type=float, default=1.0,
                   help="also run once on the scan resampled to slices this thick (0: no)")
    p.add_argument("--no-mr", action="store_true", help="skip the seeded 1 mm MR")
    args = p.parse_args(argv)
    if not args.no_mr and _run_mr():
        return 1
    ct = Path(args.data) / "ct-whole-liver" / "ct.nii.gz"
    if not ct.exists():
        print(f"{ct} not found; set FLR_SHARED_DATA")
        return 1
    runs = [(None, args.repeat, "target <= 20 s, aim 10 s; < 3 GB")]
    if args.thin_mm > 0:
        runs.append((args.thin_mm, 1, "thin slices: no target"))
    for slice_mm, repeat, target in runs:
        if _run(ct, slice_mm, repeat, target):
            return 1
    return 0


def _run_mr():
    """Seeded MR on the phantom resampled to 1 mm voxels, in a child process."""
    from segmentation_accuracy import _deepest_of

    from flr_volumetry import phantoms

    grid = phantoms.grid_preset("sample", "mr")
    arrays = phantoms.render_timepoint(phantoms.make_patient(0), 0, grid, modality="mr")
    img = phantoms.to_image(arrays["image"], grid)
    size = [int(round(n * s)) for n, s in zip(img.GetSize(), img.GetSpacing())]
    iso = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(),
                        (1.0, 1.0, 1.0), img.GetDirection(), 0.0, sitk.sitkFloat32)
    tissue = arrays["liver"].astype(bool) & ~arrays["vessels"].astype(bool) & ~arrays[
        "tumor"].astype(bool)
    seed = iso.TransformPhysicalPointToIndex(
        img.TransformIndexToPhysicalPoint(_deepest_of(tissue, img.GetSpacing())))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mr1mm.nii.gz"
        sitk.WriteImage(iso, str(path))
        print(f"MR phantom {iso.GetSize()} at 1 mm, seed {','.join(map(str, seed))}")
        return _segment_in_child(path, 1, "seeded MR", "no target", "mr",
                                 ",".join(map(str, seed)))


def _run(ct, slice_mm, repeat, target):
    """Segment the resampled scan in a child process; print its times and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct512.nii.gz"
        big = make_512(ct, path, slice_mm)
        print(f"scan {big.GetSize()} spacing {tuple(round(s, 3) for s in big.GetSpacing())} mm")
        del big
        return _segment_in_child(path, repeat, "automatic CT", target)


def _segment_in_child(path, repeat, what, target, *child_args):
    """Run CHILD on ``path`` (``child_args``: modality, seed) and print what it measured."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(repeat), *child_args],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        print(out.stderr)
        return 1
    times, rss = [], None
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[0] == "time_s":
            times.append(float(parts[1]))
            print(f"{what} segmentation: {parts[1]} s, liver {parts[3]} mL")
        elif parts[0] == "rss_loaded_mb":
            rss = float(parts[3])
            print(f"peak RSS {parts[3]} MB (after loading the scan: {parts[1]} MB)")
    print(f"best time {min(times):.2f} s; peak RSS {rss / 1024:.2f} GB ({target})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
