"""Reader, writer and manifest: geometry kept exactly, bad input refused in plain words."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from flr_volumetry import InputError

from flr_volumetry_napari._geometry import display_kwargs, to_display, to_original
from flr_volumetry_napari._reader import napari_get_reader, read_path
from flr_volumetry_napari._writer import LayerWriteError, labels_image, write_labels

MANIFEST = Path(__file__).resolve().parents[1] / "napari.yaml"


def test_manifest_validates_and_every_command_imports():
    import npe2

    manifest = npe2.PluginManifest.from_file(MANIFEST)
    manifest.validate_imports()  # every python_name resolves to a callable
    assert {w.display_name for w in manifest.contributions.widgets} == {
        "1 Liver", "2 Remnant", "3 Volumetry", "4 Hypertrophy", "5 Export"}
    assert manifest.contributions.readers[0].accepts_directories


def _world(layer_tuple, index_zyx):
    """World (z, y, x) of a voxel centre, from the layer's placement."""
    _, kwargs, _ = layer_tuple
    idx = np.asarray(index_zyx, float) * np.asarray(kwargs["scale"])
    if "rotate" in kwargs:
        idx = kwargs["rotate"] @ idx
    return idx + np.asarray(kwargs["translate"])


def test_scan_and_mask_overlay_at_physical_position(case_files):
    paths, arrays = case_files
    assert napari_get_reader(str(paths["ct"])) is not None
    assert napari_get_reader("notes.txt") is None
    (scan,) = read_path(str(paths["ct"]))
    (liver,) = read_path(str(paths["liver"]))
    assert scan[2] == "image" and liver[2] == "labels"
    assert liver[1]["metadata"]["flr_role"] == "liver"
    assert scan[1]["scale"] == liver[1]["scale"] == (4.0, 2.0, 1.5)
    assert scan[1]["translate"] == liver[1]["translate"]
    # Every liver voxel of the file lands, in napari world coordinates, on the
    # physical point SimpleITK gives for it (y axis flipped in the file).
    img = sitk.ReadImage(str(paths["liver"]))
    ks, js, is_ = np.nonzero(arrays["liver"])
    for n in (0, len(ks) // 2, len(ks) - 1):
        phys = img.TransformIndexToPhysicalPoint((int(is_[n]), int(js[n]), int(ks[n])))
        disp = np.argwhere(liver[0])  # find the same voxel in the displayed array
        worlds = np.array([_world(liver, d) for d in disp])
        assert np.min(np.abs(worlds - np.asarray(phys)[::-1]).sum(axis=1)) < 1e-6
    # The displayed arrays agree voxel for voxel: scan intensity 110/30 where the liver is.
    assert set(np.unique(scan[0][liver[0] == 1])) <= {110, 30}


def test_writer_round_trip_identical_voxels_and_geometry(case_files, tmp_path):
    paths, arrays = case_files
    (liver,) = read_path(str(paths["flr"]))
    data = liver[0].copy()
    data[0, 0, 0] = 2  # an edit made in napari must land on the same voxel of the file
    out = tmp_path / "out" / "flr_edited.nii.gz"
    written = write_labels(str(out), data, {"metadata": liver[1]["metadata"], "name": "flr"})
    assert written == [str(out)]
    back = sitk.ReadImage(str(out))
    orig = sitk.ReadImage(str(paths["flr"]))
    assert back.GetSize() == orig.GetSize()
    assert np.allclose(back.GetSpacing(), orig.GetSpacing())
    assert np.allclose(back.GetOrigin(), orig.GetOrigin())
    assert np.allclose(back.GetDirection(), orig.GetDirection())
    expected = arrays["flr"].copy()
    # Displayed (0,0,0) is file voxel (z=0, y=last, x=0) because y is flipped.
    expected[0, -1, 0] = 2
    assert np.array_equal(sitk.GetArrayFromImage(back), expected)
    # Read back: identical to what was written.
    (again,) = read_path(str(out))
    assert np.array_equal(again[0], data)


@pytest.mark.parametrize("direction", [
    (1, 0, 0, 0, 1, 0, 0, 0, 1),
    (-1, 0, 0, 0, -1, 0, 0, 0, 1),
    (0, 1, 0, 1, 0, 0, 0, 0, -1),
])
def test_reorientation_is_lossless(direction):
    arr = np.random.default_rng(0).integers(0, 5, (5, 6, 7)).astype(np.uint8)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.9, 3.0))
    img.SetOrigin((1.0, 2.0, 3.0))
    img.SetDirection([float(d) for d in direction])
    shown, geo = to_display(img)
    back = to_original(shown, geo)
    assert np.array_equal(sitk.GetArrayFromImage(back), arr)
    assert back.GetDirection() == img.GetDirection() and back.GetOrigin() == img.GetOrigin()
    kw = display_kwargs(geo)
    # The first displayed voxel sits at the physical point of the same file voxel.
    first = np.asarray(kw["translate"])
    hits = [np.allclose(np.asarray(img.TransformIndexToPhysicalPoint(
        (int(i), int(j), int(k))))[::-1], first)
        for k, j, i in np.argwhere(np.ones(arr.shape, bool))
        if arr[k, j, i] == shown[0, 0, 0]]
    assert any(hits)


