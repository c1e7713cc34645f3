"""DICOM series: writing phantoms, and reading folders as real exports are.

Every series here is written by the test itself with
:func:`flr_volumetry.io.write_dicom_series`, then made messy with pydicom
(scouts, other series, gaps, renamed files), except the real 3-slice CT of
``../shared/data``.
"""

import json
import logging
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry.cli import main
from flr_volumetry.errors import InputError
from flr_volumetry.io import read_dicom_series, write_dicom_series

SPACING = (0.7, 0.9, 2.5)
ORIGIN = (-40.0, 25.0, -120.0)
SAGITTAL = (0, 0, -1, 1, 0, 0, 0, -1, 0)  # rows along y, columns along -z, normal along x


def _oblique():
    # A rotation about a tilted axis: every direction cosine is non-trivial.
    return sitk.VersorTransform((0.3, 0.2, 1.0), 0.4).GetMatrix()


def _phantom(size=(9, 7, 6), spacing=SPACING, direction=None, origin=ORIGIN, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 1500, size=size[::-1]).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection([float(v) for v in direction])
    return img


def _same_physical_volume(read, written):
    """The read image holds the written values at the same physical places."""
    assert read.GetSize() == written.GetSize()
    np.testing.assert_allclose(read.GetSpacing(), written.GetSpacing(), rtol=1e-6)
    corners_w = {tuple(np.round(written.TransformIndexToPhysicalPoint(
        (i, j, k)), 3)) for i in (0, written.GetSize()[0] - 1)
        for j in (0, written.GetSize()[1] - 1) for k in (0, written.GetSize()[2] - 1)}
    corners_r = {tuple(np.round(read.TransformIndexToPhysicalPoint(
        (i, j, k)), 3)) for i in (0, read.GetSize()[0] - 1)
        for j in (0, read.GetSize()[1] - 1) for k in (0, read.GetSize()[2] - 1)}
    assert corners_w == corners_r
    back = sitk.Resample(read, written, sitk.Transform(), sitk.sitkNearestNeighbor, -9999,
                         sitk.sitkInt32)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  sitk.GetArrayFromImage(written).astype(np.int32))


def _edit(files, **attrs):
    for f in files:
        ds = pydicom.dcmread(f)
        for k, v in attrs.items():
            setattr(ds, k, v)
        ds.save_as(f)


def _z_of(path):
    return float(pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient[2])


# ----------------------------------------------------------------- geometry and values


@pytest.mark.parametrize("direction", [
    None,
    _oblique(),
    (1, 0, 0, 0, 1, 0, 0, 0, -1),           # negative z step (left-handed)
    (-1, 0, 0, 0, -1, 0, 0, 0, 1),          # RAS-like in-plane flip
])
def test_round_trip_keeps_geometry_and_hu(tmp_path, direction):
    img = _phantom(direction=direction)
    files = write_dicom_series(img, tmp_path / "ct", study_date="2024-03-01")
    assert len(files) == img.GetSize()[2] and all(os.path.isfile(f) for f in files)
    scan = read_dicom_series(tmp_path / "ct")
    _same_physical_volume(scan.image, img)
    assert scan.warnings == ()
    assert scan.modality == "CT"


def test_negative_step_is_sorted_along_the_normal(tmp_path):
    img = _phantom(direction=(1, 0, 0, 0, 1, 0, 0, 0, -1))
    write_dicom_series(img, tmp_path / "ct")
    scan = read_dicom_series(tmp_path / "ct")
    # Read as a right-handed stack: +z, starting at the lowest slice.
    assert scan.image.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert scan.image.GetOrigin()[2] == pytest.approx(ORIGIN[2] - 5 * SPACING[2])
    a = sitk.GetArrayFromImage(scan.image)
    np.testing.assert_array_equal(a, sitk.GetArrayFromImage(img)[::-1])


def test_hu_values_survive_and_intercept_is_used(tmp_path):
    img = _phantom()
    files = write_dicom_series(img, tmp_path / "ct", rescale_intercept=-1024)
    ds = pydicom.dcmread(files[0])
    assert float(ds.RescaleIntercept) == -1024 and ds.PixelRepresentation == 1
    assert ds.pixel_array.min() >= -1000 + 1024  # stored = HU - intercept
    scan = read_dicom_series(tmp_path / "ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(scan.image), sitk.GetArrayFromImage(img))


def test_mr_is_uint16_and_round_trips(tmp_path):
    arr = np.random.default_rng(3).integers(0, 4000, size=(4, 5, 6)).astype(np.uint16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.25, 1.25, 7.7))
    files = write_dicom_series(img, tmp_path / "mr", modality="MR")
    assert pydicom.dcmread(files[0]).PixelRepresentation == 0
    scan = read_dicom_series(tmp_path / "mr")
    assert scan.modality == "MR"
    np.testing.assert_array_equal(sitk.GetArrayFromImage(scan.image), arr)


def test_writer_refuses_values_that_do_not_fit_and_leaves_nothing(tmp_path):
    arr = np.full((2, 3, 3), -5, dtype=np.int16)
    with pytest.raises(InputError, match="do not fit"):
        write_dicom_series(sitk.GetImageFromArray(arr), tmp_path / "mr", modality="MR")
    with pytest.raises(InputError, match="modality"):
        write_dicom_series(sitk.GetImageFromArray(arr), tmp_path / "us", modality="US")
    assert os.listdir(tmp_path) == []


def test_writer_is_atomic_when_interrupted(tmp_path, monkeypatch):
    from flr_volumetry.io import _dicom_write

    real = _dicom_write._slice_dataset
    calls = []

    def failing(**kw):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(**kw)

    monkeypatch.setattr(_dicom_write, "_slice_dataset", failing)
    with pytest.raises(OSError):
        write_dicom_series(_phantom(), tmp_path / "ct")
    assert os.listdir(tmp_path) == []  # neither the folder nor its temporary sibling


