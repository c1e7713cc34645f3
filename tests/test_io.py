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


@pytest.mark.parametrize("selection", ["0", "0,1"])
def test_label_zero_is_refused_as_the_background(tmp_path, selection):
    # FILE:0 had measured everything outside the liver as the liver (14 L on a real CT)
    im, _, _ = box_case()
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(im["liver"], str(path))
    with pytest.raises(InputError, match="label 0 is the background"):
        flr.load_mask(f"{path}:{selection}", im["ct"])


def _liver_tumour_labels(tmp_path, dtype):
    """(path, box case images, voxel counts, voxel mL) of a labels.nii.gz of ``dtype``:
    1 the liver's parenchyma, 2 its tumour."""
    im, n, v = box_case()
    lab = sitk.GetArrayFromImage(im["liver"]).astype(dtype)
    lab[sitk.GetArrayFromImage(im["tumor"]) > 0] = 2
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(image_like(lab), str(path))
    return path, im, n, v


def test_label_selection_and_float_labels(tmp_path):
    path, im, n, v = _liver_tumour_labels(tmp_path, np.float32)
    ref = im["ct"]
    whole = flr.load_mask(path, ref)
    parenchyma = flr.load_mask(f"{path}:1", ref)
    tumour = flr.load_mask(f"{path}:2", ref)
    both = flr.load_mask(f"{path}:1,2", ref)
    assert flr.mask_volume_ml(whole.image) == pytest.approx(n["liver"] * v)
    assert flr.mask_volume_ml(both.image) == pytest.approx(n["liver"] * v)
    assert flr.mask_volume_ml(parenchyma.image) == pytest.approx((n["liver"] - n["tumor"]) * v)
    assert flr.mask_volume_ml(tumour.image) == pytest.approx(n["tumor"] * v)


def test_a_liver_and_tumour_map_is_whole_only_as_a_liver(tmp_path):
    # Given whole as --tumor, the real CT's labels (1 parenchyma, 2 tumour) had measured a
    # 2127.8 mL tumour (31.1 mL) and 0 mL of functional liver; as --flr, an sFLR of 141 %.
    path, im, n, v = _liver_tumour_labels(tmp_path, np.uint8)
    whole = flr.load_mask(path, im["ct"])
    assert flr.mask_volume_ml(whole.image) == pytest.approx(n["liver"] * v)
    with pytest.raises(InputError, match=r"holds labels 1 and 2, .* select .*labels\.nii\.gz:2"):
        flr.load_mask(path, im["ct"], whole_liver=False, what="tumour mask")
    chosen = flr.load_mask(f"{path}:2", im["ct"], whole_liver=False, what="tumour mask")
    assert flr.mask_volume_ml(chosen.image) == pytest.approx(n["tumor"] * v)
    # Other pairs of labels (two drawn parts of an FLR) are no such map.
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    lab[lab == 2] = 3
    sitk.WriteImage(image_like(lab), str(path))
    parts = flr.load_mask(path, im["ct"], whole_liver=False, what="FLR mask")
    assert flr.mask_volume_ml(parts.image) == pytest.approx(n["liver"] * v)


def test_float_residue_below_rounding_is_background(tmp_path):
    # 4e-4 of interpolation residue around a float mask passed the integer check (rounded
    # to 0) and was then counted as liver (+31 %, exit 0).
    im, n, v = box_case()
    a = sitk.GetArrayFromImage(im["liver"]).astype(np.float32)
    a[a == 0] = 4e-4
    sitk.WriteImage(image_like(a), str(tmp_path / "soft.nii.gz"))
    m = flr.load_mask(tmp_path / "soft.nii.gz", im["ct"])
    assert flr.mask_volume_ml(m.image) == pytest.approx(n["liver"] * v)


def test_an_8_bit_scan_is_no_label_map(tmp_path):
    # A uint8 scan holds at most 255 values, under the limit of distinct values: read as
    # 'FILE:1', its grey level 1 had been measured as a 1449 mL liver.
    im, _, _ = box_case()
    shape = sitk.GetArrayFromImage(im["liver"]).shape
    scan = (np.arange(int(np.prod(shape))).reshape(shape) % 256).astype(np.uint8)
    sitk.WriteImage(image_like(scan), str(tmp_path / "mr8.nii.gz"))
    for spec in ("mr8.nii.gz", "mr8.nii.gz:1"):
        with pytest.raises(InputError, match="not a mask or label map: it holds 255 different"):
            flr.load_mask(tmp_path / spec, im["ct"])


def test_absent_label_is_an_error(tmp_path):
    im, _, _ = box_case()
    sitk.WriteImage(im["liver"], str(tmp_path / "l.nii.gz"))
    with pytest.raises(InputError, match="label 7"):
        flr.load_mask(f"{tmp_path / 'l.nii.gz'}:7", im["ct"])


