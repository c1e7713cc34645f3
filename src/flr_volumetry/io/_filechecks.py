"""What ITK reads past without a word: files cut short, unusable header geometry, NaN voxels.

ITK reads a NIfTI file whose data end early with the missing voxels as
zeros, replaces a voxel size of 0 or NaN by 1 mm, picks one of a NIfTI's
two geometries when they disagree, and turns NaN voxels into zeros. Each of
these would give a wrong volume with no error, so every image file is
checked here before its voxels are counted (:func:`check_image_file`).
"""

from __future__ import annotations

import os
import re
import zlib

import numpy as np

from ..errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr")
_GZIP_MAGIC = b"\x1f\x8b"
# Relative difference between a NIfTI's two voxel volumes (qform, sform) that is
# rounding, not a second geometry.
_VOXEL_VOLUME_RTOL = 1e-3
# Voxel sizes of CT and MR scans of a patient, with room on both sides: outside them the
# header's units are wrong, not the scan.
PATIENT_VOXEL_MM = (0.05, 50.0)


def check_image_file(path, image):
    """Refuse ``path`` (read by ITK as ``image``) when its voxels or geometry cannot be
    trusted: cut short, a voxel size that is not a positive number, two NIfTI
    geometries of different voxel sizes, NaN or infinite voxels."""
    check_geometry(image, path)
    header = _nifti_header(path) if path.lower().endswith(NIFTI_SUFFIXES) else None
    if header is not None:
        _check_nifti_geometry(header, path)
    _check_complete(path, header)
    _check_finite(image, path)


