"""``flr-volumetry measure``: volumes and sFLR of one scan."""

from __future__ import annotations

import sys

from ..errors import InputError
from ..io import write_json_atomic, write_mask
from ..workflow import measure_files
from ._common import (NUMBERS, OptionError, add_patient_arguments, check_outputs, emit_json,
                      fmt, fmt_vs, options_from_args, patient_from_args)


def add_parser(sub):
    p = sub.add_parser(
        "measure", help="measure liver, tumour and FLR volumes and sFLR of one scan",
        description="Measure liver, tumour and FLR volumes and sFLR of one scan. "
                    "Masks: FILE (non-zero voxels), FILE:5 or FILE:1,2 (labels), "
                    "FILE:liver (TotalSegmentator name) or a TotalSegmentator folder. "
                    "The FLR comes from --flr, or from a plan: a resection on Couinaud "
                    "segments (--resection/--remnant-segments with --segments or --landmarks), "
                    "a cut (--resection-plane/--resection-surface with --keep-point) or "
                    "--plan PLAN.json.",
    )
    p._negative_number_matcher = NUMBERS
    p.add_argument("image", help="scan: NIfTI, NRRD, MHA/MHD file or DICOM series folder")
    p.add_argument("--liver", help="liver mask (default: automatic segmentation)")
    p.add_argument("--tumor", help="tumour mask")
    p.add_argument("--flr", help="future liver remnant mask")
    p.add_argument("--segments", help="Couinaud label map (labels 1-8), for per-segment volumes")
    p.add_argument("--series-uid", help="SeriesInstanceUID, for DICOM folders with several series")
    p.add_argument("--scan-date", help="scan date YYYY-MM-DD (default: DICOM StudyDate)")
    p.add_argument("--modality", choices=("ct", "mr"),
                   help="for automatic segmentation (default: DICOM header, else ct)")
    add_plan_arguments(p)
    add_patient_arguments(p)
    p.add_argument("--json", metavar="OUT.json", help="write the result as JSON")
    p.set_defaults(func=run)


def add_plan_arguments(parser):
    """The options that define the FLR by a remnant plan."""
    from ..remnant import RESECTIONS

    g = parser.add_argument_group(
        "remnant plan (instead of --flr; coordinates are physical LPS mm)")
    g.add_argument("--resection", metavar="NAME",
                   help=f"named resection on Couinaud segments: {', '.join(RESECTIONS)}")
    g.add_argument("--remnant-segments", metavar="2,3",
                   help="the Couinaud segments that remain, e.g. 2,3")
    g.add_argument("--resect-caudate", action="store_true",
                   help="also resect segment 1 (by default the caudate stays)")
    g.add_argument("--landmarks", metavar="L.json",
                   help="named landmarks (JSON) that define the Couinaud segments when there "
                        "is no --segments map")
    g.add_argument("--resection-plane", metavar='"x,y,z;x,y,z;x,y,z"',
                   help="cut plane through three points")
    g.add_argument("--resection-surface", metavar="POINTS.json",
                   help='curved cut through >= 4 points: {"points": [[x,y,z], ...], '
                        '"keep_point": [x,y,z]}')
    g.add_argument("--keep-point", metavar='"x,y,z"',
                   help="a point in the liver on the side that remains")
    g.add_argument("--plan", metavar="PLAN.json", help="a saved remnant plan")
    g.add_argument("--plan-baseline", metavar="IMAGE",
                   help="the scan the plan was placed on, when it is another timepoint: the "
                        "plan is carried to this scan by registration")
    g.add_argument("--plan-baseline-liver", metavar="MASK",
                   help="liver mask of --plan-baseline")
    g.add_argument("--min-registration-dice", type=float, default=0.80, metavar="D",
                   help="refuse to carry the plan when the registered livers overlap less "
                        "(Dice; default 0.80)")
    g.add_argument("--save-plan", metavar="PLAN.json",
                   help="save the plan used on this scan, as JSON")
    g.add_argument("--flr-out", metavar="FLR.nii.gz", help="write the FLR mask")


def _read_surface(path):
    from ..remnant import parse_point
    from ..remnant._plan import read_json

    data = read_json(path, "resection surface file")
    keep = None
    if isinstance(data, dict):
        keep = data.get("keep_point")
        data = data.get("points", data.get("surface_points"))
    if not isinstance(data, list):
        raise InputError(f"the resection surface file {path} must hold "
                         f'{{"points": [[x, y, z], ...], "keep_point": [x, y, z]}}.')
    return data, None if keep is None else parse_point(keep, "keep point")


# Keys of a saved RemnantPlan that a landmarks file ({"landmarks": {...}}) never holds.
_PLAN_ONLY_KEYS = {"schema_version", "placed_on", "resection", "remnant_segments",
                   "resect_caudate", "surface_points", "keep_point"}