def test_a_selection_naming_an_absent_label_says_so(tmp_path):
    # 'segments.nii.gz:1,9' measured segment 1 alone, and said nothing of the 9 (a typo for
    # 8, or a label this scan's map lacks): the volume looked like that of the selection.
    im, n, v = box_case()
    two = sitk.GetArrayFromImage(im["liver"]).astype(np.uint8)
    two[two > 0] = 1
    two[tuple(s // 2 for s in two.shape)] = 3
    sitk.WriteImage(image_like(two), str(tmp_path / "seg.nii.gz"))
    m = flr.load_mask(f"{tmp_path / 'seg.nii.gz'}:1,9", im["ct"])
    assert flr.mask_volume_ml(m.image) == pytest.approx((n["liver"] - 1) * v)
    assert any("no label 9" in w and "1, 3" in w for w in m.warnings), m.warnings
    # Every label of the selection present: nothing to say.
    assert flr.load_mask(f"{tmp_path / 'seg.nii.gz'}:1,3", im["ct"]).warnings == ()


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
    # The folder with a structure name reads that structure's file whole (it had selected
    # label 5 of the binary liver file: "has no voxel with label 5 ... it is empty").
    sitk.WriteImage(im["tumor"], str(folder / "liver_tumor.nii.gz"))
    assert flr.mask_volume_ml(flr.load_mask(f"{folder}:liver", im["ct"]).image) == \
        pytest.approx(n["liver"] * v)
    assert flr.mask_volume_ml(flr.load_mask(f"{folder}:liver_tumor", im["ct"]).image) == \
        pytest.approx(n["tumor"] * v)
    with pytest.raises(InputError, match="a folder of per-class files takes one structure "
                                         "name"):
        flr.load_mask(f"{folder}:5", im["ct"])
    # Its files are named in lower case: FOLDER:Liver had found none.
    assert flr.mask_volume_ml(flr.load_mask(f"{folder}:Liver", im["ct"]).image) == \
        flr.mask_volume_ml(flr.load_mask(f"{folder}:liver", im["ct"]).image)


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


def test_a_mask_stored_flipped_or_permuted_is_placed_exactly_without_a_warning(tmp_path):
    # The same voxels in another axis order: the warning had said "2127.8 mL before,
    # 2127.8 mL after" on every such file. Half a voxel off is still said.
    im, n, v = box_case()
    ref = im["ct"]
    stored = sitk.PermuteAxes(sitk.Flip(im["liver"], [True, False, True]), [1, 0, 2])
    assert not flr.io.same_grid(stored, ref)
    out, warning = flr.io.resample_mask_to(stored, ref, what="liver mask")
    assert warning is None and flr.io.same_grid(out, ref)
    assert np.array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(im["liver"]))
    sitk.WriteImage(stored, str(tmp_path / "liver.nii.gz"))
    m = flr.load_mask(tmp_path / "liver.nii.gz", ref)
    assert m.warnings == () and flr.mask_volume_ml(m.image) == pytest.approx(n["liver"] * v)
    shifted = sitk.Image(im["liver"])
    shifted.SetOrigin([o + s / 2 for o, s in zip(ref.GetOrigin(), ref.GetSpacing())])
    assert "resampled by nearest neighbour" in flr.io.resample_mask_to(shifted, ref)[1]


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
    with pytest.raises(InputError, match="holds 2 voxels that are not a number"):
        flr.load_image(tmp_path / f"nan{suffix}")


def test_truncated_gzip_file_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(rng.integers(-1000, 1000, (20, 64, 64)).astype(np.int16))
    sitk.WriteImage(img, str(tmp_path / "whole.nii.gz"), useCompression=True)
    data = (tmp_path / "whole.nii.gz").read_bytes()
    assert flr.load_image(tmp_path / "whole.nii.gz").image.GetSize() == (64, 64, 20)
    # Whole: decided from the gzip trailer and the header, without decompressing.
    from flr_volumetry.io._filechecks import _gzip_trailer_size
    assert _gzip_trailer_size(str(tmp_path / "whole.nii.gz")) == 352 + 2 * 20 * 64 * 64
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    assert _gzip_trailer_size(str(tmp_path / "cut.nii.gz")) != 352 + 2 * 20 * 64 * 64
    # ITK itself reads it, the missing half as zeros.
    with pytest.raises(InputError, match="is cut short"):
        flr.load_image(tmp_path / "cut.nii.gz")
    with pytest.raises(InputError, match="is cut short"):
        flr.load_mask(tmp_path / "cut.nii.gz")


@pytest.mark.parametrize("loop", [False, True])
def test_broken_link_is_said_as_a_link(tmp_path, loop):
    # a link shows in the folder: "does not exist" would send the user looking for a typo
    link = tmp_path / "scan.nii.gz"
    os.symlink(link if loop else tmp_path / "moved" / "scan.nii.gz", link)
    for read in (flr.load_image, flr.load_mask, flr.RemnantPlan.load):
        with pytest.raises(InputError, match="symbolic link whose target .* cannot be reached"):
            read(link)
    with pytest.raises(InputError, match="symbolic link"):
        flr.load_mask(f"{link}:1")


@pytest.mark.parametrize("units, shown", [("meter", "2000 x 2000 x 2000 mm"),
                                          ("micron", "0.002 x 0.002 x 0.002 mm")])
def test_voxel_size_no_patient_scan_has_is_refused(tmp_path, units, shown):
    # ITK scales a NIfTI's spacing by its xyzt_units: a 2 mm scan labelled in metres had
    # measured a liver of 8e9 mL, with field-of-view warnings only
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image(np.ones((6, 6, 6), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_xyzt_units(xyz=units)
    path = tmp_path / "scan.nii.gz"
    nib.save(img, path)
    for read in (flr.load_image, flr.load_mask):
        with pytest.raises(InputError, match=f"voxel size of {shown}, which no patient scan"):
            read(path)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".seg.nrrd"])
def test_voxel_size_no_patient_scan_has_is_refused_in_every_format(tmp_path, suffix):
    # A .seg.nrrd (read without ITK) had measured a 2000 mm grid as a 512000000 mL liver.
    path = tmp_path / f"liver{suffix}"
    if suffix == ".seg.nrrd":
        nrrd = pytest.importorskip("nrrd")
        nrrd.write(str(path), np.ones((6, 6, 6), np.uint8), {
            "space": "left-posterior-superior", "space directions": np.eye(3) * 2000.0,
            "space origin": [0.0, 0.0, 0.0], "Segment0_Name": "liver",
            "Segment0_LabelValue": "1", "Segment0_Layer": "0"})
    else:
        img = sitk.GetImageFromArray(np.ones((6, 6, 6), np.uint8))
        img.SetSpacing((2000.0, 2000.0, 2000.0))
        sitk.WriteImage(img, str(path))
    with pytest.raises(InputError, match="voxel size of 2000 x 2000 x 2000 mm, which no "
                                         "patient scan has .*spacing written in metres"):
        flr.load_mask(path)


def test_complex_scans_are_refused_and_one_component_vectors_are_scans(tmp_path):
    # Both had passed the loader and failed inside the segmentation ("unexpected failure
    # (RuntimeError: ... Pixel type: complex of 32-bit float is not supported").
    a = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    c = sitk.GetImageFromArray(a.astype(np.complex64))
    sitk.WriteImage(c, str(tmp_path / "complex.nii.gz"))
    with pytest.raises(InputError, match=r"complex\.nii\.gz holds complex values .* magnitude"):
        flr.load_image(tmp_path / "complex.nii.gz")
    v = sitk.GetImageFromArray(a[..., None], isVector=True)  # a NRRD 'list' axis of size 1
    v.SetSpacing((0.8, 0.8, 2.5))
    sitk.WriteImage(v, str(tmp_path / "list.nrrd"))
    scan = flr.load_image(tmp_path / "list.nrrd")
    assert scan.image.GetPixelID() == sitk.sitkInt16
    assert scan.image.GetSpacing() == (0.8, 0.8, 2.5)
    assert np.array_equal(sitk.GetArrayFromImage(scan.image), a)


def test_files_the_image_library_cannot_read_say_what_they_are(tmp_path):
    # Each had been refused in ITK's words: "Unable to determine ImageIO reader", "Zero-
    # valued spacing is not supported", and a multi-frame file sent to "pass the folder",
    # where it was refused again.
    import nibabel as nib
    import pydicom
    from pydicom.dataset import FileMetaDataset

    a = np.zeros((6, 7, 8), np.int16)
    nib.save(nib.Nifti2Image(a, np.diag([0.8, 0.8, 2.5, 1.0])), str(tmp_path / "n2.nii.gz"))
    with pytest.raises(InputError, match=r"n2\.nii\.gz is a NIfTI-2 file, .* save it as "
                                         r"NIfTI-1"):
        flr.load_image(tmp_path / "n2.nii.gz")
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = "
              "False\nDimSize = 8 7 6\nElementSpacing = 0 0.8 2.5\nElementType = MET_SHORT\n"
              "ElementDataFile = LOCAL\n")
    (tmp_path / "sp0.mha").write_bytes(header.encode() + a.tobytes())
    with pytest.raises(InputError, match=r"sp0\.mha has a voxel size of 0 x 0\.8 x 2\.5 mm, "
                                         r"not a finite positive size"):
        flr.load_image(tmp_path / "sp0.mha")
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.NumberOfFrames, ds.Rows, ds.Columns, ds.Modality = 40, 8, 8, "CT"
    ds.save_as(str(tmp_path / "enhanced.dcm"), enforce_file_format=True)
    with pytest.raises(InputError, match=r"enhanced\.dcm is a multi-frame \(enhanced\) DICOM "
                                         r"image of 40 frames, which is not supported; convert"):
        flr.load_image(tmp_path / "enhanced.dcm")


