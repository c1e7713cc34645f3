"""Reading scans: NIfTI, NRRD, MetaImage and DICOM series folders."""

from __future__ import annotations

import datetime as _dt
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Scan:
    """A scan with its geometry and the header facts volumetry needs.

    Attributes
    ----------
    image : SimpleITK.Image
        Pixels with spacing, origin and direction in physical LPS space.
    source : str
        The path it was read from.
    modality : str or None
        DICOM Modality ('CT', 'MR') when known.
    study_date : datetime.date or None
        DICOM StudyDate (else SeriesDate / AcquisitionDate) when known.
    patient_height_cm, patient_weight_kg : float or None
        From DICOM PatientSize (stored in metres) and PatientWeight.
    series_instance_uid, series_description : str or None
        Which DICOM series was read.
    warnings : tuple of str
        What the reader noticed and the user should know (skipped slices,
        other series in the folder).

    The patient's name is never read into this object.
    """

    image: sitk.Image
    source: str
    modality: str | None = None
    study_date: _dt.date | None = None
    patient_height_cm: float | None = None
    patient_weight_kg: float | None = None
    series_instance_uid: str | None = None
    series_description: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ct_or_mr(self):
        """'mr' when the header says MR, else 'ct' (the default for unknown scans)."""
        return "mr" if (self.modality or "").upper() in ("MR", "MRI") else "ct"


def reference_image(reference, what="reference"):
    """The SimpleITK image of ``reference``: a :class:`Scan`'s, the image itself, or None.

    Examples
    --------
    >>> img = sitk.Image([2, 2, 2], sitk.sitkInt16)
    >>> reference_image(Scan(image=img, source="ct.nii.gz")) is img
    True
    >>> reference_image("ct.nii.gz")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the reference must be a Scan (from load_image) or a SimpleITK image, not str.
    """
    if reference is None or isinstance(reference, sitk.Image):
        return reference
    if isinstance(reference, Scan):
        return reference.image
    raise InputError(f"the {what} must be a Scan (from load_image) or a SimpleITK image, not "
                     f"{type(reference).__name__}.")


def is_image_file(path):
    """Whether ``path`` names a file format this package reads as an image.

    Examples
    --------
    >>> is_image_file("ct.nii.gz"), is_image_file("notes.txt")
    (True, False)
    """
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def read_image_file(path, *, check_gzip=True):
    """Read a single-file image with SimpleITK, refusing with one clear sentence.

    ``check_gzip``: refuse a .gz file cut short (ITK reads it without
    complaint, the missing voxels as zeros); off only for a caller that
    decompresses the file again anyway and checks it there.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path} does not exist.")
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise InputError(f"cannot read {path} as an image ({first}).") from exc
    if check_gzip:
        _check_gzip(path)
    return image


def _check_gzip(path):
    if path.lower().endswith(".gz") and not _nifti_size_matches(path) \
            and not _gzip_complete(path):
        raise InputError(f"{path} is cut short: its compressed data ends early (an "
                         f"interrupted copy?); copy it again.")


def _nifti_size_matches(path):
    """Whether a .nii.gz's gzip trailer (its last 4 bytes: the uncompressed size modulo
    2**32) equals the size its NIfTI header promises: a file cut short ends on compressed
    data instead (a 1 in 2**32 chance of matching). Reads the header and 4 bytes, where
    decompressing the whole file to check it took longer than ITK's own read; when the
    sizes differ (extensions, padding, several members) the stream is checked fully."""
    if not path.lower().endswith(".nii.gz"):
        return False
    import nibabel

    try:
        header = nibabel.load(path).header
        # vox_offset as stored (nibabel's get_data_offset() can say 0); at least the
        # header and its 4 extension bytes.
        offset = max(int(header["vox_offset"]), int(header.sizeof_hdr) + 4)
        expected = offset + int(
            np.prod(header.get_data_shape(), dtype=np.int64)) * header.get_data_dtype().itemsize
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            isize = int.from_bytes(fh.read(4), "little")
    except Exception:  # noqa: BLE001 - any doubt: the full check decides
        return False
    return isize == expected % (1 << 32)


def _gzip_complete(path, chunk_bytes=1 << 20):
    """Whether the gzip stream of ``path`` runs to its end-of-stream marker.

    Every member is checked (bgzip writes several); bytes after the last
    member that start no new one (padding) are ignored, as gzip does. The
    data are decompressed into a bounded buffer and thrown away: about
    0.15 s for a 15 MB file. A file that is not gzip at all passes (ITK
    read it as it is).
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                return True
            fh.seek(0)
            stream = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
            data = b""
            while True:
                if not data:
                    data = fh.read(chunk_bytes)
                    if not data:
                        return stream.eof
                if stream.eof:
                    if len(data) < 2:  # the next member's magic may straddle two reads
                        data += fh.read(chunk_bytes)
                    if not data.startswith(b"\x1f\x8b"):
                        # Padding after the last member (a lone 0x1f: a member cut short).
                        return data != b"\x1f"
                    stream = zlib.decompressobj(wbits=31)
                stream.decompress(data, 1 << 24)
                data = stream.unused_data if stream.eof else stream.unconsumed_tail
    except zlib.error as exc:
        raise InputError(f"{path} is corrupt: its compressed data cannot be read ({exc}).") \
            from None