def check_itk_path(path):
    """Refuse a path ITK cannot be given: a file name that is not UTF-8 (bytes Python
    carries as surrogates) makes SimpleITK abort the whole process, with no message."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the path {os.fspath(path)!r} is not valid UTF-8 text, which the "
                         f"image library cannot open; rename the file or folder.") from None


def check_before_reading(path):
    """Refuse a MetaImage or NRRD file whose header ITK would misread or whose data it
    could not read whole, before ITK prints its own lines to the terminal."""
    lower = path.lower()
    if lower.endswith((".mha", ".mhd")):
        _check_metaimage(path)
    elif lower.endswith((".nrrd", ".nhdr")):
        _check_nrrd_spacing(path)
        _check_nrrd_complete(path)


def check_geometry(image, path):
    """Refuse an image whose voxel size or position is not a finite positive number."""
    spacing = np.array(image.GetSpacing(), float)
    _check_positive_spacing(spacing, path)
    check_voxel_size(spacing, path)
    check_orientation(image.GetOrigin(), image.GetDirection(), path)


def _check_positive_spacing(spacing, path):
    """Refuse voxel sizes that are not finite positive numbers (with a finite volume)."""
    spacing = np.asarray(spacing, float)
    with np.errstate(over="ignore", invalid="ignore"):
        voxel_volume = np.prod(spacing)
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0) and np.isfinite(voxel_volume)):
        shown = " x ".join(f"{s:g}" for s in spacing)
        raise InputError(f"{path} has a voxel size of {shown} mm, not a finite positive size; "
                         f"its volume cannot be measured.")


def check_orientation(origin, direction, path):
    """Refuse a position or direction matrix (row-major, as SimpleITK's) that is not a
    number, or a direction that is not a rotation."""
    if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(direction))):
        raise InputError(f"{path} has a position or orientation that is not a number in its "
                         f"header; its geometry cannot be trusted.")
    d = np.array(direction, float).reshape(len(origin), -1)
    # Said of the file: a sheared scan had been refused later as "the mask's direction
    # matrix" (the mask segmented on its grid). 1e-3: DICOM orientations with few decimals.
    if not np.allclose(d @ d.T, np.eye(d.shape[0]), atol=1e-3):
        raise InputError(f"{path} has a direction matrix that is not a rotation (its axes are "
                         f"not unit length and perpendicular, a sheared or scaled header), so "
                         f"its voxel volume is undefined; correct the header.")


def nearest_rotation(direction):
    """The rotation nearest to a direction matrix (row-major, as SimpleITK's): its polar
    factor, U V^T of its singular value decomposition (a mirrored axis stays mirrored).

    DICOM headers write direction cosines with a few decimals (0.999, 0.052: not unit
    length), which :func:`check_orientation` accepts; NIfTI and NRRD writers store a
    rotation, this one, so a mask written on the grid as read had come back 3.5e-4 off
    and "on another grid". Read as this rotation, scan and mask agree whatever their
    formats. A matrix already a rotation to 1e-6 is returned as it is.

    Examples
    --------
    >>> r = nearest_rotation((0.999, -0.052, 0, 0.052, 0.999, 0, 0, 0, 1))
    >>> [round(v, 6) for v in r[:2]]
    [0.998648, -0.051982]
    >>> nearest_rotation((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    (-1, 0, 0, 0, 1, 0, 0, 0, 1)
    """
    d = np.asarray(direction, float)
    n = int(round(np.sqrt(d.size)))
    d = d.reshape(n, n)
    if np.allclose(d @ d.T, np.eye(n), atol=1e-6, rtol=0):
        return tuple(direction)
    u, _, vt = np.linalg.svd(d)
    return tuple(float(v) for v in (u @ vt).ravel())


def check_voxel_size(spacing, path):
    """Refuse a voxel size no patient scan has (outside ``PATIENT_VOXEL_MM``): the units of
    the file's header are wrong, and every volume would be off by powers of a thousand."""
    spacing = np.asarray(spacing, float)
    if spacing.max() <= PATIENT_VOXEL_MM[1] and spacing.min() >= PATIENT_VOXEL_MM[0]:
        return
    # ITK scales a NIfTI's spacing by its xyzt_units: a header in metres or microns would
    # give litres a thousand-million times off, silently.
    where = ("a NIfTI's xyzt_units in metres or microns" if path.lower().endswith(
        NIFTI_SUFFIXES) else "spacing written in metres or microns")
    shown = " x ".join(f"{s:g}" for s in spacing)
    raise InputError(f"{path} has a voxel size of {shown} mm, which no patient scan has "
                     f"({PATIENT_VOXEL_MM[0]:g}-{PATIENT_VOXEL_MM[1]:g} mm): the units in its "
                     f"header are probably wrong ({where}); correct the header.")


# --------------------------------------------------------------------- NIfTI
def _nifti_header(path):
    """The NIfTI (or ANALYZE) header of ``path`` as stored, or None when it cannot be
    parsed. Read raw: nibabel's load 'fixes' a pixdim of 0 to 1, as ITK does."""
    import gzip
    import io
    import warnings

    import nibabel

    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == _GZIP_MAGIC
        with (gzip.open if gz else open)(path, "rb") as fh:
            raw = fh.read(540)
        size = int.from_bytes(raw[:4], "little")
        if size not in (348, 540):
            size = int.from_bytes(raw[:4], "big")
        magic = raw[344:348] if size == 348 else raw[4:8]
        if size == 540:
            cls = nibabel.Nifti2Header
        elif magic.startswith(b"n+1"):
            cls = nibabel.Nifti1Header
        elif magic.startswith(b"ni1"):
            cls = nibabel.nifti1.Nifti1PairHeader
        else:
            cls = nibabel.AnalyzeHeader
        with warnings.catch_warnings():
            # nibabel's own warnings (overflow on a NaN pixdim) would reach stderr raw.
            warnings.simplefilter("ignore")
            return cls.from_fileobj(io.BytesIO(raw), check=False)
    except Exception:  # noqa: BLE001 - ITK read it: its own checks stand
        return None


def is_nifti2(path):
    """Whether ``path`` holds a NIfTI-2 header (540 bytes), compressed or not."""
    import nibabel

    return isinstance(_nifti_header(path), nibabel.Nifti2Header)


def _check_nifti_geometry(header, path):
    """A voxel size of 0, NaN or infinity (which ITK reads as 1 mm), or a qform and an
    sform whose voxel volumes differ (ITK reads one, FSL and nibabel the other)."""
    n = int(min(max(int(header["dim"][0]), 1), 3))
    pixdim = np.abs(np.asarray(header["pixdim"][1:1 + n], float))
    if not (np.all(np.isfinite(pixdim)) and np.all(pixdim > 0)):
        shown = " x ".join(f"{p:g}" for p in pixdim)
        raise InputError(f"{path} gives a voxel size of {shown} mm in its header (pixdim), "
                         f"not a positive number; its volume cannot be measured.")
    # Whenever there is an sform: ITK may read pixdim (the qform's sizes) where FSL and
    # nibabel read the sform, with or without a qform.
    if n < 3 or "sform_code" not in header or int(header["sform_code"]) <= 0:
        return
    sform = np.asarray(header.get_sform(), float)[:3, :3]
    sform_sizes = np.linalg.norm(sform, axis=0)
    volume_q, volume_s = float(np.prod(pixdim)), abs(float(np.linalg.det(sform)))
    if not np.isfinite(volume_s) or abs(volume_q - volume_s) > _VOXEL_VOLUME_RTOL * volume_q:
        q = " x ".join(f"{p:g}" for p in pixdim)
        s = " x ".join(f"{p:g}" for p in sform_sizes)
        raise InputError(
            f"{path} holds two geometries with different voxel sizes (qform {q} mm, sform "
            f"{s} mm): programs disagree on which to read, so its volume is ambiguous; "
            f"save it again with one geometry."
        )


def _nifti_data_end(header, path):
    """Bytes the NIfTI data file must hold: its voxel offset plus the voxels."""
    voxels = int(np.prod(header.get_data_shape(), dtype=np.int64))
    data_bytes = voxels * header.get_data_dtype().itemsize
    offset = int(header["vox_offset"])
    if not path.lower().endswith(".hdr"):
        # vox_offset as stored (nibabel's get_data_offset() can say 0); at least the
        # header and its 4 extension bytes.
        offset = max(offset, int(header.sizeof_hdr) + 4)
    return offset + data_bytes


# --------------------------------------------------------------------- cut short
def _check_complete(path, header=None):
    """Refuse a file whose data end before its header says (ITK fills the rest with
    zeros): a gzip stream without its end, or fewer bytes than a NIfTI ``header``'s
    voxels."""
    lower = path.lower()
    expected = _nifti_data_end(header, path) if header is not None else None
    data_path = path
    if lower.endswith(".gz"):
        if expected is not None and _gzip_trailer_size(path) == expected % (1 << 32):
            return  # the whole stream's size, as the trailer records it
        size = gunzipped_size(path)
        if size is None:
            raise InputError(f"{path} is cut short: its compressed data ends early (an "
                             f"interrupted copy?); copy it again.")
    elif expected is None:
        return
    else:
        if lower.endswith(".hdr"):
            data_path = path[:-4] + (".img" if path.endswith(".hdr") else ".IMG")
            if not os.path.exists(data_path):
                return  # ITK read the pair: its data file has another name
        size = os.path.getsize(data_path)
    if expected is not None and size < expected:
        raise InputError(f"{data_path} is cut short: it holds {size} bytes where its header "
                         f"needs {expected} (an interrupted copy?); copy it again.")


def _gzip_trailer_size(path):
    """The uncompressed size (modulo 2**32) a gzip file's last 4 bytes record: a file
    cut short ends on compressed data instead (a 1 in 2**32 chance of matching). Reads
    4 bytes, where decompressing the whole file took longer than ITK's own read."""
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != _GZIP_MAGIC:
                return None
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError:
        return None


def gunzipped_size(path, chunk_bytes=1 << 20):
    """Bytes the gzip stream of ``path`` decompresses to; None when it ends before its
    end-of-stream marker.

    Every member is counted (bgzip writes several); bytes after the last
    member that start no new one (padding) are ignored, as gzip does. The
    data are decompressed into a bounded buffer and thrown away: about
    0.15 s for a 15 MB file. A file that is not gzip at all (ITK read it as
    it is) gives its own size.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != _GZIP_MAGIC:
                return os.path.getsize(path)
            fh.seek(0)
            stream = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
            data, total = b"", 0
            while True:
                if not data:
                    data = fh.read(chunk_bytes)
                    if not data:
                        return total if stream.eof else None
                if stream.eof:
                    if len(data) < 2:  # the next member's magic may straddle two reads
                        data += fh.read(chunk_bytes)
                    if not data.startswith(_GZIP_MAGIC):
                        # Padding after the last member (a lone 0x1f: a member cut short).
                        return None if data == b"\x1f" else total
                    stream = zlib.decompressobj(wbits=31)
                total += len(stream.decompress(data, 1 << 24))
                data = stream.unused_data if stream.eof else stream.unconsumed_tail
    except zlib.error as exc:
        raise InputError(f"{path} is corrupt: its compressed data cannot be read ({exc}).") \
            from None


# --------------------------------------------------------------------- MetaImage, NRRD
_META_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
               "MET_UINT": 4, "MET_LONG": 8, "MET_ULONG": 8, "MET_LONG_LONG": 8,
               "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _text_header(path, max_bytes=1 << 16):
    """The first bytes of a MetaImage or NRRD file, which hold its text header."""
    with open(path, "rb") as fh:
        return fh.read(max_bytes)


def _check_metaimage(path):
    """Refuse a MetaImage whose raw data are missing or shorter than its header says.

    Only uncompressed data in one file (LOCAL, or one named file) are
    sized; lists and patterns of slice files, and compressed data, are left
    to ITK.
    """
    head = _text_header(path)
    fields, data_start = {}, None
    pos = 0
    for line in head.split(b"\n"):
        pos += len(line) + 1
        key, sep, value = line.decode("latin-1").partition("=")
        if not sep:
            continue
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            data_start = pos
            break
    try:
        spacing = [float(v) for v in fields.get("ElementSpacing", "1 1 1").split()]
    except ValueError:
        spacing = []
    if spacing:
        # ITK refuses zero in its own words ("Zero-valued spacing is not supported ...").
        _check_positive_spacing(spacing, path)
    if data_start is None:
        return
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        item = _META_TYPES[fields["ElementType"]]
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except (KeyError, ValueError):
        return
    if (fields.get("CompressedData", "False").lower() == "true"
            or fields.get("BinaryData", "True").lower() == "false"):
        return  # compressed or text data: their size says nothing of the voxel count
    name = fields["ElementDataFile"]
    expected = int(np.prod(dims, dtype=np.int64)) * item * channels
    if name.upper() == "LOCAL":
        data_path, available = path, os.path.getsize(path) - data_start
    elif name.upper() == "LIST" or "%" in name or " " in name:
        return
    else:
        data_path = os.path.join(os.path.dirname(path), name)
        if not os.path.exists(data_path):
            raise InputError(f"{path} names its data file {name}, which does not exist beside "
                             f"it; copy the two files together.")
        # HeaderSize bytes precede the voxels in the data file (-1: they end the file).
        skip = fields.get("HeaderSize", "0")
        available = os.path.getsize(data_path) - (int(skip) if skip.isdigit() else 0)
    _check_data_size(data_path, available, expected)


def _check_data_size(data_path, available, expected):
    """Refuse voxel data of ``available`` bytes where the header needs ``expected``."""
    if available < expected:
        raise InputError(f"{data_path} is cut short: it holds {available} bytes of voxel data "
                         f"where its header needs {expected} (an interrupted copy?); copy it "
                         f"again.")


# A field ("spacings: ..."), not a key/value pair ("spacings:= ...").
_NRRD_GEOMETRY = re.compile(rb"^(spacings|space directions)\s*:(?!=)(.*)$", re.IGNORECASE | re.M)


def _check_nrrd_spacing(path):
    """Refuse an NRRD whose spacings hold NaN or infinity (ITK reads them as 1 mm)."""
    head = _text_header(path).split(b"\n\n", 1)[0]
    for field, value in _NRRD_GEOMETRY.findall(head):
        numbers = re.findall(rb"[-+]?(?:nan|inf(?:inity)?|[0-9.]+(?:e[-+]?[0-9]+)?)", value,
                             re.IGNORECASE)
        if any(not np.isfinite(_number(v)) for v in numbers):
            raise InputError(f"{path} gives its voxel {field.decode().lower()} as "
                             f"{value.decode('latin-1').strip()} in its header, not finite "
                             f"numbers; its volume cannot be measured.")


def _check_nrrd_complete(path):
    """Refuse an NRRD whose raw voxel data, in the file itself, are shorter than its
    header says (ITK's words: "Read: Error reading FILE:"). Compressed, text and detached
    data are left to ITK."""
    import nrrd

    try:
        with open(path, "rb") as fh:
            header = nrrd.read_header(fh)
            data_start = fh.tell()
        item = np.dtype(nrrd.reader._determine_datatype(header)).itemsize
        expected = int(np.prod([int(v) for v in header["sizes"]], dtype=np.int64)) * item
    except Exception:  # noqa: BLE001 - a header pynrrd cannot read: ITK's reader says why
        return
    if (str(header.get("encoding", "raw")).lower() != "raw" or "data file" in header
            or "datafile" in header):
        return
    skip = int(header.get("byte skip", 0) or 0)
    _check_data_size(path, os.path.getsize(path) - data_start - max(skip, 0), expected)


def _number(token):
    try:
        return float(token)
    except ValueError:
        return 0.0  # not a number at all ('.'): ITK's own parser decides about it


# --------------------------------------------------------------------- NaN voxels
def _check_finite(image, path):
    """Refuse an image holding NaN or infinite voxels: no volume or threshold is defined
    on them, and they would be read as some intensity or label by the steps after."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(image)
    if arr.dtype.kind != "f":
        return
    if path.lower().endswith(NIFTI_SUFFIXES):
        # ITK's NIfTI reader turns NaN voxels into zeros: look at the stored values.
        arr = _stored_float_values(path)
        if arr is None:
            return
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise InputError(f"{path} holds {bad} voxel{'s' if bad != 1 else ''} that "
                         f"{'are' if bad != 1 else 'is'} not a number (NaN or infinite); an "
                         f"image must have a value in every voxel.")


def _stored_float_values(path):
    """The voxels of a NIfTI file as stored (unscaled), or None when they are integers
    (scaled to float by scl_slope: no NaN possible)."""
    import nibabel

    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == _GZIP_MAGIC
            fh.seek(0)
            # nibabel trusts the suffix: a .nii.gz that is not compressed is read as bytes.
            stored = (nibabel.load(path) if gz or not path.lower().endswith(".gz")
                      else nibabel.Nifti1Image.from_bytes(fh.read()))
        if stored.get_data_dtype().kind != "f":
            return None
        return stored.dataobj.get_unscaled()
    except (EOFError, OSError, ValueError, zlib.error, nibabel.filebasedimages.ImageFileError):
        raise InputError(f"{path} is cut short or damaged: its data cannot be read whole; "
                         f"copy it again.") from None
