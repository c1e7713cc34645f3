"""Reading masks and label maps, including TotalSegmentator outputs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError, InputError, as_path, check_exists
from ._geometry import resample_mask_to, same_grid
from ._images import is_image_file, read_image_file, reference_image

# TotalSegmentator label numbers (../shared/CLINICAL.md), by task.
TOTALSEGMENTATOR_LABELS = {
    "total": {"liver": 5, "gallbladder": 4, "inferior_vena_cava": 63,
              "portal_vein_and_splenic_vein": 64},
    "total_mr": {"liver": 5, "gallbladder": 4, "inferior_vena_cava": 24,
                 "portal_vein_and_splenic_vein": 25},
    "liver_segments": {f"liver_segment_{i}": i for i in range(1, 9)},
    "liver_segments_mr": {f"liver_segment_{i}": i for i in range(1, 9)},
    "liver_vessels": {"liver_vessels": 1, "liver_tumor": 2},
}

# Segment names of .seg.nrrd / DICOM SEG files may hold spaces and hyphens.
# The selection after the last colon: anything but a path separator (segment names such
# as 'Liver (whole)' or 'S4.a' included); commas separate several.
_LABEL_SUFFIX = re.compile(r"^(?P<path>.+):(?P<sel>[^:/\\]+)$")


@dataclass(frozen=True)
class Mask:
    """A binary mask on a scan's grid.

    Attributes
    ----------
    image : SimpleITK.Image
        uint8, 1 inside and 0 outside, on the reference grid.
    source : str
        The specification it was read from (path and label selection).
    warnings : tuple of str
        E.g. that it was resampled from another grid.
    """

    image: sitk.Image
    source: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


def parse_mask_spec(spec):
    """Split ``"FILE:1,2"`` or ``"FILE:liver"`` into a path and a selection.

    Returns ``(path, labels)``, where ``labels`` is None (every non-zero voxel)
    or a tuple of ints and/or TotalSegmentator structure names.

    Examples
    --------
    >>> parse_mask_spec("seg.nii.gz:1,2")
    ('seg.nii.gz', (1, 2))
    >>> parse_mask_spec("totalseg.nii.gz:liver")
    ('totalseg.nii.gz', ('liver',))
    >>> parse_mask_spec("liver.nii.gz")
    ('liver.nii.gz', None)
    >>> parse_mask_spec("case.seg.nrrd:left lobe")
    ('case.seg.nrrd', ('left lobe',))
    """
    spec = os.fspath(spec)
    m = _LABEL_SUFFIX.match(spec)
    # A Windows drive letter ("C:\\...") never matches: the selection must
    # follow the last colon and contain no path separator.
    if m and not os.path.exists(spec):
        parts = [s.strip() for s in m.group("sel").split(",")]
        sel = tuple(int(s) if s.isdigit() else s for s in parts if s)
        return m.group("path"), sel
    return spec, None


def _not_a_selection(selection, of=""):
    """The refusal of a ``FILE:selection`` that names no label (``of``: whose file)."""
    return InputError(f"the label selection {selection!r}{of} is not a whole label number "
                      f"(FILE:1,2) or a structure name (FILE:liver).")


def _resolve_names(labels, task):
    out = []
    for lab in labels:
        if isinstance(lab, int):
            out.append(lab)
            continue
        try:
            float(lab)
        except ValueError:
            pass
        else:  # '2.5', '-1': a number, but no label
            raise _not_a_selection(lab)
        table = TOTALSEGMENTATOR_LABELS.get(task, {})
        if lab not in table:
            raise InputError(
                f"unknown structure name {lab!r} for TotalSegmentator task {task!r}; "
                f"use a label number or one of: {', '.join(sorted(table))}."
            )
        out.append(table[lab])
    return tuple(out)


def _check_not_couinaud(image, names, labels, path, task):
    """Refuse a structure name (``names``, resolved to ``labels`` of ``task``) on a file
    holding Couinaud segments only: labels within 1-8, seven or more of them, as
    TotalSegmentator's liver_segments output. There 'liver' (5 in 'total') is segment V:
    its 143 mL had been measured as the whole liver. (Five had refused a 'total' run with
    roi_subset liver, spleen, kidneys and pancreas: labels 1, 2, 3, 5, 7.)"""
    arr = sitk.GetArrayViewFromImage(image)
    if arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 8:
        return
    present = np.flatnonzero(np.bincount(arr.ravel()))
    present = present[present > 0]
    if present.size >= 7:
        raise InputError(
            f"{path} holds labels {', '.join(map(str, present))} only, as a Couinaud segment "
            f"map (TotalSegmentator's liver_segments task) does: its label "
            f"{','.join(map(str, labels))} is a segment, not the "
            f"{', '.join(str(n) for n in names if not isinstance(n, int))} of the {task} task; "
            f"give it as the segment map (--segments), or select labels by number."
        )


# A file with more distinct non-zero values than this is an image, not a label map.
MAX_LABELS = 255
# With more values than this, a file whose non-zero voxels mostly differ from their
# neighbour (fewer than SPECKLED_SAME_FRACTION equal) is a scan: an 8-bit one holds at
# most 255 values (read as 'FILE:1', grey level 1 had been a 1449 mL liver).
FEW_LABELS = 20
SPECKLED_SAME_FRACTION = 0.5


def _select(image, labels, source, what="mask", whole_liver=True):
    """(binary uint8 image, warnings): the voxels of ``labels``, or every non-zero voxel.

    A liver-and-tumour map (labels 1 and 2) without ``labels`` is the whole
    liver, and refused unless ``whole_liver`` (see :func:`load_mask`).
    """
    arr = sitk.GetArrayViewFromImage(image)
    warnings = []
    if labels is None:
        present = _labels_present(arr, source, what)
        if arr.dtype == np.uint8 and present.size <= 1 and present.max(initial=1) == 1:
            # Already a 0/1 uint8 mask: taken as read (a copy cost 0.3 s and 240 MB per
            # mask on a 512x512x900 scan).
            return image, warnings
        if not whole_liver and present.tolist() == [1, 2]:
            # Taken whole as a tumour or FLR, the real CT's map had given a 2127.8 mL
            # tumour (of 31.1) and 0 mL of functional liver.
            raise InputError(
                f"the {what} {source} holds labels 1 and 2, as a liver-and-tumour map does "
                f"(1 liver, 2 tumour), which taken whole is the liver; select the label "
                f"meant: {source}:2 for the tumour, {source}:1 for the parenchyma."
            )
        # Float values are labels once rounded: interpolation residue of 4e-4 around a
        # float mask had been counted as liver (+31 %).
        sel = (np.rint(arr) if arr.dtype.kind == "f" else arr) != 0
        # Two labels are the liver-and-tumour convention (LiTS: 1 liver, 2 tumour), whose
        # non-zero voxels are the whole liver; more are a multi-organ map.
        if present.size > 2:
            warnings.append(
                f"the {what} {source} holds {present.size} labels ({_shown(present)}); all of "
                f"them were taken as the mask: select the ones meant with {source}:N,M."
            )
    else:
        if arr.dtype.kind == "f":
            # Float-typed label maps (CHAOS stores 1.0, 2.0): round, but refuse
            # anything that is not a label map at all.
            rounded = np.rint(arr)
            if not np.allclose(arr, rounded, atol=1e-3):
                raise InputError(
                    f"{source} holds non-integer values; a label selection needs a label map."
                )
            arr = rounded
        # A scan is no label map with a selection either: 'ct.nii.gz:5' had measured the
        # voxels of 5 HU as a liver (27.1 mL of a CT, exit 0).
        present = _labels_present(arr, source, what)
        missing = [label for label in labels if label not in present]
        if missing and len(missing) < len(labels):
            # (None of them: the caller refuses the empty mask.) A typo or a label this
            # scan's map lacks: 'seg:1,9' had measured segment 1 alone, silently.
            warnings.append(
                f"the {what} {source} holds no label {', '.join(map(str, missing))} of the "
                f"selection (it holds {_shown(present)}): the mask is the other labels alone; "
                f"check the selection."
            )
        sel = np.isin(arr, np.asarray(labels))
    out = sitk.GetImageFromArray(sel.astype(np.uint8))
    out.CopyInformation(image)
    return out, warnings


def _shown(labels, at_most=8):
    """The first ``at_most`` labels, for a message."""
    return ", ".join(map(str, labels[:at_most])) + (", ..." if len(labels) > at_most else "")


def _labels_present(arr, source, what):
    """The non-zero values of a mask file, refusing files that are no mask at all
    (a scan passed as a mask would otherwise be measured as one huge 'liver')."""
    not_a_mask = f"the {what} {source} is not a mask or label map"
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all() or not np.allclose(arr, np.rint(arr), atol=1e-3):
            raise InputError(f"{not_a_mask}: it holds non-integer values (is it a scan?).")
    low, high = float(arr.min()), float(arr.max())
    if low < 0:
        raise InputError(f"{not_a_mask}: it holds negative values (is it a scan?).")
    if high > 65535:
        raise InputError(f"{not_a_mask}: it holds values up to {high:.0f} (is it a scan?).")
    if arr.dtype.kind in "ui" and high <= 1:
        # A 0/1 mask (most are): its labels are known without counting them.
        return np.array([1] if high == 1 else [], dtype=np.int64)
    # Only the non-zero voxels are counted (rounding a whole uint8 mask to int64 cost
    # seconds and a gigabyte on a 512x512x400 scan).
    values = arr[arr != 0]
    if values.dtype.kind == "f":
        values = np.rint(values)
    present = np.flatnonzero(np.bincount(values.astype(np.int64), minlength=1)[1:]) + 1
    if present.size > MAX_LABELS or (present.size > FEW_LABELS and _speckled(arr)):
        raise InputError(f"{not_a_mask}: it holds {present.size} different values (is it a "
                         f"scan?).")
    return present


def _speckled(arr):
    """Whether most non-zero voxels differ from their neighbour along x, as a scan's noisy
    values do; a label map's structures are solid regions of one value."""
    a = np.asarray(arr)[::4]  # every fourth slice tells, at a quarter of the memory
    inside = a[..., :-1] != 0
    same = np.count_nonzero((a[..., :-1] == a[..., 1:]) & inside)
    return same < SPECKLED_SAME_FRACTION * max(np.count_nonzero(inside), 1)


