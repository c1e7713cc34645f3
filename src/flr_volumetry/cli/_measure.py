"""``flr-volumetry measure``: volumes and sFLR of one scan."""

from __future__ import annotations

import sys

from ..workflow import measure_files
from ._common import add_patient_arguments, emit_json, fmt, options_from_args, patient_from_args


def add_parser(sub):
    p = sub.add_parser(
        "measure", help="measure liver, tumour and FLR volumes and sFLR of one scan",
        description="Measure liver, tumour and FLR volumes and sFLR of one scan. "
                    "Masks: FILE (non-zero voxels), FILE:5 or FILE:1,2 (labels), "
                    "FILE:liver (TotalSegmentator name) or a TotalSegmentator folder.",
    )
    p.add_argument("image", help="scan: NIfTI, NRRD, MHA file or DICOM series folder")
    p.add_argument("--liver", help="liver mask (default: automatic segmentation)")
    p.add_argument("--tumor", help="tumour mask")
    p.add_argument("--flr", help="future liver remnant mask")
    p.add_argument("--segments", help="Couinaud label map (labels 1-8), for per-segment volumes")
    p.add_argument("--series-uid", help="SeriesInstanceUID, for DICOM folders with several series")
    p.add_argument("--scan-date", help="scan date YYYY-MM-DD (default: DICOM StudyDate)")
    p.add_argument("--modality", choices=("ct", "mr"),
                   help="for automatic segmentation (default: DICOM header, else ct)")
    add_patient_arguments(p)
    p.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    p.set_defaults(func=run)


def run(args):
    m = measure_files(
        args.image, liver=args.liver, tumor=args.tumor, flr=args.flr, segments=args.segments,
        patient=patient_from_args(args), options=options_from_args(args),
        series_uid=args.series_uid, scan_date=args.scan_date, modality=args.modality,
    )
    if args.json:
        emit_json(m.to_dict(), args.json)
    else:
        emit_json(m.to_dict(), None)
        return 0
    print(f"total liver {fmt(m.total_liver_ml, ' mL')}, tumour {fmt(m.tumor_ml, ' mL')}, "
          f"FLR {fmt(m.flr_ml, ' mL')}, sFLR {fmt(m.sflr_pct, ' %')} "
          f"(threshold {m.sflr_threshold_pct:g} %); written to {args.json}")
    for w in m.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