def test_study_folder_opens_a_patients_timepoints(study_dir):
    layers = read_path(str(study_dir))
    names = [kw["name"] for _, kw, _ in layers]
    assert "P001 baseline scan" in names and "P001 post_pve flr" in names
    scans = [kw for _, kw, t in layers if t == "image"]
    assert [s["metadata"]["flr_scan"]["study_date"] for s in scans] == ["2024-02-26",
                                                                          "2024-04-01"]
    assert scans[0]["metadata"]["flr_patient_facts"]["procedure_date"] == "2024-03-04"
    # The patient folder itself opens the same layers.
    assert [kw["name"] for _, kw, _ in read_path(str(study_dir / "P001"))] == names


def test_bad_inputs_are_refused_in_words(tmp_path, case_files):
    with pytest.raises(InputError, match="does not exist"):
        read_path(str(tmp_path / "missing.nii.gz"))
    paths, _ = case_files
    (liver,) = read_path(str(paths["liver"]))
    with pytest.raises(InputError, match="no scan geometry"):
        labels_image(liver[0], {}, "painted")
    with pytest.raises(LayerWriteError, match="cannot write labels"):
        write_labels(str(tmp_path / "x.png"), liver[0], {"metadata": liver[1]["metadata"]})
    # napari hides a ValueError (hence an InputError) from a writer behind "No data
    # written": the sentence must reach the user through another exception type.
    with pytest.raises(LayerWriteError, match="no scan geometry") as exc:
        write_labels(str(tmp_path / "x.nii.gz"), liver[0], {"metadata": {}, "name": "p"})
    assert not isinstance(exc.value, ValueError)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(LayerWriteError, match="cannot write"):
        write_labels(str(tmp_path / "a_file" / "x.nii.gz"), liver[0],
                     {"metadata": liver[1]["metadata"]})
    with pytest.raises(InputError, match="does not match its scan grid"):
        labels_image(liver[0][:-1], liver[1]["metadata"], "cut")
    assert not list(tmp_path.glob("x.png*"))


def test_every_widget_docks_from_the_plugins_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    for name in ("1 Liver", "2 Remnant", "3 Volumetry", "4 Hypertrophy", "5 Export"):
        dock, widget = viewer.window.add_plugin_dock_widget("flr-volumetry-napari", name)
        # napari hands plugins a proxy of the viewer; it must be this viewer.
        assert getattr(widget.viewer, "__wrapped__", widget.viewer) is viewer


def test_sample_data_is_offered_in_the_file_menu():
    import npe2

    pm = npe2.PluginManager.instance()
    samples = {s.key for s in pm.get_manifest("flr-volumetry-napari").contributions.sample_data}
    assert samples == {"P001", "P002", "P003"}