def test_written_headers(tmp_path):
    img = _phantom(direction=_oblique())
    files = write_dicom_series(img, tmp_path / "ct", study_date="2024-03-01",
                               series_description="venous", patient_id="P007",
                               patient_height_cm=172, patient_weight_kg=81.5)
    ds = [pydicom.dcmread(f) for f in files]
    assert len({d.SOPInstanceUID for d in ds}) == len(ds)
    assert len({d.SeriesInstanceUID for d in ds}) == 1
    assert len({d.FrameOfReferenceUID for d in ds}) == 1
    d0 = ds[0]
    assert (d0.StudyDate, d0.SeriesDate, d0.PatientID, d0.SeriesDescription) == (
        "20240301", "20240301", "P007", "venous")
    assert float(d0.PatientSize) == pytest.approx(1.72) and float(d0.PatientWeight) == 81.5
    assert str(d0.PatientName) == ""
    assert [float(v) for v in d0.PixelSpacing] == [0.9, 0.7]  # row spacing, column spacing
    assert float(d0.SliceThickness) == float(d0.SpacingBetweenSlices) == 2.5
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose([float(v) for v in d0.ImageOrientationPatient],
                               np.concatenate([direction[:, 0], direction[:, 1]]), atol=1e-9)
    for k, d in enumerate(ds):
        np.testing.assert_allclose([float(v) for v in d.ImagePositionPatient],
                                   img.TransformIndexToPhysicalPoint((0, 0, k)), atol=1e-6)


# ----------------------------------------------------------------- messy folders


def test_shuffled_file_names_and_instance_numbers(tmp_path):
    img = _phantom()
    files = write_dicom_series(img, tmp_path / "ct")
    rng = random.Random(1)
    numbers = list(range(1, len(files) + 1))
    rng.shuffle(numbers)
    names = [f"IM{rng.randrange(10**6):06d}" for _ in files]
    for f, name, n in zip(files, names, numbers):
        _edit([f], InstanceNumber=n)
        os.rename(f, tmp_path / "ct" / name)
    scan = read_dicom_series(tmp_path / "ct")
    _same_physical_volume(scan.image, img)