def test_bad_image_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        flr.load_image(tmp_path / "nothing.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        flr.load_image(tmp_path / "junk.nii.gz")
    sitk.WriteImage(sitk.Image([6, 6, 6], sitk.sitkInt16), str(tmp_path / "ct.nii.gz"))
    with pytest.raises(InputError, match=r"a SeriesInstanceUID \(1\.2\.3\) selects a series of "
                                         r"a DICOM folder; .*ct\.nii\.gz is a single file"):
        flr.load_image(tmp_path / "ct.nii.gz", series_uid="1.2.3")
    (tmp_path / "empty.nii.gz").write_bytes(b"")  # ITK: "Unable to determine ImageIO reader"
    with pytest.raises(InputError, match=r"empty\.nii\.gz is empty \(0 bytes\)"):
        flr.load_image(tmp_path / "empty.nii.gz")
    sheared = sitk.Image([6, 6, 6], sitk.sitkInt16)
    sheared.SetDirection((1.0, 0.3, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(sheared, str(tmp_path / "sheared.mha"))  # NIfTI would orthogonalise it
    with pytest.raises(InputError, match=r"sheared\.mha has a direction matrix that is not a "
                                         r"rotation"):
        flr.load_image(tmp_path / "sheared.mha")
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


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("kept_fraction", [0.0, 0.5])
def test_a_mask_file_the_writer_left_short_is_refused(tmp_path, monkeypatch, suffix,
                                                      kept_fraction):
    # On a full disk ITK's NIfTI writer prints "NWAD: wrote only 40608 of 13565952 bytes"
    # and returns: the short file had replaced the earlier one, "written", exit 0.
    from flr_volumetry.io import _writers

    im, _, _ = box_case(ROTATED)
    target = tmp_path / f"liver{suffix}"
    target.write_bytes(b"the earlier run's mask")
    real_write = _writers.sitk.WriteImage

    def short_write(image, path, *args, **kwargs):
        real_write(image, path, *args, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(int(kept_fraction * os.path.getsize(path)))

    monkeypatch.setattr(_writers.sitk, "WriteImage", short_write)
    with pytest.raises(InputError, match=r"^cannot write .*liver\.nii(\.gz)?: the file came "
                                         r"out (empty or unreadable|incomplete)") as err:
        flr.write_mask(im["liver"], target)
    assert ".tmp" not in str(err.value) and "\n" not in str(err.value)
    assert target.read_bytes() == b"the earlier run's mask"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("failure", [
    RuntimeError("Exception thrown in SimpleITK ImageFileWriter_Execute: /src/itk.cxx:42:\n"
                 "ITK ERROR: NrrdImageIO(0x55): Write: Error writing {tmp}:\n"
                 "[nrrd] nrrdSave: trouble\n[nrrd] _nrrdEncodingRaw_write: fwrite failed"),
    OSError(28, "No space left on device"),
])
def test_a_failed_write_is_one_sentence_naming_the_file(tmp_path, monkeypatch, failure):
    # A dozen lines of ITK's NRRD errors, or pydicom's nested traceback text, had been
    # printed as an "unexpected failure".
    from flr_volumetry.io import _writers

    im, _, _ = box_case(ROTATED)

    def failing(image, path, *args, **kwargs):
        open(path, "wb").close()
        if isinstance(failure, RuntimeError):
            raise RuntimeError(failure.args[0].format(tmp=path))
        raise failure

    monkeypatch.setattr(_writers.sitk, "WriteImage", failing)
    with pytest.raises(InputError) as err:
        flr.write_mask(im["liver"], tmp_path / "liver.nrrd")
    message = str(err.value)
    assert message.startswith(f"cannot write {tmp_path / 'liver.nrrd'}: ")
    assert "\n" not in message and ".tmp" not in message
    assert os.listdir(tmp_path) == []


def test_a_file_a_writer_needed_is_named_as_itself_and_code_errors_pass(tmp_path):
    # Inside the write, a source slice gone had been said as "cannot write liver.dcm: No such
    # file or directory", and a NotImplementedError as a write failure (review).
    from flr_volumetry.io._writers import all_or_none

    out = tmp_path / "liver.dcm"
    with pytest.raises(InputError, match=r"^cannot use .*slice7\.dcm \(No such file or "
                                         r"directory\) while writing .*liver\.dcm\.$"):
        with all_or_none([out]):
            raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "slice7.dcm"))
    with pytest.raises(NotImplementedError):
        with all_or_none([out]):
            raise NotImplementedError("a code path")
    assert os.listdir(tmp_path) == []


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


def test_an_output_that_is_a_pipe_or_device_is_refused_not_replaced(tmp_path):
    # The temporary file was renamed over it: run as root, '--json /dev/full' replaced the
    # machine's /dev/full with a JSON file (exit 0), and a FIFO's reader got nothing.
    import stat

    from flr_volumetry.io._writers import write_json_atomic

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        write_json_atomic({"a": 1}, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe.json"]  # no temporary file left either
    # A link to one is refused too, before any work (check_writable).
    os.symlink(fifo, tmp_path / "link.json")
    with pytest.raises(InputError, match="not a regular file"):
        flr.io.check_writable(tmp_path / "link.json")


def test_an_output_through_dev_or_proc_is_refused(tmp_path):
    # '--json /dev/stdout >> log.txt' resolved, through /proc/self/fd/1, to log.txt, which
    # the rename replaced: the earlier lines of the log were lost (exit 0).
    link = tmp_path / "out.json"
    os.symlink("/dev/stdout", link)
    os.symlink("/proc", tmp_path / "proclink")  # a linked folder on the way
    for path in ("/dev/stdout", "/proc/self/fd/1", "//proc/self/fd/1", str(link),
                 str(tmp_path / "proclink" / "self" / "fd" / "1")):
        with pytest.raises(InputError, match="not a regular file"):
            flr.io.check_writable(path)
    if os.path.isdir("/dev/shm"):  # a RAM disk: its files are files
        flr.io.check_writable("/dev/shm/flr-volumetry-test.json")


def test_an_output_that_is_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    # The link itself was replaced by a file, leaving the file it names unchanged.
    from flr_volumetry.io._writers import write_json_atomic

    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "m.json"
    target.write_text("old")
    link = tmp_path / "m.json"
    os.symlink(target, link)
    write_json_atomic({"a": 1}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"a": 1' in target.read_text()
    assert sorted(os.listdir(tmp_path / "results")) == ["m.json"]


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
    with pytest.raises(InputError, match="must be a SimpleITK image, a Scan or a Mask .*not str"):
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

    from flr_volumetry.io._filechecks import gunzipped_size

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
    assert gunzipped_size(str(path), chunk_bytes=len(members) + 1) is None
    path.write_bytes(members + second)
    assert gunzipped_size(str(path), chunk_bytes=len(members) + 1) == 500_000 + pad * (pad > 20)


def test_float_scan_named_gz_but_not_compressed_is_read(tmp_path):
    arr = np.full((4, 5, 6), 40.0, np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "f.nii"), useCompression=False)
    os.rename(tmp_path / "f.nii", tmp_path / "f.nii.gz")
    assert flr.load_image(tmp_path / "f.nii.gz").image.GetSize() == (6, 5, 4)


# --------------------------------------------------------------------- files ITK misreads
def _nifti(tmp_path, name, arr, pixdim=(0.8, 0.9, 2.5), sform=None):
    """A NIfTI written by nibabel (x, y, z array), qform from ``pixdim``; ``sform`` too."""
    import nibabel as nib

    img = nib.Nifti1Image(arr, np.diag([*pixdim, 1.0]))
    img.set_qform(np.diag([*pixdim, 1.0]), code=1)
    img.set_sform(np.diag([*pixdim, 1.0]) if sform is None else sform, code=1)
    path = tmp_path / name
    nib.save(img, str(path))
    return path


def _cube(dtype=np.uint8):
    arr = np.zeros((10, 8, 6), dtype)
    arr[2:8, 2:6, 1:5] = 1
    return arr


def test_nifti_data_cut_short_is_refused_not_read_as_zeros(tmp_path):
    import gzip

    whole = _nifti(tmp_path, "whole.nii", _cube())
    data = whole.read_bytes()
    assert flr.mask_volume_ml(flr.load_mask(whole).image) == pytest.approx(96 * 0.8 * 0.9 * 2.5 / 1000)
    # Uncompressed, cut: ITK read the missing voxels as 0 (a third of the mask).
    (tmp_path / "cut.nii").write_bytes(data[:-300])
    # Compressed whole, but the data inside were already short.
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(data[:-300]))
    for name in ("cut.nii", "short.nii.gz"):
        with pytest.raises(InputError, match=f"{name} is cut short: it holds {len(data) - 300} "
                                             f"bytes where its header needs {len(data)}"):
            flr.load_mask(tmp_path / name)
        with pytest.raises(InputError, match="is cut short"):
            flr.load_image(tmp_path / name)


def test_nifti_pair_with_short_img_is_refused(tmp_path):
    import nibabel as nib

    arr = _cube(np.int16)
    nib.save(nib.Nifti1Pair(arr, np.diag([0.8, 0.9, 2.5, 1.0])), str(tmp_path / "m.hdr"))
    assert flr.mask_volume_ml(flr.load_mask(tmp_path / "m.hdr").image) > 0
    img = (tmp_path / "m.img").read_bytes()
    (tmp_path / "m.img").write_bytes(img[: len(img) // 2])
    with pytest.raises(InputError, match="m.img is cut short"):
        flr.load_mask(tmp_path / "m.hdr")


@pytest.mark.parametrize("bad", [0.0, np.nan, np.inf])
def test_nifti_voxel_size_that_is_no_positive_number_is_refused(tmp_path, bad):
    # ITK reads a pixdim of 0, NaN or infinity as 1 mm (and nibabel writes 0 as 1: the
    # bytes are set here).
    import struct

    data = bytearray(_nifti(tmp_path, "m.nii", _cube()).read_bytes())
    data[84:88] = struct.pack("<f", bad)  # pixdim[2]
    (tmp_path / "bad.nii").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"gives a voxel size of 0.8 x (0|nan|inf) x 2.5 mm in "
                                         r"its header \(pixdim\), not a positive number"):
        flr.load_mask(tmp_path / "bad.nii")


def test_nrrd_and_metaimage_voxel_sizes_that_are_not_finite_are_refused(tmp_path, capfd):
    sitk.WriteImage(image_like(_cube().transpose(2, 1, 0)), str(tmp_path / "m.nrrd"))
    text = (tmp_path / "m.nrrd").read_bytes()
    head, data = text.split(b"\n\n", 1)
    head = b"\n".join(line for line in head.split(b"\n")
                      if not line.startswith((b"space directions", b"space:", b"space origin")))
    (tmp_path / "nan.nrrd").write_bytes(head + b"\nspacings: 0.8 nan 2.5\n\n" + data)
    with pytest.raises(InputError, match=r"gives its voxel spacings as 0.8 nan 2.5"):
        flr.load_mask(tmp_path / "nan.nrrd")
    sitk.WriteImage(image_like(_cube().transpose(2, 1, 0)), str(tmp_path / "m.mha"))
    raw = (tmp_path / "m.mha").read_bytes()
    start = raw.index(b"ElementSpacing = ")
    end = raw.index(b"\n", start)
    (tmp_path / "huge.mha").write_bytes(raw[:start] + b"ElementSpacing = 1e200 1e200 1e200"
                                        + raw[end:])
    # The voxel volume overflows: a volume of Infinity had been written to the JSON.
    with pytest.raises(InputError, match="not a finite positive size"):
        flr.load_mask(tmp_path / "huge.mha")
    assert capfd.readouterr().err == ""  # no raw numpy overflow warning either


def test_nifti_whose_qform_and_sform_give_different_voxel_sizes_is_refused(tmp_path):
    # ITK reads the qform (0.864 mL), nibabel and FSL the sform (2.4 mL).
    path = _nifti(tmp_path, "two.nii.gz", _cube(), sform=np.diag([1.0, 1.0, 5.0, 1.0]))
    with pytest.raises(InputError, match=r"two geometries with different voxel sizes \(qform "
                                         r"0.8 x 0.9 x 2.5 mm, sform 1 x 1 x 5 mm\)"):
        flr.load_mask(path)
    # The same voxel volume (a sheared sform beside its qform): read as before.
    shear = np.diag([0.8, 0.9, 2.5, 1.0])
    shear[0, 1] = 0.3
    path = _nifti(tmp_path, "shear.nii.gz", _cube(), sform=shear)
    assert flr.mask_volume_ml(flr.load_mask(path).image) == pytest.approx(96 * 0.8 * 0.9 * 2.5 / 1000)


def test_nan_voxels_of_a_float_nifti_mask_are_refused(tmp_path):
    arr = _cube(np.float32)
    arr[4, 3, 2] = np.nan
    # ITK reads the NaN as 0: the mask would lose the voxel without a word.
    with pytest.raises(InputError, match="holds 1 voxel that is not a number"):
        flr.load_mask(_nifti(tmp_path, "nan.nii", arr))


def test_nrrd_cut_short_is_one_sentence(tmp_path):
    # ITK's words had been "cannot read FILE as an image (Read: Error reading FILE:)".
    img = image_like(_cube(np.int16).transpose(2, 1, 0))
    sitk.WriteImage(img, str(tmp_path / "m.nrrd"), useCompression=False)
    raw = (tmp_path / "m.nrrd").read_bytes()
    (tmp_path / "cut.nrrd").write_bytes(raw[:-100])
    with pytest.raises(InputError, match="cut.nrrd is cut short: it holds 860 bytes of voxel "
                                         "data where its header needs 960"):
        flr.load_image(tmp_path / "cut.nrrd")
    assert flr.load_image(tmp_path / "m.nrrd").image.GetSize() == img.GetSize()
    sitk.WriteImage(img, str(tmp_path / "z.nrrd"), useCompression=True)
    assert flr.load_image(tmp_path / "z.nrrd").image.GetSize() == img.GetSize()


def test_metaimage_cut_short_or_without_its_data_file_is_one_sentence(tmp_path, capfd):
    sitk.WriteImage(image_like(_cube().transpose(2, 1, 0)), str(tmp_path / "m.mha"))
    raw = (tmp_path / "m.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(raw[:-100])
    with pytest.raises(InputError, match="cut.mha is cut short: it holds 380 bytes of voxel "
                                         "data where its header needs 480"):
        flr.load_mask(tmp_path / "cut.mha")
    sitk.WriteImage(image_like(_cube().transpose(2, 1, 0)), str(tmp_path / "d.mhd"))
    os.remove(tmp_path / "d.raw")
    with pytest.raises(InputError, match="names its data file d.raw, which does not exist"):
        flr.load_mask(tmp_path / "d.mhd")
    # MetaIO's own lines ('data not read completely') no longer reach the terminal.
    assert capfd.readouterr().err == ""


def test_review_cases_of_the_file_checks(tmp_path):
    import nibabel as nib

    # An sform without a qform, its voxel size not pixdim's: ITK reads pixdim (2.5 mm),
    # FSL and nibabel the sform (2.0 mm).
    img = nib.Nifti1Image(_cube(), np.diag([0.8, 0.9, 2.0, 1.0]))
    img.set_qform(None, code=0)
    img.header["pixdim"][3] = 2.5
    img.to_filename(str(tmp_path / "sform_only.nii"))
    with pytest.raises(InputError, match="two geometries with different voxel sizes"):
        flr.load_mask(tmp_path / "sform_only.nii")
    # MetaIO reads 'ElementDataFile = Local' as LOCAL.
    sitk.WriteImage(image_like(_cube().transpose(2, 1, 0)), str(tmp_path / "m.mha"))
    raw = (tmp_path / "m.mha").read_bytes().replace(b"= LOCAL", b"= Local")
    (tmp_path / "local.mha").write_bytes(raw)
    assert flr.mask_volume_ml(flr.load_mask(tmp_path / "local.mha").image) > 0
    # NaN in a float .hdr/.img pair (ITK reads it as 0).
    arr = _cube(np.float32)
    arr[4, 3, 2] = np.nan
    nib.save(nib.Nifti1Pair(arr, np.diag([0.8, 0.9, 2.5, 1.0])), str(tmp_path / "p.hdr"))
    with pytest.raises(InputError, match="holds 1 voxel that is not a number"):
        flr.load_mask(tmp_path / "p.hdr")


def test_what_load_image_and_load_mask_return_is_taken_as_it_is(tmp_path):
    # A research script passes on what the loaders return: Mask and Scan objects had met raw
    # AttributeErrors in flr_from_plan, flr_from_segments, carry_plan, the SEG writers,
    # voxel_volume_ml and measure_files, and a "must be a SimpleITK image" refusal in measure.
    im, n, v = box_case()
    sitk.WriteImage(im["ct"], str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(im["liver"], str(tmp_path / "liver.nii.gz"))
    scan = flr.load_image(tmp_path / "ct.nii.gz")
    assert flr.load_image(scan) is scan
    liver = flr.load_mask(tmp_path / "liver.nii.gz", scan)
    assert flr.voxel_volume_ml(liver) == flr.voxel_volume_ml(scan) == pytest.approx(v)
    assert flr.measure(liver).total_liver_ml == pytest.approx(n["liver"] * v)
    by_files = flr.measure_files(scan, liver=str(tmp_path / "liver.nii.gz"))
    for given in (liver, liver.image):
        assert flr.measure_files(scan, liver=given, patient={"height_cm": 170, "weight_kg": 70},
                                 ).total_liver_ml == by_files.total_liver_ml
    plan = flr.RemnantPlan(remnant_segments=[2])
    seg = sitk.Cast(liver.image * 2, sitk.sitkUInt8)  # all segment 2
    flr_mask, _, _ = flr.flr_from_plan(plan, liver, seg)
    assert flr.mask_volume_ml(flr_mask) == pytest.approx(n["liver"] * v)
    flr_mask, _ = flr.flr_from_segments(seg, liver, remnant_segments=[2])
    assert flr.mask_volume_ml(flr_mask) == pytest.approx(n["liver"] * v)
    flr.write_seg_nrrd({"liver": liver}, tmp_path / "l.seg.nrrd")
    assert flr.mask_volume_ml(flr.read_seg_nrrd(tmp_path / "l.seg.nrrd")) == pytest.approx(
        n["liver"] * v)
    with pytest.raises(InputError, match="load_image reads a file or a DICOM folder"):
        flr.load_image(liver.image)


def test_options_as_dicts_and_segment_selection_refusals(tmp_path):
    im, n, v = box_case()
    seg = sitk.Cast(im["liver"] * 2, sitk.sitkUInt8)
    with pytest.raises(InputError, match="say which segments remain"):
        flr.flr_from_segments(seg, im["liver"])  # had been a TypeError
    with pytest.raises(InputError, match="missing must be 'error' or 'warn'"):
        flr.flr_from_segments(seg, im["liver"], resection="right_hepatectomy", missing="raise")
    with pytest.raises(InputError, match="segmentation options has no field 'coarse'"):
        flr.segment_liver(im["ct"], options={"coarse": 3.0})
    from flr_volumetry.study import StudyLayoutError
    with pytest.raises(StudyLayoutError, match="volumetry options has no field 'telv'"):
        flr.BatchOptions(volumetry={"telv": "urata"})
    assert flr.BatchOptions(volumetry={"telv_formula": "urata"}).volumetry == \
        flr.VolumetryOptions(telv_formula="urata")


def test_reads_in_threads_leave_stderr_and_itk_warnings_as_they_were():
    # Two reads overlapping in threads: the first to finish had restored stderr, the
    # second then "restored" the first's temporary file, so that everything the process
    # wrote to stderr afterwards (tracebacks, logs) went to a deleted file.
    import threading

    from flr_volumetry.io._images import itk_warnings_hidden

    def fd2():
        st = os.fstat(2)
        return st.st_dev, st.st_ino

    before, shown = fd2(), sitk.ProcessObject.GetGlobalWarningDisplay()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with itk_warnings_hidden():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with itk_warnings_hidden():
            b_in.set()
            a_out.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert fd2() == before
    assert sitk.ProcessObject.GetGlobalWarningDisplay() == shown


def test_a_file_name_not_in_utf8_is_refused_not_an_abort(tmp_path):
    # SimpleITK aborted the whole process (exit 134, no message) on such a name.
    name = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"\xff\xfe.nii.gz"))
    img = sitk.Image([4, 4, 3], sitk.sitkInt16)
    with open(name, "wb") as fh:  # any bytes: the name is refused before they are read
        fh.write(b"\x00")
    with pytest.raises(InputError, match="not valid UTF-8"):
        flr.load_image(name)
    with pytest.raises(InputError, match="not valid UTF-8"):
        flr.write_mask(img, name[:-7] + "out.nii.gz")


@pytest.mark.parametrize("reader", ["load_mask", "load_label_map", "read_seg_nrrd",
                                    "read_dicom_seg"])
@pytest.mark.parametrize("given", [None, np.zeros((2, 2, 2), np.uint8),
                                   sitk.Image([2, 2, 2], sitk.sitkUInt8)])
def test_a_reader_given_no_path_says_so_in_a_sentence(reader, given):
    # An image, an array or None where a file is named had raised os.fspath's bare TypeError.
    with pytest.raises(InputError, match=rf"{reader} reads .* given by its path"):
        getattr(flr, reader)(given)


def test_write_mask_given_no_path_says_so_in_a_sentence():
    with pytest.raises(InputError, match="write_mask writes a file given by its path"):
        flr.write_mask(sitk.Image([2, 2, 2], sitk.sitkUInt8), None)


def test_measure_files_says_what_masks_out_and_modality_must_be(tmp_path):
    # masks_out given a folder had failed with an AttributeError after the whole measurement;
    # modality="xray" had passed unsaid when a liver mask was given.
    im, _, _ = box_case()
    sitk.WriteImage(im["ct"], str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(im["liver"], str(tmp_path / "liver.nii.gz"))
    liver = str(tmp_path / "liver.nii.gz")
    with pytest.raises(InputError, match="masks_out must be a dict"):
        flr.measure_files(tmp_path / "ct.nii.gz", liver=liver, masks_out=tmp_path / "masks")
    with pytest.raises(InputError, match="unknown modality 'xray'"):
        flr.measure_files(tmp_path / "ct.nii.gz", liver=liver, modality="xray")
    masks = {}
    flr.measure_files(tmp_path / "ct.nii.gz", liver=liver, modality="MR", masks_out=masks)
    assert list(masks) == ["liver"]


def test_a_mask_on_the_scans_grid_within_rounding_is_counted_with_the_scans_spacing(tmp_path):
    # Its own spacing, 1e-6 off (another tool's rounding), had carried into every volume.
    im, n, v = box_case()
    ref = im["ct"]
    mask = sitk.Image(im["liver"])
    mask.SetSpacing([s * (1 + 1e-6) for s in ref.GetSpacing()])
    sitk.WriteImage(mask, str(tmp_path / "liver.nii.gz"))
    m = flr.load_mask(tmp_path / "liver.nii.gz", ref)
    assert m.warnings == () and m.image.GetSpacing() == ref.GetSpacing()
    assert flr.mask_volume_ml(m.image) == flr.mask_volume_ml(im["liver"])
    assert mask.GetSpacing() != ref.GetSpacing()  # the caller's image is left as it was


def test_write_mask_refuses_what_no_mask_reader_would_take(tmp_path):
    # A probability map or a scan had been written, refused only when read back.
    im, _, _ = box_case()
    with pytest.raises(InputError, match="the mask to write holds negative values"):
        flr.write_mask(im["ct"], tmp_path / "x.nii.gz")
    prob = sitk.Cast(im["liver"], sitk.sitkFloat32) * 0.5
    with pytest.raises(InputError, match="the mask to write holds fractional values"):
        flr.write_mask(prob, tmp_path / "x.nii.gz")
    assert not (tmp_path / "x.nii.gz").exists()


# Direction cosines as DICOM headers round them (three decimals): not quite unit length.
ROUNDED_3_DEGREES = (0.999, -0.052, 0.0, 0.052, 0.999, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".seg.nrrd", ".mha"])
def test_a_mask_written_on_a_rounded_direction_comes_back_on_the_scans_grid(tmp_path, suffix):
    # NIfTI and NRRD writers store the nearest rotation: a mask written on the scan's grid as
    # read had come back 3.5e-4 off, "on another grid" (measure resampled it, batch failed).
    im, n, v = box_case()
    ct = sitk.Image(im["ct"])
    ct.SetDirection(ROUNDED_3_DEGREES)
    sitk.WriteImage(ct, str(tmp_path / "ct.mha"))  # MetaImage keeps the cosines as written
    scan = flr.load_image(tmp_path / "ct.mha")
    d = np.reshape(scan.image.GetDirection(), (3, 3))
    np.testing.assert_allclose(d @ d.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(d, np.reshape(ROUNDED_3_DEGREES, (3, 3)), atol=1e-3)
    liver = sitk.GetImageFromArray(sitk.GetArrayFromImage(im["liver"]))
    liver.CopyInformation(scan.image)
    flr.write_mask(liver, tmp_path / f"liver{suffix}")
    back = flr.load_mask(tmp_path / f"liver{suffix}", scan.image)
    assert back.warnings == ()
    assert flr.mask_volume_ml(back.image) == pytest.approx(n["liver"] * v, rel=1e-6)