def load_label_map(path, reference=None, *, what="label map"):
    """Read an integer label map (e.g. Couinaud segments 1-8) on ``reference``'s grid.

    Float-typed maps are rounded. A map on another grid is resampled by
    nearest neighbour with a warning, as for masks. A 3D Slicer ``.seg.nrrd``
    is read by its label values; one with overlapping layers, or whose
    segment names number the segments otherwise ('Segment_5' with label
    value 1), is refused, as is a DICOM SEG.

    Returns
    -------
    image : SimpleITK.Image (uint8 or uint16)
    warnings : list of str
    """
    from ._segfiles import check_seg_nrrd_label_map, is_dicom_seg, is_seg_nrrd

    path = as_path(path, "load_label_map reads a label map file")
    reference = reference_image(reference)
    if is_dicom_seg(path):
        raise InputError(
            f"{path} is a DICOM SEG, which is not read as a segment map (its segments may "
            f"overlap, and their numbers are not Couinaud's); give the segments as a label map "
            f"(values 1-8) in NIfTI, NRRD or .seg.nrrd."
        )
    if os.path.isfile(path) and is_seg_nrrd(path):
        check_seg_nrrd_label_map(path)
    image = read_image_file(path)
    if image.GetNumberOfComponentsPerPixel() == 1 and sitk.GetArrayViewFromImage(image).ndim == 4:
        # One layer stored 4-D (a .seg.nrrd): ITK reads a vector of one component.
        image = sitk.VectorIndexSelectionCast(image, 0)
    arr = sitk.GetArrayViewFromImage(image)
    if arr.dtype.kind == "f":
        rounded = np.rint(arr)
        if not np.allclose(arr, rounded, atol=1e-3):
            raise InputError(f"{path} holds non-integer values; it is not a label map.")
        arr = rounded
    if arr.min() < 0 or arr.max() > 65535:
        raise InputError(f"{path} holds labels outside 0-65535; it is not a label map.")
    if arr.dtype in (np.uint8, np.uint16):
        labels = image  # as read: widening a uint8 map cost 0.9 s and 700 MB at 900 slices
    else:
        labels = sitk.GetImageFromArray(arr.astype(np.uint16))
        labels.CopyInformation(image)
    warnings = []
    if reference is not None and not same_grid(labels, reference):
        if not np.any(arr):
            raise GeometryError(f"the {what} {path} is empty: it has no non-zero voxel.")
        # The labelled voxels' volume before and after, as for masks: never a silent change.
        _, warning = resample_mask_to(sitk.Cast(labels > 0, sitk.sitkUInt8), reference,
                                      what=f"{what} {path}")
        resampled = sitk.Resample(labels, reference, sitk.Transform(),
                                  sitk.sitkNearestNeighbor, 0, sitk.sitkUInt16)
        warnings += [warning] if warning else []
        labels = resampled
    elif reference is not None:
        labels = sitk.Image(labels)  # counted with the scan's spacing, as masks are
        labels.CopyInformation(reference)
    return labels, warnings


