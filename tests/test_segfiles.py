"""Segmentation files: DICOM SEG and 3D Slicer .seg.nrrd, in and out."""

import os
import re

import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry.errors import GeometryError, InputError
from flr_volumetry.io import (
    load_mask,
    read_dicom_seg,
    read_dicom_series,
    read_seg_nrrd,
    write_dicom_seg,
    write_dicom_series,
    write_seg_nrrd,
)
from flr_volumetry.io._segfiles import check_seg_source

OBLIQUE = sitk.VersorTransform((0.3, 0.2, 1.0), 0.4).GetMatrix()


def _grid(size=(12, 10, 7), spacing=(0.8, 0.6, 2.5), direction=None, origin=(5.0, -3.0, 40.0)):
    img = sitk.GetImageFromArray(
        np.random.default_rng(0).integers(-200, 300, size[::-1]).astype(np.int16))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def _masks(ref):
    z, y, x = np.ogrid[:ref.GetSize()[2], :ref.GetSize()[1], :ref.GetSize()[0]]
    liver = ((x - 6) ** 2 / 16 + (y - 5) ** 2 / 9 + (z - 3) ** 2 / 4 <= 1).astype(np.uint8)
    tumor = ((x - 6) ** 2 + (y - 5) ** 2 <= 2).astype(np.uint8) * (z == 3)
    out = {}
    for name, a in (("liver", liver), ("tumor", tumor.astype(np.uint8))):
        im = sitk.GetImageFromArray(a)
        im.CopyInformation(ref)
        out[name] = im
    return out


def _liver_on(scan):
    """The test liver of :func:`_masks`, resampled onto a scan read back from DICOM."""
    return sitk.Resample(_masks(_grid())["liver"], scan.image, sitk.Transform(),
                         sitk.sitkNearestNeighbor)


def _arr(image):
    return sitk.GetArrayFromImage(image)


# ----------------------------------------------------------------- real files


def test_real_seg_and_nrrd_give_the_same_voxels_and_70_4_ml(shared_data):
    base = shared_data / "dicom-ct-3slice"
    scan = read_dicom_series(base / "series")
    seg = read_dicom_seg(base / "liver_seg.dcm", scan)
    assert seg.warnings == () and seg.source.endswith("liver_seg.dcm:Liver")
    ref_nrrd = load_mask(base / "liver_seg.nrrd", scan.image)
    assert ref_nrrd.warnings == ()  # same grid as the series
    np.testing.assert_array_equal(_arr(seg.image), _arr(ref_nrrd.image))
    assert int(_arr(seg.image).sum()) == 107098
    assert round(flr.mask_volume_ml(seg.image), 1) == 70.4
    # Through load_mask, by name (any case) and by number, and without a selection.
    for spec in ("liver_seg.dcm:Liver", "liver_seg.dcm:liver", "liver_seg.dcm:1", "liver_seg.dcm"):
        m = load_mask(str(base / spec), scan.image)
        np.testing.assert_array_equal(_arr(m.image), _arr(seg.image))
    with pytest.raises(InputError, match=r"no segment 'Spleen'; available segments: 1 'Liver'"):
        load_mask(f"{base / 'liver_seg.dcm'}:Spleen", scan.image)


def test_real_seg_without_reference_is_on_its_own_grid(shared_data):
    base = shared_data / "dicom-ct-3slice"
    scan = read_dicom_series(base / "series")
    own = read_dicom_seg(base / "liver_seg.dcm", None)
    assert flr.io.same_grid(own.image, scan.image)
    assert round(flr.mask_volume_ml(own.image), 1) == 70.4


def test_real_seg_measured_from_the_cli(shared_data, tmp_path, capsys):
    import json

    from flr_volumetry.cli import main

    base = shared_data / "dicom-ct-3slice"
    code = main(["measure", str(base / "series"), "--liver", f"{base / 'liver_seg.dcm'}:Liver",
                 "--json", str(tmp_path / "m.json")])
    assert code == 0
    assert round(json.loads((tmp_path / "m.json").read_text())["total_liver_ml"], 1) == 70.4


# ----------------------------------------------------------------- DICOM SEG round trip


