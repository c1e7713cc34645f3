"""Segmentation files: DICOM SEG and 3D Slicer ``.seg.nrrd``, in and out.

Both hold several named segments; a segment is chosen by name (case does
not matter) or number. DICOM SEG frames are placed on the reference scan's
grid by their ImagePositionPatient, so the frame order in the file never
matters; a SEG on another grid is resampled by nearest neighbour with a
warning, as every other mask is.
"""

from __future__ import annotations

import datetime as _dt
import os
import re

import numpy as np
import pydicom
import SimpleITK as sitk

from ..errors import GeometryError, InputError, as_path, check_exists
from ._filechecks import check_orientation, check_voxel_size, nearest_rotation
from ._geometry import resample_mask_to, same_grid
from ._images import as_image
from ._writers import atomic_file

# The patient attributes (group 0010) a SEG carries from its source: what PACS needs to
# file it with its study. Every other one goes: names, comments, the responsible person,
# address, other IDs.
_PATIENT_TAGS_KEPT = (0x00100020, 0x00100030, 0x00100040)  # PatientID, BirthDate, Sex
# Type 2 attributes the SEG copies from its source (present, possibly empty).
_TYPE2_KEYWORDS = ("PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate",
                   "StudyTime", "AccessionNumber", "ReferringPhysicianName")

__all__ = ["read_dicom_seg", "read_seg_nrrd", "write_dicom_seg", "write_seg_nrrd",
           "is_dicom_seg", "is_seg_nrrd"]

# Segmentation Storage and Label Map Segmentation Storage (2024).
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")

# Slicer's default colours for common structures (RGB, 0-1); others cycle.
_COLORS = {"liver": (221, 130, 101), "tumor": (144, 238, 144), "tumour": (144, 238, 144),
           "flr": (241, 214, 145), "remnant": (241, 214, 145)}
_PALETTE = [(128, 174, 128), (241, 214, 145), (177, 122, 101), (111, 184, 210), (216, 101, 79),
            (221, 130, 101), (144, 238, 144), (192, 104, 88), (220, 245, 20), (78, 63, 0)]

# A frame lands on a reference slice when its position is within this
# fraction of a voxel of one.
_ON_GRID_VOXELS = 0.05


# --------------------------------------------------------------------------- helpers


def _as_selection(segment):
    if segment is None:
        return None
    if isinstance(segment, (str, int, np.integer)):
        segment = (segment,)
    out = []
    for s in segment:
        if isinstance(s, str) and s.strip().isdigit():
            s = int(s.strip())
        out.append(int(s) if isinstance(s, (int, np.integer)) else str(s).strip())
    return tuple(out)


class SegmentChoiceNeeded(InputError):
    """A file of several segments given without a selection; ``names`` are its segments'."""

    def __init__(self, message, names):
        super().__init__(message)
        self.names = tuple(names)


def _choose(available, segment, path, number_kind, listing=None, numbers=None):
    """Segment keys chosen by ``segment`` (normalised by :func:`_as_selection`) among
    ``available`` ({key: name}); integers are keys, strings are names. ``listing`` shows
    the segments in messages (default: key and name); ``numbers`` ({key: number}) are
    the numbers a user types for them, where those are not the keys."""
    numbers = numbers or {}
    if not available:
        raise InputError(f"{path} holds no segment.")
    listing = listing or ", ".join(f"{k} {name!r}" for k, name in available.items())
    sel = segment
    if sel is None:
        if len(available) == 1:
            return list(available)
        first_key, first_name = next(iter(available.items()))
        unique = sum(name.lower() == first_name.lower() for name in available.values()) == 1
        # A name holding the selection's separators is suggested by its number.
        unique = unique and not set(first_name) & set(",:")
        raise SegmentChoiceNeeded(
            f"{path} holds {len(available)} segments ({listing}); choose one by name or "
            f"{number_kind}, e.g. {os.path.basename(path)}:"
            f"{first_name if unique else numbers.get(first_key, first_key)}.",
            available.values())
    whole = ",".join(s for s in sel if isinstance(s, str))
    if len(sel) > 1 and whole == ",".join(map(str, sel)):
        # 'Liver, whole' arrives split at its comma: one name, when the file has it.
        named = [k for k, name in available.items()
                 if re.sub(r"\s*,\s*", ",", name).lower() == whole.lower()]
        if named:
            return named
    chosen = []
    for s in sel:
        if isinstance(s, int):
            keys = [k for k in available if k == s]
        else:
            keys = [k for k, name in available.items() if name == s]
            keys = keys or [k for k, name in available.items() if name.lower() == s.lower()]
        if not keys:
            raise InputError(f"{path} has no segment {s!r}; available segments: {listing}.")
        # Segments of one name are united: a SEG's lesions each named 'Tumor' (one of them
        # alone would be a fraction of the tumour volume).
        chosen += [k for k in keys if k not in chosen]
    return chosen


