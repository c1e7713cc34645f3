"""Writing a 3-D image as a DICOM series (one file per slice), atomically.

Used to make DICOM phantoms whose geometry and values are exactly known, and
to hand scans to tools that only take DICOM. Files carry a pseudonymous
PatientID and an empty PatientName.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import shutil
import tempfile

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid
from pydicom.valuerep import format_number_as_ds

from .. import clinical
from ..errors import InputError
from ..hypertrophy import parse_date
from ._images import as_image

__all__ = ["write_dicom_series"]

_SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}
_STORED_RANGE = {"CT": (-32768, 32767), "MR": (0, 65535)}


def _ds(value):
    # DICOM decimal strings hold at most 16 characters.
    return format_number_as_ds(float(value))


def _dicom_date(study_date):
    date = parse_date(study_date, "study date")
    return "" if date is None else date.strftime("%Y%m%d")


def _stored_values(image, modality, rescale_intercept):
    arr = sitk.GetArrayFromImage(image)
    if arr.dtype.kind == "f":
        arr = np.rint(arr)
    values = arr.astype(np.float64)
    lo, hi = _STORED_RANGE[modality]
    stored = values - rescale_intercept
    if values.size and (stored.min() < lo or stored.max() > hi):
        raise InputError(
            f"the image values {values.min():g} to {values.max():g} do not fit a {modality} "
            f"DICOM series ({'int16' if modality == 'CT' else 'uint16'} after subtracting the "
            f"rescale intercept {rescale_intercept:g}); choose another rescale_intercept."
        )
    return stored.astype(np.int16 if modality == "CT" else np.uint16)


def write_dicom_series(image, folder, *, modality="CT", study_date=None, series_description="",
                       patient_id="ANON0001", study_instance_uid=None, series_instance_uid=None,
                       patient_height_cm=None, patient_weight_kg=None, rescale_intercept=None):
    """Write a 3-D scalar image as a DICOM series, one file per slice.

    Parameters
    ----------
    image : SimpleITK.Image or Scan
        3-D scalar image in physical LPS geometry (CT in Hounsfield units).
        Its direction may be oblique or left-handed (a negative slice step):
        each slice's ImagePositionPatient and ImageOrientationPatient are
        computed from the direction matrix, so readers that sort along the
        slice normal see the same physical volume.
    folder : str or os.PathLike
        Where the files go. A new folder appears complete or not at all (the
        files are written into a temporary sibling that is then renamed). In
        an existing folder each file appears complete; names carry a random
        token, so a second series written there never overwrites the
        first (this is how a multi-series folder, or a series with a scout
        mixed in, is made).
    modality : {'CT', 'MR'}
        CT is stored as int16 with RescaleIntercept/RescaleSlope so that
        Hounsfield units round-trip; MR as uint16. Non-integer values are
        rounded to the nearest integer; values that do not fit are refused.
    study_date : datetime.date or str, optional
        StudyDate and SeriesDate ('YYYY-MM-DD').
    series_description : str
    patient_id : str
        A pseudonymous ID; no patient name is written (PatientName is empty).
    study_instance_uid, series_instance_uid : str, optional
        Generated when not given.
    patient_height_cm, patient_weight_kg : float, optional
        Written as PatientSize (in metres, as DICOM requires) and PatientWeight;
        a size no adult has (a height in metres, a weight in grams) is refused
        (:class:`~flr_volumetry.ClinicalInputError`).
    rescale_intercept : float, optional
        Stored value = value - intercept (slope 1). Default -1024 for CT and
        0 for MR.

    Returns
    -------
    list of str
        The written files, in slice order (index 0 first).

    Examples
    --------
    >>> import tempfile, os, numpy as np, SimpleITK as sitk
    >>> img = sitk.GetImageFromArray(np.zeros((2, 3, 4), dtype=np.int16))
    >>> files = write_dicom_series(img, os.path.join(tempfile.mkdtemp(), "s"))
    >>> len(files)
    2
    """
    modality = str(modality).upper()
    if modality not in _SOP_CLASS:
        raise InputError(f"cannot write a DICOM series of modality {modality!r}; use 'CT' or 'MR'.")
    # A numpy array had failed with an AttributeError; a Scan is written as its image.
    image = as_image(image, "image to write as DICOM")
    # Checked as a typed height and weight are: a height of 1.78 (metres given for cm) had
    # been written as PatientSize 0.0178 m, which the reader then ignores with a warning.
    if patient_height_cm is not None:
        clinical.check_height(patient_height_cm)
    if patient_weight_kg is not None:
        clinical.check_weight(patient_weight_kg)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("write_dicom_series needs a 3-D scalar image.")
    if rescale_intercept is None:
        rescale_intercept = -1024.0 if modality == "CT" else 0.0
    rescale_intercept = float(rescale_intercept)
    stored = _stored_values(image, modality, rescale_intercept)
    date = _dicom_date(study_date)

    study_instance_uid = study_instance_uid or generate_uid()
    series_instance_uid = series_instance_uid or generate_uid()
    # Derived from the series UID: the same series written twice has the same instances
    # (two copies of one phantom side by side are one series, not two clashing ones).
    frame_uid = generate_uid(entropy_srcs=[series_instance_uid, "frame of reference"])
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    row_dir, col_dir = direction[:, 0], direction[:, 1]
    spacing = image.GetSpacing()
    n_slices = image.GetSize()[2]
    # A token per call: a second write into the same folder (another series,
    # or a scout added to this one) never overwrites these files.
    token = secrets.token_hex(4)
    now = _dt.datetime.now()

    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-dicom-")
    names = []
    try:
        for k in range(n_slices):
            position = image.TransformIndexToPhysicalPoint((0, 0, k))
            ds = _slice_dataset(
                modality=modality, stored=stored[k], position=position,
                orientation=np.concatenate([row_dir, col_dir]), spacing=spacing,
                instance_number=k + 1, study_uid=study_instance_uid,
                series_uid=series_instance_uid, frame_uid=frame_uid, date=date,
                description=series_description, patient_id=patient_id,
                height_cm=patient_height_cm, weight_kg=patient_weight_kg,
                intercept=rescale_intercept, now=now,
            )
            name = f"{modality.lower()}_{token}_{k + 1:05d}.dcm"
            ds.save_as(os.path.join(tmp, name), enforce_file_format=True)
            names.append(name)
        if not os.path.exists(folder):
            os.rename(tmp, folder)
        else:
            if not os.path.isdir(folder):
                raise InputError(f"{folder} exists and is not a folder.")
            clash = [n for n in names if os.path.exists(os.path.join(folder, n))]
            if clash:
                raise InputError(f"{folder} already holds {clash[0]}; write to a new folder.")
            for n in names:
                os.replace(os.path.join(tmp, n), os.path.join(folder, n))
            os.rmdir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [os.path.join(folder, n) for n in names]


def _slice_dataset(*, modality, stored, position, orientation, spacing, instance_number,
                   study_uid, series_uid, frame_uid, date, description, patient_id, height_cm,
                   weight_kg, intercept, now):
    sop_uid = generate_uid(entropy_srcs=[series_uid, "instance", str(instance_number)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = _SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    # Pseudonymous: an ID only, the name is left empty (type 2 attribute).
    ds.PatientName = ""
    ds.PatientID = str(patient_id)
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    if height_cm is not None:
        ds.PatientSize = _ds(float(height_cm) / 100.0)  # DICOM stores metres
    if weight_kg is not None:
        ds.PatientWeight = _ds(weight_kg)
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.Manufacturer = "flr-volumetry"
    ds.SeriesDescription = str(description or "")
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in orientation]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
    ds.SliceThickness = _ds(spacing[2])
    ds.SpacingBetweenSlices = _ds(spacing[2])
    normal = np.cross(orientation[:3], orientation[3:])
    ds.SliceLocation = _ds(float(np.dot(position, normal)))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if modality == "CT" else 0
    ds.RescaleIntercept = _ds(intercept)
    ds.RescaleSlope = "1"
    if modality == "CT":
        ds.RescaleType = "HU"
        ds.KVP = ""
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return ds
