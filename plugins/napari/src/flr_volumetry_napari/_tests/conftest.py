"""Small synthetic cases for the plugin tests (written to tmp_path, never real data)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

SPACING = (1.5, 2.0, 4.0)  # x, y, z (mm): anisotropic on purpose
ORIGIN = (-40.0, 60.0, -100.0)
FLIP_Y = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # as in CHAOS MRI


@pytest.fixture(autouse=True)
def _own_pseudonym_key(tmp_path_factory, monkeypatch):
    """Pseudonym keys made by the tests stay in the tests' folder, not in ~/.config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))
    monkeypatch.delenv("FLR_PSEUDONYM_KEY", raising=False)


def add_layers(viewer, tuples):
    """Add the reader's (data, kwargs, kind) layer tuples to ``viewer``, as napari would."""
    return [getattr(viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in tuples]


def _image(arr, direction=FLIP_Y):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(direction)
    return img


def make_case(shape=(20, 32, 40), liver_box=(slice(4, 16), slice(6, 26), slice(5, 35))):
    """A CT-like scan with a box liver, a tumour and an FLR (left part); arrays (z, y, x)."""
    ct = np.full(shape, -1000, np.int16)
    ct[1:-1, 2:-2, 2:-2] = 40
    liver = np.zeros(shape, np.uint8)
    liver[liver_box] = 1
    ct[liver == 1] = 110
    tumor = np.zeros(shape, np.uint8)
    tumor[8:11, 10:14, 8:12] = 1          # inside the FLR part
    ct[tumor == 1] = 30
    flr = liver.copy()
    flr[:, :, 20:] = 0
    # Couinaud labels 1-8 in bands along x across the liver (not anatomical: a label map).
    band = np.clip(1 + (np.arange(shape[2]) - liver_box[2].start) * 8
                   // (liver_box[2].stop - liver_box[2].start), 1, 8).astype(np.uint8)
    segments = np.where(liver == 1, band[None, None, :], 0).astype(np.uint8)
    return {"ct": ct, "liver": liver, "tumor": tumor, "flr": flr, "segments": segments}


@pytest.fixture
def case_files(tmp_path):
    """Files of one case (y axis flipped, anisotropic): paths by role, and the arrays."""
    arrays = make_case()
    paths = {}
    for role, arr in arrays.items():
        name = "ct.nii.gz" if role == "ct" else f"{role}.nii.gz"
        paths[role] = tmp_path / name
        sitk.WriteImage(_image(arr), str(paths[role]))
    return paths, arrays


@pytest.fixture
def study_dir(tmp_path):
    """A two-timepoint study in the batch layout (P001: baseline and post_pve)."""
    root = tmp_path / "STUDY"
    patient = root / "P001"
    patient.mkdir(parents=True)
    (patient / "patient.json").write_text(json.dumps({
        "height_cm": 172, "weight_kg": 80, "liver_condition": "normal", "procedure": "PVE",
        "procedure_date": "2024-03-04"}))
    for name, date, flr_x in (("baseline", "2024-02-26", 14), ("post_pve", "2024-04-01", 20)):
        tp = patient / name
        tp.mkdir()
        arrays = make_case()
        arrays["flr"][:] = 0
        arrays["flr"][:, :, :flr_x] = arrays["liver"][:, :, :flr_x]
        for role in ("ct", "liver", "tumor", "flr", "segments"):
            fname = "image.nii.gz" if role == "ct" else f"{role}.nii.gz"
            sitk.WriteImage(_image(arrays[role]), str(tp / fname))
        (tp / "timepoint.json").write_text(json.dumps({"scan_date": date}))
    return root
