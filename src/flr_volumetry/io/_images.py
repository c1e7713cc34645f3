"""Reading scans: NIfTI, NRRD, MetaImage and DICOM series folders."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import threading
from dataclasses import dataclass, field

import SimpleITK as sitk

from ..errors import InputError, check_exists, itk_reason
from ._filechecks import (check_before_reading, check_image_file, check_itk_path, is_nifti2,
                          nearest_rotation)

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
    frame_of_reference_uid : str or None
        DICOM FrameOfReferenceUID: masks drawn in another frame (another
        patient or scanner session) cannot be placed on this scan.
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
    frame_of_reference_uid: str | None = None

    @property
    def ct_or_mr(self):
        """'mr' when the header says MR, else 'ct' (the default for unknown scans)."""
        return "mr" if (self.modality or "").upper() in ("MR", "MRI") else "ct"


def as_image(obj, what="image"):
    """The SimpleITK image of ``obj``: the image itself, or a :class:`Scan`'s or a
    :class:`~flr_volumetry.io.Mask`'s ``.image``; anything else is refused in a sentence.

    The functions that take images take all three, so that what ``load_image`` and
    ``load_mask`` return can be passed on as it is.

    Examples
    --------
    >>> img = sitk.Image([2, 2, 2], sitk.sitkInt16)
    >>> as_image(Scan(image=img, source="ct.nii.gz")) is img
    True
    >>> as_image("ct.nii.gz", "liver mask")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the liver mask must be a SimpleITK image, a Scan or a Mask (read files with load_image and load_mask), not str.
    """
    if isinstance(obj, sitk.Image):
        return obj
    if isinstance(obj, Scan) and "mask" in what:
        # Its image had been counted as a mask: a uint8 scan measured as a 215 mL liver.
        raise InputError(f"the {what} is a scan (what load_image returns), not a mask; pass "
                         f"the mask (load_mask) here.")
    image = getattr(obj, "image", None)
    if isinstance(image, sitk.Image):
        return image
    raise InputError(f"the {what} must be a SimpleITK image, a Scan or a Mask (read files "
                     f"with load_image and load_mask), not {type(obj).__name__}.")


def reference_image(reference, what="reference"):
    """The SimpleITK image of ``reference`` (see :func:`as_image`), or None.

    Examples
    --------
    >>> img = sitk.Image([2, 2, 2], sitk.sitkInt16)
    >>> reference_image(Scan(image=img, source="ct.nii.gz")) is img
    True
    >>> reference_image(None) is None
    True
    """
    return None if reference is None else as_image(reference, what)


def is_image_file(path):
    """Whether ``path`` names a file format this package reads as an image.

    Examples
    --------
    >>> is_image_file("ct.nii.gz"), is_image_file("notes.txt")
    (True, False)
    """
    return str(path).lower().endswith(IMAGE_SUFFIXES)


# Standard error (file descriptor 2) and ITK's warning switch belong to the whole process:
# reads in several threads share one window in which they are held, opened by the first
# read and closed by the last (each thread saving and restoring them on its own had left
# the process's stderr pointing at a deleted temporary file, and ITK's warnings off).
_HELD_LOCK = threading.Lock()
_held = {"depth": 0, "shown": None, "file": None, "saved": None, "succeeded": False}


@contextlib.contextmanager
def itk_warnings_hidden():
    """ITK's own warnings off while reading: they reach stderr as raw C++ blocks, past
    the one-line messages of the checks that say what matters.

    The C libraries under ITK (GDCM, OpenJPEG) print on the process's stderr
    directly, past Python and ITK's switch: a dozen 'Expected a SOC marker'
    lines before the one-sentence error of an undecodable JPEG 2000 series.
    What they print is held, written out when the read succeeds and dropped
    when it fails (the error says what went wrong). Safe in threads: reads
    running at once share one holding window, whose text is written out
    when any of them succeeded.
    """
    _hold()
    ok = False
    try:
        yield
        ok = True
    finally:
        _release(ok)


def _hold():
    import sys
    import tempfile

    with _HELD_LOCK:
        if _held["depth"] == 0:
            _held["shown"] = sitk.ProcessObject.GetGlobalWarningDisplay()
            sitk.ProcessObject.SetGlobalWarningDisplay(False)
            _held["succeeded"] = False
            _held["file"] = _held["saved"] = None
            try:
                sys.stderr.flush()
                held = tempfile.TemporaryFile()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):
                pass  # where fd 2 cannot be redirected, nothing is held
            else:
                os.dup2(held.fileno(), 2)
                _held["file"], _held["saved"] = held, saved
        _held["depth"] += 1


def _release(ok):
    import sys

    with _HELD_LOCK:
        _held["depth"] -= 1
        _held["succeeded"] = _held["succeeded"] or ok
        if _held["depth"] > 0:
            return
        held, saved = _held["file"], _held["saved"]
        _held["file"] = _held["saved"] = None
        try:
            if held is not None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                if _held["succeeded"]:
                    held.seek(0)
                    text = held.read()
                    if text:
                        os.write(2, text)
        finally:
            if held is not None:
                os.close(saved)
                held.close()
            sitk.ProcessObject.SetGlobalWarningDisplay(_held["shown"])


def read_image_file(path):
    """Read a single-file image with SimpleITK, refusing with one clear sentence.

    Besides what ITK refuses, files it would misread without a word are
    refused too (see :mod:`._filechecks`): data cut short (ITK reads the
    missing voxels as zeros), a voxel size of 0 or NaN (read as 1 mm), a
    NIfTI whose qform and sform give different voxel sizes, NaN voxels.
    """
    path = os.fspath(path)
    check_exists(path)
    check_itk_path(path)
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        # ITK says only that no reader knows the file ("Unable to determine ImageIO reader").
        raise InputError(f"{path} is empty (0 bytes): an interrupted copy or a failed "
                         f"export?; copy or export it again.")
    check_before_reading(path)
    try:
        with itk_warnings_hidden():
            image = sitk.ReadImage(path)
    except RuntimeError as exc:
        if is_nifti2(path):
            raise InputError(f"{path} is a NIfTI-2 file, which the image library cannot read; "
                             f"save it as NIfTI-1, as most tools write (nibabel: "
                             f"Nifti1Image(data, affine)).") from exc
        raise InputError(f"cannot read {path} as an image ({itk_reason(exc)}).") from exc
    check_image_file(path, image)
    image.SetDirection(nearest_rotation(image.GetDirection()))
    return image


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
    if isinstance(path, Scan):
        return path  # already loaded: scripts pass on what they have
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_image reads a file or a DICOM folder, given by its path, not a "
                         f"{type(path).__name__}.")
    path = os.fspath(path)
    if os.path.isdir(path):
        from ._dicom import read_dicom_series

        return read_dicom_series(path, series_uid=series_uid)
    check_exists(path)
    if series_uid is not None:
        # It had been passed over in silence: the file read was taken for the series asked.
        raise InputError(f"a SeriesInstanceUID ({series_uid}) selects a series of a DICOM "
                         f"folder; {path} is a single file, which holds one scan.")
    from ._dicom import is_dicom_file

    if path.lower().endswith(".dcm") or (not is_image_file(path) and is_dicom_file(path)):
        from ._dicom import multiframe_count

        frames = multiframe_count(path)
        if frames > 1:
            # Sent to "pass the folder", the user had it refused there again.
            raise InputError(f"{path} is a multi-frame (enhanced) DICOM image of {frames} "
                             f"frames, which is not supported; convert it to NIfTI first "
                             f"(e.g. with dcm2niix).")
        # DICOM exports often name slices without a suffix (IM0001, A0000).
        raise InputError(
            f"{path} is a single DICOM file; pass the folder that holds the whole series."
        )
    image = read_image_file(path)
    if image.GetDimension() != 3:
        raise InputError(
            f"{path} is a {image.GetDimension()}-D image; volumetry needs a 3-D scan."
        )
    return Scan(image=scalar_volume(image, path), source=path)


_COMPLEX = (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64)


def scalar_volume(image, source):
    """``image`` with one real value per voxel, or an InputError naming ``source``.

    A vector of one component (a NRRD with a 'list' axis of size 1) is that
    component; several values per voxel and complex values are refused.

    Examples
    --------
    >>> v = sitk.Image([4, 4, 3], sitk.sitkVectorInt16, 1)
    >>> sitk.GetPixelIDValueAsString(scalar_volume(v, "ct.nrrd").GetPixelID())
    '16-bit signed integer'
    """
    if image.GetPixelID() in _COMPLEX:
        raise InputError(f"{source} holds complex values (raw MR data?); a scan is one real "
                         f"value per voxel: export its magnitude image.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        # ITK reads some 4-D NIfTI files (time or channels) as several values per voxel.
        raise InputError(f"{source} holds several values per voxel (a 4-D series, or a colour "
                         f"or vector image); a scan must be one 3-D volume.")
    if image.GetPixelIDTypeAsString().startswith("vector"):
        return sitk.VectorIndexSelectionCast(image, 0)
    return image