def is_seg_nrrd(path):
    """Whether ``path`` is a 3D Slicer segmentation (``.seg.nrrd`` or NRRD with segments)."""
    path = os.fspath(path)
    low = path.lower()
    if low.endswith(".seg.nrrd"):
        return True
    if not low.endswith(".nrrd") or not os.path.isfile(path):
        return False
    import nrrd

    try:
        header = nrrd.read_header(path)
    except Exception:  # noqa: BLE001 - not a readable NRRD: the image reader will say so
        return False
    return any(k.startswith("Segment0_") for k in header)


def is_dicom_seg(path):
    """Whether ``path`` is a DICOM Segmentation object (read without the pixels)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return False
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - not DICOM at all
        return False
    return str(ds.get("SOPClassUID", "")) in SEG_SOP_CLASSES


# --------------------------------------------------------------------------- DICOM SEG


def _functional(ds, frame_item, seq, attr):
    """An attribute of a functional group: per-frame first, then shared."""
    for groups in (frame_item, ds.get("SharedFunctionalGroupsSequence", [None])[0]):
        if groups is not None and seq in groups and len(groups[seq].value):
            item = groups[seq].value[0]
            if attr in item:
                return item[attr].value
    return None


def _seg_frames(ds, path):
    """Per frame: (segment number or None for LABELMAP, position, orientation, spacing)."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or [None] * n
    frames = []
    for item in per_frame:
        pos = _functional(ds, item, "PlanePositionSequence", "ImagePositionPatient")
        ori = _functional(ds, item, "PlaneOrientationSequence", "ImageOrientationPatient")
        spc = _functional(ds, item, "PixelMeasuresSequence", "PixelSpacing")
        seg = _functional(ds, item, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        if pos is None or ori is None or spc is None:
            raise InputError(
                f"the DICOM SEG {path} has frames without position, orientation or pixel "
                f"spacing; it cannot be placed on a scan."
            )
        frames.append((None if seg is None else int(seg), np.array(pos, float),
                       np.array(ori, float), np.array(spc, float)))
    return frames


def _frame_masks(ds, frames, numbers):
    """Boolean frame images for the chosen segment numbers, with their frame index."""
    pixels = ds.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    kind = str(ds.get("SegmentationType", "BINARY")).upper()
    out = []
    for i, (seg, *_rest) in enumerate(frames):
        if kind == "LABELMAP":
            m = np.isin(pixels[i], numbers)
        elif seg in numbers:
            if kind == "FRACTIONAL":
                # Fractional (probability/occupancy) frames: inside when >= half.
                m = pixels[i] >= float(ds.get("MaximumFractionalValue", 255)) / 2.0
            else:
                m = pixels[i] != 0
        else:
            continue
        out.append((i, m))
    return out


def _place_on_reference(frames, masks, reference, step=None):
    """Frames into the reference array when each lands exactly on a reference slice.

    ``step``: the SEG's declared SpacingBetweenSlices. When it differs from the
    reference's slice spacing, the frames are slabs of another thickness (a SEG drawn on
    2 mm slices lands on every other slice of a 1 mm scan, half its volume): not placed.
    """
    size = reference.GetSize()
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    spacing = np.asarray(reference.GetSpacing())
    if step is not None and not np.isclose(step, spacing[2], rtol=1e-3):
        return None
    out = np.zeros(size[::-1], dtype=np.uint8)
    for i, m in masks:
        _, pos, ori, spc = frames[i]
        if (m.shape != (size[1], size[0])
                or not np.allclose(ori[:3], direction[:, 0], atol=1e-3)
                or not np.allclose(ori[3:], direction[:, 1], atol=1e-3)
                or not np.allclose([spc[1], spc[0]], spacing[:2], rtol=1e-4)):
            return None
        ci = np.asarray(reference.TransformPhysicalPointToContinuousIndex(pos.tolist()))
        k = int(round(ci[2]))
        if (abs(ci[0]) > _ON_GRID_VOXELS or abs(ci[1]) > _ON_GRID_VOXELS
                or abs(ci[2] - k) > _ON_GRID_VOXELS or not 0 <= k < size[2]):
            return None
        out[k] |= m.astype(np.uint8)
    return out


def _declared_spacing(ds, attr):
    """``attr`` (SpacingBetweenSlices or SliceThickness) of the SEG's pixel measures, in mm,
    or None."""
    first = (ds.get("PerFrameFunctionalGroupsSequence") or [None])[0]
    try:
        value = float(_functional(ds, first, "PixelMeasuresSequence", attr) or 0)
    except (TypeError, ValueError):
        value = 0.0
    return value if value > 0 else None


def _native_volume(ds, frames, masks, path):
    """The SEG's own grid: frames stacked along their normal, gaps filled with zeros.

    The slice step is the declared SpacingBetweenSlices when the frames sit
    on multiples of it: frames of empty slices are usually omitted, so the
    smallest distance between frames can be several slices. Without it, the
    smallest distance between neighbouring frames when every frame sits on a
    multiple of it. SliceThickness is the thickness of a slice, not the step
    (thin slices 2.5 mm apart would be stacked 1.25 mm apart, every other
    slice empty): it is used only for a single frame, or when the frames sit
    on its multiples and no neighbours lie more than two of it apart.
    """
    ref = frames[masks[0][0]]
    ori, spc = ref[2], ref[3]
    normal = np.cross(ori[:3], ori[3:])
    for i, _ in masks:
        if not (np.allclose(frames[i][2], ori, atol=1e-3) and np.allclose(frames[i][3], spc)):
            raise InputError(
                f"the DICOM SEG {path} mixes frame orientations or pixel spacings; it cannot "
                f"be stacked into a volume."
            )
    pos = np.array([float(np.dot(frames[i][1], normal)) for i, _ in masks])
    lowest = float(pos.min())
    gaps = np.unique(np.round(pos - lowest, 3))

    def fits(step):
        k = gaps / step
        return bool(np.allclose(k, np.round(k), atol=0.05))

    declared = _declared_spacing(ds, "SpacingBetweenSlices")
    thickness = _declared_spacing(ds, "SliceThickness")
    # Smallest distance between neighbouring frames (gaps: offsets from the lowest, sorted).
    nearest = float(np.min(np.diff(gaps))) if gaps.size > 1 else None
    if declared is not None and fits(declared):
        step = declared
    elif nearest is not None and fits(nearest):
        step = nearest
    elif thickness is not None and nearest is not None and fits(thickness) \
            and nearest <= 2.0 * thickness + 1e-6:
        # Frames of empty slices omitted so that no two neighbours remain: slices as thick
        # as declared, and gapless, when no neighbours lie further apart than two of them.
        step = thickness
    elif gaps.size == 1 and (declared or thickness):
        step = declared or thickness
    else:
        raise InputError(
            f"the frames of the DICOM SEG {path} are not evenly spaced (or their spacing is not "
            f"declared); it cannot be stacked into a volume."
        )
    origin = frames[masks[int(np.argmin(pos))][0]][1]
    rows, cols = masks[0][1].shape
    arr = np.zeros((int(round((pos.max() - lowest) / step)) + 1, rows, cols), dtype=np.uint8)
    for (i, m), p in zip(masks, pos):
        k = int(round((p - lowest) / step))
        # Every frame must sit on the stack's axis; an in-plane shift is not a volume.
        if np.linalg.norm(frames[i][1] - (origin + k * step * normal)) > 0.5 * float(spc.min()):
            raise InputError(
                f"the frames of the DICOM SEG {path} are shifted in-plane from one another; it "
                f"cannot be stacked into a volume."
            )
        arr[k] |= m.astype(np.uint8)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((float(spc[1]), float(spc[0]), step))
    image.SetOrigin(origin.tolist())
    image.SetDirection(np.column_stack([ori[:3], ori[3:], normal]).ravel().tolist())
    return image


def read_dicom_seg(path, reference=None, segment=None, *, what="mask",
                   reference_scan_or_image=None):
    """Read one or more segments of a DICOM SEG as a binary mask on a scan's grid.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM Segmentation file (BINARY, FRACTIONAL or LABELMAP).
    reference : Scan or SimpleITK.Image or None
        The scan the mask belongs to (named as in :func:`load_mask` and
        :func:`load_label_map`). Each frame is placed by its
        ImagePositionPatient on the slice it lies on; a SEG on another grid
        is resampled by nearest neighbour and ``Mask.warnings`` says so.
        None gives the SEG on its own grid.
    segment : int, str or sequence, optional
        SegmentNumber(s) or SegmentLabel(s) (case-insensitive); several are
        united. Needed when the file holds several segments.
    what : str
        What the mask is, for messages.
    reference_scan_or_image : Scan or SimpleITK.Image, optional
        The former name of ``reference``, still read.

    Returns
    -------
    Mask
        ``image`` uint8 (1 inside), ``source`` ("path:Label"), ``warnings``.

    Examples
    --------
    >>> read_dicom_seg("missing.dcm", None)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the mask missing.dcm does not exist.
    """
    from ._images import Scan
    from ._masks import Mask

    path = as_path(path, "read_dicom_seg reads a DICOM SEG file")
    check_exists(path, what)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise InputError(f"cannot read {path} as DICOM ({exc}).") from exc
    if str(ds.get("SOPClassUID", "")) not in SEG_SOP_CLASSES:
        raise InputError(
            f"{path} is a DICOM file but not a DICOM SEG (segmentation); pass a SEG file, or "
            f"the folder of a DICOM image series as the image."
        )
    available = {int(it.SegmentNumber): str(it.get("SegmentLabel", "") or "")
                 for it in ds.get("SegmentSequence", [])}
    if not available:
        raise InputError(f"the DICOM SEG {path} declares no segment.")
    numbers = _choose(available, _as_selection(segment), path, "SegmentNumber")
    names = ",".join(available[n] or str(n) for n in numbers)
    source = f"{path}:{names}"
    frames = _seg_frames(ds, path)
    try:
        masks = _frame_masks(ds, frames, numbers)
    except Exception as exc:  # noqa: BLE001 - pydicom decoding problems
        raise InputError(f"cannot decode the pixel data of the DICOM SEG {path} ({exc}).") from exc
    if not any(m.any() for _, m in masks):
        raise InputError(f"the {what} {source} has no voxel; the segment is empty.")

    warnings = []
    if reference_scan_or_image is not None:
        # The scan was named reference_scan_or_image here and reference in every other
        # reader; the old keyword stays readable for scripts that used it.
        if reference is not None:
            raise InputError("give the scan once, as reference (reference_scan_or_image is "
                             "its former name).")
        reference = reference_scan_or_image
    if isinstance(reference, Scan):
        seg_frame = str(ds.get("FrameOfReferenceUID", "")) or None
        if reference.frame_of_reference_uid and seg_frame \
                and seg_frame != reference.frame_of_reference_uid:
            # Another patient, or another session: its positions mean nothing on this scan
            # (another patient's SEG on the same grid had been measured as this liver).
            raise InputError(
                f"the DICOM SEG {path} was drawn in another frame of reference than the scan "
                f"(another patient or scanner session): it cannot be placed on it.")
        seg_series = [str(it.get("SeriesInstanceUID", "")) for it in
                      ds.get("ReferencedSeriesSequence", [])]
        if reference.series_instance_uid and seg_series and \
                reference.series_instance_uid not in seg_series:
            warnings.append(
                f"the DICOM SEG {path} was drawn on series {', '.join(seg_series)}, not on the "
                f"image's series {reference.series_instance_uid}; it was placed by position."
            )
        reference = reference.image
    if reference is not None:
        arr = _place_on_reference(frames, masks, reference,
                                  _declared_spacing(ds, "SpacingBetweenSlices"))
        if arr is not None:
            image = sitk.GetImageFromArray(arr)
            image.CopyInformation(reference)
            return Mask(image=image, source=source, warnings=tuple(warnings))
    image = _native_volume(ds, frames, masks, path)
    if reference is not None:
        image, warning = resample_mask_to(image, reference, what=f"{what} {source}")
        warnings += [warning] if warning else []
    return Mask(image=image, source=source, warnings=tuple(warnings))


def _segment_code(name):
    from pydicom.sr.codedict import codes

    low = name.lower()
    if any(w in low for w in ("tumor", "tumour", "lesion", "metasta", "neoplasm")):
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm
    if "liver" in low or "flr" in low or "remnant" in low or "segment" in low:
        return codes.SCT.AnatomicalStructure, codes.SCT.Liver
    return codes.SCT.Tissue, codes.SCT.Tissue


def _as_named_masks(mask_or_masks, segment_names):
    if isinstance(mask_or_masks, dict):
        names = list(mask_or_masks) if segment_names is None else list(segment_names)
        images = list(mask_or_masks.values())
    else:
        single = isinstance(mask_or_masks, sitk.Image) or hasattr(mask_or_masks, "image")
        images = [mask_or_masks] if single else list(mask_or_masks)
        if segment_names is None:
            raise InputError("write_dicom_seg needs segment_names, one name per mask.")
        names = [segment_names] if isinstance(segment_names, str) else list(segment_names)
    if len(names) != len(images) or not images:
        raise InputError(f"got {len(images)} masks and {len(names)} segment names; give one "
                         f"name per mask.")
    images = [as_image(m, f"mask {n!r}") for n, m in zip(names, images)]  # Masks too
    names = [str(n).strip() for n in names]
    if any(not n for n in names) or len(set(n.lower() for n in names)) != len(names):
        raise InputError(f"segment names must be non-empty and distinct, got {names}.")
    return names, images


def write_dicom_seg(mask_or_masks, source_series_folder, path, *, segment_names=None,
                    series_uid=None, algorithm_name=None, series_description="Segmentation"):
    """Write masks as a DICOM SEG (BINARY) that references the source series.

    Parameters
    ----------
    mask_or_masks : SimpleITK.Image, sequence of them, or dict name -> image
        Binary masks on the grid of the source series (as read by
        :func:`~flr_volumetry.io.read_dicom_series`).
    source_series_folder : str or os.PathLike
        The DICOM folder the scan was read from; each mask slice references
        its source slice (SOPInstanceUID), and patient/study identifiers are
        copied from it so that PACS files the SEG with its study. The
        patient's name is left empty.
    path : str or os.PathLike
        The SEG file, written atomically.
    segment_names : str or sequence of str
        One name per mask (SegmentLabel). Names containing 'liver' are
        coded as SNOMED 'Liver', 'tumour'/'lesion' as 'Neoplasm', others
        as 'Tissue'.
    series_uid : str, optional
        Which series of the folder, when it holds several.
    algorithm_name : str, optional
        When the masks come from an algorithm (e.g. 'flr-volumetry classic'),
        the segments are marked AUTOMATIC with that name; else MANUAL.
    series_description : str

    Returns
    -------
    str
        The written path.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__
    from ._dicom import read_dicom_series, series_slice_files

    names, images = _as_named_masks(mask_or_masks, segment_names)
    folder = os.fspath(source_series_folder)
    scan = read_dicom_series(folder, series_uid=series_uid)
    uid, files = series_slice_files(folder, series_uid=scan.series_instance_uid)
    arrays = []
    for name, image in zip(names, images):
        if not same_grid(image, scan.image):
            raise GeometryError(
                f"the mask {name!r} is not on the grid of the series in {folder}; load it with "
                f"load_mask(..., reference) first so it is resampled onto the scan."
            )
        arrays.append(sitk.GetArrayViewFromImage(image) != 0)
    pixel_array = np.stack(arrays, axis=-1).astype(np.uint8)  # (slices, rows, cols, segments)

    sources = [_seg_source(f, folder) for f in files]

    if algorithm_name:
        algorithm_type = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algorithm = hd.AlgorithmIdentificationSequence(
            name=str(algorithm_name), family=codes.DCM.ImageProcessing, version=__version__)
    else:
        algorithm_type, algorithm = hd.seg.SegmentAlgorithmTypeValues.MANUAL, None
    descriptions = []
    for number, name in enumerate(names, start=1):
        category, kind = _segment_code(name)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=algorithm_type,
            algorithm_identification=algorithm,
        ))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=300,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="flr-volumetry",
        manufacturer_model_name="flr-volumetry", software_versions=__version__,
        device_serial_number="0", series_description=series_description,
        # An empty mask (no tumour candidate found) keeps its frames: omitting them all is
        # impossible, and highdicom's warning saying so had reached the command's stderr.
        omit_empty_frames=bool(pixel_array.any()),
    )
    with atomic_file(path, ".dcm") as tmp:
        seg.save_as(tmp)
    return os.fspath(path)


def check_seg_source(folder, series_uid=None):
    """Refuse, before any work, a series a DICOM SEG cannot reference (see
    :func:`_seg_source`): it is judged by its first slice's header."""
    from ._dicom import series_slice_files

    _, files = series_slice_files(os.fspath(folder), series_uid=series_uid)
    _seg_source(files[0], os.fspath(folder))


_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")


def _valid_date_or_time(vr, value):
    """Whether a DA, TM or DT text is one the standard (and highdicom) can hold."""
    text = str(value).strip()
    if not text:
        return True
    try:
        if vr in ("DA", "DT"):
            _dt.datetime.strptime(text[:8], "%Y%m%d")
            return vr == "DT" or len(text) == 8
        m = _TIME.match(text)
        return bool(m) and int(m.group(1)) < 24 and int(m.group(2) or 0) < 60 \
            and int(m.group(3) or 0) < 60
    except ValueError:
        return False


def _seg_source(path, folder):
    """The header of one source slice as the SEG may copy it (highdicom copies the whole
    patient and study modules): no person's name, no free text about the patient, and
    the type 2 attributes present in a form highdicom accepts.

    Read as the series reader reads it (``force``: files without the preamble).
    """
    src = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    if "FrameOfReferenceUID" not in src or not src.FrameOfReferenceUID:
        raise InputError(
            f"the series in {folder} has no FrameOfReferenceUID, which a DICOM SEG must "
            f"reference; write the mask as .nii.gz or .seg.nrrd instead."
        )
    if not str(src.get("StudyInstanceUID", "")).strip():
        raise InputError(
            f"the series in {folder} has no StudyInstanceUID, which a DICOM SEG must carry "
            f"to be filed with its study; write the mask as .nii.gz or .seg.nrrd instead."
        )
    for elem in list(src):
        if elem.VR in ("DA", "TM", "DT") and not elem.VM > 1 and not _valid_date_or_time(
                elem.VR, elem.value):
            # Type 2 in the study module: empty, as the standard allows, rather than the
            # writer's ValueError after the whole segmentation ('20231399', '256199').
            elem.value = ""
        elif elem.tag.group == 0x0010 and elem.tag not in _PATIENT_TAGS_KEPT:
            del src[elem.tag]
        elif elem.VR == "PN":  # physicians, operators: names too
            elem.value = ""
    src.PatientName = ""
    for keyword in _TYPE2_KEYWORDS:
        if keyword not in src or src[keyword].value is None:
            setattr(src, keyword, "")
    if "SliceThickness" not in src:
        # Type 2 in the CT and MR image modules, yet left out by some exports; highdicom
        # reads it unguarded. Empty, the SEG's pixel measures give the slice step alone.
        src.SliceThickness = None
    if str(src.PatientSex).strip().upper() not in ("M", "F", "O"):
        src.PatientSex = ""  # 'U' and other values outside the standard's, refused by highdicom
    birth = str(src.PatientBirthDate).strip()
    try:
        _dt.datetime.strptime(birth, "%Y%m%d")
    except ValueError:
        src.PatientBirthDate = ""
    # Real exports carry an empty SpecificCharacterSet, which highdicom
    # rejects; empty means the default repertoire (ISO_IR 6) by the standard.
    if "SpecificCharacterSet" in src and not src.SpecificCharacterSet:
        del src.SpecificCharacterSet
    if "TransferSyntaxUID" not in getattr(src, "file_meta", {}):
        # No file meta (no preamble): the reader took it as little endian, as must be.
        src.file_meta = pydicom.dataset.FileMetaDataset()
        src.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian
                                           if src.is_implicit_VR
                                           else pydicom.uid.ExplicitVRLittleEndian)
    return src