def load_image(path, *, series_uid=None):
    """Load a scan from a file or a DICOM series folder.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) or MetaImage (.mha,
        .mhd) file, or a folder of DICOM files.
    series_uid : str, optional
        For DICOM folders holding several series, the SeriesInstanceUID to
        read. By default the axial series with the most slices is read and
        the others are listed in ``Scan.warnings``.

    Returns
    -------
    Scan

    Examples
    --------
    >>> import tempfile, os, SimpleITK as sitk
    >>> d = tempfile.mkdtemp()
    >>> img = sitk.Image([4, 4, 3], sitk.sitkInt16)
    >>> img.SetSpacing((0.75, 0.75, 2.5))
    >>> sitk.WriteImage(img, os.path.join(d, "ct.nii.gz"))
    >>> load_image(os.path.join(d, "ct.nii.gz")).image.GetSpacing()
    (0.75, 0.75, 2.5)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from ._dicom import read_dicom_series

        return read_dicom_series(path, series_uid=series_uid)
    if not os.path.exists(path):
        raise InputError(f"{path} does not exist.")
    from ._dicom import is_dicom_file

    if path.lower().endswith(".dcm") or (not is_image_file(path) and is_dicom_file(path)):
        # DICOM exports often name slices without a suffix (IM0001, A0000).
        raise InputError(
            f"{path} is a single DICOM file; pass the folder that holds the whole series."
        )
    # A float NIfTI is read again by nibabel (for its NaN voxels), which notices a file
    # cut short itself: its gzip stream is not decompressed a third time.
    image = read_image_file(path, check_gzip=False)
    if not _checked_by_nibabel(image, path):
        _check_gzip(path)
    if image.GetDimension() != 3:
        raise InputError(
            f"{path} is a {image.GetDimension()}-D image; volumetry needs a 3-D scan."
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        # ITK reads some 4-D NIfTI files (time or channels) as several values per voxel.
        raise InputError(f"{path} holds several values per voxel (a 4-D series, or a colour "
                         f"or vector image); a scan must be one 3-D volume.")
    _check_finite(image, path)
    return Scan(image=image, source=path)


def _checked_by_nibabel(image, path):
    return (sitk.GetArrayViewFromImage(image).dtype.kind == "f"
            and path.lower().endswith((".nii", ".nii.gz")))


def _stored_float_values(path):
    """The voxels of a NIfTI file as stored (unscaled), or None when they are integers
    (scaled to float by scl_slope: no NaN possible; the file's completeness is then
    checked here, since nibabel does not read it whole). Refuses a file cut short."""
    import nibabel

    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            # nibabel trusts the suffix: a .nii.gz that is not compressed is read as bytes.
            stored = (nibabel.load(path) if gz or not path.lower().endswith(".gz")
                      else nibabel.Nifti1Image.from_bytes(fh.read()))
        if stored.get_data_dtype().kind != "f":
            _check_gzip(path)
            return None
        return stored.dataobj.get_unscaled()
    except (EOFError, OSError, ValueError, zlib.error, nibabel.filebasedimages.ImageFileError):
        raise InputError(f"{path} is cut short or damaged: its data cannot be read whole; "
                         f"copy it again.") from None


def _check_finite(image, path):
    """Refuse a float scan holding NaN or infinite voxels: no volume or threshold is
    defined on them, and they would be read as some intensity by the steps after."""
    arr = sitk.GetArrayViewFromImage(image)
    if _checked_by_nibabel(image, path):
        # ITK's NIfTI reader turns NaN voxels into zeros: look at the stored values.
        arr = _stored_float_values(path)
    if arr is not None and arr.dtype.kind == "f":
        bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise InputError(f"{path} holds {bad} voxels that are not numbers (NaN or "
                             f"infinite); a scan must have a value in every voxel.")