def test_writer_slicer_seg_nrrd_round_trip(case_files, tmp_path):
    from flr_volumetry.io import read_seg_nrrd

    paths, arrays = case_files
    (seg,) = read_path(str(paths["segments"]))
    out = tmp_path / "couinaud.seg.nrrd"
    assert write_labels(str(out), seg[0], {"metadata": seg[1]["metadata"], "name": "seg"}) == [
        str(out)]
    orig = sitk.ReadImage(str(paths["segments"]))
    for v in (1, 3, 8):
        back = read_seg_nrrd(str(out), f"segment_{v}")
        assert np.array_equal(sitk.GetArrayFromImage(back), arrays["segments"] == v)
        assert np.allclose(back.GetOrigin(), orig.GetOrigin())
        assert np.allclose(back.GetDirection(), orig.GetDirection())
    # Several segments in one file: the reader says how to pick one.
    with pytest.raises(InputError, match="Liver widget"):
        read_path(str(out))
    (liver,) = read_path(str(paths["liver"]))
    single = tmp_path / "liver.seg.nrrd"
    write_labels(str(single), liver[0], {"metadata": liver[1]["metadata"], "name": "liver"})
    (again,) = read_path(str(single))
    assert again[1]["metadata"]["flr_role"] == "liver"
    assert np.array_equal(again[0], liver[0])
    # A DICOM SEG needs a DICOM series to reference.
    with pytest.raises(LayerWriteError, match="DICOM folder"):
        write_labels(str(tmp_path / "liver.dcm"), liver[0], {"metadata": liver[1]["metadata"]})


@pytest.mark.parametrize("direction", [
    (1, 0, 0, 0, -1, 0, 0, 0, 1),                      # CHAOS-like flipped y
    (0, 0, 1, 1, 0, 0, 0, 1, 0),                       # sagittal-like permutation
    tuple(sitk.VersorTransform((0, 0, 1), 0.3).GetMatrix()),  # oblique: 17 degrees about z
])
def test_napari_places_every_voxel_at_its_physical_point(direction, tmp_path):
    from napari.layers import Labels

    arr = np.zeros((6, 7, 8), np.uint8)
    arr[1, 2, 3] = 1
    arr[4, 5, 6] = 2
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 1.1, 3.0))
    img.SetOrigin((12.0, -30.0, 7.5))
    img.SetDirection([float(d) for d in direction])
    sitk.WriteImage(img, str(tmp_path / "mask.nii.gz"))
    (data, kwargs, _), = read_path(str(tmp_path / "mask.nii.gz"))
    layer = Labels(data, **kwargs)
    for k, j, i in np.argwhere(arr):
        phys = np.asarray(img.TransformIndexToPhysicalPoint((int(i), int(j), int(k))))
        shown = np.argwhere(data == arr[k, j, i])[0]
        assert np.allclose(layer.data_to_world(shown), phys[::-1], atol=1e-6)


def test_study_without_patient_json_and_bare_dicom_timepoints_opens(study_dir):
    """As the batch reads it: no patient.json (facts from study.csv or none), and a
    timepoint whose DICOM files lie straight in its folder beside timepoint.json."""
    from flr_volumetry.io import write_dicom_series

    patient = study_dir / "P001"
    (patient / "patient.json").unlink()
    tp = patient / "post_pve"
    ct = sitk.ReadImage(str(tp / "image.nii.gz"))
    (tp / "image.nii.gz").unlink()
    write_dicom_series(ct, tp, study_date="2024-04-01", patient_id="P001")
    assert napari_get_reader(str(study_dir)) is not None
    assert napari_get_reader(str(patient)) is not None
    names = [kw["name"] for _, kw, _ in read_path(str(study_dir))]
    assert "P001 baseline scan" in names and "P001 post_pve scan" in names
    assert "P001 post_pve flr" in names
    assert [kw["name"] for _, kw, _ in read_path(str(patient))] == names
    # The timepoint folder alone opens its DICOM scan with its masks.
    tp_names = [kw["name"] for _, kw, _ in read_path(str(tp))]
    assert any(n.endswith("scan") for n in tp_names) and any(n.endswith("liver")
                                                             for n in tp_names)


