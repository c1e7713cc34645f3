"""Small helpers shared by the subcommands."""

from __future__ import annotations

import json
import os
import re
import sys

from ..errors import InputError
from ..io import check_writable, write_json_atomic
from ..volumetry import Patient, VolumetryOptions
from ..clinical import BSA_FORMULAS, LIVER_CONDITIONS, TELV_FORMULAS, shown_against

# Coordinates in LPS are often negative ("-35,12,80;..."), and a mistyped voxel index
# may be: let argparse take such values as arguments, not as unknown options (no option
# starts with "-" and a digit; a bad value such as "-20,0,nan" then gets its own message).
NUMBERS = re.compile(r"^-\.?\d")


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


class OptionError(InputError):
    """Options that cannot be used together (or one without another): a usage error,
    exit code 2, as argparse's own."""

    usage = True


def fmt(value, unit="", digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def fmt_vs(value, cutoff, unit="", digits=1, strictly=False):
    """``fmt`` for a figure judged against ``cutoff``: never rounded across it."""
    if value is None:
        return "n/a"
    return f"{shown_against(value, cutoff, digits, strictly=strictly)}{unit}"


def _probe(folder, option, path):
    """Create and remove a file in ``folder``: os.access says yes to root everywhere, and
    -o /proc/liver.nii.gz had been refused only after the whole segmentation."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
    except OSError as exc:
        raise InputError(f"cannot write {option} {path}: {exc.strerror or exc} in "
                         f"{folder}.") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(outputs, inputs=()):
    """Refuse, before any work, output paths that cannot be written.

    ``outputs`` maps each option (``"-o"``) to its path or None; ``inputs``
    are the paths read. An output that is a folder, lies under a file, is
    not writable, is one of the inputs or is named twice would fail (or
    destroy data) only after the work is done, leaving the outputs written
    before it behind.
    """
    # A mask may be named FILE:label (a label of a multilabel file); a file whose own name
    # holds a colon is itself ('ct.nii.gz:v2.nii.gz' had claimed a new -o ct.nii.gz).
    read = {os.path.realpath(p if os.path.exists(p) else str(p).rsplit(":", 1)[0])
            for p in inputs if p}
    claimed = {}
    for option, path in outputs.items():
        if path is None:
            continue
        if not os.fspath(path):
            # An option given as "" had been taken as not given (no file, no word) or had
            # failed after the work, naming a temporary file.
            raise InputError(f"{option} is an empty path; give a file name.")
        folder = check_writable(path, f"{option} {path}")
        real = os.path.realpath(path)
        if real != os.path.abspath(path):
            # A link: the file written is its target, in the target's folder.
            folder = check_writable(real, f"{option} {path}")
        if real in read:
            raise InputError(f"{option} {path} is one of the input files; write to another file.")
        if real in claimed:
            raise InputError(f"{claimed[real]} and {option} both name {path}; give each its own "
                             f"file.")
        claimed[real] = option
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {option} {path}: no permission to write in {folder}.")
        _probe(folder, option, path)
