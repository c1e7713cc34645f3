"""flr-volumetry: future liver remnant volumetry from CT and MRI.

The public API, declared in one place::

    import flr_volumetry as flr
    scan = flr.load_image("ct.nii.gz")
    liver = flr.load_mask("liver.nii.gz", scan.image)
    m = flr.measure(liver.image, patient=flr.Patient(170, 70))

Examples
--------
>>> import flr_volumetry as flr
>>> round(flr.bsa_m2(170, 70), 4)
1.8181
"""

from .batch import BatchOptions, BatchResult, run_batch
from .clinical import (
    bsa_m2,
    flr_bw_adequate,
    flr_bw_ratio_pct,
    kgr_pct_per_week,
    measured_flr_pct,
    sflr_adequate,
    sflr_pct,
    sflr_threshold_pct,
    telv_ml,
)
from .errors import ClinicalInputError, GeometryError, InputError
from .hypertrophy import Hypertrophy, hypertrophy
from .io import (
    Mask,
    Scan,
    load_image,
    load_label_map,
    load_mask,
    read_dicom_seg,
    read_seg_nrrd,
    write_dicom_seg,
    write_dicom_series,
    write_mask,
    write_seg_nrrd,
)
from .volumetry import (
    Measurement,
    Patient,
    VolumetryOptions,
    label_volumes_ml,
    mask_volume_ml,
    measure,
    voxel_volume_ml,
)
from .segmentation import SegmentationOptions, SegmentationResult, segment_liver
from .remnant import (
    RESECTIONS,
    RemnantPlan,
    flr_from_plan,
    flr_from_segments,
    segments_from_landmarks,
)
from .registration import RegistrationOptions, RegistrationReport, carry_plan
from .study import Study, StudyLayoutError, StudyPatient, StudyTimepoint, discover_study
from .phantoms import sample_study
from .workflow import measure_files

__version__ = "0.1.0"

__all__ = [
    "BatchOptions",
    "BatchResult",
    "ClinicalInputError",
    "GeometryError",
    "Hypertrophy",
    "InputError",
    "Mask",
    "Measurement",
    "Patient",
    "RESECTIONS",
    "RegistrationOptions",
    "RegistrationReport",
    "RemnantPlan",
    "Scan",
    "SegmentationOptions",
    "SegmentationResult",
    "Study",
    "StudyLayoutError",
    "StudyPatient",
    "StudyTimepoint",
    "VolumetryOptions",
    "bsa_m2",
    "carry_plan",
    "discover_study",
    "flr_bw_adequate",
    "flr_bw_ratio_pct",
    "flr_from_plan",
    "flr_from_segments",
    "hypertrophy",
    "kgr_pct_per_week",
    "label_volumes_ml",
    "load_image",
    "load_label_map",
    "load_mask",
    "mask_volume_ml",
    "measure",
    "measure_files",
    "measured_flr_pct",
    "read_dicom_seg",
    "read_seg_nrrd",
    "run_batch",
    "sample_study",
    "segment_liver",
    "segments_from_landmarks",
    "sflr_adequate",
    "sflr_pct",
    "sflr_threshold_pct",
    "telv_ml",
    "voxel_volume_ml",
    "write_dicom_seg",
    "write_dicom_series",
    "write_mask",
    "write_seg_nrrd",
]