def test_dicom_slices_a_few_folders_down_are_claimed_and_read(tmp_path):
    from flr_volumetry.io import write_dicom_series

    img = sitk.GetImageFromArray(np.full((3, 6, 5), 40, np.int16))
    img.SetSpacing((0.8, 0.8, 2.5))
    write_dicom_series(img, tmp_path / "export" / "DICOM" / "ST0001" / "SE0002")
    reader = napari_get_reader(str(tmp_path / "export"))
    assert reader is not None  # (the command line read it; the viewer declined)
    (scan,) = reader(str(tmp_path / "export"))
    assert np.shape(scan[0]) == (3, 6, 5)


def test_study_timepoints_open_in_scan_date_order_as_the_batch_reads_them(study_dir):
    # Folder names that sort against the dates: the baseline had opened after the follow-up.
    patient = study_dir / "P001"
    (patient / "baseline").rename(patient / "zz_pre")
    (patient / "post_pve").rename(patient / "aa_post")
    scans = [kw for _, kw, t in read_path(str(study_dir)) if t == "image"]
    assert [s["name"] for s in scans] == ["P001 zz_pre scan", "P001 aa_post scan"]
    assert [s["metadata"]["flr_scan"]["study_date"] for s in scans] == ["2024-02-26",
                                                                          "2024-04-01"]


def test_a_mask_opened_on_its_own_is_put_on_its_scans_grid(make_napari_viewer, case_files):
    # A liver mask cropped to the liver (as 3D Slicer saves a .seg.nrrd) beside its scan,
    # opened on its own: it was counted on its own grid, whose edges the table took for
    # the scan's field of view (a liver "cut" at every end), and the FLR of the same scan
    # was refused as lying on another grid.
    import flr_volumetry as flr
    from flr_volumetry_napari._widgets import VolumetryWidget

    from .conftest import _image, add_layers

    paths, arrays = case_files
    cropped = _image(arrays["liver"])[3:37, 5:27, 3:17]
    sitk.WriteImage(cropped, str(paths["liver"]))
    viewer = make_napari_viewer()
    layers = {role: add_layers(viewer, read_path(str(paths[role])))[0]
              for role in ("ct", "liver", "flr")}
    assert layers["liver"].data.shape == layers["ct"].data.shape
    assert "resampled" in layers["liver"].metadata["flr_warnings"][0]
    w = VolumetryWidget(viewer)
    m = w.recompute()
    assert m is not None, w.status.text()
    ref = flr.measure_files(str(paths["ct"]), liver=str(paths["liver"]), flr=str(paths["flr"]))
    assert m.total_liver_ml == pytest.approx(ref.total_liver_ml)
    assert m.flr_ml == pytest.approx(ref.flr_ml)
    assert not [x for x in m.warnings if "field of view" in x]
    assert any("resampled" in x for x in m.warnings)  # said beside the figures, as exported
    # A mask lying elsewhere than the scan beside it is refused in words.
    far = _image(arrays["liver"])
    far.SetOrigin((900.0, 900.0, 900.0))
    sitk.WriteImage(far, str(paths["tumor"]))
    with pytest.raises(flr.InputError, match="same physical region"):
        read_path(str(paths["tumor"]))


