"""DICOM series folders as scanners and PACS really export them.

A folder may hold several series, scout (localizer) or reformatted slices
mixed into a series, files named in any order, DICOMDIRs, text files,
segmentations and structured reports. :func:`read_dicom_series` finds the
series to read, keeps only the slices that form one regular stack, sorts
them along the slice normal, refuses gaps, and reads the pixels with
SimpleITK so that geometry is physical (LPS) and rescale slope/intercept are
applied.

Decisions, documented here because they change volumes:

- Slices are sorted by their position along the slice normal
  (ImagePositionPatient projected on ImageOrientationPatient's cross
  product), never by file name or InstanceNumber.
- The same SOPInstanceUID found twice (a file copied twice) is read once,
  with a warning. Two *different* slices at the same position (several
  phases, echoes or reconstructions in one series) are refused: picking one
  would be a guess.
- Missing slices or non-uniform spacing (beyond 1 % of the spacing or
  0.01 mm, whichever is larger) are refused, naming the gap.
- A series needs at least 2 slices: one slice has no slice spacing.
- Slices shifted in-plane from one to the next (CT gantry tilt) are refused:
  SimpleITK would store them on a sheared grid with a wrong slice spacing.
- The patient's name is never read: headers are parsed tag by tag, and the
  name is not among the tags asked for.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from typing import NamedTuple
from dataclasses import dataclass

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from .. import clinical
from ..errors import InputError
from ..hypertrophy import parse_date
from ._filechecks import check_itk_path, nearest_rotation
from ._images import Scan, itk_warnings_hidden

__all__ = ["read_dicom_series"]

_log = logging.getLogger(__name__)

# Only these tags are parsed from each header: the patient's name is
# deliberately not among them.
_HEADER_TAGS = (
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "SeriesDescription", "SeriesNumber",
    "Modality", "ImageType", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "RescaleSlope", "RescaleIntercept",
    "BitsStored", "PixelRepresentation", "PhotometricInterpretation",
    "StudyDate", "SeriesDate", "AcquisitionDate", "PatientSize", "PatientWeight",
    "FrameOfReferenceUID",
)

# SOP classes that are never image slices of a volume.
# Storage SOP classes (images and everything else stored); the ones below are not images.
_IMAGE_STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."
_NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.1.3.10",          # DICOMDIR (Media Storage Directory)
    "1.2.840.10008.5.1.4.1.1.66",    # raw data, SEG (.66.4), registrations, surfaces
    "1.2.840.10008.5.1.4.1.1.88.",   # structured reports, key objects
    "1.2.840.10008.5.1.4.1.1.11.",   # presentation states
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects (RTSTRUCT, RTPLAN, RTDOSE)
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF/CDA
    "1.2.840.10008.5.1.4.1.1.9.",    # waveforms
)

_NOT_DICOM_SUFFIXES = (".txt", ".xml", ".json", ".csv", ".html", ".htm", ".pdf", ".jpg", ".jpeg",
                       ".png", ".bmp", ".gif", ".zip", ".gz", ".nii", ".nrrd", ".mha", ".mhd",
                       ".raw", ".ini", ".exe", ".inf", ".md", ".log", ".py")

_TRANSFER_SYNTAX_HINT = (
    "decompress the files first (for example `gdcmconv --raw IN OUT` or `dcmdjpeg IN OUT`)"
)

# Orientation cosines closer than this are "the same orientation".
_ORIENTATION_ATOL = 1e-3
# |normal . z| above this counts as axial (within about 25 degrees).
_AXIAL_MIN_COS = 0.9


@dataclass(frozen=True)
class _Slice:
    path: str
    sop_uid: str
    series_uid: str
    description: str
    series_number: int | None
    image_type: tuple[str, ...]
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    header: object  # the pydicom Dataset (only the tags above)

    @property
    def normal(self):
        o = np.asarray(self.orientation, dtype=float)
        n = np.cross(o[:3], o[3:])
        return n / np.linalg.norm(n)


def _iter_files(folder, recursive=True):
    for root, dirs, files in os.walk(folder):
        # Hidden folders (.git, .DS_Store-like trash) and hidden files are never scans.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if name.startswith(".") or name.upper() == "DICOMDIR":
                continue
            if name.lower().endswith(_NOT_DICOM_SUFFIXES):
                continue
            yield os.path.join(root, name)


def _head(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(132)
    except OSError:
        return b""


def _has_preamble(head):
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_file(path):
    """Whether ``path`` starts like a DICOM file: a Part 10 file (128-byte preamble, then
    'DICM'), or one stripped of its preamble that opens on an explicit-VR element of the
    file meta (group 0002) or identifying (group 0008) group.

    Reads 132 bytes: cheap enough to recognise DICOM exports by content,
    whatever their file names. A file that may be implicit VR without a
    preamble (old ACR-NEMA style: a group 0008 tag, then a 4-byte length) is
    confirmed by parsing its header as :func:`read_dicom_series` would.
    """
    head = _head(path)
    if _has_preamble(head):
        return True
    # Little-endian group number, element number, then a two-letter VR such as "UL".
    if (len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")
            and head[4:6].isalpha() and head[4:6].isupper()):
        return True
    # Implicit VR: the group 0008 tag, then a length under 64 kB (its upper bytes zero).
    return (len(head) >= 8 and head[:2] == b"\x08\x00" and head[6:8] == b"\x00\x00"
            and _read_header(path) is not None)


def holds_dicom(folder, *, recursive=True, max_files=50, exclude=()):
    """Whether one of the first ``max_files`` candidate files in ``folder`` is DICOM.

    Candidates are the files :func:`read_dicom_series` would look at (no
    hidden files, no NIfTI, text or picture suffixes), but those named in
    ``exclude`` (e.g. a DICOM SEG mask beside a scan); a cheap test of a
    folder of unknown content, reading 132 bytes per file.
    """
    files = (p for p in _iter_files(folder, recursive) if os.path.basename(p) not in exclude)
    for i, path in enumerate(files):
        if i >= max_files:
            return False
        if is_dicom_file(path):
            return True
    return False


def _read_header(path, extra_tags=()):
    """The header of a DICOM file (selected tags, and ``extra_tags``), or None when it is
    not DICOM."""
    if not os.path.isfile(path):
        return None
    # Files without the 128-byte preamble (stripped exports, old ACR-NEMA style) are
    # tried with force=True, and kept only when they look like an image header.
    force = not _has_preamble(_head(path))
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=force,
                             specific_tags=list(_HEADER_TAGS) + list(extra_tags))
    except InvalidDicomError:
        return None
    except Exception:  # noqa: BLE001 - junk forced through the parser fails in many ways
        return None
    if force and not ("SOPInstanceUID" in ds and "Rows" in ds):
        return None
    if not force and not _sop_class(ds) and not ("SOPInstanceUID" in ds and "Rows" in ds):
        # A Part 10 file names its SOP class in its file meta: one that yields neither that
        # nor an image's tags is junk after the 'DICM' marker, parsed into an empty
        # dataset; None lets the caller call it damaged rather than drop it unsaid.
        return None
    return ds


def _float_tuple(value, n):
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def multiframe_count(path):
    """The number of frames of the DICOM image file ``path`` (1 for a single slice, or
    when it cannot be read)."""
    ds = _read_header(path)
    return 1 if ds is None else _frames(ds)


def _frames(ds):
    try:
        return int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 1


def _sop_class(ds):
    meta = getattr(ds, "file_meta", None)
    return str(ds.get("SOPClassUID", "") or (meta or {}).get("MediaStorageSOPClassUID", ""))


def _greyscale(ds):
    # (colour: screenshots; a palette colour image has one sample per pixel too)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    return (int(ds.get("SamplesPerPixel", 1) or 1) == 1
            and (not photometric or photometric.startswith("MONOCHROME")))


def _claims_image(ds):
    """Whether ``ds`` says it is a greyscale image (of an image storage class), whatever
    it lacks (geometry; the rows of a file cut short)."""
    sop_class = _sop_class(ds)
    meta_class = str((getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID", ""))
    if meta_class.startswith(sop_class):
        # A file cut inside its dataset keeps a whole file meta, while its own SOPClassUID
        # may be cut to a prefix of no class: the meta says what it was.
        sop_class = meta_class
    return (sop_class.startswith(_IMAGE_STORAGE_PREFIX)
            and not sop_class.startswith(_NON_IMAGE_SOP_PREFIXES) and _greyscale(ds))


def _is_image_slice(ds):
    """Whether ``ds`` is a greyscale image slice, whatever geometry it lacks (a file
    without a SOP class, as old ACR-NEMA ones, counts when it has rows)."""
    return (not _sop_class(ds).startswith(_NON_IMAGE_SOP_PREFIXES) and "Rows" in ds
            and _greyscale(ds))


def _why_no_slice(ds):
    """Why an image file with rows is no slice of a volume (for the error naming it)."""
    if "SeriesInstanceUID" not in ds:
        return "no SeriesInstanceUID"
    for key, n in (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6),
                   ("PixelSpacing", 2)):
        if _float_tuple(ds.get(key), n) is None:
            return f"no readable {key} (missing, or not {n} numbers)"
    return "an ImageOrientationPatient whose two directions are parallel"


def _as_slice(path, ds):
    """A :class:`_Slice` for an image with geometry, else None (non-image objects,
    colour screenshots, slices without geometry)."""
    if not _is_image_slice(ds) or "SeriesInstanceUID" not in ds:
        return None
    position = _float_tuple(ds.get("ImagePositionPatient"), 3)
    orientation = _float_tuple(ds.get("ImageOrientationPatient"), 6)
    spacing = _float_tuple(ds.get("PixelSpacing"), 2)
    if position is None or orientation is None or spacing is None:
        return None
    o = np.asarray(orientation)
    if np.linalg.norm(np.cross(o[:3], o[3:])) < 0.5:
        return None
    try:
        series_number = int(ds.get("SeriesNumber")) if ds.get("SeriesNumber") not in (None, "") else None
    except (TypeError, ValueError):
        series_number = None
    image_type = ds.get("ImageType") or ()
    image_type = tuple(str(t).upper() for t in (image_type if not isinstance(image_type, str)
                                                else image_type.split("\\")))
    return _Slice(
        path=path, sop_uid=str(ds.get("SOPInstanceUID", "")), series_uid=str(ds.SeriesInstanceUID),
        description=str(ds.get("SeriesDescription", "") or ""), series_number=series_number,
        image_type=image_type, position=position, orientation=orientation,
        pixel_spacing=spacing, rows=int(ds.Rows), columns=int(ds.get("Columns", 0) or 0),
        header=ds,
    )


# A second stack of at least this fraction of the largest's slices, in one series, makes
# the series ambiguous (a scout or a few reformats are far fewer).
_RIVAL_STACK_FRACTION = 0.5


class _Stack(NamedTuple):
    """The main stack of a series: its slices, how many were dropped, and ``tied``: a
    second stack of comparable size (either could be the scan)."""

    slices: list
    dropped: int
    tied: bool = False
    rival: int = 0  # the slices of the other stack when tied


def _same_orientation(a, b):
    """Whether two slices share their orientation (within _ORIENTATION_ATOL; not rounded
    to a key, which splits values on either side of a rounding edge)."""
    return np.allclose(a.orientation, b.orientation, atol=_ORIENTATION_ATOL, rtol=0)


def _same_stack(a, b):
    """Whether two slices can stack: the same orientation, pixel spacing and matrix
    size."""
    return (_same_orientation(a, b)
            and np.allclose(a.pixel_spacing, b.pixel_spacing, atol=1e-4, rtol=0)
            and (a.rows, a.columns) == (b.rows, b.columns))


def _stack_of(slices):
    """Split a series into the slices that form its main stack and the dropped ones.

    Localizers (ImageType LOCALIZER) go first; then the largest group of
    slices with one orientation, pixel spacing and matrix size wins, so that
    scouts and reformats mixed into a series never enter the volume. Refused
    (``tied``): another group as large, or one of the same orientation at
    least _RIVAL_STACK_FRACTION as large (another pixel spacing or matrix:
    either could be the scan). Slices are counted once however often their
    files are copied.
    """
    kept = [s for s in slices if "LOCALIZER" not in s.image_type]
    localizers = _distinct([s for s in slices if "LOCALIZER" in s.image_type])
    if not kept:
        return _Stack([], localizers)
    groups = []
    for s in kept:
        group = next((g for g in groups if _same_stack(g[0], s)), None)
        if group is None:
            groups.append([s])
        else:
            group.append(s)
    sizes = [_distinct(g) for g in groups]
    order = sorted(range(len(groups)), key=lambda i: -sizes[i])
    stack, n = groups[order[0]], sizes[order[0]]
    # Two stacks of comparable size and one orientation (two reconstructions under one
    # SeriesInstanceUID, or every other slice with another pixel spacing): either could be
    # the scan, and the smaller is no scout. Only an exact tie had been refused: 104 slices
    # against 103 were read as a half scan on a doubled slice spacing, the 103 'dropped:
    # scout/localizer'. Reformats in another orientation beside an axial stack stay
    # dropped unless as many. Said only if this series is the one read (a 3-plane
    # localizer series beside it is no reason to fail).
    rival = next((sizes[i] for i in order[1:] if sizes[i] > 1 and (
        sizes[i] == n or (sizes[i] >= _RIVAL_STACK_FRACTION * n
                          and _same_orientation(groups[i][0], stack[0])))), 0)
    return _Stack(stack, localizers + sum(sizes) - n, bool(rival), rival)


def _is_axial(s):
    return abs(s.normal[2]) >= _AXIAL_MIN_COS


def _place(s):
    """One instance at one place: files repeating it (a CD export's DICOMDIR copy) are
    one slice."""
    return s.sop_uid, tuple(np.round(np.asarray(s.position, float), 2))


def _distinct(stack):
    """The number of slices of ``stack``, each copied file counted once."""
    return len({_place(s) for s in stack})


def _describe(uid, stack, series=()):
    """'DESCRIPTION', N slices, SeriesInstanceUID UID; the description of any of the
    ``series``' files when its stack is empty (a series of localizers only)."""
    first = stack[0] if stack else next(iter(series), None)
    desc = first.description if first is not None else ""
    label = f"'{desc}'" if desc else "(no description)"
    n = _distinct(stack)  # (a series copied twice on a CD export had been said of 414 slices)
    count = f"{n} slice{'s' if n != 1 else ''}"
    if not stack and series:
        n = len(series)  # no volume slice: localizers ("0 slices" had been said of them)
        count = f"{n} localizer image{'s' if n != 1 else ''}"
    return f"{label}, {count}, SeriesInstanceUID {uid}"


def _choose_series(folder, by_series, series_uid):
    """Pick the series to read; returns (uid, its :class:`_Stack`, warnings)."""
    stacks = {uid: _stack_of(slices) for uid, slices in by_series.items()}
    if series_uid is not None:
        series_uid = str(series_uid).strip()
        if series_uid not in stacks:
            listing = "; ".join(_describe(u, st.slices, by_series[u])
                                for u, st in stacks.items())
            raise InputError(
                f"{folder} holds no series with SeriesInstanceUID {series_uid}; available: "
                f"{listing}."
            )
        return series_uid, stacks[series_uid], []
    usable = {u: v for u, v in stacks.items() if _distinct(v.slices) >= 2}
    if not usable:
        uid, chosen = max(stacks.items(), key=lambda kv: _distinct(kv[1].slices))
        return uid, chosen, []
    axial = {u: v for u, v in usable.items() if _is_axial(v.slices[0])}
    pool = axial or usable

    def rank(item):
        uid, st = item
        number = st.slices[0].series_number
        # Most slices first (copies of one slice counted once: a series copied twice
        # had outranked a longer one); ties broken by series number, then UID, so the
        # choice never depends on the order files were listed in.
        return (-_distinct(st.slices), number if number is not None else 1 << 30, uid)

    ranked = sorted(pool.items(), key=rank)
    uid, chosen = ranked[0]
    stack = chosen.slices
    warnings = []
    if len(stacks) > 1:
        others = "; ".join(_describe(u, st.slices, by_series[u])
                           for u, st in sorted(stacks.items()) if u != uid)
        kind = "axial series" if axial else "series (none is axial)"
        how = "with the most slices"
        if len(ranked) > 1 and rank(ranked[1])[0] == rank(ranked[0])[0]:
            # Equally long (arterial and venous phases of one protocol): the rule that
            # decided is said, not 'the most slices'.
            how = ("of equally many slices with the lowest SeriesNumber"
                   if rank(ranked[1])[1] != rank(ranked[0])[1] else
                   "of equally many slices with the first SeriesInstanceUID")
        warnings.append(
            f"{folder} holds {len(stacks)} series; read the {kind} {how}, "
            f"{_describe(uid, stack)}; the others: {others}. Choose another with series_uid "
            f"(--series-uid)."
        )
    elif not axial:
        warnings.append(f"the series {_describe(uid, stack)} is not axial; it was read as it is.")
    return uid, chosen, warnings


def _unique_positions(stack, normal, folder):
    """Sort by position along ``normal``; drop copies of one instance, refuse real duplicates."""
    warnings = []
    by_sop = {}
    for s in stack:
        # A copy is one instance at one place: a broken anonymiser gives distinct slices one
        # SOPInstanceUID (and files without one share the empty UID).
        by_sop.setdefault(_place(s), s)
    copies = len(stack) - len(by_sop)
    if copies:
        warnings.append(
            f"{copies} file{'s' if copies > 1 else ''} in {folder} repeat{'s' if copies == 1 else ''} "
            f"a slice already read (same SOPInstanceUID at the same place); each slice was read "
            f"once."
        )
    slices = sorted(by_sop.values(), key=lambda s: float(np.dot(s.position, normal)))
    pos = np.array([float(np.dot(s.position, normal)) for s in slices])
    return slices, pos, warnings


def _where(s, axial):
    return f"z={s.position[2]:.1f}" if axial else (
        "position (" + ", ".join(f"{v:.1f}" for v in s.position) + ")")


class _SliceGap(InputError):
    """Slices missing from a series (a gap of whole steps)."""


def _check_spacing(slices, pos, normal, series_label):
    """Uniform spacing along the normal, no in-plane shift; returns the spacing in mm."""
    axial = abs(normal[2]) >= _AXIAL_MIN_COS
    steps = np.diff(pos)
    tiny = np.nonzero(steps < 1e-3)[0]
    if tiny.size:
        i = int(tiny[0])
        same = sum(1 for p in pos if abs(p - pos[i]) < 1e-3)
        raise InputError(
            f"the series {series_label} has {same} different slices at the same "
            f"{_where(slices[i], axial)} mm (several phases, echoes or reconstructions in one "
            f"series); export them as separate series or remove the extra slices."
        )
    # The most common step is the expected spacing: with a missing slice the
    # median of few steps could be the gap itself.
    rounded = Counter(np.round(steps, 2).tolist())
    best = max(rounded.items(), key=lambda kv: (kv[1], -kv[0]))[0]
    expected = float(np.mean(steps[np.abs(steps - best) <= max(0.01, 0.01 * best)]))
    tol = max(0.01, 0.01 * expected)
    for i, step in enumerate(steps):
        if abs(step - expected) <= tol:
            continue
        a, b = _where(slices[i], axial), _where(slices[i + 1], axial)
        ratio = step / expected
        # The same wider step again at once is a spacing that changes (two reconstructions in
        # one series), not slices missing: their export had been asked for.
        again = int(np.count_nonzero(np.abs(steps - step) <= tol)) - 1
        run = i + 1 < len(steps) and abs(steps[i + 1] - step) <= tol
        if ratio > 1.5 and abs(ratio - round(ratio)) * expected <= tol and not run:
            missing = int(round(ratio)) - 1
            raise _SliceGap(
                f"{missing} slice{'s are' if missing > 1 else ' is'} missing between {a} and "
                f"{b} mm (gap {step:.1f} mm, expected {expected:.2f} mm) in the series "
                f"{series_label}; export the complete series."
            )
        more = f" (and {again} more step{'s' if again > 1 else ''} of it)" if again else ""
        raise InputError(
            f"the slice spacing is not uniform: {step:.2f} mm between {a} and {b} mm{more}, "
            f"{expected:.2f} mm elsewhere, in the series {series_label}; export a series with "
            f"uniform spacing or resample it first."
        )
    # Positions must move along the normal only; an in-plane shift is a tilted gantry
    # (growing slice by slice), which SimpleITK would store on a sheared grid, or one
    # misplaced slice, which it would stack as if in line.
    if len(slices) > 1:
        p = np.array([s.position for s in slices], np.float64)
        shifts = np.linalg.norm((p - p[0]) - np.outer(pos - pos[0], normal), axis=1)
        # Tolerated while every slice stays within half a pixel of the unsheared grid.
        tol_mm = max(0.5 * float(np.min(slices[0].pixel_spacing)), 0.05)
        if shifts[-1] > tol_mm:
            angle = float(np.degrees(np.arctan2(shifts[-1], pos[-1] - pos[0])))
            raise InputError(
                f"the slices of the series {series_label} are shifted in-plane from one to the "
                f"next (gantry tilt of about {angle:.1f} degrees); correct the tilt first (e.g. "
                f"3D Slicer's 'Acquisition tilt correction') and read the corrected volume."
            )
        if shifts.max() > tol_mm:
            i = int(np.argmax(shifts))
            raise InputError(
                f"the slice at {_where(slices[i], axial)} mm of the series {series_label} is "
                f"shifted in-plane by {shifts[i]:.1f} mm from the others ({os.path.basename(slices[i].path)}); "
                f"export the series again."
            )
    # Positions carry float noise from their decimal strings: 1e-6 mm is far below it.
    return round(expected, 6)


def _parse_date(value):
    """A header's DA value as a date, or None when it is missing or malformed (the
    study's own files may then give the date). YYYY-MM-DD, which some exports write
    though DA has no dashes, is read too; a DT value gives its day."""
    text = str(value or "").strip()
    for candidate in (text, text[:8]):
        try:
            return parse_date(candidate or None)
        except InputError:
            continue
    return None


def _positive_float(value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _series_headers(folder, series_uid=None, extra_tags=()):
    """The headers of a DICOM folder's files (of ``series_uid``'s when given), read
    without the pixels."""
    for path in _iter_files(os.fspath(folder)):
        ds = _read_header(path, extra_tags)
        if ds is not None and (not series_uid
                               or str(ds.get("SeriesInstanceUID", "")) == series_uid):
            yield ds


def series_study_date(folder, series_uid=None):
    """The study date of a DICOM folder's headers (of ``series_uid``'s slices when given),
    or None: read without the pixels, so a series that cannot be read as a volume (a slice
    missing) is still placed in time."""
    return next((d for d in map(_header_date, _series_headers(folder, series_uid))
                 if d is not None), None)


def series_patient_id(folder, series_uid=None):
    """The DICOM PatientID of a series (None when absent or empty). Only this tag is read
    besides the image tags; never the patient's name."""
    for ds in _series_headers(folder, series_uid, extra_tags=("PatientID",)):
        return str(ds.get("PatientID", "") or "").strip() or None
    return None


def scan_patient_id(scan):
    """The DICOM PatientID of a :class:`Scan` read from a DICOM folder; None for other
    files or when empty. It tells whether two scans are one patient's."""
    if scan.series_instance_uid is None or not os.path.isdir(scan.source):
        return None
    return series_patient_id(scan.source, scan.series_instance_uid)


def _header_date(ds, warnings=None):
    """StudyDate, else SeriesDate, else AcquisitionDate, or None; a value that is no date
    is said in ``warnings`` (when given) as it is passed over."""
    for key in ("StudyDate", "SeriesDate", "AcquisitionDate"):
        date = _parse_date(ds.get(key))
        if date is not None:
            return date
        text = str(ds.get(key) or "").strip()
        if text and warnings is not None:
            warnings.append(f"the DICOM {key} {text!r} is not a date (YYYYMMDD); it was "
                            f"ignored.")
    return None


# A header's body size is checked as a typed one is; what to say of each when it is not.
_BODY_SIZE_TAGS = {"PatientSize": ("height", "cm", "--height-cm; height_cm", clinical.check_height),
                   "PatientWeight": ("weight", "kg", "--weight-kg; weight_kg",
                                     clinical.check_weight)}


def _plausible(ds, tag, value, warnings):
    """``value`` (the header's ``tag`` in cm or kg), or None, said, when no adult has it
    (a weight in grams, a height of 0.5 m): the user gave no value to correct, and the
    scan is measured without it."""
    if value is None:
        return None
    what, unit, option, check = _BODY_SIZE_TAGS[tag]
    try:
        check(value)
    except InputError:
        warnings.append(f"the DICOM {tag} {str(ds.get(tag)).strip()} gives a {what} no adult "
                        f"has ({value:g} {unit}); it was ignored: give the {what} ({option} in "
                        f"a study's patient.json).")
        return None
    return value


def _header_facts(ds, warnings):
    date = _header_date(ds, warnings)
    height_cm = None
    size_m = _positive_float(ds.get("PatientSize"))
    if size_m is not None:
        if size_m <= 3.0:
            # DICOM PatientSize is in metres.
            height_cm = round(size_m * 100.0, 3)
        else:
            warnings.append(
                f"the DICOM PatientSize {size_m:g} is not a height in metres as DICOM requires; "
                f"it was ignored: give the height in cm (measure --height-cm; height_cm in a "
                f"study's patient.json)."
            )
    weight_kg = _plausible(ds, "PatientWeight", _positive_float(ds.get("PatientWeight")),
                           warnings)
    height_cm = _plausible(ds, "PatientSize", height_cm, warnings)
    modality = str(ds.get("Modality", "") or "").strip().upper() or None
    return modality, date, height_cm, weight_kg


def _series_reader(paths):
    """GDCM's series reader for ``paths``, without the header dictionaries (they would
    hold the patient's name). GDCM by name: left to choose, ITK finds no reader for files
    without the 128-byte preamble, which pydicom (and GDCM) read."""
    paths = list(paths)
    for path in paths:
        check_itk_path(path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(paths)
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    reader.SetImageIO("GDCMImageIO")
    return reader


def _read_pixels(paths, variable_rescale, series_label, transfer_syntax, int16=False):
    reader = _series_reader(paths)
    if variable_rescale:
        # Slices with different rescale slopes/intercepts need a float type.
        reader.SetOutputPixelType(sitk.sitkFloat32)
    elif int16:
        reader.SetOutputPixelType(sitk.sitkInt16)
    try:
        # ITK's warnings (e.g. spacing jitter within our tolerance) are hidden: the checks
        # above said what matters.
        with itk_warnings_hidden():
            return reader.Execute()
    except RuntimeError as exc:
        name = getattr(transfer_syntax, "name", str(transfer_syntax))
        compressed = transfer_syntax is not None and getattr(transfer_syntax, "is_compressed", False)
        bad = _unreadable_pixels(paths)
        if bad and not (compressed and len(bad) == len(paths)):
            # Some files fail on their own: name them (one cut short among hundreds
            # is otherwise not to be found). Every compressed file failing is the codec.
            raise InputError(
                f"cannot read the pixel data of {len(bad)} slice file{'s' if len(bad) > 1 else ''} "
                f"of the series {series_label} ({_names(bad)}): cut short or damaged; export "
                f"the complete series again."
            ) from exc
        hint = _TRANSFER_SYNTAX_HINT if compressed else "check that the files are complete"
        raise InputError(
            f"cannot read the pixel data of the series {series_label} (transfer syntax "
            f"{name}); {hint}."
        ) from exc


def _unreadable_pixels(paths):
    """The files whose pixels GDCM cannot read on their own (cut short, damaged).

    Looked for only after the series read failed: a good read costs nothing
    more, and reading each file is exact where a size check against the
    header would miss padding, odd lengths and encapsulated pixels.
    """
    bad = []
    for path in paths:
        try:
            # Per file: what GDCM prints about a failing file is dropped with it.
            with itk_warnings_hidden():
                _series_reader([path]).Execute()
        except RuntimeError:
            bad.append(path)
    return bad


def _names(paths):
    """Up to three file names, then '...'."""
    names = [os.path.basename(p) for p in paths]
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _narrowed_to_int16(image):
    """An int32 image as int16 when its values fit: half the memory, the same numbers.

    The headers cannot always prove it beforehand (16-bit signed pixels with
    intercept -1024, the usual GE and our own writer's encoding, could reach
    -33792), while real values stay within -1024..3071 HU or so.
    """
    if image.GetPixelID() != sitk.sitkInt32:
        return image
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    if stats.GetMinimum() < -32768 or stats.GetMaximum() > 32767:
        return image
    return sitk.Cast(image, sitk.sitkInt16)


def _int16_is_exact(slices):
    """Whether every possible value of these slices fits int16 (proved from the headers).

    GDCM widens CT to int32 whenever a rescale intercept is present; asking
    for int16 halves the memory, but only when no value can overflow.
    """
    for s in slices:
        h = s.header
        try:
            bits = int(h.get("BitsStored"))
            signed = int(h.get("PixelRepresentation")) == 1
            slope = float(h.get("RescaleSlope", 1) or 1)
            intercept = float(h.get("RescaleIntercept", 0) or 0)
        except (TypeError, ValueError):
            return False
        if slope != 1.0 or intercept != round(intercept):
            return False
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        if lo + intercept < -32768 or hi + intercept > 32767:
            return False
    return True


def _collect(folder, series_uid):
    """Choose the series and its slices, sorted along the normal and checked for gaps."""
    if not os.path.isdir(folder):
        raise InputError(f"{folder} is not a folder of DICOM files.")
    by_series = {}
    # broken: (path, its SeriesInstanceUID or None, why it is no slice; None for a file
    # that could not be read at all)
    multiframe, broken = [], []
    for path in _iter_files(folder):
        ds = _read_header(path)
        if ds is None:
            head = _head(path)
            if _has_preamble(head) or not head:
                # A Part 10 file, yet unreadable, or an empty one (an interrupted copy, where
                # a slice then goes missing unnamed): cut short?
                broken.append((path, None, None))
            continue
        if _frames(ds) > 1 and _claims_image(ds):
            # Enhanced multi-frame images keep their geometry per frame, in sequences.
            # (A DICOM SEG is multi-frame too, but no image: it is skipped below.)
            multiframe.append(path)
            continue
        s = _as_slice(path, ds)
        if s is None:
            if _claims_image(ds):
                broken.append((path, str(ds.get("SeriesInstanceUID", "")) or None,
                               _why_no_slice(ds)))
            continue
        by_series.setdefault(s.series_uid, []).append(s)
    if not by_series:
        if multiframe:
            raise InputError(
                f"{folder} holds only multi-frame (enhanced) DICOM images, which are not "
                f"supported; convert them to NIfTI first (e.g. with dcm2niix)."
            )
        no_geometry = sorted((p, why) for p, _, why in broken if why)
        if no_geometry:
            # Image files whose geometry could not be read (malformed values, "0.7mm"):
            # named with the tags, or the user looks for a missing series.
            n = len(no_geometry)
            raise InputError(
                f"{n} DICOM image file{'s' if n > 1 else ''} in {folder} "
                f"({_names([p for p, _ in no_geometry])}) cannot be placed in a volume: "
                f"{no_geometry[0][1]}{' in the first' if n > 1 else ''}; export the series "
                f"again."
            )
        raise InputError(
            f"{folder} holds no DICOM image slices with position and orientation; pass the "
            f"folder of an exported CT or MR series."
        )
    uid, chosen, warnings = _choose_series(folder, by_series, series_uid)
    try:
        return _check_chosen(folder, uid, chosen, warnings, broken, multiframe,
                             by_series[uid])
    except InputError as exc:
        # A series chosen by its count of images (a dynamic series holds several per
        # position) may be the one that cannot be read: say which others can be chosen
        # (not a localizer or a dose report, which hold no volume).
        others = {u: _stack_of(slices).slices for u, slices in by_series.items() if u != uid}
        readable = "; ".join(_describe(u, stack, by_series[u])
                             for u, stack in sorted(others.items()) if len(stack) >= 2)
        if series_uid is not None or not readable:
            raise
        raise InputError(f"{str(exc).rstrip('.')}. The folder holds other series; choose one "
                         f"with --series-uid (series_uid in timepoint.json or in Python): "
                         f"{readable}.") from exc


def _check_chosen(folder, uid, chosen, warnings, broken, multiframe, series):
    """The chosen series' slices (of all the ``series``' files), sorted along the normal
    and checked for gaps and for pixel values the reader would get wrong."""
    stack, dropped, tied, rival = chosen
    label = _describe(uid, stack)
    if tied:
        n = _distinct(stack)
        sizes = f"{n} slices each" if rival == n else f"{n} and {rival} slices"
        raise InputError(
            f"the series {label} mixes stacks of {sizes} with different orientation, pixel "
            f"spacing or matrix size (two reconstructions under one SeriesInstanceUID?); "
            f"export them as separate series."
        )
    own = [os.path.basename(p) for p, u, _ in broken if u == uid]
    if own:
        # A slice of this very series without geometry or pixels: the volume would lack it.
        raise InputError(
            f"{len(own)} slice file{'s' if len(own) > 1 else ''} of the series {label} "
            f"({', '.join(own[:3])}{', ...' if len(own) > 3 else ''}) lack position, orientation "
            f"or pixel spacing; export the complete series."
        )
    unknown = [os.path.basename(p) for p, u, _ in broken if u is None]
    if unknown:
        warnings.append(
            f"{len(unknown)} DICOM file{'s' if len(unknown) > 1 else ''} in {folder} could not "
            f"be read ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}: cut short "
            f"or damaged) and {'were' if len(unknown) > 1 else 'was'} left out; if "
            f"{'they are' if len(unknown) > 1 else 'it is a'} slice{'s' if len(unknown) > 1 else ''} "
            f"of this series, the volume lacks {'them' if len(unknown) > 1 else 'it'}."
        )
    if multiframe:
        warnings.append(f"{len(multiframe)} multi-frame (enhanced) DICOM image"
                        f"{'s' if len(multiframe) > 1 else ''} in {folder} "
                        f"{'were' if len(multiframe) > 1 else 'was'} left out: not supported.")
    if dropped:
        warnings.append(
            f"{dropped} slice{'s' if dropped > 1 else ''} of the series {label} "
            f"{'were' if dropped > 1 else 'was'} dropped: scout/localizer or reformatted "
            f"slices whose orientation, pixel spacing or size differ from the rest."
        )
    if not stack:
        raise InputError(f"the series {uid} in {folder} holds only scout/localizer images.")
    _check_pixel_encoding(stack, label)
    normal = stack[0].normal
    slices, pos, dup_warnings = _unique_positions(stack, normal, folder)
    warnings += dup_warnings
    if len(slices) < 2:
        also = (f" (the folder's {len(multiframe)} multi-frame (enhanced) image"
                f"{'s are' if len(multiframe) > 1 else ' is'} not supported: convert "
                f"{'them' if len(multiframe) > 1 else 'it'} with dcm2niix)" if multiframe else "")
        raise InputError(
            f"the series {label} in {folder} has a single slice, which has no slice spacing "
            f"and no volume{also}; export the whole series."
        )
    try:
        spacing_z = _check_spacing(slices, pos, normal, label)
    except InputError as exc:
        in_stack = {id(s) for s in stack}
        left_out = [s.path for s in series
                    if id(s) not in in_stack and "LOCALIZER" not in s.image_type]
        if left_out and not unknown and isinstance(exc, _SliceGap):
            # The slices dropped for another matrix or orientation are likely the gap: the
            # user would look for files missing from a folder that holds them all.
            n = len(left_out)
            raise InputError(
                f"{str(exc).rstrip('.')}; {_names(left_out)} "
                f"of this series {'were' if n > 1 else 'was'} left out for another "
                f"orientation, pixel spacing or matrix size than the rest and may be the "
                f"missing slice{'s' if n > 1 else ''}: export the series again."
            ) from exc
        if not unknown:
            raise
        # The damaged files are likely the gap: name them, or the user looks for files
        # missing from a folder that holds them all.
        raise InputError(
            f"{', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''} in {folder} could "
            f"not be read (cut short or damaged): {exc}"
        ) from exc

    return uid, label, slices, normal, spacing_z, warnings


def _check_pixel_encoding(stack, label):
    """Refuse slices whose values GDCM would turn into other numbers without a word:
    MONOCHROME1 (inverted for display), a rescale that is no number (GDCM takes slope 1
    for "0,5"), one slice without the rescale of the others (read 1024 HU too bright)."""
    if any(str(s.header.get("PhotometricInterpretation", "") or "").strip().upper()
           == "MONOCHROME1" for s in stack):
        raise InputError(f"the series {label} stores its pixels as MONOCHROME1 (inverted grey "
                         f"scale), which the DICOM reader would invert; convert it (e.g. with "
                         f"dcm2niix) or export it as MONOCHROME2.")
    for key, identity in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        values = {}
        for s in stack:
            if s.header.get(key) in (None, ""):
                continue
            text = str(s.header.get(key)).strip()
            try:
                values[id(s)] = float(text)
            except ValueError:
                values[id(s)] = math.nan
            if not math.isfinite(values[id(s)]):
                raise InputError(f"the {key} {text!r} of {os.path.basename(s.path)} in the "
                                 f"series {label} is not a number (a decimal comma?), so its "
                                 f"values cannot be rescaled; correct the export.")
        lacking = [s.path for s in stack if id(s) not in values]
        # A slice without the tag is read as the identity: wrong only beside other values.
        if lacking and any(v != identity for v in values.values()):
            raise InputError(f"{_names(lacking)} of the series {label} "
                             f"{'have' if len(lacking) > 1 else 'has'} no {key} while the "
                             f"other slices have one, so {'their' if len(lacking) > 1 else 'its'}"
                             f" values cannot be put on their scale; export the series again.")


def read_dicom_series(folder, series_uid=None):
    """Read one DICOM series from ``folder`` into a :class:`~flr_volumetry.io.Scan`.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder of DICOM files, searched recursively. Files that are not
        DICOM (DICOMDIR, text, hidden files) and objects that are not image
        slices (SEG, SR, RTSTRUCT, presentation states) are ignored.
    series_uid : str, optional
        SeriesInstanceUID of the series to read. By default the axial
        series with the most slices is read, and ``Scan.warnings`` names it
        and lists the others.

    Returns
    -------
    Scan
        Pixels with rescale slope/intercept applied (Hounsfield units for
        CT), physical LPS geometry, and the header facts: modality, study
        date (StudyDate, else SeriesDate, else AcquisitionDate), height in cm
        (DICOM PatientSize is in metres), weight in kg, series UID and
        description. The patient's name is never read.

    Raises
    ------
    InputError
        No image series, missing slices or non-uniform spacing (the message
        names the gap), two different slices at one position, a tilted
        gantry, a single slice, or pixel data that cannot be decoded (the
        files cut short or damaged are named).

    Examples
    --------
    >>> import tempfile, os, numpy as np, SimpleITK as sitk
    >>> from flr_volumetry.io import write_dicom_series
    >>> img = sitk.GetImageFromArray(np.full((3, 4, 5), 40, dtype=np.int16))
    >>> img.SetSpacing((0.7, 0.7, 2.5))
    >>> d = os.path.join(tempfile.mkdtemp(), "ct")
    >>> _ = write_dicom_series(img, d, patient_height_cm=172, study_date="2024-03-01")
    >>> scan = read_dicom_series(d)
    >>> scan.image.GetSize(), scan.image.GetSpacing()
    ((5, 4, 3), (0.7, 0.7, 2.5))
    >>> scan.modality, scan.patient_height_cm, str(scan.study_date)
    ('CT', 172.0, '2024-03-01')
    """
    folder = os.fspath(folder)
    uid, label, slices, normal, spacing_z, warnings = _collect(folder, series_uid)
    first = slices[0].header
    slopes = {(str(s.header.get("RescaleSlope", 1)), str(s.header.get("RescaleIntercept", 0)))
              for s in slices}
    transfer_syntax = getattr(getattr(first, "file_meta", None), "TransferSyntaxUID", None)
    image = _read_pixels([s.path for s in slices], len(slopes) > 1, label, transfer_syntax,
                         int16=_int16_is_exact(slices))
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"the series {label} is not a scalar 3-D image (e.g. colour images).")
    image = _narrowed_to_int16(image)

    # The header is the authority on geometry; SimpleITK's own reading must agree.
    o = np.asarray(slices[0].orientation)
    direction = np.column_stack([o[:3], o[3:], normal])
    spacing = (slices[0].pixel_spacing[1], slices[0].pixel_spacing[0], spacing_z)
    tol = max(0.01, 0.01 * spacing_z)
    if (image.GetSize() != (slices[0].columns, slices[0].rows, len(slices))
            or not np.allclose(np.asarray(image.GetDirection()).reshape(3, 3), direction,
                               atol=1e-3)
            or not np.allclose(image.GetSpacing(), spacing, atol=tol)
            or not np.allclose(image.GetOrigin(), slices[0].position, atol=tol)):
        raise InputError(
            f"the geometry SimpleITK reads from the series {label} disagrees with its headers; "
            f"check the export (ImagePositionPatient/ImageOrientationPatient)."
        )
    image.SetSpacing(spacing)
    image.SetOrigin(slices[0].position)
    # Orientations written with a few decimals: read as the rotation they round.
    image.SetDirection(nearest_rotation(direction.ravel().tolist()))

    modality, date, height_cm, weight_kg = _header_facts(first, warnings)
    for w in warnings:
        _log.info("%s", w)
    return Scan(
        image=image, source=folder, modality=modality, study_date=date,
        patient_height_cm=height_cm, patient_weight_kg=weight_kg,
        series_instance_uid=uid, series_description=slices[0].description or None,
        warnings=tuple(warnings),
        frame_of_reference_uid=str(getattr(first, "FrameOfReferenceUID", "")) or None,
    )


def series_slice_files(folder, series_uid=None):
    """SeriesInstanceUID and sorted file paths of the series :func:`read_dicom_series` reads.

    The order is the scan's slice order (index 0 first), so that a DICOM SEG
    can reference the source slice of each mask slice.
    """
    uid, _, slices, _, _, _ = _collect(os.fspath(folder), series_uid)
    return uid, [s.path for s in slices]