def plan_from_args(args):
    """The RemnantPlan the options describe, or None (no plan options given)."""
    from ..remnant import RemnantPlan, parse_point, parse_points
    from ..remnant._plan import read_json

    defining = {"--resection": args.resection, "--remnant-segments": args.remnant_segments,
                "--landmarks": args.landmarks, "--resection-plane": args.resection_plane,
                "--resection-surface": args.resection_surface, "--keep-point": args.keep_point,
                "--resect-caudate": args.resect_caudate or None}
    given = [k for k, v in defining.items() if v is not None]
    if args.plan is not None:
        if given:
            raise InputError(f"--plan already defines the remnant; drop {', '.join(given)}.")
        return RemnantPlan.load(args.plan)
    if not given:
        return None
    if args.resection_plane is not None and args.resection_surface is not None:
        raise InputError("give --resection-plane or --resection-surface, not both.")
    keep = None if args.keep_point is None else parse_point(args.keep_point, "keep point")
    if args.resection_plane is not None or args.resection_surface is not None:
        if args.resection_plane is not None:
            points = parse_points(args.resection_plane, "resection plane point")
            if len(points) != 3:
                raise InputError(f"--resection-plane needs exactly three points "
                                 f'"x,y,z;x,y,z;x,y,z", got {len(points)}; use '
                                 f"--resection-surface for more.")
        else:
            points, file_keep = _read_surface(args.resection_surface)
            if keep is not None and file_keep is not None and tuple(keep) != tuple(file_keep):
                # Each keeps a side of the cut: which one the user meant is not ours to guess.
                raise InputError("--keep-point and the keep_point of the resection surface file "
                                 "differ; give one of them.")
            keep = keep if keep is not None else file_keep
        segment_opts = [k for k in ("--resection", "--remnant-segments", "--landmarks",
                                    "--resect-caudate") if defining[k] is not None]
        if segment_opts:
            raise InputError(f"a cut plane or surface defines the remnant by itself; drop "
                             f"{', '.join(segment_opts)}.")
        return RemnantPlan(surface_points=points, keep_point=keep)
    landmarks = None
    if args.landmarks is not None:
        data = read_json(args.landmarks, "landmarks file")
        if isinstance(data, dict) and set(data) & _PLAN_ONLY_KEYS:
            # Read as landmarks, a saved plan would lose the scan its points were placed
            # on (and so the warning on another scan) and its own resection.
            raise InputError(f"{args.landmarks} is a saved remnant plan, not a landmarks "
                             f"file; give it with --plan.")
        landmarks = data.get("landmarks", data) if isinstance(data, dict) else data
        if not isinstance(landmarks, dict):
            raise InputError(f"the landmarks file {args.landmarks} must hold an object of "
                             f"named points {{name: [x, y, z]}}.")
    segments = None
    if args.remnant_segments is not None:
        try:
            segments = [int(s) for s in args.remnant_segments.split(",") if s.strip()]
        except ValueError:
            raise InputError(f"--remnant-segments takes segment numbers like 2,3, not "
                             f"{args.remnant_segments!r}.") from None
    return RemnantPlan(resection=args.resection, remnant_segments=segments,
                       resect_caudate=args.resect_caudate, landmarks=landmarks,
                       keep_point=keep)


def run(args):
    check_outputs({"--json": args.json, "--flr-out": args.flr_out, "--save-plan": args.save_plan},
                  [args.image, args.liver, args.tumor, args.flr, args.segments, args.plan,
                   args.landmarks, args.resection_surface, args.plan_baseline,
                   args.plan_baseline_liver])
    plan = plan_from_args(args)
    if plan is not None and args.flr is not None:
        raise OptionError("give either --flr or a remnant plan, not both: the plan defines "
                          "the FLR.")
    if args.save_plan and plan is None:
        raise OptionError("--save-plan needs a plan (--resection, --remnant-segments, "
                          "--resection-plane, --resection-surface or --landmarks).")
    if args.flr_out and plan is None and args.flr is None:
        raise OptionError("--flr-out needs an FLR: give --flr or a remnant plan.")
    baseline = None
    if args.plan_baseline or args.plan_baseline_liver:
        if not (args.plan_baseline and args.plan_baseline_liver):
            raise OptionError("give both --plan-baseline and --plan-baseline-liver.")
        if plan is None:
            raise OptionError("--plan-baseline needs a plan to carry (--plan, --landmarks, "
                              "--resection-plane or --resection-surface).")
        baseline = (args.plan_baseline, args.plan_baseline_liver)
    from ..registration import RegistrationOptions

    masks = {}
    m = measure_files(
        args.image, liver=args.liver, tumor=args.tumor, flr=args.flr, segments=args.segments,
        patient=patient_from_args(args), options=options_from_args(args),
        series_uid=args.series_uid, scan_date=args.scan_date, modality=args.modality,
        masks_out=masks, plan=plan, plan_baseline=baseline,
        registration=RegistrationOptions(min_dice=args.min_registration_dice),
    )
    if args.flr_out:
        write_mask(masks["flr"], args.flr_out, segment_name="FLR")  # a .seg.nrrd says what it is
    if args.save_plan:
        # A plan with points is saved as applied: its points those of this scan (carried
        # here, if it was), and this scan's grid recorded with them.
        if "plan_applied" in m.methods:
            write_json_atomic(m.methods["plan_applied"], args.save_plan)
        else:
            plan.save(args.save_plan)
    # On stderr with or without --json: JSON on stdout is often piped to a file, and its
    # warnings had then reached no one.
    for w in m.warnings:
        print(f"warning: {w}", file=sys.stderr)
    emit_json(m.to_dict(), args.json)
    if args.json:
        print(f"total liver {fmt(m.total_liver_ml, ' mL')}, tumour {fmt(m.tumor_ml, ' mL')}, "
              f"FLR {fmt(m.flr_ml, ' mL')}, "
              f"sFLR {fmt_vs(m.sflr_pct, m.sflr_threshold_pct, ' %')} "
              f"(threshold {m.sflr_threshold_pct:g} %); written to {args.json}")
    return 0
