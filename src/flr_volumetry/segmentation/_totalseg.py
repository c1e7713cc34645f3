"""Optional TotalSegmentator backend: its Python API, then our own mask reader."""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import load_label_map, load_mask

TASKS = {"ct": "total", "mr": "total_mr"}


def import_totalsegmentator():
    """The ``totalsegmentator.python_api.totalsegmentator`` function, or a clear InputError."""
    try:
        from totalsegmentator.python_api import totalsegmentator
    except ImportError:
        raise InputError(
            "the totalsegmentator backend needs the TotalSegmentator package and its model "
            "weights (pip install TotalSegmentator, then download the weights once with "
            "totalseg_download_weights); or use --backend classic."
        ) from None
    return totalsegmentator


def _run(run, src, out, advice, *, task, **options):
    """Call TotalSegmentator's ``run`` (src -> multilabel ``out``), turning every way it
    can fail, including its own ``sys.exit``, into one InputError ending in ``advice``."""
    try:
        run(src, out, ml=True, task=task, quiet=True, **options)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - one clear message
        # ("failed (1)" had been all a sys.exit said.)
        if not isinstance(exc, SystemExit):
            reason = f"{type(exc).__name__}: {exc}"
        elif isinstance(exc.code, str):
            reason = exc.code  # sys.exit("message"), as TotalSegmentator itself says a cause
        else:
            reason = f"it stopped with exit code {exc.code or 0}"
        # Its temporary folder would mean nothing to the user.
        reason = reason.replace(os.path.dirname(os.path.abspath(src)), "its working folder")
        raise InputError(f"TotalSegmentator {task} failed ({reason}); {advice}.") from None
    if not os.path.exists(out):
        # Its temporary output path would mean nothing to the user.
        raise InputError(f"TotalSegmentator {task} finished without writing its result; "
                         f"{advice}.")


def liver_from_totalsegmentator_output(output, reference, modality="ct"):
    """The liver mask from a TotalSegmentator output on ``reference``'s grid.

    Parameters
    ----------
    output : str or os.PathLike
        A multilabel file (``--ml``) or a per-class folder holding ``liver.nii.gz``.
    reference : SimpleITK.Image
    modality : {'ct', 'mr'}
        Chooses the label table (``total`` or ``total_mr``).

    Returns
    -------
    Mask
    """
    task = TASKS[modality]
    spec = os.fspath(output)
    if not os.path.isdir(spec):
        spec = f"{spec}:liver"
    return load_mask(spec, reference, structure="liver", task=task, what="TotalSegmentator liver")


def segment_totalsegmentator(image, modality, options):
    """Run TotalSegmentator on ``image``; returns (liver, warnings, methods)."""
    run = import_totalsegmentator()
    task = TASKS[modality]
    with tempfile.TemporaryDirectory(prefix="flr-totalseg-") as tmp:
        src = os.path.join(tmp, "image.nii.gz")
        out = os.path.join(tmp, "seg.nii.gz")
        sitk.WriteImage(image, src)
        _run(run, src, out, "check that its model weights are installed "
             "(totalseg_download_weights) or use --backend classic",
             task=task, roi_subset=["liver"], fast=options.fast)
        try:
            mask = liver_from_totalsegmentator_output(out, image, modality)
        except InputError as exc:
            raise _about_its_output(exc, out, task) from None
        liver = sitk.Image(mask.image)
    methods = {"algorithm": f"TotalSegmentator task {task} (roi_subset liver)",
               "parameters": {"task": task, "fast": options.fast}}
    return liver, [_without_path(w, out) for w in mask.warnings], methods


def _without_path(text, out):
    """``text`` with the temporary output (and its label selection) named as what it is."""
    text = re.sub(r"the TotalSegmentator (liver|segments) " + re.escape(out) + r"(:\S+)?",
                  r"TotalSegmentator's \1", text)
    return re.sub(re.escape(out) + r"(:\S+)?", "its output", text)


def _about_its_output(exc, out, task, instead="or use --backend classic"):
    """The InputError for a TotalSegmentator result that cannot be used, said without its
    temporary path (which had been named, with advice to copy it again); ``instead``: what
    else the user can do."""
    text = str(exc)
    if "has no voxel" in text:
        return InputError(f"TotalSegmentator {task} found no liver in the scan; check that it "
                          f"shows the liver and the modality, {instead}.")
    # Only what is wrong: the reader's advice ("copy it again") is for a user's own file.
    what = re.split(r"[:;]", _without_path(text, out), maxsplit=1)[0].rstrip(".")
    return InputError(f"TotalSegmentator {task} wrote a result that cannot be used ({what}); "
                      f"check its installation, {instead}.")


def segments_from_totalsegmentator(image, modality="ct"):
    """Couinaud segments (labels 1-8) from TotalSegmentator's ``liver_segments`` task."""
    run = import_totalsegmentator()
    task = "liver_segments" if modality == "ct" else "liver_segments_mr"
    with tempfile.TemporaryDirectory(prefix="flr-totalseg-") as tmp:
        src = os.path.join(tmp, "image.nii.gz")
        out = os.path.join(tmp, "segments.nii.gz")
        sitk.WriteImage(image, src)
        _run(run, src, out, "this task may need a licence or weights that are not installed",
             task=task)
        try:
            labels, warnings = load_label_map(out, image, what="TotalSegmentator segments")
        except InputError as exc:
            # (the classic backend has no segments: landmarks or a cut surface instead)
            raise _about_its_output(exc, out, task, "or define the remnant with landmarks or "
                                                    "a cut surface") from None
        labels = sitk.Image(labels)
    found = np.unique(sitk.GetArrayViewFromImage(labels))
    found = found[found != 0]
    if found.size == 0:
        raise InputError(f"TotalSegmentator {task} found no liver segment in the scan; check "
                         f"that it shows the liver and the modality.")
    if not np.isin(found, np.arange(1, 9)).all():
        # Another task's or version's numbering would be read as segments it is not.
        raise InputError(f"TotalSegmentator {task} wrote labels "
                         f"{', '.join(str(int(v)) for v in found[:10])}, not the Couinaud "
                         f"segments 1-8; check its version.")
    return labels, [_without_path(w, out) for w in warnings]
