"""Couinaud segments from landmarks against real segment maps (3D-IRCADb).

For each reference map in ``../shared/data/couinaud-3dircadb`` (labels 1-8 on
the native grid; the liver is label > 0) landmarks are derived from the
reference (:func:`landmarks_from_segments`: planes fitted to the boundaries
between segment groups, points placed on them), the liver is relabelled
from those landmarks alone (:func:`segments_from_landmarks`), and the result
is compared with the reference:

- Dice of each segment 1-8;
- hemi-liver split Dice: Dice of the left (2-4) and right (5-8) hemilivers
  and their mean, the two-class split Dice (target >= 0.93; segment 1
  belongs to neither side, so caudate errors lower the left figure);
- FLR volume error of each named resection (caudate kept; target within
  10 % for right and extended right hepatectomy).

Run: ``python benchmarks/remnant_accuracy.py [DATA_DIR]``
"""

import os
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from flr_volumetry.remnant import (
    RESECTIONS,
    landmarks_from_segments,
    remnant_segments_of,
    segments_from_landmarks,
)
from flr_volumetry.volumetry import voxel_volume_ml

TARGET_HEMI_DICE = 0.93
TARGET_FLR_PCT = 10.0
SHORT = {"right_hepatectomy": "RH", "extended_right_hepatectomy": "ERH",
         "left_hepatectomy": "LH", "extended_left_hepatectomy": "ELH",
         "left_lateral_sectionectomy": "LLS", "right_posterior_sectionectomy": "RPS"}


def _dice(a, b):
    s = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / s if s else 1.0


def evaluate(reference):
    """Per-segment Dice, (left, right) hemi-liver Dice and FLR volumes for one reference map."""
    liver = sitk.Cast(reference > 0, sitk.sitkUInt8)
    built = segments_from_landmarks(liver, landmarks_from_segments(reference))
    a = sitk.GetArrayFromImage(reference)
    b = sitk.GetArrayFromImage(built)
    seg_dice = [_dice(a == s, b == s) for s in range(1, 9)]
    left, right = [2, 3, 4], [5, 6, 7, 8]
    hemi = (_dice(np.isin(a, left), np.isin(b, left)),
            _dice(np.isin(a, right), np.isin(b, right)))
    v_ml = voxel_volume_ml(reference)
    flr = {}
    for name in RESECTIONS:
        keep = remnant_segments_of(name)
        ref_ml = np.isin(a, keep).sum() * v_ml
        flr[name] = (ref_ml, np.isin(b, keep).sum() * v_ml)
    return seg_dice, hemi, flr


def main(data_dir=None):
    if data_dir is None:
        root = os.environ.get("FLR_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / \
            "shared" / "data"
        data_dir = Path(root) / "couinaud-3dircadb"
    files = sorted(Path(data_dir).glob("*.nii.gz"))
    if not files:
        print(f"no segment maps found in {data_dir}")
        return 1
    print("Couinaud segments rebuilt from landmarks derived from the reference maps")
    print(f"{'case':14} " + " ".join(f"{'S' + str(s):>5}" for s in range(1, 9))
          + f" {'left':>6} {'right':>6} {'hemi':>6} " + " ".join(f"{SHORT[n] + ' %':>7}" for n in RESECTIONS)
          + f" {'s':>5}")
    worst_hemi, worst_flr = 1.0, 0.0
    all_dice = []
    for f in files:
        t0 = time.perf_counter()
        seg_dice, hemi, flr = evaluate(sitk.ReadImage(str(f)))
        dt = time.perf_counter() - t0
        errors = {n: 100 * (got / ref - 1) for n, (ref, got) in flr.items()}
        all_dice.append(seg_dice)
        worst_hemi = min(worst_hemi, np.mean(hemi))
        worst_flr = max(worst_flr, abs(errors["right_hepatectomy"]),
                        abs(errors["extended_right_hepatectomy"]))
        print(f"{f.name.replace('.nii.gz', ''):14} " + " ".join(f"{d:5.3f}" for d in seg_dice)
              + f" {hemi[0]:6.3f} {hemi[1]:6.3f} {np.mean(hemi):6.3f} " + " ".join(f"{errors[n]:7.1f}" for n in RESECTIONS)
              + f" {dt:5.1f}")
        print(f"{'  FLR mL ref/got':14} " + "; ".join(
            f"{SHORT[n]} {ref:.0f}/{got:.0f}" for n, (ref, got) in flr.items()))
    mean = np.mean(all_dice, axis=0)
    print(f"{'mean':14} " + " ".join(f"{d:5.3f}" for d in mean))
    print(f"worst hemi-liver Dice {worst_hemi:.3f} (target >= {TARGET_HEMI_DICE}); worst FLR "
          f"error for right / extended right hepatectomy {worst_flr:.1f} % (target <= "
          f"{TARGET_FLR_PCT:g} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