@pytest.mark.parametrize("origin", [None, (-41.5, 58.0, -104.0)])
def test_a_mask_with_one_channel_per_label_is_refused_in_words(case_files, origin):
    # A one-hot mask (X x Y x Z x 2) opened beside its scan became a 4-D Labels layer with
    # 3-D placement, and napari failed with "operands could not be broadcast".
    from .conftest import _image

    paths, arrays = case_files
    liver = arrays["liver"]
    onehot = np.stack([1 - liver, liver], axis=-1).astype(np.uint8)
    img = sitk.GetImageFromArray(onehot, isVector=True)
    img.CopyInformation(_image(liver))
    if origin is not None:  # on another grid than the scan's too
        img.SetOrigin(origin)
    sitk.WriteImage(img, str(paths["liver"]))
    with pytest.raises(InputError, match="one channel per label"):
        read_path(str(paths["liver"]))


def test_reading_and_plan_warnings_reach_the_export(make_napari_viewer, case_files, tmp_path):
    # A mask resampled onto its scan's grid, or an FLR made by a plan with warnings, said so
    # in napari only: results.json and the report measured them without a word, where the
    # batch records the same warnings with the measurement.
    import json

    import flr_volumetry as flr
    from flr_volumetry_napari._widgets._export import export_review

    from .conftest import _image, add_layers

    paths, arrays = case_files
    sitk.WriteImage(_image(arrays["liver"])[3:37, 5:27, 3:17], str(paths["liver"]))
    viewer = make_napari_viewer()
    for role in ("ct", "liver", "flr"):
        add_layers(viewer, read_path(str(paths[role])))
    flr_layer = next(x for x in viewer.layers if x.metadata.get("flr_role") == "flr")
    flr_layer.metadata["flr_warnings"] = ["the plan's landmark lies 4 mm outside the liver."]
    results = export_review(viewer.layers, tmp_path / "out", flr.Patient(170, 70),
                            flr.VolumetryOptions())
    (tp,) = results["patients"][0]["timepoints"]
    said = tp["measurement"]["warnings"]
    assert any("resampled" in w for w in said), said
    assert "the plan's landmark lies 4 mm outside the liver." in said
    with open(tmp_path / "out" / "results.json", encoding="utf-8") as fh:
        assert json.load(fh)["patients"][0]["timepoints"][0]["measurement"]["warnings"] == said


@pytest.mark.parametrize("dicom", [False, True])
def test_a_scan_opened_on_its_own_is_exported_without_its_folders_name(
        make_napari_viewer, case_files, tmp_path, dicom):
    # Hospital exports are often foldered by the patient's name; a scan opened on its own
    # took its folder's name as its timepoint's, and the export wrote it into results.json,
    # the report, the overlay's title and a folder name.
    import flr_volumetry as flr
    from flr_volumetry_napari._widgets._export import export_review

    from .conftest import add_layers

    from .conftest import _image

    paths, arrays = case_files
    named = tmp_path / "DOE^JOHN 1957"
    named.mkdir()
    if dicom:
        scan_path = named / "CT"
        flr.write_dicom_series(sitk.ReadImage(str(paths["ct"])), scan_path,
                               study_date="20240226")
    else:
        scan_path = named / "ct.nii.gz"
        shutil.copy(paths["ct"], scan_path)
    mask_dir = scan_path if dicom else named  # (a DICOM folder's masks: inside it)
    for role in ("liver", "flr"):
        shutil.copy(paths[role], mask_dir / f"{role}.nii.gz")
    if not dicom:
        # Warnings that name files (a mask resampled onto the scan's grid) or the timepoint
        # (two FLR layers) are exported too: without the folders.
        sitk.WriteImage(_image(arrays["liver"])[3:37, 5:27, 3:17], str(named / "liver.nii.gz"))
        shutil.copy(paths["flr"], named / "flr_mask.nii.gz")
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(scan_path)))
    for name in ("liver", "flr") if dicom else ("liver", "flr", "flr_mask"):
        add_layers(viewer, read_path(str(mask_dir / f"{name}.nii.gz")))
    out = tmp_path / "out"
    results = export_review(viewer.layers, out, flr.Patient(170, 70), flr.VolumetryOptions())
    (tp,) = results["patients"][0]["timepoints"]
    assert tp["timepoint"] == ("2024-02-26" if dicom else "scan")
    if not dicom:
        said = tp["measurement"]["warnings"] + results["warnings"]
        assert any("liver.nii.gz" in w and "resampled" in w for w in said), said
        assert any("holds 2 flr layers" in w for w in said), said
    for f in out.rglob("*"):
        assert "DOE" not in f.name and "1957" not in str(f.relative_to(out))
        if f.suffix in (".json", ".html", ".csv"):
            # (Without the embedded pictures, whose base64 may spell anything.)
            text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", f.read_text(encoding="utf-8"))
            assert "DOE" not in text and "1957" not in text, f