# --------------------------------------------------------------------------- .seg.nrrd

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
# A segment number at the end of a name: 'Segment_5', 'liver_segment_5', 'S4a', 'Couinaud VII'.
_TRAILING_NUMBER = re.compile(r"(?:^|[^a-z0-9])(?:s|seg|segment)?[ _-]*(\d+|[ivx]+)[ab]?$")


def _couinaud_number(name):
    """The Couinaud segment (1-8) a segment's name gives, or None.

    Examples
    --------
    >>> [_couinaud_number(n) for n in ("Segment_5", "S4a", "Couinaud VII", "liver", "Seg 9")]
    [5, 4, 7, None, None]
    """
    m = _TRAILING_NUMBER.search(str(name).strip().lower())
    if m is None:
        return None
    token = m.group(1)
    number = int(token) if token.isdigit() else _ROMAN.get(token)
    return number if number is not None and 1 <= number <= 8 else None


def check_seg_nrrd_label_map(path):
    """Refuse a ``.seg.nrrd`` that cannot be read as a Couinaud map by its label values.

    The map is read by label value (1-8 = segments I-VIII). Refused: several
    layers (overlapping segments give a voxel two segments), and names that
    number the segments otherwise than their label values ('Segment_5' with
    label value 1): which of the two is the Couinaud segment is unknown.
    """
    import nrrd

    path = os.fspath(path)
    try:
        header = nrrd.read_header(path)
    except Exception as exc:  # noqa: BLE001 - pynrrd raises several types
        raise InputError(f"cannot read {path} as NRRD ({exc}).") from exc
    sizes = [int(v) for v in header.get("sizes", [])]
    kinds = [str(k).lower() for k in header.get("kinds", ["domain"] * len(sizes))]
    layers = next((n for n, k in zip(sizes, kinds) if k != "domain"), 1) if len(sizes) == 4 \
        else 1
    if layers > 1:
        raise InputError(
            f"{path} holds overlapping segments (several layers), so a voxel may belong to two "
            f"segments; save the Couinaud segments without overlap (one layer) or as a label map."
        )
    clashes = []
    for seg in _nrrd_segments(header, path).values():
        number = _couinaud_number(seg["name"])
        if number is not None and number != seg["label"]:
            clashes.append(f"{seg['name']!r} has label value {seg['label']}")
    if clashes:
        raise InputError(
            f"the segment names of {path} number the segments otherwise than their label "
            f"values ({'; '.join(clashes[:3])}{'; ...' if len(clashes) > 3 else ''}); a "
            f"segment map is read by label value (1-8 = segments I-VIII): give each segment "
            f"the label value of its number."
        )



