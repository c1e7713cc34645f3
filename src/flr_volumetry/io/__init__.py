"""Every file format in and out; nothing else in the package reads files.

Scans come back as :class:`Scan` (a ``SimpleITK.Image`` plus header facts),
masks as :class:`Mask` (uint8 on the scan's grid).
"""

from ._dicom import (holds_dicom, is_dicom_file, read_dicom_series, scan_patient_id,
                     series_patient_id, series_study_date)
from ._dicom_write import write_dicom_series
from ._geometry import grid_description, resample_mask_to, same_grid, same_voxels
from ._images import (IMAGE_SUFFIXES, Scan, as_image, is_image_file, load_image,
                      read_image_file, reference_image)
from ._masks import (
    TOTALSEGMENTATOR_LABELS,
    Mask,
    load_label_map,
    load_mask,
    parse_mask_spec,
)
from ._segfiles import read_dicom_seg, read_seg_nrrd, write_dicom_seg, write_seg_nrrd
from ._writers import atomic_file, check_writable, write_json_atomic, write_mask

__all__ = [
    "IMAGE_SUFFIXES",
    "TOTALSEGMENTATOR_LABELS",
    "Mask",
    "Scan",
    "as_image",
    "grid_description",
    "holds_dicom",
    "is_dicom_file",
    "is_image_file",
    "load_image",
    "load_label_map",
    "load_mask",
    "parse_mask_spec",
    "read_dicom_seg",
    "read_dicom_series",
    "read_image_file",
    "read_seg_nrrd",
    "reference_image",
    "resample_mask_to",
    "same_grid",
    "same_voxels",
    "scan_patient_id",
    "series_patient_id",
    "series_study_date",
    "write_dicom_seg",
    "write_dicom_series",
    "atomic_file",
    "check_writable",
    "write_json_atomic",
    "write_mask",
    "write_seg_nrrd",
]
