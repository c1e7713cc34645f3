"""``flr-volumetry segment``: liver (and tumour) masks from a scan."""

from __future__ import annotations

import os
import sys

from ..errors import InputError
from ..io import load_image, write_mask
from ..io._writers import all_or_none
from ..volumetry import mask_volume_ml
from ._common import NUMBERS, check_outputs


def _point(text):
    """Parse ``I,J,K`` (integers) into a tuple; argparse reports a bad one as usage."""
    import argparse

    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        return tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a voxel index I,J,K (three integers, SimpleITK x,y,z order)"
        ) from None


def add_parser(sub):
    p = sub.add_parser(
        "segment", help="segment the liver (and CT tumours) of a scan",
        description="Segment the liver of a CT (automatic or seeded) or MR scan (seeded) and "
                    "write the mask on the scan's grid. Seeds and exclude points are voxel "
                    "indices I,J,K in SimpleITK x,y,z order.",
    )
    p._negative_number_matcher = NUMBERS
    p.add_argument("image", help="scan: NIfTI, NRRD, MHA/MHD file or DICOM series folder")
    p.add_argument("-o", "--output", required=True, metavar="LIVER.nii.gz",
                   help="liver mask to write (.nii.gz, .nrrd, .mha, .seg.nrrd; .dcm DICOM SEG "
                        "for a DICOM series input)")
    p.add_argument("--modality", choices=("ct", "mr"), default=None,
                   help="default: the DICOM header's, else ct")
    p.add_argument("--seed", type=_point, nargs="+", action="extend", default=[],
                   metavar="I,J,K", help="point(s) inside the liver (repeatable)")
    p.add_argument("--exclude", type=_point, nargs="+", action="extend", default=[],
                   metavar="I,J,K", help="point(s) outside the liver it must not reach")
    p.add_argument("--tumor-seed", type=_point, nargs="+", action="extend", default=[],
                   metavar="I,J,K", help="point(s) inside liver lesions, grown into the tumour "
                                         "mask (and into the liver when at its surface)")
    p.add_argument("--tumor-out", metavar="TUMOR.nii.gz",
                   help="also write the tumour mask: lesions grown from --tumor-seed (CT and "
                        "MR), plus on CT the hypo-attenuating candidates found in the liver")
    p.add_argument("--segments-out", metavar="SEGMENTS.nii.gz",
                   help="also write Couinaud segments 1-8 (TotalSegmentator's liver_segments "
                        "task; needs --backend totalsegmentator), for measure --segments")
    p.add_argument("--backend", choices=("classic", "totalsegmentator"), default="classic",
                   help="classic image analysis (default) or TotalSegmentator if installed")
    p.add_argument("--series-uid", help="SeriesInstanceUID, for DICOM folders with several series")
    p.set_defaults(func=run)


def _check_output(path, scan):
    """Refuse an output the scan cannot have, before any work is done."""
    name = os.fspath(path).lower()
    if name.endswith(".dcm") and not os.path.isdir(os.fspath(scan.source)):
        raise InputError(
            "a DICOM SEG output (.dcm) needs a DICOM series folder as input, to reference "
            "it; write .nii.gz or .seg.nrrd instead."
        )
    if name.endswith(".dcm"):
        # Found by the SEG writer too, but only after the whole segmentation had run (no
        # FrameOfReferenceUID, no StudyInstanceUID).
        from ..io._segfiles import check_seg_source

        check_seg_source(scan.source, scan.series_instance_uid)
    if not name.endswith((".nii.gz", ".nii", ".nrrd", ".mha", ".dcm")):
        raise InputError(f"cannot write a mask as {os.path.basename(path)}; use .nii.gz, "
                         f".nrrd, .seg.nrrd, .mha or (for DICOM input) .dcm.")


def _write(mask, path, scan, what):
    """Write ``mask`` by suffix: .seg.nrrd and DICOM SEG (.dcm) through ``io``, else NIfTI etc."""
    from ..io import write_dicom_seg, write_seg_nrrd

    name = os.fspath(path).lower()
    if name.endswith(".seg.nrrd"):
        write_seg_nrrd({what: mask}, path)
    elif name.endswith(".dcm"):
        # The series that was segmented (--series-uid), not the folder's default.
        write_dicom_seg(mask, scan.source, path, segment_names=[what],
                        series_uid=scan.series_instance_uid,
                        algorithm_name="flr-volumetry segment")
    else:
        write_mask(mask, path)


def run(args):
    from ..segmentation import SegmentationOptions, couinaud_segments, segment_liver

    check_outputs({"-o": args.output, "--tumor-out": args.tumor_out,
                   "--segments-out": args.segments_out}, [args.image])
    if args.segments_out and args.backend != "totalsegmentator":
        raise InputError("--segments-out: Couinaud segments come from TotalSegmentator's "
                         "liver_segments task; add --backend totalsegmentator, or define the "
                         "remnant with landmarks or a cut surface (measure --help).")
    if args.segments_out and args.segments_out.lower().endswith((".seg.nrrd", ".dcm")):
        raise InputError("--segments-out writes a label map (1-8): use .nii.gz, .nrrd or "
                         ".mha.")
    scan = load_image(args.image, series_uid=args.series_uid)
    for path in (args.output, args.tumor_out, args.segments_out):
        if path:
            _check_output(path, scan)
    modality = args.modality or scan.ct_or_mr
    if args.modality is None and modality == "mr" and not args.seed and args.backend == "classic":
        # Refused as "only available for CT", the user of a CT labelled MR was not told
        # where the modality came from.
        raise InputError("the DICOM header gives the modality MR, and automatic segmentation "
                         "is for CT only; give --seed points inside the liver, or --modality "
                         "ct if the scan is a CT.")
    if args.tumor_out and not args.tumor_seed and (modality != "ct" or args.backend != "classic"):
        raise InputError(
            "--tumor-out: tumour candidates are searched on CT with the classic backend only; "
            "give --tumor-seed points inside the lesions, or leave out --tumor-out."
        )
    result = segment_liver(scan.image, modality=modality, seeds=args.seed or None,
                           exclude=args.exclude or None,
                           options=SegmentationOptions(backend=args.backend),
                           tumor_seeds=args.tumor_seed or None)
    outputs = [(result.liver, args.output, "liver")]
    line = f"liver {mask_volume_ml(result.liver):.1f} mL written to {args.output}"
    segment_warnings = []
    if args.segments_out:
        segments, segment_warnings = couinaud_segments(scan.image, modality)
        outputs.append((segments, args.segments_out, "Couinaud segments"))
        line += f"; Couinaud segments written to {args.segments_out}"
    if args.tumor_out:
        if result.tumor is None:
            print("warning: no tumour search for this modality/backend; no tumour mask written.",
                  file=sys.stderr)
        else:
            outputs.append((result.tumor, args.tumor_out, "liver tumor"))
            what = "tumour" if args.tumor_seed else "tumour candidates"
            line += f"; {what} {mask_volume_ml(result.tumor):.1f} mL written to " \
                    f"{args.tumor_out}"
    # Both or neither: a tumour SEG that cannot be written must not leave this run's liver
    # beside an earlier run's tumour mask.
    with all_or_none([path for _, path, _ in outputs]) as staged:
        for (mask, _, what), tmp in zip(outputs, staged):
            _write(mask, tmp, scan, what)
    print(line)
    for w in list(scan.warnings) + list(result.warnings) + list(segment_warnings):
        print(f"warning: {w}", file=sys.stderr)
    return 0
