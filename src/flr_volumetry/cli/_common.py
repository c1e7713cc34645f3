"""Small helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys

from ..io import write_json_atomic
from ..volumetry import Patient, VolumetryOptions
from ..clinical import BSA_FORMULAS, LIVER_CONDITIONS, TELV_FORMULAS


def add_patient_arguments(parser):
    g = parser.add_argument_group("patient and formulas")
    g.add_argument("--height-cm", type=float, help="body height in cm (default: DICOM header)")
    g.add_argument("--weight-kg", type=float, help="body weight in kg (default: DICOM header)")
    g.add_argument("--liver-condition", default="normal", choices=sorted(LIVER_CONDITIONS),
                   help="sets the sFLR adequacy threshold: 20/30/40 %% (default: normal)")
    g.add_argument("--bsa-formula", default="mosteller", choices=sorted(BSA_FORMULAS),
                   help="BSA formula (default: mosteller)")
    g.add_argument("--telv-formula", default="vauthey", choices=sorted(TELV_FORMULAS),
                   help="total estimated liver volume formula (default: vauthey)")


def patient_from_args(args):
    return Patient(height_cm=args.height_cm, weight_kg=args.weight_kg,
                   liver_condition=args.liver_condition)


def options_from_args(args):
    return VolumetryOptions(bsa_formula=args.bsa_formula, telv_formula=args.telv_formula)


def emit_json(data, path):
    """Write ``data`` to ``path`` atomically, or to stdout when no path."""
    if path:
        write_json_atomic(data, path)
    else:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")


def fmt(value, unit="", digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"