def _nrrd_segments(header, path=""):
    segments = {}
    i = 0
    while f"Segment{i}_ID" in header or f"Segment{i}_Name" in header:
        name = str(header.get(f"Segment{i}_Name", f"Segment_{i + 1}"))
        label = _whole_number(header.get(f"Segment{i}_LabelValue", 1), path, name, "label value")
        if label < 1:
            # Selected, label 0 had measured every voxel outside the segments (39 L).
            raise InputError(f"segment {name!r} of {path} has the label value {label}, which "
                             f"is the background (or no label); correct the file in 3D "
                             f"Slicer (each segment a label value of 1 or more).")
        layer = header.get(f"Segment{i}_Layer")
        segments[i] = {"name": name, "label": label,
                       "layer": None if layer is None else
                       _whole_number(layer, path, name, "layer")}
        i += 1
    return segments


def _whole_number(text, path, name, what):
    """A header field's whole number ('1' or '1.0'), or the file refused in a sentence."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value == int(value)):
        raise InputError(f"segment {name!r} of {path} has the {what} {str(text)!r}, which is "
                         f"not a whole number; correct the file in 3D Slicer.")
    return int(value)


def _nrrd_geometry(header, path):
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space in ("left-posterior-superior", "lps"):
        flip = np.array([1.0, 1.0, 1.0])
    elif space in ("right-anterior-superior", "ras"):
        flip = np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
    else:
        raise InputError(f"{path} uses the space {space!r}; expected LPS or RAS.")
    dirs = np.asarray(header.get("space directions"), dtype=float)
    dirs = dirs[~np.isnan(dirs).any(axis=1)] * flip
    if dirs.shape != (3, 3):
        raise InputError(f"{path} has no 3-D space directions.")
    spacing = np.linalg.norm(dirs, axis=1)
    check_voxel_size(spacing, path)
    direction = (dirs / spacing[:, None]).T  # columns are the axes
    origin = np.asarray(header.get("space origin", [0, 0, 0]), dtype=float) * flip
    # Before SimpleITK is given them: a singular direction had failed in SetDirection, and a
    # NaN origin had been called an empty mask.
    check_orientation(origin, direction.ravel(), path)
    direction = np.reshape(nearest_rotation(direction.ravel()), (3, 3))
    return spacing, direction, origin


def read_seg_nrrd(path, segment=None):
    """Read one or more segments of a 3D Slicer ``.seg.nrrd`` as a binary mask.

    Parameters
    ----------
    path : str or os.PathLike
        A Slicer segmentation: one label layer (3-D) or several overlapping
        layers (4-D), with ``SegmentN_Name``, ``SegmentN_LabelValue`` and
        ``SegmentN_Layer`` fields (older files: one binary layer per segment).
    segment : int, str or sequence, optional
        Segment name(s) (case-insensitive) or label value(s); several are
        united. Needed when the file holds several segments. A label value
        shared by segments on different layers is ambiguous: use the name.

    Returns
    -------
    SimpleITK.Image
        uint8 (1 inside) on the file's own grid (LPS).

    Examples
    --------
    >>> import tempfile, os, numpy as np, SimpleITK as sitk
    >>> liver = sitk.GetImageFromArray(np.array([[[0, 1, 1]]], dtype=np.uint8))
    >>> tumor = sitk.GetImageFromArray(np.array([[[0, 0, 1]]], dtype=np.uint8))
    >>> p = os.path.join(tempfile.mkdtemp(), "case.seg.nrrd")
    >>> write_seg_nrrd({"liver": liver, "tumor": tumor}, p)
    >>> sitk.GetArrayFromImage(read_seg_nrrd(p, "Tumor")).tolist()
    [[[0, 0, 1]]]
    """
    import nrrd

    path = as_path(path, "read_seg_nrrd reads a .seg.nrrd file")
    check_exists(path)
    try:
        data, header = nrrd.read(path)
    except Exception as exc:  # noqa: BLE001 - pynrrd raises several types
        raise InputError(f"cannot read {path} as NRRD ({exc}).") from exc
    kinds = [str(k).lower() for k in header.get("kinds", ["domain"] * data.ndim)]
    if data.ndim == 4:
        layer_axis = next((i for i, k in enumerate(kinds) if k != "domain"), 0)
        data = np.moveaxis(data, layer_axis, 0)
    elif data.ndim == 3:
        data = data[None]
    else:
        raise InputError(f"{path} is a {data.ndim}-D array; a segmentation is 3-D or 4-D.")
    segments = _nrrd_segments(header, path)
    if not segments:
        # A plain label map saved as .seg.nrrd: every label is a segment.
        labels = [int(v) for v in np.unique(data) if v != 0]
        segments = {i: {"name": str(v), "label": v, "layer": 0} for i, v in enumerate(labels)}
    for i, seg in segments.items():
        # Files before Slicer 4.11 have no layer field: one layer per segment.
        if seg["layer"] is None:
            seg["layer"] = i if data.shape[0] == len(segments) and data.shape[0] > 1 else 0
        seg["layer"] = int(seg["layer"])
        if not 0 <= seg["layer"] < data.shape[0]:
            raise InputError(f"{path}: segment {seg['name']!r} refers to a missing layer.")

    sel = _as_selection(segment)
    names = {i: s["name"] for i, s in segments.items()}
    if sel is not None and any(isinstance(s, int) for s in sel):
        # Integers are label values; map them to segment indices.
        resolved = []
        for s in sel:
            if isinstance(s, int):
                hits = [i for i, g in segments.items() if g["label"] == s]
                if len(hits) > 1:
                    raise InputError(
                        f"label value {s} names several segments of {path} (on different "
                        f"layers): {', '.join(names[h] for h in hits)}; choose one by name."
                    )
                if not hits:
                    listing = ", ".join(f"{g['name']!r} (label {g['label']})"
                                        for g in segments.values())
                    raise InputError(f"{path} has no segment with label value {s}; available "
                                     f"segments: {listing}.")
                # The segment itself, not its name, which another segment may share (a
                # name-shared pair had been unselectable: 'FILE:3' refused as the name).
                resolved.append(hits[0])
            else:
                resolved.append(s)
        sel = tuple(resolved)
    # Listed by label value, the number a user types (not the segment's position).
    chosen = _choose({i: names[i] for i in segments}, sel, path, "label value",
                     listing=", ".join(f"{g['name']!r} (label {g['label']})"
                                       for g in segments.values()),
                     numbers={i: g["label"] for i, g in segments.items()})
    out = np.zeros(data.shape[1:], dtype=bool)
    for i in chosen:
        out |= data[segments[i]["layer"]] == segments[i]["label"]
    spacing, direction, origin = _nrrd_geometry(header, path)
    image = sitk.GetImageFromArray(np.ascontiguousarray(out.transpose(2, 1, 0)).astype(np.uint8))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(origin.tolist())
    image.SetDirection(direction.ravel().tolist())
    return image


def _color(name, i):
    rgb = _COLORS.get(name.lower(), _PALETTE[i % len(_PALETTE)])
    return " ".join(f"{c / 255:.6g}" for c in rgb)


def _extent(mask_xyz):
    nz = np.nonzero(mask_xyz)
    if nz[0].size == 0:
        return "0 -1 0 -1 0 -1"
    return " ".join(f"{int(a.min())} {int(a.max())}" for a in nz)


def write_seg_nrrd(masks, path):
    """Write named binary masks as a 3D Slicer ``.seg.nrrd``, atomically.

    Segments that do not overlap share one label layer (a 3-D file);
    overlapping ones (e.g. a tumour inside the liver) go to further layers
    (a 4-D file), as Slicer itself writes them.

    Parameters
    ----------
    masks : dict of str -> SimpleITK.Image or Mask
        Segment name -> binary mask; all on one grid.
    path : str or os.PathLike
    """
    from collections.abc import Mapping

    import nrrd

    if not isinstance(masks, Mapping):
        # One image had been iterated voxel by voxel (its "names" all '0'), a list had
        # failed with an AttributeError: the names are what a .seg.nrrd is for.
        raise InputError(f"write_seg_nrrd needs a dict of segment name -> mask "
                         f"({{'liver': mask}}), not {type(masks).__name__}; write_mask(mask, "
                         f"'name.seg.nrrd') writes one mask.")
    if not masks:
        raise InputError("write_seg_nrrd needs at least one mask.")
    names = [str(n).strip() for n in masks]
    if any(not n for n in names) or len({n.lower() for n in names}) != len(names):
        raise InputError(f"segment names must be non-empty and distinct, got {names}.")
    images = [as_image(m, f"mask {n!r}") for n, m in zip(names, masks.values())]
    ref = images[0]
    if ref.GetDimension() != 3:
        raise InputError("write_seg_nrrd needs 3-D masks.")
    for name, image in zip(names, images):
        if not same_grid(image, ref):
            raise GeometryError(f"the mask {name!r} is not on the same grid as {names[0]!r}; "
                                f"resample the masks onto one grid first.")
    layers, layer_of, label_of = [], [], []
    for image in images:
        m = sitk.GetArrayViewFromImage(image).transpose(2, 1, 0) != 0  # x, y, z
        for k, layer in enumerate(layers):
            if not np.any(layer[m]):
                break
        else:
            layers.append(np.zeros(m.shape, dtype=np.uint8))
            k = len(layers) - 1
        label = int(layers[k].max()) + 1
        layers[k][m] = label
        layer_of.append(k)
        label_of.append(label)
    spacing = np.asarray(ref.GetSpacing())
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    space_dirs = (direction * spacing[None, :]).T  # rows are the axis vectors
    header = {
        "type": "unsigned char",
        "space": "left-posterior-superior",
        "space origin": np.asarray(ref.GetOrigin(), dtype=float),
        "encoding": "gzip",
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    if len(layers) == 1:
        data = layers[0]
        header["kinds"] = ["domain"] * 3
        header["space directions"] = space_dirs
    else:
        data = np.stack(layers, axis=0)
        header["kinds"] = ["list", "domain", "domain", "domain"]
        header["space directions"] = np.vstack([np.full((1, 3), np.nan), space_dirs])
    for i, name in enumerate(names):
        m = sitk.GetArrayViewFromImage(images[i]).transpose(2, 1, 0) != 0
        header.update({
            f"Segment{i}_ID": f"Segment_{i + 1}",
            f"Segment{i}_Name": name,
            f"Segment{i}_NameAutoGenerated": "0",
            f"Segment{i}_Color": _color(name, i),
            f"Segment{i}_ColorAutoGenerated": "0",
            f"Segment{i}_LabelValue": str(label_of[i]),
            f"Segment{i}_Layer": str(layer_of[i]),
            f"Segment{i}_Extent": _extent(m),
            f"Segment{i}_Tags": "|",
        })
    with atomic_file(path, ".seg.nrrd") as tmp:
        nrrd.write(tmp, np.ascontiguousarray(data), header)