def test_a_mask_opened_on_its_own_in_a_study_keeps_its_timepoints_name(make_napari_viewer,
                                                                      study_dir, tmp_path):
    # The mask file joins the study's timepoint; being opened on its own had made the
    # export name the timepoint by its scan date, leaving masks/P001/baseline behind.
    import flr_volumetry as flr
    from flr_volumetry_napari._widgets._export import export_review

    from .conftest import add_layers

    base = study_dir / "P001" / "baseline"
    shutil.copy(base / "flr.nii.gz", base / "flr_mask.nii.gz")
    viewer = make_napari_viewer()
    add_layers(viewer, read_path(str(study_dir / "P001")))
    add_layers(viewer, read_path(str(base / "flr_mask.nii.gz")))
    results = export_review(viewer.layers, tmp_path / "out", flr.Patient(172, 80),
                            flr.VolumetryOptions(), "2024-03-04")
    names = [t["timepoint"] for t in results["patients"][0]["timepoints"]]
    assert names == ["baseline", "post_pve"]


def test_a_path_given_relative_is_recorded_absolute(tmp_path, monkeypatch, study_dir):
    # The export takes each file's folder out of its warnings by the path a layer records;
    # a relative one ("DOE JOHN/P001") had been left in, folder name and all.
    monkeypatch.chdir(study_dir.parent)
    folder = os.path.join(study_dir.name, "P001", "baseline")
    layers = read_path([os.path.join(folder, name) for name in ("image.nii.gz", "liver.nii.gz")])
    sources = [kwargs["metadata"][key] for _, kwargs, _ in layers
               for key in ("flr_source", "flr_scan_source") if key in kwargs["metadata"]]
    assert sources and all(os.path.isabs(src) for src in sources), sources


def test_masks_named_after_a_lone_scans_file_do_not_bring_its_name_into_the_export(
        make_napari_viewer, case_files, tmp_path):
    # A scan opened on its own is exported under its date, not its file's name; but its masks,
    # named after it, had put that name into results.json and the report ("liver_method":
    # "file DOE_JOHN_liver.nii.gz", "'DOE_JOHN_flr' is used").
    import flr_volumetry as flr
    from flr_volumetry_napari._widgets._export import export_review

    from .conftest import add_layers

    paths, _ = case_files
    folder = tmp_path / "case7"
    folder.mkdir()
    shutil.copy(paths["ct"], folder / "DOE_JOHN.nii.gz")
    for role in ("liver", "flr"):
        shutil.copy(paths[role], folder / f"DOE_JOHN_{role}.nii.gz")
    viewer = make_napari_viewer()
    for name in ("DOE_JOHN", "DOE_JOHN_liver", "DOE_JOHN_flr"):
        add_layers(viewer, read_path(str(folder / f"{name}.nii.gz")))
    out = tmp_path / "out"
    results = export_review(viewer.layers, out, flr.Patient(170, 70), flr.VolumetryOptions())
    (tp,) = results["patients"][0]["timepoints"]
    assert tp["liver_method"] == "file scan_liver.nii.gz"
    assert tp["flr_method"] == "file scan_flr.nii.gz"
    for path in out.rglob("*"):
        if path.suffix in (".json", ".html"):
            assert "DOE" not in path.read_text(), path