def load_mask(spec, reference=None, *, structure="liver", task="total", what="mask",
              whole_liver=True):
    """Load a binary mask, selecting labels, onto a scan's grid.

    Parameters
    ----------
    spec : str or os.PathLike
        ``FILE`` (every non-zero voxel), ``FILE:5`` or ``FILE:1,2`` (those
        labels), ``FILE:liver`` (a TotalSegmentator structure name, numbered
        by ``task``), or a TotalSegmentator output folder of per-class files,
        from which ``<structure>.nii.gz`` is read. For a 3D Slicer
        ``.seg.nrrd`` or a DICOM SEG file, the selection is a segment name
        or number of that file (``case.seg.nrrd:liver``,
        ``liver_seg.dcm:Liver``); DICOM SEG frames are placed on ``reference``
        by their position.
    reference : Scan or SimpleITK.Image, optional
        The scan. A mask on the same grid is taken as is, and so is one
        holding the same voxels in another axis order (stored flipped or
        permuted: placed exactly); one on another grid that covers the same
        physical region is resampled by nearest neighbour and a warning says
        so; any other is refused.
    structure : str
        Which per-class file to read from a TotalSegmentator folder.
    task : str
        TotalSegmentator task whose label numbers structure names refer to
        ('total' or 'total_mr', ...).
    what : str
        What the mask is ('liver mask', 'FLR mask'), for messages.
    whole_liver : bool
        Whether the mask is a whole liver: a liver-and-tumour map (labels 1
        and 2 only, the LiTS convention) without a selection is then taken
        whole. For a tumour or FLR mask (False) such a map is refused
        without a selection: taken whole, it is the liver.

    Returns
    -------
    Mask

    Examples
    --------
    >>> import tempfile, os, numpy as np, SimpleITK as sitk
    >>> d = tempfile.mkdtemp()
    >>> lab = sitk.GetImageFromArray(np.array([[[0, 1, 2, 5]]], dtype=np.uint8))
    >>> sitk.WriteImage(lab, os.path.join(d, "seg.nii.gz"))
    >>> m = load_mask(os.path.join(d, "seg.nii.gz") + ":1,2")
    >>> sitk.GetArrayFromImage(m.image).tolist()
    [[[0, 1, 1, 0]]]
    >>> sitk.GetArrayFromImage(load_mask(os.path.join(d, "seg.nii.gz:liver")).image).tolist()
    [[[0, 0, 0, 1]]]
    """
    # A mask already in memory (an image, a Mask) needs no loading: said, not a TypeError.
    as_path(spec, "load_mask reads a mask file (FILE or FILE:1,2)",
            hint="pass a mask already in memory to measure as it is")
    path, labels = parse_mask_spec(spec)
    if labels is not None and 0 in labels:
        raise InputError(f"label 0 is the background (every voxel outside the labelled "
                         f"structures), not a mask: select the structure's label in {spec}, "
                         f"e.g. FILE:1.")
    scan = reference
    reference = reference_image(reference)
    if os.path.isdir(path):
        if labels is not None:
            # FOLDER:liver names the per-class file, which is binary: read it whole.
            if len(labels) != 1 or not isinstance(labels[0], str):
                raise InputError(f"a folder of per-class files takes one structure name "
                                 f"({path}:liver), not {','.join(map(str, labels))}.")
            structure, labels = labels[0], None
        # TotalSegmentator names its files in lower case: FOLDER:Liver had found none.
        candidates = [os.path.join(path, name + ext) for name in dict.fromkeys(
            (structure, structure.lower())) for ext in (".nii.gz", ".nii")]
        found = [c for c in candidates if os.path.exists(c)]
        if not found:
            raise InputError(
                f"{path} is a folder without {structure}.nii.gz; pass a mask file, or a "
                f"TotalSegmentator output folder that holds one file per structure."
            )
        path = found[0]
    if not os.path.exists(path):
        head, _, selection = path.rpartition(":")
        if head and os.path.exists(head):
            raise _not_a_selection(selection, f" of the {what} {head}")
        check_exists(path, what)
    from ._segfiles import is_dicom_seg, is_seg_nrrd, read_dicom_seg, read_seg_nrrd

    if not is_image_file(path) and is_dicom_seg(path):
        # Frames are placed on the reference grid by their position.
        return read_dicom_seg(path, scan, segment=labels, what=what)
    names = labels
    seg_nrrd = is_seg_nrrd(path)  # (reads a plain .nrrd's header: once)
    if seg_nrrd:
        # Labels are segment names or label values of the file, not TotalSegmentator's.
        binary, warnings = read_seg_nrrd(path, segment=labels), []
    else:
        image = read_image_file(path)
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                f"the {what} {path} is not a 3-D single-channel mask; for multi-segment files "
                f"(.seg.nrrd, DICOM SEG) select the segment by name."
            )
        if labels is not None:
            labels = _resolve_names(labels, task)
            if names != labels:
                _check_not_couinaud(image, names, labels, path, task)
        binary, warnings = _select(image, labels, path, what, whole_liver)
    source = path if labels is None else f"{path}:{','.join(map(str, labels))}"
    if not np.any(sitk.GetArrayViewFromImage(binary)):
        # (A segment read by name from a .seg.nrrd had crashed here: 'names' unset.)
        chosen = "" if labels is None else f" with label {','.join(map(str, labels))}"
        if labels is not None and seg_nrrd:
            chosen = f" in its segment {','.join(map(str, labels))}"
        if labels is not None and names != labels:
            # A structure name is a TotalSegmentator label number: say which, and what the
            # file holds (a binary mask needs no selection).
            present = np.unique(sitk.GetArrayViewFromImage(image))
            shown = ", ".join(f"{v:g}" for v in present[present != 0][:8])
            chosen += (f" (TotalSegmentator's {task} number for "
                       f"{', '.join(str(n) for n in names if not isinstance(n, int))}; the "
                       f"file holds {shown or 'no label'})")
        raise InputError(f"the {what} {source} has no voxel{chosen}; it is empty.")
    if reference is not None and not same_grid(binary, reference):
        binary, warning = resample_mask_to(binary, reference, what=f"{what} {source}")
        warnings += [warning] if warning else []
    elif reference is not None:
        # The same grid within the headers' rounding: its voxels are counted with the
        # scan's spacing (the mask's own, 1e-6 off, had carried into every volume).
        binary = sitk.Image(binary)  # (never the caller's image changed)
        binary.CopyInformation(reference)
    return Mask(image=binary, source=source, warnings=tuple(warnings))