def test_scout_slices_are_dropped_with_a_warning(tmp_path):
    img = _phantom()
    folder = tmp_path / "ct"
    files = write_dicom_series(img, folder)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    # A sagittal scout in the same series (orientation differs) ...
    scout = _phantom(size=(9, 7, 1), direction=SAGITTAL, seed=5)
    write_dicom_series(scout, folder, series_instance_uid=uid)
    # ... and an axial one marked LOCALIZER.
    loc = write_dicom_series(_phantom(size=(9, 7, 1), origin=(-40, 25, 500), seed=6), folder,
                             series_instance_uid=uid)
    _edit(loc, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    scan = read_dicom_series(folder)
    _same_physical_volume(scan.image, img)
    dropped = [w for w in scan.warnings if "dropped" in w]
    assert len(dropped) == 1 and dropped[0].startswith("2 slices")
    # A folder of localizers only: said in words (not an AttributeError).
    _edit(write_dicom_series(_phantom(size=(5, 5, 3)), tmp_path / "loc"),
          ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    with pytest.raises(InputError, match="holds only scout/localizer images"):
        read_dicom_series(tmp_path / "loc")


def test_two_series_picks_the_axial_one_with_most_slices(tmp_path):
    folder = tmp_path / "export"
    venous = _phantom(size=(9, 7, 6))
    arterial = _phantom(size=(9, 7, 4), seed=1)
    sagittal = _phantom(size=(6, 7, 12), direction=SAGITTAL, seed=2)
    fv = write_dicom_series(venous, folder, series_description="venous")
    fa = write_dicom_series(arterial, folder, series_description="arterial")
    fs = write_dicom_series(sagittal, folder, series_description="sagittal MPR")
    uid = {name: pydicom.dcmread(f[0]).SeriesInstanceUID
           for name, f in (("v", fv), ("a", fa), ("s", fs))}
    scan = read_dicom_series(folder)
    assert scan.series_instance_uid == uid["v"] and scan.series_description == "venous"
    _same_physical_volume(scan.image, venous)
    (w,) = scan.warnings
    assert "'venous', 6 slices" in w and uid["a"] in w and uid["s"] in w and "3 series" in w
    chosen = read_dicom_series(folder, series_uid=uid["a"])
    _same_physical_volume(chosen.image, arterial)
    assert chosen.warnings == ()
    with pytest.raises(InputError, match="no series with SeriesInstanceUID 1.2.3") as e:
        read_dicom_series(folder, series_uid="1.2.3")
    assert uid["v"] in str(e.value) and uid["a"] in str(e.value)
    # load_image passes the choice through.
    assert flr.load_image(folder, series_uid=uid["s"]).image.GetSize() == (6, 7, 12)


def test_missing_slice_names_the_gap(tmp_path):
    img = _phantom(size=(5, 5, 8), origin=(0, 0, -130.0))
    files = write_dicom_series(img, tmp_path / "ct")
    os.remove(files[3])  # z = -122.5
    with pytest.raises(InputError) as e:
        read_dicom_series(tmp_path / "ct")
    assert str(e.value).startswith(
        "1 slice is missing between z=-125.0 and z=-120.0 mm (gap 5.0 mm, expected 2.50 mm)")


def test_a_spacing_that_changes_part_way_is_not_called_a_missing_slice(tmp_path):
    # 2.5 mm slices, then 5 mm ones (two reconstructions in one series): the reader had
    # asked for "1 slice is missing" to be exported, as if one gap explained it.
    img = _phantom(size=(5, 5, 12), origin=(0, 0, 0))
    files = write_dicom_series(img, tmp_path / "ct")
    for f in files[7::2]:
        os.remove(f)
    with pytest.raises(InputError) as e:
        read_dicom_series(tmp_path / "ct")
    assert str(e.value).startswith("the slice spacing is not uniform: 5.00 mm between z=15.0 "
                                   "and z=20.0 mm (and 1 more step of it), 2.50 mm elsewhere")
    assert "missing" not in str(e.value)


def test_non_uniform_spacing_is_refused(tmp_path):
    files = write_dicom_series(_phantom(size=(5, 5, 6), origin=(0, 0, 0)), tmp_path / "ct")
    for k, f in enumerate(files[4:], start=4):
        _edit([f], ImagePositionPatient=[0, 0, 2.5 * k + 1.0])
    with pytest.raises(InputError, match="not uniform: 3.50 mm between z=7.5 and z=11.0"):
        read_dicom_series(tmp_path / "ct")


def test_non_dicom_files_and_non_image_objects_are_ignored(tmp_path):
    img = _phantom()
    folder = tmp_path / "export"
    files = write_dicom_series(img, folder / "sub")
    (folder / "README.txt").write_text("exported by PACS\n")
    (folder / "DICOMDIR").write_bytes(b"\0" * 200)
    (folder / ".DS_Store").write_bytes(os.urandom(64))
    (folder / "notes").write_text("no extension, not DICOM\n")
    hidden = folder / ".trash"
    hidden.mkdir()
    shutil.copy(files[0], hidden / "old.dcm")
    # A structured report and a SEG-like object of the same study: no geometry / not images.
    sr = pydicom.dcmread(files[0])
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    sr.SOPInstanceUID = pydicom.uid.generate_uid()
    sr.save_as(folder / "sr.dcm")
    scan = read_dicom_series(folder)
    _same_physical_volume(scan.image, img)
    assert scan.warnings == ()


def test_folder_without_images(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM image slices"):
        read_dicom_series(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        read_dicom_series(tmp_path / "a.txt")


def test_enhanced_multiframe_only_is_refused_clearly(tmp_path):
    files = write_dicom_series(_phantom(size=(5, 5, 3)), tmp_path / "ct")
    _edit(files, NumberOfFrames=2)
    with pytest.raises(InputError, match="multi-frame"):
        read_dicom_series(tmp_path / "ct")


def test_single_slice_is_refused_and_two_slices_load(tmp_path):
    write_dicom_series(_phantom(size=(5, 5, 1)), tmp_path / "one")
    with pytest.raises(InputError, match="single slice"):
        read_dicom_series(tmp_path / "one")
    two = _phantom(size=(5, 5, 2))
    write_dicom_series(two, tmp_path / "two")
    _same_physical_volume(read_dicom_series(tmp_path / "two").image, two)


def test_copied_file_is_read_once_but_distinct_slices_at_one_position_are_refused(tmp_path):
    img = _phantom()
    files = write_dicom_series(img, tmp_path / "ct")
    shutil.copy(files[2], tmp_path / "ct" / "copy.dcm")
    scan = read_dicom_series(tmp_path / "ct")
    _same_physical_volume(scan.image, img)
    assert any("same SOPInstanceUID" in w for w in scan.warnings)
    _edit([tmp_path / "ct" / "copy.dcm"], SOPInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(InputError, match="2 different slices at the same z=-115.0"):
        read_dicom_series(tmp_path / "ct")


def test_gantry_tilt_is_refused(tmp_path):
    files = write_dicom_series(_phantom(size=(5, 5, 6), origin=(0, 0, 0)), tmp_path / "ct")
    for k, f in enumerate(files):
        _edit([f], ImagePositionPatient=[0, 0.5 * k, 2.5 * k])
    with pytest.raises(InputError, match="gantry tilt of about 11.3 degrees"):
        read_dicom_series(tmp_path / "ct")


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.201",  # HTJ2K
                                    "1.2.840.10008.1.2.4.90"])  # JPEG 2000 lossless
def test_undecodable_compressed_pixels_give_a_clear_error(tmp_path, capfd, syntax):
    from pydicom.encaps import encapsulate

    files = write_dicom_series(_phantom(size=(5, 5, 3)), tmp_path / "ct")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51 not a codestream"])
        ds["PixelData"].VR = "OB"
        ds.save_as(f, enforce_file_format=True)
    capfd.readouterr()
    with pytest.raises(InputError, match="cannot read the pixel data.*decompress"):
        read_dicom_series(tmp_path / "ct")
    # The one sentence only: OpenJPEG's raw 'Expected a SOC marker' lines are dropped.
    assert capfd.readouterr().err == ""


def test_what_c_code_prints_while_reading_is_kept_unless_the_read_fails(capfd):
    from flr_volumetry.io._images import itk_warnings_hidden

    capfd.readouterr()
    with itk_warnings_hidden():
        os.write(2, b"said by C during a good read\n")
    assert capfd.readouterr().err == "said by C during a good read\n"
    with pytest.raises(RuntimeError), itk_warnings_hidden():
        os.write(2, b"noise before a failure\n")
        raise RuntimeError("the read failed")
    assert capfd.readouterr().err == ""


def test_header_facts_and_no_patient_name(tmp_path, caplog):
    files = write_dicom_series(_phantom(), tmp_path / "ct", study_date="2024-03-01",
                               patient_height_cm=172, patient_weight_kg=81.5)
    # A real export carries the name: it must never come out of the reader.
    _edit(files, PatientName="Doe^Jane", StudyDate="", SeriesDate="20240302")
    caplog.set_level(logging.DEBUG)
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.patient_height_cm == pytest.approx(172.0)  # PatientSize 1.72 m
    assert scan.patient_weight_kg == 81.5
    assert str(scan.study_date) == "2024-03-02"  # SeriesDate when StudyDate is empty
    assert "Doe" not in repr(scan) and "Jane" not in repr(scan)
    assert "Doe" not in caplog.text
    _edit(files, PatientSize="172")  # centimetres where metres belong
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.patient_height_cm is None
    assert any("PatientSize 172" in w for w in scan.warnings)


# ----------------------------------------------------------------- real data and CLI


def test_real_three_slice_ct(shared_data):
    folder = shared_data / "dicom-ct-3slice" / "series"
    scan = read_dicom_series(folder)
    im = scan.image
    assert im.GetSize() == (512, 512, 3)
    np.testing.assert_allclose(im.GetSpacing(), (0.810547, 0.810547, 1.0), atol=1e-5)
    np.testing.assert_allclose(im.GetOrigin(), (-235.2, -226.8, -128.69), atol=1e-3)
    assert im.GetDirection() == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert scan.modality == "CT" and str(scan.study_date) == "2003-04-17"
    # Sorted by position, not by file name: 03.dcm (z=-128.69) is slice 0; values in HU.
    a = sitk.GetArrayFromImage(im)
    for k, name in enumerate(("03.dcm", "02.dcm", "01.dcm")):
        ds = pydicom.dcmread(folder / name)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(a[k], hu)


def _cli_case(tmp_path):
    img = _phantom(size=(10, 9, 8), origin=(0, 0, 0))
    files = write_dicom_series(img, tmp_path / "ct", patient_height_cm=170,
                               patient_weight_kg=70, study_date="2024-05-06")
    liver = np.zeros((8, 9, 10), np.uint8)
    liver[2:6, 2:7, 3:8] = 1  # away from the first and last slice
    lm = sitk.GetImageFromArray(liver)
    lm.CopyInformation(img)
    sitk.WriteImage(lm, str(tmp_path / "liver.nii.gz"))
    return files, float(liver.sum()) * 0.7 * 0.9 * 2.5 / 1000.0


def test_cli_measures_a_dicom_folder(tmp_path, capsys):
    import json

    _, liver_ml = _cli_case(tmp_path)
    code = main(["measure", str(tmp_path / "ct"), "--liver", str(tmp_path / "liver.nii.gz"),
                 "--json", str(tmp_path / "out.json")])
    assert code == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["total_liver_ml"] == pytest.approx(liver_ml)
    assert out["scan_date"] == "2024-05-06"
    assert out["bsa_m2"] == pytest.approx(flr.bsa_m2(170, 70))  # height/weight from the header


def test_cli_refuses_a_folder_with_a_gap_in_one_line(tmp_path, capsys):
    files, _ = _cli_case(tmp_path)
    os.remove(files[4])
    code = main(["measure", str(tmp_path / "ct"), "--liver", str(tmp_path / "liver.nii.gz")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "missing between z=7.5 and z=12.5 mm" in err


def test_cli_reads_header_values_of_old_syntax_without_pydicoms_lines(tmp_path):
    # A UID with a leading zero (old GE exports) had put 34 lines of pydicom's "Invalid
    # value for VR UI" warnings around a successful measurement. (Run as a process: pytest
    # would catch the warnings itself.)
    files, expected_ml = _cli_case(tmp_path)
    for f in files:
        ds = pydicom.dcmread(f)
        ds[0x0020000E] = pydicom.DataElement(0x0020000E, "UI", "1.2.840.113619.2.05.1")
        ds.save_as(f)
    argv = [sys.executable, "-m", "flr_volumetry", "measure", str(tmp_path / "ct"),
            "--liver", str(tmp_path / "liver.nii.gz")]
    run = subprocess.run(argv, capture_output=True, text=True)
    assert run.returncode == 0
    assert json.loads(run.stdout)["total_liver_ml"] == pytest.approx(expected_ml)
    assert "Invalid value" not in run.stderr and "pydicom" not in run.stderr
    assert run.stderr.count("\n") == 1  # the header's body size, said
    debug = subprocess.run(argv[:3] + ["--debug"] + argv[3:], capture_output=True, text=True)
    assert debug.returncode == 0 and "Invalid value for VR UI" in debug.stderr


def test_a_ct_labelled_mr_is_refused_saying_where_the_modality_came_from(tmp_path, capsys):
    # Refused as "automatic liver segmentation is only available for CT", with no word of
    # the header's Modality or of --modality ct.
    img = _phantom(size=(10, 9, 8), origin=(0, 0, 0))
    files = write_dicom_series(img, tmp_path / "ct")
    _edit(files, Modality="MR")
    out = tmp_path / "liver.nii.gz"
    assert main(["segment", str(tmp_path / "ct"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists()
    assert "the DICOM header gives the modality MR" in err and "--modality ct" in err
    assert main(["measure", str(tmp_path / "ct")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the DICOM header gives the modality MR" in err
    assert "measure --modality ct" in err


def test_pixel_type_is_int16_exactly_when_every_value_fits(tmp_path):
    img = _phantom()
    write_dicom_series(img, tmp_path / "a", rescale_intercept=0)
    # 16-bit signed with intercept -1024 (GE's encoding, and ours): the headers cannot prove
    # the values fit int16, the values do. It had been held as int32: twice the memory.
    write_dicom_series(img, tmp_path / "b", rescale_intercept=-1024)
    a, b = read_dicom_series(tmp_path / "a").image, read_dicom_series(tmp_path / "b").image
    assert a.GetPixelID() == sitk.sitkInt16 and b.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    # Values beyond int16 stay exact in int32.
    high = sitk.Cast(img, sitk.sitkInt32) + 32000  # up to 33500: beyond int16
    write_dicom_series(high, tmp_path / "c", rescale_intercept=1024)
    c = read_dicom_series(tmp_path / "c").image
    assert c.GetPixelID() == sitk.sitkInt32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(c), sitk.GetArrayFromImage(high))


# ----------------------------------------------------------------- messy exports (audit)
def test_one_slice_shifted_in_plane_is_refused_by_name(tmp_path):
    files = write_dicom_series(_phantom(size=(5, 5, 6), origin=(0, 0, 0)), tmp_path / "ct")
    mid = sorted(files, key=_z_of)[3]
    _edit([mid], ImagePositionPatient=[30.0, 0.0, _z_of(mid)])
    with pytest.raises(InputError, match=r"z=7.5 mm .* shifted in-plane by 30.0 mm"):
        read_dicom_series(tmp_path / "ct")


def test_orientation_noise_across_a_rounding_edge_is_one_stack(tmp_path):
    img = _phantom(size=(5, 5, 6))
    files = write_dicom_series(img, tmp_path / "ct")
    # Cosines of 0.00050001 and 0.00049999: equal within tolerance, but on either side of
    # the 0.0005 edge where rounding to 1e-3 (the former grouping key) jumps.
    for k, f in enumerate(sorted(files, key=_z_of)):
        _edit([f], ImageOrientationPatient=[1, 0.00050001 if k % 2 else 0.00049999, 0,
                                            0, 1, 0])
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.image.GetSize()[2] == 6 and not any("dropped" in w for w in scan.warnings)


def test_two_equal_stacks_in_one_series_are_refused(tmp_path):
    files = write_dicom_series(_phantom(size=(6, 6, 6)), tmp_path / "ct")
    for f in sorted(files, key=_z_of)[::2]:  # every other slice gets another pixel spacing
        _edit([f], PixelSpacing=[1.4, 1.8])
    with pytest.raises(InputError, match="mixes stacks of 3 slices each"):
        read_dicom_series(tmp_path / "ct")


def test_two_stacks_of_nearly_one_size_are_refused_but_a_few_reformats_are_dropped(tmp_path):
    # Every other slice with another pixel spacing: 4 against 3 had been read as a half
    # scan on a doubled slice spacing, the 3 'dropped: scout/localizer'.
    files = sorted(write_dicom_series(_phantom(size=(6, 6, 7)), tmp_path / "ct"), key=_z_of)
    _edit(files[1::2], PixelSpacing=[1.4, 1.8])
    with pytest.raises(InputError, match="mixes stacks of 4 and 3 slices"):
        read_dicom_series(tmp_path / "ct")
    # Two slices of another size beside five are reformats, dropped and said.
    files = sorted(write_dicom_series(_phantom(size=(6, 6, 7)), tmp_path / "ct2"), key=_z_of)
    _edit(files[-2:], PixelSpacing=[1.4, 1.8])
    scan = read_dicom_series(tmp_path / "ct2")
    assert scan.image.GetSize()[2] == 5
    assert any(w.startswith("2 slices") and "dropped" in w for w in scan.warnings)


def test_reformats_in_another_orientation_beside_the_axial_stack_stay_dropped(tmp_path):
    # More than half as many sagittal reformats under the axial stack's UID: read the axial
    # stack and drop them, as before the near-tie rule (which is for one orientation).
    img = _phantom(size=(9, 7, 10))
    files = write_dicom_series(img, tmp_path / "ct")
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    write_dicom_series(_phantom(size=(9, 7, 6), direction=SAGITTAL, seed=3), tmp_path / "ct",
                       series_instance_uid=uid)
    scan = read_dicom_series(tmp_path / "ct")
    _same_physical_volume(scan.image, img)
    assert any(w.startswith("6 slices") and "dropped" in w for w in scan.warnings)


def test_copied_files_count_once_in_a_series_stacks(tmp_path):
    files = sorted(write_dicom_series(_phantom(size=(6, 6, 7)), tmp_path / "ct"), key=_z_of)
    _edit(files[1::2], PixelSpacing=[1.4, 1.8])
    (tmp_path / "ct" / "copy").mkdir()
    for f in files:
        shutil.copy(f, tmp_path / "ct" / "copy" / os.path.basename(f))
    with pytest.raises(InputError, match=r"4 slices, .*mixes stacks of 4 and 3 slices"):
        read_dicom_series(tmp_path / "ct")
    # Ten slices and two reformats, the reformats' files copied three times: six files,
    # two slices, dropped (not a rival stack of six).
    files = sorted(write_dicom_series(_phantom(size=(6, 6, 12)), tmp_path / "ct2"), key=_z_of)
    _edit(files[-2:], PixelSpacing=[1.4, 1.8])
    for k in range(2):
        (tmp_path / "ct2" / f"copy{k}").mkdir()
        for f in files[-2:]:
            shutil.copy(f, tmp_path / "ct2" / f"copy{k}" / os.path.basename(f))
    scan = read_dicom_series(tmp_path / "ct2")
    assert scan.image.GetSize()[2] == 10
    assert any(w.startswith("2 slices") and "dropped" in w for w in scan.warnings)


def test_equally_long_series_say_which_rule_chose_and_copies_count_once(tmp_path):
    folder = tmp_path / "export"
    arterial = _phantom(size=(9, 7, 6))
    venous = _phantom(size=(9, 7, 6), seed=1)
    fa = write_dicom_series(arterial, folder, series_description="arterial")
    write_dicom_series(venous, folder, series_description="venous")
    _edit(fa, SeriesNumber=2)
    scan = read_dicom_series(folder)
    assert scan.series_description == "venous"  # (written without a number: 1)
    (w,) = scan.warnings
    assert "of equally many slices with the lowest SeriesNumber" in w
    # A CD export copying every file of the arterial series (its DICOMDIR's copy): its
    # slices are counted once, in the choice and in the words.
    (folder / "copy").mkdir()
    for f in fa:
        shutil.copy(f, folder / "copy" / os.path.basename(f))
    scan = read_dicom_series(folder)
    assert scan.series_description == "venous"
    assert "'arterial', 6 slices" in scan.warnings[0] and "12 slices" not in scan.warnings[0]
    # One SeriesNumber for both: the UID decided, and is said to have.
    _edit(fa, SeriesNumber=1)
    scan = read_dicom_series(folder)
    assert "of equally many slices with the first SeriesInstanceUID" in scan.warnings[0]


def test_broken_slices_are_refused_or_said_never_dropped_silently(tmp_path):
    files = sorted(write_dicom_series(_phantom(size=(5, 5, 6)), tmp_path / "ct"), key=_z_of)
    ds = pydicom.dcmread(files[-1])
    del ds.ImagePositionPatient
    ds.save_as(files[-1])
    with pytest.raises(InputError, match=r"1 slice file of the series .* lack position"):
        read_dicom_series(tmp_path / "ct")
    # A file cut short (its series unknown): left out, and said.
    files = sorted(write_dicom_series(_phantom(size=(5, 5, 6)), tmp_path / "ct2"), key=_z_of)
    with open(files[-1], "r+b") as fh:
        fh.truncate(300)
    scan = read_dicom_series(tmp_path / "ct2")
    assert scan.image.GetSize()[2] == 5
    assert any("could not be read" in w and os.path.basename(files[-1]) in w
               for w in scan.warnings)


def _assert_named_as_the_missing_slice(damaged, folder):
    with pytest.raises(InputError, match=rf"{os.path.basename(damaged)} in .* could not be "
                                         rf"read \(cut short or damaged\): 1 slice is missing"):
        read_dicom_series(folder)


def test_a_damaged_slice_in_the_middle_is_named_with_the_gap_it_leaves(tmp_path):
    # A file cut inside its header (its SOP class cut to a prefix) had been skipped without
    # a word: "1 slice is missing ... export the complete series" of a complete folder.
    files = sorted(write_dicom_series(_phantom(size=(5, 5, 6)), tmp_path / "ct"), key=_z_of)
    with open(files[2], "r+b") as fh:
        data = fh.read()
        cut = data.index(b"1.2.840.10008.5.1.4.1.1.2", 200) + 10  # inside the SOPClassUID
        fh.truncate(cut)
    _assert_named_as_the_missing_slice(files[2], tmp_path / "ct")


def test_an_empty_slice_file_is_named_with_the_gap_it_leaves(tmp_path):
    # A 0-byte file (an interrupted copy) had left "1 slice is missing" without its name.
    files = sorted(write_dicom_series(_phantom(size=(5, 5, 6)), tmp_path / "ct"), key=_z_of)
    open(files[2], "wb").close()
    _assert_named_as_the_missing_slice(files[2], tmp_path / "ct")


def test_files_stripped_of_their_preamble_are_read(tmp_path):
    img = _phantom(size=(5, 5, 4))
    files = write_dicom_series(img, tmp_path / "ct")
    for f in files:
        data = open(f, "rb").read()
        assert data[128:132] == b"DICM"
        open(f, "wb").write(data[132:])  # starts on the file meta group (0002,0000)
    assert all(flr.io.is_dicom_file(f) for f in files)
    _same_physical_volume(read_dicom_series(tmp_path / "ct").image, img)


def test_a_tied_localizer_series_beside_the_scan_does_not_stop_the_read(tmp_path):
    # A 3-plane localizer (3 axial + 3 other-size slices, no LOCALIZER type) as its own
    # series: only the series that is read must be one stack.
    img = _phantom(size=(6, 6, 8))
    write_dicom_series(img, tmp_path / "ct")
    loc = sorted(write_dicom_series(_phantom(size=(6, 6, 6), seed=1), tmp_path / "ct",
                                    series_description="localizer"), key=_z_of)
    _edit(loc[::2], PixelSpacing=[1.4, 1.8])
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.image.GetSize() == img.GetSize()


def test_a_stripped_non_image_object_is_not_called_damaged(tmp_path):
    files = write_dicom_series(_phantom(size=(5, 5, 4)), tmp_path / "ct")
    ko = pydicom.dcmread(files[0])
    for kw in ("Rows", "Columns", "ImagePositionPatient", "PixelData"):
        delattr(ko, kw)
    ko.SOPClassUID = ko.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    ko.SOPInstanceUID = ko.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ko.save_as(tmp_path / "ct" / "KO0001")
    data = open(tmp_path / "ct" / "KO0001", "rb").read()
    open(tmp_path / "ct" / "KO0001", "wb").write(data[132:])  # preamble stripped
    scan = read_dicom_series(tmp_path / "ct")
    assert not any("could not be read" in w for w in scan.warnings)


def _cut_pixels(path, keep):
    """Truncate ``path`` to ``keep`` bytes (its header intact: the pixels are cut)."""
    with open(path, "r+b") as fh:
        fh.truncate(keep)


@pytest.mark.parametrize("cut", [20, 5000])
def test_a_slice_with_its_pixel_data_cut_short_is_named(tmp_path, capfd, cut):
    # A header intact but pixels cut short had given "cannot read the pixel data of the
    # series ...; check that the files are complete", naming no file among hundreds.
    files = sorted(write_dicom_series(_phantom(size=(64, 64, 6)), tmp_path / "ct"), key=_z_of)
    _cut_pixels(files[3], os.path.getsize(files[3]) - cut)
    capfd.readouterr()
    with pytest.raises(InputError, match=r"cannot read the pixel data") as info:
        read_dicom_series(tmp_path / "ct")
    message = str(info.value)
    assert os.path.basename(files[3]) in message
    assert not any(os.path.basename(f) in message for f in files if f != files[3])
    assert "cut short or damaged" in message
    assert capfd.readouterr().err == ""  # the one sentence only, not GDCM's lines


def _garbage_after_the_marker(path):
    """A valid 128-byte preamble and 'DICM', then junk."""
    junk = np.random.default_rng(7).integers(0, 256, 600, dtype=np.uint8).tobytes()
    with open(path, "rb") as fh:
        head = fh.read(132)
    with open(path, "wb") as fh:
        fh.write(head + junk)


@pytest.mark.parametrize("junk", ["random", "zeros"])
def test_a_slice_of_junk_after_its_dicm_marker_is_named_not_called_missing(tmp_path, junk):
    files = sorted(write_dicom_series(_phantom(size=(5, 5, 6)), tmp_path / "ct"), key=_z_of)
    if junk == "random":
        _garbage_after_the_marker(files[2])
    else:
        with open(files[2], "r+b") as fh:
            fh.seek(132)
            fh.write(b"\x00" * 600)
            fh.truncate(132 + 600)
    _assert_named_as_the_missing_slice(files[2], tmp_path / "ct")


def test_an_extra_file_of_junk_after_a_dicm_marker_is_said(tmp_path):
    img = _phantom(size=(5, 5, 6))
    files = write_dicom_series(img, tmp_path / "ct")
    shutil.copy(files[0], tmp_path / "ct" / "EXTRA0001")
    _garbage_after_the_marker(tmp_path / "ct" / "EXTRA0001")
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.image.GetSize() == img.GetSize()
    assert any("could not be read" in w and "EXTRA0001" in w for w in scan.warnings)


def test_a_weight_given_alone_is_kept_and_completed_by_the_header_height(tmp_path):
    img = _phantom(size=(10, 9, 8), origin=(0, 0, 0))
    write_dicom_series(img, tmp_path / "ct", patient_height_cm=172, patient_weight_kg=90)
    liver = np.zeros((8, 9, 10), np.uint8)
    liver[2:6, 2:7, 3:8] = 1
    lm = sitk.GetImageFromArray(liver)
    lm.CopyInformation(img)
    m = flr.measure_files(tmp_path / "ct", liver=lm, patient=flr.Patient(weight_kg=70))
    assert (m.height_cm, m.weight_kg) == (172, 70)  # the given weight, not the header's 90
    assert any("height 172 cm was taken from the DICOM header (with the weight given, 70 kg)"
               in w for w in m.warnings)


def test_a_header_weight_without_a_height_is_used_for_flr_per_body_weight(tmp_path):
    img = _phantom(size=(10, 9, 8), origin=(0, 0, 0))
    write_dicom_series(img, tmp_path / "ct", patient_weight_kg=70)
    liver = np.zeros((8, 9, 10), np.uint8)
    liver[2:6, 2:7, 3:8] = 1
    lm = sitk.GetImageFromArray(liver)
    lm.CopyInformation(img)
    half = np.zeros_like(liver)
    half[:, :, :6] = 1
    fm = sitk.GetImageFromArray(half)
    fm.CopyInformation(img)
    m = flr.measure_files(tmp_path / "ct", liver=lm, flr=fm)
    assert m.weight_kg == 70 and m.height_cm is None
    assert m.flr_bw_ratio_pct == pytest.approx(100 * m.flr_ml / 70000)
    assert m.sflr_pct is None
    assert any("weight 70 kg was taken from the DICOM header, which gives no height" in w
               for w in m.warnings)


# ------------------------------------------------ pixel values a reader would get wrong


def test_monochrome1_is_refused_not_read_inverted(tmp_path):
    # GDCM inverts MONOCHROME1 for display: a CT had read as -2976..-1025 "HU", unsaid.
    files = write_dicom_series(_phantom(), tmp_path / "ct", rescale_intercept=-1024)
    _edit(files, PhotometricInterpretation="MONOCHROME1")
    with pytest.raises(InputError, match="MONOCHROME1"):
        read_dicom_series(tmp_path / "ct")


def test_a_palette_colour_series_is_left_out_like_rgb(tmp_path):
    # It has one sample per pixel, so it had passed as greyscale and, with more images,
    # been chosen over the CT, then refused as "not a scalar 3-D image".
    write_dicom_series(_phantom(size=(9, 7, 6)), tmp_path / "f" / "ct")
    colour = write_dicom_series(_phantom(size=(9, 7, 8), seed=1), tmp_path / "f" / "sc")
    _edit(colour, PhotometricInterpretation="PALETTE COLOR")
    scan = read_dicom_series(tmp_path / "f")
    assert scan.image.GetSize()[2] == 6


@pytest.mark.parametrize("slope, intercept", [("0,5", "-1024"), ("1", "-1024,0")])
def test_a_rescale_value_that_is_no_number_is_refused(tmp_path, slope, intercept):
    # GDCM took "0,5" (a decimal comma) as slope 1: HU up to 2878, unsaid.
    files = write_dicom_series(_phantom(), tmp_path / "ct", rescale_intercept=-1024)
    for f in files:
        ds = pydicom.dcmread(f)
        for keyword, text in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
            raw = (text + " " * (len(text) % 2)).encode()  # pydicom would refuse it as DS
            tag = pydicom.tag.Tag(pydicom.datadict.tag_for_keyword(keyword))
            del ds[tag]
            ds.add(pydicom.dataelem.RawDataElement(tag, "DS", len(raw), raw, 0, False, True))
        ds.save_as(f)
    with pytest.raises(InputError, match="not a number"):
        read_dicom_series(tmp_path / "ct")


def test_one_slice_without_the_rescale_of_the_others_is_refused(tmp_path):
    # That slice had been read 1024 HU too bright.
    files = write_dicom_series(_phantom(), tmp_path / "ct", rescale_intercept=-1024)
    ds = pydicom.dcmread(files[2])
    del ds.RescaleSlope
    del ds.RescaleIntercept
    ds.save_as(files[2])
    with pytest.raises(InputError, match=f"{os.path.basename(files[2])}.*no Rescale(Slope|Intercept)"):
        read_dicom_series(tmp_path / "ct")


@pytest.mark.parametrize("tag, value, fact", [("PatientWeight", "84000", "weight"),
                                              ("PatientSize", "0.5", "height")])
def test_an_implausible_header_body_size_is_ignored_with_a_warning(tmp_path, tag, value, fact):
    # A weight in grams in the header had refused the whole measurement ("weight 84000 kg
    # is implausible ... give the weight in kilograms"), though the user had given none.
    files = write_dicom_series(_phantom(), tmp_path / "ct", patient_height_cm=172,
                               patient_weight_kg=81.5)
    _edit(files, **{tag: value})
    scan = read_dicom_series(tmp_path / "ct")
    assert getattr(scan, f"patient_{fact}_{'kg' if fact == 'weight' else 'cm'}") is None
    (said,) = [w for w in scan.warnings if f"DICOM {tag}" in w]
    assert "ignored" in said


def test_a_chosen_series_that_cannot_be_read_names_the_others_and_series_uid(tmp_path):
    # A 3-phase dynamic in one series (three images per position) beside a T2: the error
    # had named only the dynamic, not that --series-uid chooses the other.
    write_dicom_series(_phantom(size=(9, 7, 6)), tmp_path / "f" / "t2")
    dyn = write_dicom_series(_phantom(size=(9, 7, 4), seed=1), tmp_path / "f" / "dyn")
    uid = pydicom.dcmread(dyn[0]).SeriesInstanceUID
    for phase in (1, 2):
        for f in dyn:
            ds = pydicom.dcmread(f)
            ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{phase}"
            ds.SeriesInstanceUID = uid
            ds.save_as(f"{f}.{phase}.dcm")
    with pytest.raises(InputError) as err:
        read_dicom_series(tmp_path / "f")
    assert "holds other series" in str(err.value) and "--series-uid" in str(err.value)
    assert "6 slices" in str(err.value)  # the T2, offered
    # A localizer beside a series with a gap is no series to offer.
    gap = write_dicom_series(_phantom(), tmp_path / "g" / "ct")
    os.remove(sorted(gap, key=_z_of)[2])
    _edit(write_dicom_series(_phantom(size=(5, 5, 3), seed=2), tmp_path / "g" / "topo",
                             series_description="Topogram"),
          ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    with pytest.raises(InputError, match="missing") as err:
        read_dicom_series(tmp_path / "g")
    assert "Topogram" not in str(err.value) and "--series-uid" not in str(err.value)


@pytest.mark.parametrize("which", [0, 3, 5])
def test_slices_sharing_one_sop_uid_at_different_places_are_all_read(tmp_path, which):
    # A broken anonymiser gave two slices one SOPInstanceUID: one had been dropped as "a
    # slice already read" (the last: 5 of 6 slices, exit 0; a middle one: "1 slice is
    # missing" though its file was there).
    img = _phantom()
    files = write_dicom_series(img, tmp_path / "ct")
    other = files[which - 1] if which else files[1]
    _edit([files[which]], SOPInstanceUID=pydicom.dcmread(other).SOPInstanceUID)
    scan = read_dicom_series(tmp_path / "ct")
    _same_physical_volume(scan.image, img)
    assert not any("repeat" in w for w in scan.warnings)


def test_a_gap_left_by_a_slice_of_another_matrix_names_that_slice(tmp_path):
    # It had been dropped as "reformatted" and the error then said "1 slice is missing"
    # of a folder that held it.
    files = write_dicom_series(_phantom(), tmp_path / "ct")
    ds = pydicom.dcmread(files[3])
    ds.PixelSpacing = [1.5, 1.5]
    ds.save_as(files[3])
    with pytest.raises(InputError, match=f"missing.*{os.path.basename(files[3])} of this "
                                         f"series was left out for another orientation, pixel "
                                         f"spacing or matrix size"):
        read_dicom_series(tmp_path / "ct")
    # A tilt beside such a slice is no gap: the slice is not offered as a missing one.
    tilted = write_dicom_series(_phantom(size=(5, 5, 6), origin=(0, 0, 0)), tmp_path / "tilt")
    for k, f in enumerate(sorted(tilted)):
        _edit([f], ImagePositionPatient=[0, 0.5 * k, 2.5 * k])
    _edit([sorted(tilted)[0]], PixelSpacing=[1.5, 1.5], ImagePositionPatient=[0, 0, -2.5])
    with pytest.raises(InputError, match="gantry tilt") as err:
        read_dicom_series(tmp_path / "tilt")
    assert "missing" not in str(err.value)


def test_a_series_of_localizers_only_is_listed_by_its_description(tmp_path):
    # It had been listed as "(no description), 0 slices" beside the scan read, then as
    # "'Topogram', 0 slices": its images are localizers.
    write_dicom_series(_phantom(), tmp_path / "f" / "ct")
    _edit(write_dicom_series(_phantom(size=(5, 5, 3), seed=2), tmp_path / "f" / "topo",
                             series_description="Topogram"),
          ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    scan = read_dicom_series(tmp_path / "f")
    (said,) = [w for w in scan.warnings if "holds 2 series" in w]
    assert "'Topogram', 3 localizer images, SeriesInstanceUID" in said


def test_a_study_date_with_dashes_is_read_and_a_malformed_one_said(tmp_path):
    files = write_dicom_series(_phantom(), tmp_path / "ct", study_date="2024-03-01")
    _edit(files, StudyDate="2024-01-08")     # not DA, but unambiguous: it had been dropped
    assert str(read_dicom_series(tmp_path / "ct").study_date) == "2024-01-08"
    _edit(files, StudyDate="20241308", SeriesDate="")
    scan = read_dicom_series(tmp_path / "ct")
    assert scan.study_date is None
    assert any("StudyDate '20241308'" in w and "not a date" in w for w in scan.warnings)


def test_slices_whose_geometry_cannot_be_read_are_named(tmp_path):
    # Every file with PixelSpacing "0.7mm": the error had said the folder "holds no DICOM
    # image slices with position and orientation", naming no file and no tag.
    files = write_dicom_series(_phantom(), tmp_path / "ct")
    for f in files:
        ds = pydicom.dcmread(f)
        raw = b"0.7mm\\0.7mm "
        tag = pydicom.tag.Tag(0x00280030)
        del ds[tag]
        ds.add(pydicom.dataelem.RawDataElement(tag, "DS", len(raw), raw, 0, False, True))
        ds.save_as(f)
    with pytest.raises(InputError, match=rf"{os.path.basename(sorted(files)[0])}.*no readable "
                                         r"PixelSpacing \(missing, or not 2 numbers\)"):
        read_dicom_series(tmp_path / "ct")
    # Files without a SeriesInstanceUID are said so, not blamed on their geometry.
    files = write_dicom_series(_phantom(), tmp_path / "nouid")
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.SeriesInstanceUID
        ds.save_as(f)
    with pytest.raises(InputError, match="no SeriesInstanceUID"):
        read_dicom_series(tmp_path / "nouid")


def test_an_identity_rescale_on_all_slices_but_one_is_read(tmp_path):
    # GDCM reads a slice without the tags as slope 1, intercept 0: the same values.
    img = _phantom()
    files = write_dicom_series(img, tmp_path / "ct", rescale_intercept=0)
    ds = pydicom.dcmread(files[2])
    del ds.RescaleSlope
    del ds.RescaleIntercept
    ds.save_as(files[2])
    _same_physical_volume(read_dicom_series(tmp_path / "ct").image, img)


def test_a_header_size_no_adult_has_says_how_to_give_it(tmp_path):
    files = write_dicom_series(_phantom(), tmp_path / "ct", patient_height_cm=172)
    _edit(files, PatientSize="0.5")
    (said,) = [w for w in read_dicom_series(tmp_path / "ct").warnings if "PatientSize" in w]
    assert "0.5 gives a height no adult has (50 cm)" in said and "--height-cm" in said
    assert "centimetres" not in said  # DICOM's height is in metres: no advice on its units


def test_a_height_given_is_completed_by_the_headers_weight(tmp_path):
    # "measure DICOM --height-cm 170" had been refused although the header gives the weight
    # (a weight given alone is completed by the header's height).
    from flr_volumetry.workflow import measure_files

    img = _phantom()
    write_dicom_series(img, tmp_path / "ct", patient_height_cm=178, patient_weight_kg=84)
    liver = sitk.GetImageFromArray(np.ones(img.GetSize()[::-1], np.uint8))
    liver.CopyInformation(img)
    sitk.WriteImage(liver, str(tmp_path / "liver.nii.gz"))
    m = measure_files(tmp_path / "ct", liver=tmp_path / "liver.nii.gz", flr=tmp_path /
                      "liver.nii.gz", patient=flr.Patient(height_cm=170))
    assert (m.height_cm, m.weight_kg) == (170, 84) and m.telv_ml is not None
    assert any("weight 84 kg was taken from the DICOM header (with the height given, 170 cm)"
               in w for w in m.warnings)


def test_write_dicom_series_refuses_a_body_size_no_adult_has_and_reads_arrays_no_more(tmp_path):
    # A height in metres had been written as PatientSize 0.0178 m (which the reader then
    # ignores), and a numpy array had failed with an AttributeError.
    from flr_volumetry.errors import ClinicalInputError

    with pytest.raises(ClinicalInputError, match="centimetres"):
        write_dicom_series(_phantom(), tmp_path / "a", patient_height_cm=1.78)
    with pytest.raises(ClinicalInputError, match="kilograms"):
        write_dicom_series(_phantom(), tmp_path / "b", patient_weight_kg=84000)
    with pytest.raises(InputError, match="must be a SimpleITK image"):
        write_dicom_series(np.zeros((3, 4, 5), np.int16), tmp_path / "c")
    assert not any(p.name in ("a", "b", "c") for p in tmp_path.iterdir())
    # A Scan is written as its image.
    assert len(write_dicom_series(flr.Scan(_phantom(), "x"), tmp_path / "d")) == 6


def test_an_orientation_written_with_three_decimals_is_read_as_a_rotation(tmp_path):
    # 0.999 / 0.052 (3 degrees): the scan had kept the rounded cosines, and its mask, written
    # as NIfTI (a rotation), came back "on another grid" to measure and batch.
    img = _phantom()
    d = os.path.join(tmp_path, "ct")
    write_dicom_series(img, d)
    for name in os.listdir(d):
        ds = pydicom.dcmread(os.path.join(d, name))
        ds.ImageOrientationPatient = ["0.999", "0.052", "0", "-0.052", "0.999", "0"]
        ds.save_as(os.path.join(d, name))
    scan = read_dicom_series(d)
    r = np.reshape(scan.image.GetDirection(), (3, 3))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    mask = sitk.Image(scan.image.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(scan.image)
    mask[2, 3, 1] = 1
    path = os.path.join(tmp_path, "liver.nii.gz")
    flr.write_mask(mask, path)
    assert flr.load_mask(path, scan.image).warnings == ()
