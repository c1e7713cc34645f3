"""``flr-volumetry phantom``: write a synthetic study (CT or MR phantoms with exact truth)."""

from __future__ import annotations

import argparse
import sys

from ._common import OptionError


def _whole_number(minimum):
    """An argparse type: a whole number of at least ``minimum`` (else a usage error, exit 2,
    like any other malformed option)."""
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {n}")
        return n
    return parse


def add_parser(sub):
    p = sub.add_parser(
        "phantom", help="write a synthetic PVE/ALPPS study with exact truth",
        description="Write synthetic abdominal CT or MR phantoms in the study-folder layout "
                    "of `batch`: per patient a baseline and a post-PVE or post-ALPPS scan "
                    "with liver, tumour and Couinaud segment masks, and the ground truth in "
                    "P###/truth.json and P###/<timepoint>/truth/. Patients cycle through "
                    "adequate PVE, inadequate PVE and ALPPS; the same seed gives the same "
                    "study.",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the study into")
    p.add_argument("--patients", type=_whole_number(1), default=3, metavar="N",
                   help="number of patients (default: 3)")
    p.add_argument("--seed", type=_whole_number(0), default=0,
                   help="random seed, 0 or more (default: 0)")
    p.add_argument("--modality", choices=("ct", "mr"), default="ct",
                   help="CT (portal venous HU) or T1-like MR with bias field (default: ct)")
    p.add_argument("--format", dest="fmt", choices=("nifti", "dicom"), default="nifti",
                   help="image format: NIfTI file or DICOM series folder (default: nifti); "
                        "masks are always NIfTI")
    p.add_argument("--size", choices=("small", "sample", "full"), default="sample",
                   help="grid: small (128x128, fast), sample (256x256, default) or full "
                        "(512x512x300 for CT)")
    p.add_argument("--no-masks", action="store_true",
                   help="ship only the images as inputs, with the planned resection and "
                        "each scan's Couinaud landmarks in <timepoint>/plan.json (the truth "
                        "masks are still written under truth/), so that automatic "
                        "segmentation has to do the work; CT only")
    p.set_defaults(func=run)


def run(args):
    from ..phantoms import INPUT_MASKS, write_study

    if args.no_masks and args.modality == "mr":
        raise OptionError("--no-masks works with --modality ct only: batch segments an MR "
                          "liver only from seed points, which a study folder cannot give.")

    def progress(patient_id):
        print(f"wrote {patient_id}", file=sys.stderr)

    truths = write_study(args.out_dir, n_patients=args.patients, seed=args.seed,
                         modality=args.modality, fmt=args.fmt, size=args.size,
                         input_masks=() if args.no_masks else INPUT_MASKS, progress=progress)
    for t in truths:
        e = t["expected"]
        print(f"{t['patient_id']}: {t['procedure']}, sFLR {e['sflr_baseline_pct']:.1f} -> "
              f"{e['sflr_followup_pct']:.1f} %, KGR {e['kgr_pct_per_week']:.2f} %/week, "
              f"GR {e['gr_pct_per_week']:.2f} %/week")
    print(args.out_dir)
    return 0
