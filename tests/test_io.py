import os

import numpy as np
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry.errors import GeometryError, InputError

from _phantom_boxes import ROTATED, box_case, image_like


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("direction", [None, ROTATED])
def test_formats_keep_geometry_and_volume(tmp_path, suffix, direction):
    im, n, v = box_case(direction)
    for name in ("ct", "liver"):
        sitk.WriteImage(im[name], str(tmp_path / f"{name}{suffix}"))
    scan = flr.load_image(tmp_path / f"ct{suffix}")
    np.testing.assert_allclose(scan.image.GetSpacing(), im["ct"].GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(scan.image.GetOrigin(), im["ct"].GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(scan.image.GetDirection(), im["ct"].GetDirection(), atol=1e-6)
    liver = flr.load_mask(tmp_path / f"liver{suffix}", scan.image)
    assert liver.warnings == ()
    assert flr.mask_volume_ml(liver.image) == pytest.approx(n["liver"] * v, rel=1e-6)


def test_label_selection_and_float_labels(tmp_path):
    im, n, v = box_case()
    lab = sitk.GetArrayFromImage(im["liver"]).astype(np.float32)
    lab[sitk.GetArrayFromImage(im["tumor"]) > 0] = 2.0
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(image_like(lab), str(path))
    ref = im["ct"]
    whole = flr.load_mask(path, ref)
    parenchyma = flr.load_mask(f"{path}:1", ref)
    tumour = flr.load_mask(f"{path}:2", ref)
    both = flr.load_mask(f"{path}:1,2", ref)
    assert flr.mask_volume_ml(whole.image) == pytest.approx(n["liver"] * v)
    assert flr.mask_volume_ml(both.image) == pytest.approx(n["liver"] * v)
    assert flr.mask_volume_ml(parenchyma.image) == pytest.approx((n["liver"] - n["tumor"]) * v)
    assert flr.mask_volume_ml(tumour.image) == pytest.approx(n["tumor"] * v)


def test_absent_label_is_an_error(tmp_path):
    im, _, _ = box_case()
    sitk.WriteImage(im["liver"], str(tmp_path / "l.nii.gz"))
    with pytest.raises(InputError, match="label 7"):
        flr.load_mask(f"{tmp_path / 'l.nii.gz'}:7", im["ct"])


def test_non_integer_label_map_with_selection_is_refused(tmp_path):
    im, _, _ = box_case()
    a = sitk.GetArrayFromImage(im["liver"]).astype(np.float32) * 0.5
    sitk.WriteImage(image_like(a), str(tmp_path / "prob.nii.gz"))
    with pytest.raises(InputError, match="non-integer"):
        flr.load_mask(f"{tmp_path / 'prob.nii.gz'}:1", im["ct"])


def test_totalsegmentator_multilabel_and_folder(tmp_path):
    im, n, v = box_case()
    multi = sitk.GetArrayFromImage(im["liver"]) * 5
    multi[0, 0, 0] = 63  # inferior vena cava of task `total`
    sitk.WriteImage(image_like(multi.astype(np.uint8)), str(tmp_path / "total.nii.gz"))
    m = flr.load_mask(f"{tmp_path / 'total.nii.gz'}:liver", im["ct"])
    assert flr.mask_volume_ml(m.image) == pytest.approx(n["liver"] * v)
    folder = tmp_path / "per-class"
    folder.mkdir()
    sitk.WriteImage(im["liver"], str(folder / "liver.nii.gz"))
    assert flr.mask_volume_ml(flr.load_mask(folder, im["ct"]).image) == pytest.approx(
        n["liver"] * v)
    with pytest.raises(InputError, match="spleen.nii.gz"):
        flr.load_mask(folder, im["ct"], structure="spleen")


def test_mask_on_finer_grid_of_same_region_is_resampled_with_warning():
    im, n, v = box_case()
    ref = im["ct"]
    fine = sitk.Resample(im["liver"], [s * 2 for s in ref.GetSize()], sitk.Transform(),
                         sitk.sitkNearestNeighbor, ref.GetOrigin(),
                         [s / 2 for s in ref.GetSpacing()], ref.GetDirection(), 0, sitk.sitkUInt8)
    out, warning = flr.io.resample_mask_to(fine, ref, what="liver mask")
    assert "resampled by nearest neighbour" in warning
    assert flr.mask_volume_ml(out) == pytest.approx(n["liver"] * v, rel=0.02)
    assert flr.io.same_grid(out, ref)


def test_mask_elsewhere_is_refused(tmp_path):
    im, _, _ = box_case()
    moved = sitk.Image(im["liver"])
    moved.SetOrigin((500.0, 500.0, 500.0))
    sitk.WriteImage(moved, str(tmp_path / "far.nii.gz"))
    with pytest.raises(GeometryError, match="same physical region"):
        flr.load_mask(tmp_path / "far.nii.gz", im["ct"])


@pytest.mark.parametrize("values, message", [
    (lambda a: a * 40.0 - 1000.0, "negative values"),        # a CT in HU
    (lambda a: a * 0.37 + 0.2, "non-integer values"),         # a float MR
    (lambda a: np.arange(a.size).reshape(a.shape) % 400 + 1, "400 different values"),
])
def test_a_scan_passed_as_a_mask_is_refused(tmp_path, values, message):
    im, _, _ = box_case()
    arr = sitk.GetArrayFromImage(im["liver"]).astype(np.float64)
    scan = sitk.GetImageFromArray(values(arr))
    scan.CopyInformation(im["ct"])
    sitk.WriteImage(scan, str(tmp_path / "scan.nii.gz"))
    with pytest.raises(InputError, match=f"not a mask or label map: it holds {message}"):
        flr.load_mask(tmp_path / "scan.nii.gz", im["ct"])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_scan_with_nan_voxels_is_refused(tmp_path, suffix):
    arr = np.full((4, 5, 6), 40.0, np.float32)
    arr[1, 2, 3] = np.nan
    arr[2, 2, 3] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / f"nan{suffix}"))
    # (ITK reads the NaN of a NIfTI file back as 0: the check must look at the file.)
    with pytest.raises(InputError, match="holds 2 voxels that are not numbers"):
        flr.load_image(tmp_path / f"nan{suffix}")


