"""Real scans (../shared/data): DICOM series with its SEG, and CHAOS MRI with a flipped y axis."""

import numpy as np
import pytest
import SimpleITK as sitk
import flr_volumetry as flr

from flr_volumetry_napari._geometry import layer_image
from flr_volumetry_napari._reader import napari_get_reader, read_path
from flr_volumetry_napari._widgets import LiverWidget, VolumetryWidget


def _placement(layer_tuple):
    kw = layer_tuple[1]
    return np.asarray(kw["scale"]), np.asarray(kw["translate"])


def test_chaos_mri_image_and_labels_overlay(shared_data):
    folder = shared_data / "mr-chaos-t2"
    (scan,) = read_path(str(folder / "image_1.nii.gz"))
    (labels,) = read_path(str(folder / "label_1.nii.gz"))
    assert labels[1]["metadata"]["flr_role"] == "mask" and labels[2] == "labels"
    s_scale, s_trans = _placement(scan)
    l_scale, l_trans = _placement(labels)
    assert np.allclose(s_scale, l_scale) and np.allclose(s_trans, l_trans, atol=1e-3)
    # The file's y axis is flipped: a liver voxel's napari world position is its physical point.
    img = sitk.ReadImage(str(folder / "label_1.nii.gz"))
    assert img.GetDirection()[4] < 0
    k, j, i = np.argwhere(np.rint(sitk.GetArrayViewFromImage(img)) == 1)[0]
    phys = np.asarray(img.TransformIndexToPhysicalPoint((int(i), int(j), int(k))))[::-1]
    idx = np.rint((phys - l_trans) / l_scale).astype(int)
    assert labels[0][tuple(idx)] == 1
    # The liver volume on the displayed grid is the file's: 1849.7 mL (README of the data).
    liver = layer_image((labels[0] == 1).astype(np.uint8), labels[1]["metadata"]["flr_geometry"])
    assert flr.mask_volume_ml(liver) == pytest.approx(1849.7, abs=0.05)


def test_dicom_series_with_its_seg_in_the_widgets(shared_data, make_napari_viewer, qtbot):
    folder = shared_data / "dicom-ct-3slice"
    assert napari_get_reader(str(folder / "series")) is not None
    viewer = make_napari_viewer()
    (scan_t,) = read_path(str(folder / "series"))
    assert scan_t[1]["metadata"]["flr_scan"]["modality"] == "CT"
    assert scan_t[1]["metadata"]["flr_scan"]["study_date"] == "2003-04-17"
    scan = viewer.add_image(scan_t[0], **scan_t[1])
    w = LiverWidget(viewer)
    qtbot.addWidget(w)
    w.import_role.setCurrentText("liver")
    w.import_labels.setText("Liver")  # the SEG's segment label
    liver = w.import_mask(str(folder / "liver_seg.dcm"))
    assert liver is not None, w.status.text()
    # The NRRD of the same mask opens on exactly the same voxels.
    (nrrd,) = read_path(str(folder / "liver_seg.nrrd"))
    assert np.array_equal(liver.data != 0, nrrd[0] != 0)
    assert np.allclose(liver.translate, _placement(nrrd)[1], atol=1e-3)
    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    assert vol.liver.layer() is liver
    m = vol.recompute()
    assert m.total_liver_ml == pytest.approx(70.4, abs=0.05)
    assert scan.metadata["flr_timepoint"] == liver.metadata["flr_timepoint"]

