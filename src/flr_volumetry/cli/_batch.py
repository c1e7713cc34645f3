"""``flr-volumetry batch`` (a study folder) and ``flr-volumetry demo`` (the bundled sample study)."""

from __future__ import annotations

import argparse
import sys

from ..batch import BatchOptions, run_batch
from ._common import options_from_args
from ..clinical import BSA_FORMULAS, TELV_FORMULAS

EXIT_OK, EXIT_FAILED = 0, 1


def _workers(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--workers must be a whole number >= 1, got {text!r}")
    return n


def _add_run_options(p):
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="timepoints measured at once in separate processes (default: 1)")
    p.add_argument("--bsa-formula", default="mosteller", choices=sorted(BSA_FORMULAS),
                   help="BSA formula (default: mosteller)")
    p.add_argument("--telv-formula", default="vauthey", choices=sorted(TELV_FORMULAS),
                   help="total estimated liver volume formula (default: vauthey)")
    p.add_argument("--no-figures", action="store_true",
                   help="no overlay or growth figures (faster; the report has the tables only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_parser(sub):
    p = sub.add_parser(
        "batch", help="measure every scan of a study folder and each patient's growth",
        description="Measure every timepoint of a study folder (STUDY/P001/patient.json, "
                    "STUDY/P001/<timepoint>/image.nii.gz or image/ DICOM, optional masks) "
                    "and each patient's growth against the baseline (DH, KGR >= 2 %/week, "
                    "GR > 2.66 %/week, sFLR threshold). Writes timepoints.csv, "
                    "patients.csv, results.json, report.html, masks/ and batch.log to OUT. "
                    "Exit 0: all ok; 1: some failed; 2: usage error.",
    )
    p.add_argument("study", metavar="STUDY", help="the study folder")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="skip timepoints already measured in OUT whose inputs are unchanged")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (e.g. tcp://host:8786); its "
                        "workers must see STUDY and OUT at the same paths")
    p.add_argument("--resample-masks", action="store_true",
                   help="resample a given mask on another grid than its scan onto the scan's "
                        "(nearest neighbour, said); without it such a timepoint fails")
    p.add_argument("--from-baseline-date", action="store_true",
                   help="for patients without a procedure date, count growth from the "
                        "baseline scan (not Shindoh's KGR)")
    _add_run_options(p)
    p.set_defaults(func=run)

    d = sub.add_parser(
        "demo", help="run batch on the bundled sample study and print where the report is",
        description="Generate (or reuse) the bundled sample study of synthetic patients, run "
                    "`batch` on it and print the path of report.html.",
    )
    d.add_argument("out", metavar="OUT", nargs="?", default="demo-out",
                   help="output folder (default: demo-out)")
    _add_run_options(d)
    d.set_defaults(func=run_demo)


def _options(args, **extra):
    return BatchOptions(workers=args.workers, volumetry=options_from_args(args),
                        progress=not args.no_progress, figures=not args.no_figures,
                        resample_masks=getattr(args, "resample_masks", False), **extra)


def _finish(result):
    if result.ok:
        print(result.summary_line())
        return EXIT_OK
    print(f"flr-volumetry batch: {result.summary_line()}", file=sys.stderr)
    return EXIT_FAILED


def run(args):
    try:
        result = run_batch(args.study, args.out, _options(
            args, resume=args.resume, scheduler=args.scheduler,
            from_baseline_date=args.from_baseline_date))
    except KeyboardInterrupt:
        # Said where the user looks, not only in batch.log: the tables and masks/ now
        # belong to two runs until the next one.
        print(f"flr-volumetry batch: interrupted; the tables in {args.out} are the last "
              f"finished run's, masks/ may hold this run's finished timepoints: run again "
              f"with --resume to bring them together.", file=sys.stderr)
        return 130
    return _finish(result)


def run_demo(args):
    from ..phantoms import sample_study

    study = sample_study()
    print(f"sample study: {study}", file=sys.stderr)
    result = run_batch(study, args.out, _options(args))
    code = _finish(result)
    print(result.report_html)  # the last line: where to look
    return code