def test_truncated_gzip_file_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.integers(-1000, 1000, (20, 64, 64)).astype(np.int16))
    sitk.WriteImage(img, str(tmp_path / "whole.nii.gz"), useCompression=True)
    data = (tmp_path / "whole.nii.gz").read_bytes()
    assert flr.load_image(tmp_path / "whole.nii.gz").image.GetSize() == (64, 64, 20)
    # Whole: decided from the gzip trailer and the header, without decompressing.
    from flr_volumetry.io._images import _nifti_size_matches
    assert _nifti_size_matches(str(tmp_path / "whole.nii.gz"))
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    assert not _nifti_size_matches(str(tmp_path / "cut.nii.gz"))
    # ITK itself reads it, the missing half as zeros.
    with pytest.raises(InputError, match="is cut short"):
        flr.load_image(tmp_path / "cut.nii.gz")
    with pytest.raises(InputError, match="is cut short"):
        flr.load_mask(tmp_path / "cut.nii.gz")


def test_bad_image_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        flr.load_image(tmp_path / "nothing.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        flr.load_image(tmp_path / "junk.nii.gz")
    sitk.WriteImage(sitk.Image([5, 5], sitk.sitkInt16), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InputError, match="3-D"):
        flr.load_image(tmp_path / "flat.nii.gz")
    (tmp_path / "one.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="folder"):
        flr.load_image(tmp_path / "one.dcm")
    (tmp_path / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)  # no suffix
    with pytest.raises(InputError, match="single DICOM file; pass the folder"):
        flr.load_image(tmp_path / "IM0001")


def test_write_mask_round_trip_and_refuses_unknown_suffix(tmp_path):
    im, n, v = box_case(ROTATED)
    flr.write_mask(im["liver"], tmp_path / "sub" / "liver.nii.gz")
    back = flr.load_mask(tmp_path / "sub" / "liver.nii.gz", im["ct"])
    assert back.warnings == ()
    assert flr.mask_volume_ml(back.image) == pytest.approx(n["liver"] * v)
    with pytest.raises(InputError, match="cannot write"):
        flr.write_mask(im["liver"], tmp_path / "liver.png")
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.startswith(".tmp")]


# Real scans: volumes must equal the voxel counts given in ../shared/data/README.md.
@pytest.mark.parametrize("relpath, spec, expected_ml", [
    ("ct-whole-liver", "labels.nii.gz", 2127.8),
    ("ct-whole-liver", "labels.nii.gz:2", 31.1),
    ("ct-whole-liver/crop", "labels.nii.gz", 2127.8),
    ("ct-whole-liver/crop", "labels.nii.gz:1", 2096.7),
    ("ct-partial-totalsegmentator", "totalseg_multilabel.nii.gz:liver", 1043.1),
    ("ct-partial-totalsegmentator", "per-class", 1062.4),
])
def test_real_ct_volumes(shared_data, relpath, spec, expected_ml):
    folder = shared_data / relpath
    scan = flr.load_image(folder / "ct.nii.gz")
    m = flr.load_mask(f"{folder / spec}", scan.image)
    assert m.warnings == ()
    assert flr.mask_volume_ml(m.image) == pytest.approx(expected_ml, abs=0.05)


@pytest.mark.parametrize("case, expected_ml", [(1, 1849.7), (2, 2121.6)])
def test_real_chaos_float_labels_and_flipped_axis(shared_data, case, expected_ml):
    folder = shared_data / "mr-chaos-t2"
    scan = flr.load_image(folder / f"image_{case}.nii.gz")
    assert scan.image.GetDirection()[4] < 0  # the known flipped y axis
    m = flr.load_mask(f"{folder / f'label_{case}.nii.gz'}:1", scan.image)
    assert flr.mask_volume_ml(m.image) == pytest.approx(expected_ml, abs=0.05)
    assert m.warnings == ()
    # Without the selection the kidneys and spleen are taken too: said, not silent.
    every = flr.load_mask(folder / f"label_{case}.nii.gz", scan.image)
    assert flr.mask_volume_ml(every.image) > expected_ml
    assert any("holds 4 labels (1, 2, 3, 4)" in w for w in every.warnings)


def test_real_partial_liver_is_flagged(shared_data):
    folder = shared_data / "ct-partial-totalsegmentator"
    m = flr.measure_files(folder / "ct.nii.gz", liver=f"{folder / 'totalseg_multilabel.nii.gz'}:5")
    assert m.total_liver_ml == pytest.approx(1043.1, abs=0.05)
    assert any("field of view" in w for w in m.warnings)


def test_write_mask_as_slicer_segmentation(tmp_path):
    im, n, v = box_case(ROTATED)
    flr.write_mask(im["liver"], tmp_path / "liver.seg.nrrd")
    back = flr.load_mask(f"{tmp_path / 'liver.seg.nrrd'}:liver", im["ct"])
    assert flr.mask_volume_ml(back.image) == pytest.approx(n["liver"] * v)


def test_written_files_get_ordinary_permissions(tmp_path):
    import os
    im, _, _ = box_case()
    old = os.umask(0o022)
    try:
        flr.write_mask(im["liver"], tmp_path / "liver.nii.gz")
        flr.io.write_json_atomic({"a": 1}, tmp_path / "a.json")
    finally:
        os.umask(old)
    for name in ("liver.nii.gz", "a.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_a_scan_is_a_reference_as_its_image_is(tmp_path):
    im, n, v = box_case()
    sitk.WriteImage(im["ct"], str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(im["liver"], str(tmp_path / "liver.nii.gz"))
    scan = flr.load_image(tmp_path / "ct.nii.gz")
    m = flr.load_mask(tmp_path / "liver.nii.gz", scan)
    assert flr.mask_volume_ml(m.image) == pytest.approx(n["liver"] * v)
    labels, _ = flr.load_label_map(tmp_path / "liver.nii.gz", scan)
    assert labels.GetSize() == scan.image.GetSize()
    with pytest.raises(InputError, match="must be a Scan .* or a SimpleITK image, not str"):
        flr.load_mask(tmp_path / "liver.nii.gz", str(tmp_path / "ct.nii.gz"))


def test_write_mask_takes_a_mask_and_refuses_a_folder(tmp_path):
    im, n, v = box_case()
    sitk.WriteImage(im["liver"], str(tmp_path / "liver.nii.gz"))
    m = flr.load_mask(tmp_path / "liver.nii.gz")
    flr.write_mask(m, tmp_path / "copy.nii.gz")
    assert flr.mask_volume_ml(sitk.ReadImage(str(tmp_path / "copy.nii.gz"))) == pytest.approx(
        n["liver"] * v)
    (tmp_path / "out.nii.gz").mkdir()
    with pytest.raises(InputError, match="out.nii.gz: it is a folder"):
        flr.write_mask(m, tmp_path / "out.nii.gz")
    with pytest.raises(InputError, match="it is a folder"):
        flr.RemnantPlan(resection="right_hepatectomy").save(tmp_path)
    with pytest.raises(InputError, match="SimpleITK image or a Mask"):
        flr.write_mask(np.zeros((2, 2, 2)), tmp_path / "x.nii.gz")


def test_uncompressed_file_named_gz_is_read_and_a_scan_is_no_mask_to_write(tmp_path):
    im, _, _ = box_case()
    sitk.WriteImage(im["ct"], str(tmp_path / "ct.nii"), useCompression=False)
    os.rename(tmp_path / "ct.nii", tmp_path / "ct.nii.gz")
    scan = flr.load_image(tmp_path / "ct.nii.gz")
    assert scan.image.GetSize() == im["ct"].GetSize()
    with pytest.raises(InputError, match="SimpleITK image or a Mask, not Scan"):
        flr.write_mask(scan, tmp_path / "x.nii.gz")


def test_gzip_members_cut_where_the_next_magic_straddles_a_read(tmp_path):
    import gzip

    from flr_volumetry.io._images import _gzip_complete

    raw = os.urandom(300_000)
    first = gzip.compress(raw)
    # The second member's first byte is the last of a 4096-byte read; the file is cut
    # inside that member.
    pad = 4096 - len(first) % 4096 - 1
    data = gzip.compress(raw[:pad]) if pad > 20 else b""
    members = first + data
    second = gzip.compress(os.urandom(200_000))
    path = tmp_path / "x.gz"
    path.write_bytes(members + second[: len(second) // 2])
    assert _gzip_complete(str(path), chunk_bytes=len(members) + 1) is False
    path.write_bytes(members + second)
    assert _gzip_complete(str(path), chunk_bytes=len(members) + 1) is True


def test_float_scan_named_gz_but_not_compressed_is_read(tmp_path):
    arr = np.full((4, 5, 6), 40.0, np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "f.nii"), useCompression=False)
    os.rename(tmp_path / "f.nii", tmp_path / "f.nii.gz")
    assert flr.load_image(tmp_path / "f.nii.gz").image.GetSize() == (6, 5, 4)