@pytest.mark.parametrize("direction", [None, OBLIQUE])
def test_dicom_seg_round_trip(tmp_path, direction):
    ref = _grid(direction=direction)
    files = write_dicom_series(ref, tmp_path / "ct", patient_id="P1")
    for f in files:  # names a real export may carry beside PatientName
        src = pydicom.dcmread(f)
        src.PatientName, src.OtherPatientNames, src.PatientBirthName = "DOE^JANE", "DOE^J", "X^Y"
        src.save_as(f)
    scan = read_dicom_series(tmp_path / "ct")
    masks = {name: sitk.Resample(m, scan.image, sitk.Transform(), sitk.sitkNearestNeighbor)
             for name, m in _masks(ref).items()}
    out = write_dicom_seg(masks, tmp_path / "ct", tmp_path / "seg.dcm")
    assert out == str(tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and str(ds.PatientName) == "" and ds.PatientID == "P1"
    assert b"DOE" not in open(out, "rb").read() and b"X^Y" not in open(out, "rb").read()
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == scan.series_instance_uid
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver", "tumor"]
    for number, name in enumerate(("liver", "tumor"), start=1):
        for sel in (name, number, name.upper()):
            m = read_dicom_seg(out, scan, segment=sel)
            assert m.warnings == ()
            np.testing.assert_array_equal(_arr(m.image), _arr(masks[name]))
    both = read_dicom_seg(out, scan.image, segment=("liver", "tumor"))
    np.testing.assert_array_equal(_arr(both.image), _arr(masks["liver"]) | _arr(masks["tumor"]))
    with pytest.raises(InputError, match=r"2 segments \(1 'liver', 2 'tumor'\)"):
        read_dicom_seg(out, scan)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []
    # A SEG saved inside the series folder is not mistaken for a slice.
    write_dicom_seg(masks, tmp_path / "ct", tmp_path / "ct" / "seg.dcm")
    again = read_dicom_series(tmp_path / "ct")
    assert again.warnings == ()
    np.testing.assert_array_equal(_arr(again.image), _arr(scan.image))


def test_dicom_seg_single_mask_and_names_checked(tmp_path):
    ref = _grid()
    write_dicom_series(ref, tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    liver = _masks(scan.image)["liver"]
    write_dicom_seg(liver, tmp_path / "ct", tmp_path / "l.dcm", segment_names="Liver",
                    algorithm_name="flr-volumetry classic")
    m = load_mask(f"{tmp_path / 'l.dcm'}:Liver", scan.image)
    np.testing.assert_array_equal(_arr(m.image), _arr(liver))
    with pytest.raises(InputError, match="one name per mask"):
        write_dicom_seg([liver, liver], tmp_path / "ct", tmp_path / "x.dcm",
                        segment_names=["a"])
    other = _grid(spacing=(1.0, 1.0, 2.5))
    with pytest.raises(GeometryError, match="not on the grid"):
        write_dicom_seg(_masks(other)["liver"], tmp_path / "ct", tmp_path / "x.dcm",
                        segment_names="Liver")
    assert not (tmp_path / "x.dcm").exists()


def test_dicom_seg_on_a_larger_scan_and_on_another_grid(tmp_path):
    ref = _grid()
    write_dicom_series(ref, tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    liver = _masks(scan.image)["liver"]
    write_dicom_seg(liver, tmp_path / "ct", tmp_path / "l.dcm", segment_names="liver")
    # The same slices inside a longer scan: frames land on their slices, no warning.
    longer = sitk.ConstantPad(scan.image, (0, 0, 2), (0, 0, 3), 0)
    m = read_dicom_seg(tmp_path / "l.dcm", longer)
    assert m.warnings == ()
    np.testing.assert_array_equal(_arr(m.image)[2:-3], _arr(liver))
    assert flr.mask_volume_ml(m.image) == pytest.approx(flr.mask_volume_ml(liver))
    # Half the in-plane spacing: resampled by nearest neighbour, and said so.
    fine = sitk.Resample(scan.image, [24, 20, 7], sitk.Transform(), sitk.sitkNearestNeighbor,
                         scan.image.GetOrigin(), (0.4, 0.3, 2.5), scan.image.GetDirection())
    m = read_dicom_seg(tmp_path / "l.dcm", fine)
    assert len(m.warnings) == 1 and "resampled by nearest neighbour" in m.warnings[0]
    assert flr.mask_volume_ml(m.image) == pytest.approx(flr.mask_volume_ml(liver), rel=0.15)
    # A scan elsewhere in space: refused.
    away = sitk.Image(scan.image)
    away.SetOrigin((500.0, 500.0, 500.0))
    with pytest.raises(GeometryError, match="same physical region"):
        read_dicom_seg(tmp_path / "l.dcm", away)


def test_dicom_image_is_not_a_seg(tmp_path):
    files = write_dicom_series(_grid(), tmp_path / "ct")
    with pytest.raises(InputError, match="not a DICOM SEG"):
        read_dicom_seg(files[0], None)


# ----------------------------------------------------------------- .seg.nrrd


@pytest.mark.parametrize("direction", [None, OBLIQUE])
def test_seg_nrrd_round_trip_with_overlapping_segments(tmp_path, direction):
    ref = _grid(direction=direction)
    masks = _masks(ref)
    path = tmp_path / "case.seg.nrrd"
    write_seg_nrrd(masks, path)
    data, header = nrrd.read(str(path))
    # The tumour overlaps the liver: two layers, as Slicer writes them.
    assert data.shape == (2, 12, 10, 7) and header["kinds"][0] == "list"
    assert header["Segment0_Name"] == "liver" and header["Segment1_Name"] == "tumor"
    assert (header["Segment0_Layer"], header["Segment1_Layer"]) == ("0", "1")
    assert header["Segment1_Extent"] == "5 7 4 6 3 3"
    assert header["Segment0_Color"] == "0.866667 0.509804 0.396078"
    for name in ("liver", "tumor"):
        back = read_seg_nrrd(path, name)
        assert flr.io.same_grid(back, ref)
        np.testing.assert_array_equal(_arr(back), _arr(masks[name]))
        m = load_mask(f"{path}:{name.capitalize()}", ref)
        np.testing.assert_array_equal(_arr(m.image), _arr(masks[name]))
    with pytest.raises(InputError, match="2 segments"):
        load_mask(path, ref)
    with pytest.raises(InputError,
                       match=r"no segment 'spleen'; available segments: 'liver' \(label 1\)"):
        read_seg_nrrd(path, "spleen")


def test_seg_nrrd_single_layer_and_label_values(tmp_path):
    ref = _grid()
    masks = _masks(ref)
    left = sitk.GetImageFromArray((_arr(masks["liver"]) & (np.arange(12) < 6)).astype(np.uint8))
    right = sitk.GetImageFromArray((_arr(masks["liver"]) & (np.arange(12) >= 6)).astype(np.uint8))
    for im in (left, right):
        im.CopyInformation(ref)
    path = tmp_path / "lobes.seg.nrrd"
    write_seg_nrrd({"left lobe": left, "right lobe": right}, path)
    data, header = nrrd.read(str(path))
    assert data.ndim == 3 and set(np.unique(data)) == {0, 1, 2}
    np.testing.assert_array_equal(_arr(read_seg_nrrd(path, 2)), _arr(right))
    both = load_mask(f"{path}:left lobe,right lobe", ref)
    np.testing.assert_array_equal(_arr(both.image), _arr(masks["liver"]))
    with pytest.raises(InputError, match="no segment with label value 7"):
        read_seg_nrrd(path, 7)


def _two_voxel_layers(n_layers):
    """Layers of a 4x3x2 .seg.nrrd: one voxel set in the first, another in the second."""
    a = np.zeros((n_layers, 4, 3, 2), np.uint8)
    a[0, 1, 1, 0] = 1
    a[1, 2, 2, 1] = 1
    return a


def _layered_header(space, x_step, y_step, origin):
    return {"type": "unsigned char", "space": space,
            "kinds": ["list", "domain", "domain", "domain"],
            "space directions": np.array([[np.nan] * 3, [x_step, 0, 0], [0, y_step, 0],
                                          [0, 0, 3.0]]),
            "space origin": np.array(origin)}


def test_seg_nrrd_in_ras_space_and_old_layout(tmp_path):
    # Slicer before 4.11: one binary layer per segment, no Layer/LabelValue fields, RAS space.
    a = _two_voxel_layers(2)
    header = _layered_header("right-anterior-superior", -2.0, -1.5, (10.0, 20.0, -5.0))
    header.update({"Segment0_ID": "s1", "Segment0_Name": "liver",
                   "Segment1_ID": "s2", "Segment1_Name": "tumor"})
    path = tmp_path / "old.seg.nrrd"
    nrrd.write(str(path), a, header)
    im = read_seg_nrrd(path, "tumor")
    assert im.GetSpacing() == (2.0, 1.5, 3.0)
    assert im.GetOrigin() == (-10.0, -20.0, -5.0)  # RAS -> LPS
    assert im.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
    assert _arr(im)[1, 2, 2] == 1 and _arr(im).sum() == 1
    assert _arr(read_seg_nrrd(path, "liver"))[0, 1, 1] == 1


@pytest.mark.parametrize("field, value, said", [
    ("Segment0_LabelValue", "0", "has the label value 0, which is the background"),
    ("Segment0_LabelValue", "1.5", "has the label value '1.5', which is not a whole number"),
    ("Segment0_Layer", "x", "has the layer 'x', which is not a whole number"),
    ("space directions", np.array([[2.0, 0, 0], [2.0, 0, 0], [0, 0, 3.0]]),
     "has a direction matrix that is not a rotation"),
    ("space directions", np.array([[2.0, 0, 0], [0.5, 2.0, 0], [0, 0, 3.0]]),
     "has a direction matrix that is not a rotation"),
    ("space origin", np.array([np.nan, 0.0, 0.0]), "has a position or orientation that is "
                                                   "not a number"),
])
def test_seg_nrrd_headers_no_segmentation_has_are_refused_in_a_sentence(tmp_path, field,
                                                                        value, said):
    # Label value 0 had selected the background (a 39 L liver, exit 0); '1.0'-style values,
    # layer 'x' and a singular direction had ended in "unexpected failure (ValueError ...)";
    # a NaN origin had been called an empty mask, and a sheared direction was taken.
    path = _one_segment_seg_nrrd(tmp_path / "odd.seg.nrrd", **{field: value})
    with pytest.raises(InputError, match=re.escape(said)):
        load_mask(path)


def _one_segment_seg_nrrd(path, **fields):
    """A .seg.nrrd of one segment 'Liver' (6 voxels, label 1), its header ``fields``
    replaced."""
    a = np.zeros((4, 5, 3), np.uint8)
    a[1:3, 1:4, 1] = 1
    header = {"space": "left-posterior-superior", "kinds": ["domain"] * 3,
              "space directions": np.diag([2.0, 1.5, 3.0]), "space origin": np.zeros(3),
              "Segment0_ID": "s0", "Segment0_Name": "Liver", "Segment0_LabelValue": "1",
              "Segment0_Layer": "0", **fields}
    nrrd.write(str(path), a, header)
    return path


def test_seg_nrrd_label_value_written_as_a_float_is_its_number(tmp_path):
    path = _one_segment_seg_nrrd(tmp_path / "f.seg.nrrd", Segment0_LabelValue="1.0")
    assert _arr(load_mask(path).image).sum() == 6


def test_segments_sharing_a_name_are_united_and_each_has_its_number(tmp_path):
    # A SEG's lesions each named 'Tumor' are one tumour; a pair sharing a name had been
    # unselectable ('FILE:3' refused as the shared name, review); an empty segment chosen
    # by name had crashed (UnboundLocalError).
    a = _two_voxel_layers(3)
    header = _layered_header("left-posterior-superior", 2.0, 1.5, (0.0, 0.0, 0.0))
    for i, (name, label) in enumerate([("Tumor", 3), ("Tumor", 7), ("Ghost", 1)]):
        header.update({f"Segment{i}_ID": f"s{i}", f"Segment{i}_Name": name,
                       f"Segment{i}_Layer": str(i), f"Segment{i}_LabelValue": str(label)})
    a[0] *= 3
    a[1] *= 7
    path = tmp_path / "two.seg.nrrd"
    nrrd.write(str(path), a, header)
    assert _arr(load_mask(f"{path}:Tumor").image).sum() == 2
    assert _arr(load_mask(f"{path}:tumor").image).sum() == 2
    assert _arr(load_mask(f"{path}:3").image)[0, 1, 1] == 1
    assert _arr(load_mask(f"{path}:3").image).sum() == 1
    assert _arr(load_mask(f"{path}:7").image)[1, 2, 2] == 1
    with pytest.raises(InputError, match=r"choose one by name or label value, e\.g\. "
                                         r"two\.seg\.nrrd:3\."):
        load_mask(str(path))
    with pytest.raises(InputError, match=r"has no voxel in its segment Ghost; it is empty"):
        load_mask(f"{path}:Ghost")


def test_a_timepoints_seg_file_of_several_segments_gives_the_one_named_for_its_role(tmp_path):
    # A liver.seg.nrrd holding Liver and Tumor had failed its timepoint with "choose one by
    # name, e.g. liver.seg.nrrd:Liver", which a study folder has no way to do.
    from flr_volumetry.workflow import measure_files

    ref = _grid()
    masks = _masks(ref)
    path = tmp_path / "liver.seg.nrrd"
    write_seg_nrrd({"Liver": masks["liver"], "Tumor": masks["tumor"]}, path)
    ct = str(tmp_path / "ct.nii.gz")
    sitk.WriteImage(ref, ct)
    m = measure_files(ct, liver=str(path), tumor=str(path))
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0
    assert m.total_liver_ml == pytest.approx(_arr(masks["liver"]).sum() * voxel_ml)
    assert m.tumor_ml == pytest.approx(_arr(masks["tumor"]).sum() * voxel_ml)
    assert any("2 segments: 'Liver' was taken as the liver mask, not 'Tumor'." in w
               for w in m.warnings)
    assert any("'Tumor' was taken as the tumour mask, not 'Liver'." in w for w in m.warnings)
    with pytest.raises(InputError, match="holds 2 segments"):  # no segment named 'flr'
        measure_files(ct, liver=str(path), flr=str(path))


def test_a_livers_seg_file_holding_its_tumour_gives_both_when_no_tumour_is_given(tmp_path):
    # Drawn in Slicer's default overwrite mode, the Liver segment has a hole where the Tumor
    # segment is: taken alone, the total liver had lacked the tumour (1889.6 mL of 1993.1)
    # and no tumour was measured, exit 0.
    from flr_volumetry.workflow import measure_files

    ref = _grid()
    masks = _masks(ref)
    tumour = _arr(masks["tumor"]) > 0
    parenchyma = (_arr(masks["liver"]) > 0) & ~tumour
    assert tumour.any() and parenchyma.any()
    holed = sitk.GetImageFromArray(parenchyma.astype(np.uint8))
    holed.CopyInformation(ref)
    path = tmp_path / "liver.seg.nrrd"
    write_seg_nrrd({"Liver": holed, "Tumor": masks["tumor"]}, path)
    ct = str(tmp_path / "ct.nii.gz")
    sitk.WriteImage(ref, ct)
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0
    m = measure_files(ct, liver=str(path))
    assert m.total_liver_ml == pytest.approx((parenchyma | tumour).sum() * voxel_ml)
    assert m.tumor_ml == pytest.approx(tumour.sum() * voxel_ml)
    assert m.methods["tumor_mask"] == f"{path}:Tumor"
    assert any("'Liver' was taken as the liver mask and 'Tumor' as the tumour mask" in w
               for w in m.warnings)
    # A tumour mask given is the tumour: the file's segment is not added to it.
    other = tmp_path / "tumor.nii.gz"
    sitk.WriteImage(masks["tumor"], str(other))
    given = measure_files(ct, liver=str(path), tumor=str(other))
    assert given.methods["tumor_mask"] == str(other)


def test_a_couinaud_map_is_not_read_as_totalsegmentators_liver(tmp_path):
    # TotalSegmentator's liver_segments output taken as FILE:liver: label 5 (the liver in
    # the 'total' task) is segment V there: its 143 mL had been measured as the liver.
    a = np.zeros((8, 6, 6), np.uint8)
    for k in range(8):
        a[k, 1:5, 1:5] = k + 1
    sitk.WriteImage(sitk.GetImageFromArray(a), str(tmp_path / "segments.nii.gz"))
    with pytest.raises(InputError, match=r"holds labels 1, 2, 3, 4, 5, 6, 7, 8 only, as a "
                                         r"Couinaud segment map.*label 5 is a segment, not the "
                                         r"liver of the total task"):
        load_mask(f"{tmp_path / 'segments.nii.gz'}:liver")
    assert _arr(load_mask(f"{tmp_path / 'segments.nii.gz'}:5").image).sum() == 16
    # A 'total' run with roi_subset liver, spleen, kidneys, pancreas: labels 1, 2, 3, 5, 7.
    a[~np.isin(a, [1, 2, 3, 5, 7])] = 0
    sitk.WriteImage(sitk.GetImageFromArray(a), str(tmp_path / "roi_subset.nii.gz"))
    assert _arr(load_mask(f"{tmp_path / 'roi_subset.nii.gz'}:liver").image).sum() == 16


def test_write_seg_nrrd_refuses_mixed_grids_and_bad_names(tmp_path):
    ref = _grid()
    masks = _masks(ref)
    other = _masks(_grid(spacing=(1, 1, 1)))["liver"]
    with pytest.raises(GeometryError, match="same grid"):
        write_seg_nrrd({"liver": masks["liver"], "x": other}, tmp_path / "a.seg.nrrd")
    with pytest.raises(InputError, match="distinct"):
        write_seg_nrrd({"liver": masks["liver"], "Liver": masks["tumor"]}, tmp_path / "a.seg.nrrd")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["FRACTIONAL", "LABELMAP"])
def test_fractional_and_labelmap_segs(tmp_path, kind):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from flr_volumetry.io._dicom import series_slice_files

    write_dicom_series(_grid(), tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    masks = _masks(scan.image)
    liver, tumor = _arr(masks["liver"]), _arr(masks["tumor"])
    _, files = series_slice_files(tmp_path / "ct")
    sources = [pydicom.dcmread(f) for f in files]
    if kind == "FRACTIONAL":
        # Probabilities: 0.75 inside the liver, 0.25 in a rim that must stay outside.
        pixels = np.where(liver > 0, 0.75, 0.0)
        pixels[(liver == 0) & (np.roll(liver, 1, axis=2) > 0)] = 0.25
        pixels = pixels[..., None]
        names = ["liver"]
    else:
        pixels = np.maximum(liver, 2 * tumor).astype(np.uint8)  # 1 liver, 2 tumour
        names = ["liver", "tumor"]
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i, segment_label=n, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type="MANUAL")
        for i, n in enumerate(names, start=1)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels, segmentation_type=kind,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    seg.save_as(tmp_path / "seg.dcm")
    m = read_dicom_seg(tmp_path / "seg.dcm", scan, segment="liver")
    if kind == "FRACTIONAL":
        np.testing.assert_array_equal(_arr(m.image), liver)
    else:
        np.testing.assert_array_equal(_arr(m.image), liver & (tumor == 0))
        t = read_dicom_seg(tmp_path / "seg.dcm", scan, segment="tumor")
        np.testing.assert_array_equal(_arr(t.image), tumor)


def test_seg_on_its_own_grid_keeps_the_slice_step_when_empty_frames_are_omitted(tmp_path):
    write_dicom_series(_grid(), tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    a = np.zeros(_arr(scan.image).shape, np.uint8)
    a[1, 3:5, 3:6] = 1  # two lesions three slices apart: the frames between are omitted
    a[4, 2:4, 6:9] = 1
    lesions = sitk.GetImageFromArray(a)
    lesions.CopyInformation(scan.image)
    write_dicom_seg(lesions, tmp_path / "ct", tmp_path / "t.dcm", segment_names="lesions")
    assert pydicom.dcmread(tmp_path / "t.dcm").NumberOfFrames == 2
    own = read_dicom_seg(tmp_path / "t.dcm", None).image
    assert own.GetSpacing()[2] == pytest.approx(2.5) and own.GetSize()[2] == 4
    assert flr.mask_volume_ml(own) == pytest.approx(flr.mask_volume_ml(lesions))
    # And onto the scan, each frame on its own slice: the same voxels.
    on_scan = load_mask(tmp_path / "t.dcm", scan.image)
    np.testing.assert_array_equal(_arr(on_scan.image), a)


def test_write_dicom_seg_on_the_real_series_round_trips(shared_data, tmp_path):
    # The real export has an empty SpecificCharacterSet, which highdicom refuses as is.
    folder = shared_data / "dicom-ct-3slice"
    scan = flr.load_image(folder / "series")
    mask = flr.load_mask(folder / "liver_seg.nrrd", scan.image)
    out = tmp_path / "liver_seg.dcm"
    write_dicom_seg(mask.image, folder / "series", out, segment_names="liver")
    back = flr.load_mask(f"{out}:liver", scan.image)
    assert np.array_equal(sitk.GetArrayFromImage(back.image), sitk.GetArrayFromImage(mask.image))
    assert flr.mask_volume_ml(back.image) == pytest.approx(70.4, abs=0.05)


def test_a_seg_of_another_frame_of_reference_is_refused(tmp_path):
    ref = _grid()
    write_dicom_series(ref, tmp_path / "ct", patient_id="P1")
    write_dicom_series(ref, tmp_path / "other", patient_id="P2")  # same grid, other patient
    scan = read_dicom_series(tmp_path / "ct")
    other = read_dicom_series(tmp_path / "other")
    assert scan.frame_of_reference_uid and scan.frame_of_reference_uid != \
        other.frame_of_reference_uid
    write_dicom_seg(_masks(other.image)["liver"], tmp_path / "other", tmp_path / "p2.dcm",
                    segment_names="Liver")
    # Another patient's liver on the same grid had been measured as this one's.
    with pytest.raises(InputError, match="another frame of reference than the scan"):
        load_mask(f"{tmp_path / 'p2.dcm'}:Liver", scan)
    assert load_mask(f"{tmp_path / 'p2.dcm'}:Liver", other).warnings == ()


def test_seg_files_without_segments_or_with_names_of_any_characters(tmp_path):
    ref = _grid()
    masks = _masks(ref)
    write_seg_nrrd({"Liver (whole)": masks["liver"], "S4.a": masks["tumor"]},
                   tmp_path / "s.seg.nrrd")
    # Such names had been refused as "not label numbers or a structure name".
    m = load_mask(f"{tmp_path / 's.seg.nrrd'}:Liver (whole)", ref)
    np.testing.assert_array_equal(_arr(m.image), _arr(masks["liver"]))
    assert load_mask(f"{tmp_path / 's.seg.nrrd'}:S4.a", ref).image.GetSize() == ref.GetSize()
    # All zero, no segment fields: a Slicer file from which every segment was deleted.
    data, header = nrrd.read(str(tmp_path / "s.seg.nrrd"))
    header = {k: v for k, v in header.items() if not k.startswith("Segment")}
    nrrd.write(str(tmp_path / "empty.seg.nrrd"), np.zeros_like(data), header)
    # It had crashed with StopIteration.
    with pytest.raises(InputError, match="holds no segment"):
        load_mask(str(tmp_path / "empty.seg.nrrd"), ref)


def test_a_segment_name_holding_a_comma_is_selected_and_never_suggested_broken(tmp_path):
    # 'Liver, whole' could not be selected (the comma separates a selection), and a file
    # of segments was refused with the advice 'FILE:Liver, whole', which then failed.
    ref = _grid()
    masks = _masks(ref)
    parenchyma = sitk.And(masks["liver"], sitk.Not(masks["tumor"]) > 0)
    path = tmp_path / "c.seg.nrrd"
    write_seg_nrrd({"Liver, whole": parenchyma, "Tumor": masks["tumor"]}, path)
    m = load_mask(f"{path}:Liver, whole", ref)
    np.testing.assert_array_equal(_arr(m.image), _arr(parenchyma))
    with pytest.raises(InputError, match=r"e\.g\. c\.seg\.nrrd:1\.$"):
        load_mask(str(path), ref)


def test_segment_writes_its_seg_against_the_series_it_segmented(tmp_path):
    from flr_volumetry.cli._segment import _write

    small, large = _grid(size=(12, 10, 7)), _grid(size=(12, 10, 9))
    write_dicom_series(small, tmp_path / "ct")
    write_dicom_series(large, tmp_path / "ct")  # the folder's default: most slices
    uid_small = next(s for s in pydicom_series(tmp_path / "ct") if s[1] == 7)[0]
    scan = read_dicom_series(tmp_path / "ct", series_uid=uid_small)
    _write(_masks(scan.image)["liver"], tmp_path / "liver.dcm", scan, "liver")
    ds = pydicom.dcmread(tmp_path / "liver.dcm")
    # It had referenced the folder's default series, not the one segmented.
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == uid_small


def pydicom_series(folder):
    """(SeriesInstanceUID, number of slices) of each series in ``folder``."""
    counts = {}
    for f in os.listdir(folder):
        uid = pydicom.dcmread(os.path.join(folder, f), stop_before_pixels=True).SeriesInstanceUID
        counts[uid] = counts.get(uid, 0) + 1
    return list(counts.items())


def test_seg_nrrd_segments_are_listed_by_the_label_values_one_types(tmp_path):
    ref = _grid()
    masks = _masks(ref)
    write_seg_nrrd({"liver": masks["liver"], "tumor": masks["tumor"]}, tmp_path / "s.seg.nrrd")
    import nrrd

    data, header = nrrd.read(str(tmp_path / "s.seg.nrrd"))
    values = {header[f"Segment{i}_Name"]: int(header[f"Segment{i}_LabelValue"]) for i in (0, 1)}
    # Positions (0, 1) had been listed where label values are typed.
    with pytest.raises(InputError, match=rf"2 segments \('liver' \(label {values['liver']}\), "
                                         rf"'tumor' \(label {values['tumor']}\)\)"):
        load_mask(str(tmp_path / "s.seg.nrrd"), ref)


def test_dicom_seg_from_messy_sources_carries_no_person_and_reads_back(tmp_path):
    # highdicom copies the whole patient and study modules: a responsible person and a
    # comment naming the patient had been copied into the SEG; sex 'U', an impossible
    # birth date, no StudyDate and files without the preamble (all read by the series
    # reader) had stopped the writer with a traceback.
    ref = _grid()
    files = write_dicom_series(ref, tmp_path / "ct", patient_id="P1")
    for i, f in enumerate(files):
        src = pydicom.dcmread(f)
        src.ResponsiblePerson, src.PatientComments = "DOE^JANE", "John Doe, transferred"
        src.ReferringPhysicianName, src.PatientSex = "ROE^RICHARD", "U"
        src.PatientBirthDate = "19700231"
        del src.StudyDate, src.StudyTime
        if i % 2:
            src.preamble = None
            src.save_as(f, enforce_file_format=False)
            with open(f, "rb") as fh:
                assert fh.read(132)[128:132] != b"DICM"
        else:
            src.save_as(f)
    scan = read_dicom_series(tmp_path / "ct")
    liver = _liver_on(scan)
    out = write_dicom_seg(liver, tmp_path / "ct", tmp_path / "seg.dcm", segment_names="liver")
    raw = open(out, "rb").read()
    for text in (b"DOE", b"Doe", b"ROE", b"transferred"):
        assert text not in raw
    ds = pydicom.dcmread(out)
    assert ds.PatientID == "P1" and ds.PatientSex == "" and ds.PatientBirthDate == ""
    np.testing.assert_array_equal(_arr(read_dicom_seg(out, scan).image), _arr(liver))


@pytest.mark.parametrize("keyword, value", [
    ("StudyDate", "20231399"), ("StudyDate", "00000000"), ("StudyDate", "2023-01-05"),
    ("StudyTime", "256199"),
])
def test_dicom_seg_leaves_out_dates_and_times_the_standard_cannot_hold(tmp_path, keyword,
                                                                       value):
    # Each had failed in the SEG writer after the whole segmentation ("unexpected failure
    # (ValueError: month must be in 1..12)", "year 0 is out of range", ...).
    ref = _grid()
    files = write_dicom_series(ref, tmp_path / "ct", patient_id="P1")
    for f in files:
        src = pydicom.dcmread(f)
        src[keyword] = pydicom.DataElement(pydicom.datadict.tag_for_keyword(keyword),
                                           pydicom.datadict.dictionary_VR(keyword), value)
        src.save_as(f)
    scan = read_dicom_series(tmp_path / "ct")
    liver = _liver_on(scan)
    out = write_dicom_seg(liver, tmp_path / "ct", tmp_path / "seg.dcm", segment_names="liver")
    ds = pydicom.dcmread(out)
    assert str(ds.get(keyword, "")) in ("", value) and ds.PatientID == "P1"
    assert ds.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID
    np.testing.assert_array_equal(_arr(read_dicom_seg(out, scan).image), _arr(liver))


@pytest.mark.parametrize("missing", ["FrameOfReferenceUID", "StudyInstanceUID"])
def test_dicom_seg_needs_the_frame_of_reference_and_the_study(tmp_path, missing):
    ref = _grid()
    files = write_dicom_series(ref, tmp_path / "ct", patient_id="P1")
    for f in files:
        src = pydicom.dcmread(f)
        del src[missing]
        src.save_as(f)
    with pytest.raises(InputError, match=f"has no {missing}"):
        check_seg_source(tmp_path / "ct")
    liver = _liver_on(read_dicom_series(tmp_path / "ct"))
    with pytest.raises(InputError, match=f"has no {missing}"):
        write_dicom_seg(liver, tmp_path / "ct", tmp_path / "seg.dcm", segment_names="liver")
    assert not os.path.exists(tmp_path / "seg.dcm")


def test_seg_slice_thickness_is_not_taken_for_its_slice_step(tmp_path):
    # Thin slices 2.5 mm apart, declared by SliceThickness 1.25 alone: they had been
    # stacked 1.25 mm apart, every other slice empty (1275.6 of 2128.9 mL on a 1 mm scan).
    write_dicom_series(_grid(), tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    liver = _liver_on(scan)
    write_dicom_seg(liver, tmp_path / "ct", tmp_path / "s.dcm", segment_names="liver")
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    del measures.SpacingBetweenSlices
    measures.SliceThickness = "1.25"
    ds.save_as(tmp_path / "thin.dcm")
    own = read_dicom_seg(tmp_path / "thin.dcm", None).image
    assert own.GetSpacing()[2] == pytest.approx(2.5)
    assert flr.mask_volume_ml(own) == pytest.approx(flr.mask_volume_ml(liver))


def _couinaud_slabs():
    """A grid and a label map of eight slabs along x, segments I-VIII."""
    ref = _grid(size=(16, 10, 7))
    a = np.zeros(_arr(ref).shape, np.uint8)
    for k in range(1, 9):
        a[:, :, 2 * k - 2:2 * k] = k
    return ref, a


def test_seg_nrrd_as_a_couinaud_map_is_read_by_label_value_or_refused(tmp_path):
    ref, a = _couinaud_slabs()
    segs = {k: sitk.Cast(sitk.GetImageFromArray((a == k).astype(np.uint8)), sitk.sitkUInt8)
            for k in range(1, 9)}
    for m in segs.values():
        m.CopyInformation(ref)
    write_seg_nrrd({f"Segment_{k}": segs[k] for k in range(1, 9)}, tmp_path / "ok.seg.nrrd")
    labels, _ = flr.load_label_map(tmp_path / "ok.seg.nrrd", ref)
    np.testing.assert_array_equal(_arr(labels), a)
    # Named 5-8, 1-4 but numbered 1-8 by the writer: the map had been read by label value,
    # segments V-VIII taken for I-IV (an FLR of 1676 instead of 321 mL), without a word.
    write_seg_nrrd({f"Segment_{k}": segs[k] for k in (5, 6, 7, 8, 1, 2, 3, 4)},
                   tmp_path / "order.seg.nrrd")
    with pytest.raises(InputError, match="'Segment_5' has label value 1"):
        flr.load_label_map(tmp_path / "order.seg.nrrd", ref)
    # Overlapping segments (the liver beside them): a voxel in two segments.
    liver = sitk.Cast(sitk.GetImageFromArray((a > 0).astype(np.uint8)), sitk.sitkUInt8)
    liver.CopyInformation(ref)
    write_seg_nrrd({**{f"S{k}": segs[k] for k in range(1, 9)}, "liver": liver},
                   tmp_path / "layers.seg.nrrd")
    with pytest.raises(InputError, match="overlapping segments"):
        flr.load_label_map(tmp_path / "layers.seg.nrrd", ref)


def test_dicom_seg_is_refused_as_a_segment_map(tmp_path):
    write_dicom_series(_grid(), tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    liver = _liver_on(scan)
    write_dicom_seg(liver, tmp_path / "ct", tmp_path / "s.dcm", segment_names="liver")
    with pytest.raises(InputError, match="is a DICOM SEG, which is not read as a segment map"):
        flr.load_label_map(tmp_path / "s.dcm", scan)


def test_seg_without_slice_spacing_whose_empty_frames_are_omitted_keeps_its_step(tmp_path):
    # Lesions on slices 1 and 4-5: without SpacingBetweenSlices the step had been taken from
    # the first two frames (7.5 mm), and the file refused as unevenly spaced.
    write_dicom_series(_grid(size=(12, 10, 8)), tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    a = np.zeros(_arr(scan.image).shape, np.uint8)
    a[1, 3:6, 3:6] = 1
    a[4:6, 3:6, 3:6] = 1
    lesions = sitk.GetImageFromArray(a)
    lesions.CopyInformation(scan.image)
    write_dicom_seg(lesions, tmp_path / "ct", tmp_path / "t.dcm", segment_names="lesions")
    ds = pydicom.dcmread(tmp_path / "t.dcm")
    del ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices
    ds.save_as(tmp_path / "nosbs.dcm")
    own = read_dicom_seg(tmp_path / "nosbs.dcm", None).image
    assert own.GetSpacing()[2] == pytest.approx(2.5)
    assert flr.mask_volume_ml(own) == pytest.approx(flr.mask_volume_ml(lesions))


def test_a_single_layer_seg_nrrd_stored_4d_is_a_segment_map(tmp_path):
    ref, a = _couinaud_slabs()
    header = {"type": "unsigned char", "dimension": 4, "space": "left-posterior-superior",
              "space origin": np.array(ref.GetOrigin()), "kinds": ["list", "domain", "domain",
                                                                   "domain"],
              "space directions": np.vstack([[np.nan] * 3, np.diag(ref.GetSpacing())])}
    for i in range(8):
        header.update({f"Segment{i}_ID": f"Segment_{i + 1}", f"Segment{i}_Name":
                       f"Segment_{i + 1}", f"Segment{i}_LabelValue": str(i + 1),
                       f"Segment{i}_Layer": "0"})
    nrrd.write(str(tmp_path / "one_layer.seg.nrrd"), np.transpose(a, (2, 1, 0))[None], header)
    labels, _ = flr.load_label_map(tmp_path / "one_layer.seg.nrrd", ref)
    assert labels.GetNumberOfComponentsPerPixel() == 1 and _arr(labels).shape == a.shape
    np.testing.assert_array_equal(_arr(labels), a)


def _small_ct_with_a_liver_block():
    """A small CT: air, a body and a liver-bright block on the patient's right."""
    a = np.full((20, 40, 40), -1000, np.int16)
    a[2:18, 5:35, 5:35] = 40
    a[5:15, 10:30, 6:20] = 110
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    return img


def test_dicom_seg_of_a_series_without_slice_thickness(tmp_path, capsys):
    # SliceThickness is type 2 in the CT image module but left out by some exports; the
    # series reads and segments, and its SEG had failed with "unexpected failure
    # (AttributeError: ... 'SliceThickness')" after the whole segmentation.
    files = write_dicom_series(_small_ct_with_a_liver_block(), tmp_path / "ct", patient_id="P1")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.SliceThickness
        ds.save_as(f)
    out = tmp_path / "liver.dcm"
    from flr_volumetry.cli import main

    code = main(["segment", str(tmp_path / "ct"), "-o", str(out), "--seed", "12,20,10"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "unexpected failure" not in err
    scan = read_dicom_series(tmp_path / "ct")
    liver = load_mask(f"{out}:liver", scan)
    assert flr.mask_volume_ml(liver.image) > 0


def _axial(n_slices, step):
    img = sitk.GetImageFromArray(np.zeros((n_slices, 20, 20), np.int16))
    img.SetSpacing((1.0, 1.0, step))
    return img


def test_a_seg_of_thicker_slices_is_not_placed_on_every_other_slice_of_a_thin_scan(tmp_path):
    # A SEG drawn on 2 mm slices, measured on a 1 mm scan of the same region: each frame
    # lands on a slice of the scan, and had been placed there silently, every other slice
    # left empty (0.6 of 1.2 mL). Its declared SpacingBetweenSlices says it is another grid.
    write_dicom_series(_axial(10, 2.0), tmp_path / "ct2")
    thick = read_dicom_series(tmp_path / "ct2")
    a = np.zeros((10, 20, 20), np.uint8)
    a[2:8, 5:15, 5:15] = 1
    liver = sitk.GetImageFromArray(a)
    liver.CopyInformation(thick.image)
    write_dicom_seg(liver, tmp_path / "ct2", tmp_path / "seg.dcm", segment_names="liver")
    m = load_mask(tmp_path / "seg.dcm", _axial(19, 1.0))
    assert flr.mask_volume_ml(m.image) == pytest.approx(1.2)
    assert len(m.warnings) == 1 and "1.2 mL before, 1.2 mL after" in m.warnings[0]


def test_a_label_map_on_another_grid_is_resampled_with_its_volumes_said(tmp_path):
    a = np.zeros((5, 10, 10), np.uint8)
    a[1:4, 1:5, 1:5] = 1
    a[1:4, 5:9, 1:5] = 2  # 96 voxels of 8 mm3: 0.768 mL
    coarse = sitk.GetImageFromArray(a)
    coarse.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(coarse, str(tmp_path / "map.nii.gz"))
    labels, warnings = flr.load_label_map(tmp_path / "map.nii.gz", _axial(10, 1.0))
    assert np.count_nonzero(_arr(labels)) * 1e-3 == pytest.approx(0.768, abs=0.1)
    assert len(warnings) == 1 and "0.8 mL before" in warnings[0] and "mL after" in warnings[0]


def test_a_scan_given_as_a_mask_with_a_label_selection_is_refused(tmp_path):
    # 'ct.nii.gz:liver' (label 5): the voxels of 5 HU had been measured as the liver.
    ct = sitk.GetImageFromArray(
        np.random.default_rng(0).integers(-1000, 1000, (6, 20, 20)).astype(np.int16))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    for spec in ("ct.nii.gz:liver", "ct.nii.gz:5"):
        with pytest.raises(InputError, match="not a mask or label map"):
            load_mask(tmp_path / spec, ct)



def test_read_dicom_seg_names_its_scan_reference_as_the_other_readers_do(tmp_path):
    # The same argument was reference in load_mask and load_label_map and
    # reference_scan_or_image here; both names are read, the old one for old scripts.
    ref = _grid()
    write_dicom_series(ref, tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    liver = sitk.Resample(_masks(ref)["liver"], scan.image, sitk.Transform(),
                          sitk.sitkNearestNeighbor)
    out = write_dicom_seg({"liver": liver}, tmp_path / "ct", tmp_path / "seg.dcm")
    for kwargs in ({"reference": scan}, {"reference_scan_or_image": scan}):
        np.testing.assert_array_equal(_arr(read_dicom_seg(out, **kwargs).image), _arr(liver))
    with pytest.raises(InputError, match="give the scan once"):
        read_dicom_seg(out, scan, reference_scan_or_image=scan)


@pytest.mark.parametrize("masks", ["one image", "a list"])
def test_write_seg_nrrd_asks_for_named_masks(tmp_path, masks):
    # One image had been iterated voxel by voxel ("segment names ... '0', '0'"), a list
    # had failed with an AttributeError.
    liver = _masks(_grid())["liver"]
    with pytest.raises(InputError, match="needs a dict of segment name -> mask"):
        flr.write_seg_nrrd(liver if masks == "one image" else [liver], tmp_path / "s.seg.nrrd")
