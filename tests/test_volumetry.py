import numpy as np
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry.errors import GeometryError, InputError

from _phantom_boxes import ROTATED, box_case, image_like


@pytest.mark.parametrize("direction", [None, ROTATED])
def test_exact_volumes_anisotropic_and_rotated(direction):
    im, n, v = box_case(direction)
    m = flr.measure(im["liver"], tumor=im["tumor"], flr=im["flr"],
                    patient=flr.Patient(170, 70))
    assert m.total_liver_ml == pytest.approx(n["liver"] * v)
    assert m.tumor_ml == pytest.approx(n["tumor"] * v)
    assert m.functional_liver_ml == pytest.approx((n["liver"] - n["tumor"]) * v)
    # The tumour lies inside the FLR half and is excluded from the remnant.
    assert m.flr_ml == pytest.approx((n["flr"] - n["tumor"]) * v)
    # The liver outside the remnant; the tumour the remnant keeps is not resected.
    assert m.resected_ml == pytest.approx((n["liver"] - n["flr"]) * v)
    telv = flr.telv_ml(170, 70)
    assert m.telv_ml == pytest.approx(telv)
    assert m.sflr_pct == pytest.approx(100 * m.flr_ml / telv)
    assert m.measured_flr_pct == pytest.approx(100 * m.flr_ml / m.functional_liver_ml)
    assert m.flr_bw_ratio_pct == pytest.approx(100 * m.flr_ml / 70000)
    assert m.sflr_adequate is (m.sflr_pct >= 20)
    assert m.flr_bw_adequate is (m.flr_bw_ratio_pct > 0.5)
    assert m.warnings == ()
    assert m.methods["bsa_formula"] == "mosteller" and m.methods["telv_formula"] == "vauthey"


def test_whether_tumours_left_the_functional_liver_is_recorded():
    # CLINICAL.md: every result records whether tumours were excluded; without a tumour
    # mask FLV is the whole liver, and FLR/FLV (Leung) then counts the tumour.
    im, n, v = box_case()
    without = flr.measure(im["liver"], flr=im["flr"])
    assert without.functional_liver_ml == pytest.approx(n["liver"] * v)
    assert without.methods["tumor_excluded_from_functional_liver"] is False
    assert "no tumour mask" in without.methods["functional_liver"]
    given = flr.measure(im["liver"], tumor=im["tumor"], flr=im["flr"])
    assert given.functional_liver_ml == pytest.approx((n["liver"] - n["tumor"]) * v)
    assert given.methods["tumor_excluded_from_functional_liver"] is True
    assert given.methods["functional_liver"] == "total liver minus the tumour mask"


def test_parenchyma_only_liver_mask_plus_tumour_gives_whole_liver():
    im, n, v = box_case()
    parenchyma = sitk.And(im["liver"], sitk.Not(im["tumor"]) & 1)
    m = flr.measure(parenchyma, tumor=im["tumor"])
    assert m.total_liver_ml == pytest.approx(n["liver"] * v)
    assert any("outside the liver mask" in w for w in m.warnings)


def test_without_body_size_ratios_are_null_and_said():
    im, _, _ = box_case()
    m = flr.measure(im["liver"], flr=im["flr"])
    assert m.sflr_pct is None and m.telv_ml is None and m.bsa_m2 is None
    assert m.measured_flr_pct is not None
    assert any("no height and weight" in w for w in m.warnings)
    d = m.to_dict()
    for key in ("total_liver_ml", "tumor_ml", "functional_liver_ml", "flr_ml", "resected_ml",
                "bsa_m2", "telv_ml", "sflr_pct", "measured_flr_pct", "flr_bw_ratio_pct",
                "flr_bw_adequate", "warnings", "methods", "scan_date"):
        assert key in d


def test_a_weight_alone_gives_flr_per_body_weight_and_says_what_it_cannot():
    # FLR/body weight needs no height (the weight is on many CT headers, the height on
    # fewer): it had been dropped with the sFLR.
    im, n, v = box_case()
    m = flr.measure(im["liver"], tumor=im["tumor"], flr=im["flr"],
                    patient=flr.Patient(weight_kg=70))
    assert m.flr_bw_ratio_pct == pytest.approx(100 * m.flr_ml / 70000)
    assert m.flr_bw_adequate is (m.flr_bw_ratio_pct > 0.5)
    assert m.sflr_pct is None and m.telv_ml is None and m.bsa_m2 is None
    assert m.weight_kg == 70 and m.height_cm is None
    assert any("no height: BSA, TELV and sFLR are not computed" in w for w in m.warnings)
    assert m.methods["bsa_formula"] is None and m.methods["telv_formula"] is None


@pytest.mark.parametrize("height, weight, message", [
    (1.70, None, "implausible for an adult"),
    (None, 2.5, "implausible for an adult"),
])
def test_an_implausible_height_or_weight_alone_is_refused(height, weight, message):
    with pytest.raises(InputError, match=message):
        flr.Patient(height_cm=height, weight_kg=weight)


def test_a_height_alone_is_kept_for_a_weight_to_complete_and_computes_nothing_alone():
    # Refused outright, a height typed for a DICOM scan whose header gives the weight had
    # stopped the measurement ("give the weight with the height"), though the header's
    # height completes a weight typed alone.
    im, _, _ = box_case()
    m = flr.measure(im["liver"], flr=im["flr"], patient=flr.Patient(height_cm=170))
    assert m.height_cm == 170 and m.sflr_pct is None and m.flr_bw_ratio_pct is None
    assert any("no weight: BSA, TELV, sFLR and FLR/body weight are not computed" in w
               for w in m.warnings)


def test_flr_outside_liver_is_reported_not_counted():
    im, n, v = box_case()
    a = sitk.GetArrayFromImage(im["flr"])
    a[12, 5:25, 5:20] = 1  # one slice beyond the liver: 300 voxels
    flr_img = image_like(a)
    m = flr.measure(im["liver"], flr=flr_img)
    assert m.flr_ml == pytest.approx(n["flr"] * v)
    assert m.flr_outside_liver_ml == pytest.approx(300 * v)
    assert any("outside the liver" in w for w in m.warnings)


def test_an_flr_holding_the_whole_liver_is_said():
    # An FLR mask that was the whole liver (a liver-and-tumour map given as --flr) had
    # given an sFLR of 141 %, "adequate", with no warning.
    im, _, _ = box_case()
    m = flr.measure(im["liver"], flr=im["liver"])
    assert m.measured_flr_pct == pytest.approx(100.0)
    assert any("the FLR holds 100 % of the functional liver" in w for w in m.warnings)
    assert not any("functional liver" in w for w in flr.measure(im["liver"], flr=im["flr"]).warnings)


def test_empty_liver_is_an_error():
    im, _, _ = box_case()
    with pytest.raises(InputError, match="empty"):
        flr.measure(im["liver"] * 0)


def test_flr_not_overlapping_liver_is_an_error():
    im, _, _ = box_case()
    a = np.zeros(sitk.GetArrayViewFromImage(im["liver"]).shape, np.uint8)
    a[0, 0, 0] = 1
    with pytest.raises(InputError, match="remnant is empty"):
        flr.measure(im["liver"], flr=image_like(a))


def test_liver_touching_first_slice_is_flagged():
    im, _, _ = box_case()
    a = sitk.GetArrayFromImage(im["liver"])
    a[0:3, 5:25, 5:35] = 1
    m = flr.measure(image_like(a))
    assert any("inferior end of the field of view" in w for w in m.warnings)
    # The automatic segmentation already said so: the measurement says it once.
    again = flr.measure(image_like(a), extra_warnings=list(m.warnings))
    assert again.warnings == m.warnings


def test_mask_on_other_grid_is_refused_by_measure():
    im, _, _ = box_case()
    other = sitk.Image(im["liver"])
    other.SetSpacing((1, 1, 1))
    with pytest.raises(GeometryError, match="grid"):
        flr.measure(im["liver"], flr=other)


def test_segment_volumes():
    im, n, v = box_case()
    seg = sitk.GetArrayFromImage(im["liver"]).astype(np.uint8)
    seg[:, :, 20:] *= 5  # x >= 20 is segment 5, the rest segment 1
    m = flr.measure(im["liver"], segments=image_like(seg))
    assert m.segments_ml["1"] == pytest.approx(3000 * v)
    assert m.segments_ml["5"] == pytest.approx(3000 * v)
    assert sum(m.segments_ml.values()) == pytest.approx(m.total_liver_ml)


def test_other_formulas_are_used_and_recorded():
    im, _, _ = box_case()
    opts = flr.VolumetryOptions(bsa_formula="dubois", telv_formula="urata")
    m = flr.measure(im["liver"], flr=im["flr"], patient=flr.Patient(170, 70), options=opts)
    assert m.bsa_m2 == pytest.approx(flr.bsa_m2(170, 70, "dubois"))
    assert m.telv_ml == pytest.approx(706.2 * m.bsa_m2 + 2.4)
    assert m.methods["telv_formula"] == "urata" and m.methods["bsa_formula"] == "dubois"
    assert not any("BSA" in w for w in m.warnings)
    # A TELV formula derived with its own BSA formula overrides the choice, and says so.
    opts = flr.VolumetryOptions(bsa_formula="haycock", telv_formula="korean_dubois")
    m = flr.measure(im["liver"], flr=im["flr"], patient=flr.Patient(170, 70), options=opts)
    assert m.bsa_m2 == pytest.approx(flr.bsa_m2(170, 70, "dubois"))
    assert any("derived with the dubois BSA, which is used instead of haycock" in w
               for w in m.warnings)
    # Also over the default (Mosteller): the command line cannot tell it from a choice, and
    # --bsa-formula mosteller had been overridden without a word.
    m = flr.measure(im["liver"], flr=im["flr"], patient=flr.Patient(170, 70),
                    options=flr.VolumetryOptions(telv_formula="korean_dubois"))
    assert any("derived with the dubois BSA, which is used instead of mosteller" in w
               for w in m.warnings)


def test_patient_liver_condition_is_checked():
    with pytest.raises(InputError):
        flr.Patient(170, 70, liver_condition="fatty")


@pytest.mark.parametrize("bad", ["24-09-2024", "2024/09/24", "2024-09-24 10:00", "2024-02-30"])
def test_scan_date_is_checked_when_measured(bad):
    im, _, _ = box_case()
    with pytest.raises(InputError, match="is not a date; write it as YYYY-MM-DD"):
        flr.measure(im["liver"], scan_date=bad)
    assert flr.measure(im["liver"], scan_date="20240924").scan_date == "2024-09-24"


@pytest.mark.parametrize("make, message", [
    (lambda a: a.astype(np.float32) * 0.3, "fractional values"),        # a probability map
    (lambda a: a.astype(np.int16) * 1100 - 1000, "negative values"),   # a CT in HU
    (lambda a: np.where(a > 0, np.nan, 0.0), "NaN"),
])
def test_measure_refuses_what_is_no_mask(make, message):
    im, _, _ = box_case()
    bad = sitk.GetImageFromArray(make(sitk.GetArrayFromImage(im["liver"])))
    bad.CopyInformation(im["liver"])
    with pytest.raises(InputError, match=message):
        flr.measure(bad)
    with pytest.raises(InputError, match=message):
        flr.mask_volume_ml(bad)
    with pytest.raises(InputError, match=message):
        flr.measure(im["liver"], flr=bad)


def test_measure_refuses_arrays_paths_and_sheared_grids():
    im, n, v = box_case()
    for bad in (sitk.GetArrayFromImage(im["liver"]), "liver.nii.gz"):
        with pytest.raises(InputError, match="must be a SimpleITK image"):
            flr.measure(bad)
    sheared = sitk.Image(im["liver"])
    sheared.SetDirection((2, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(InputError, match="not a rotation"):
        flr.mask_volume_ml(sheared)
    # A dict of the Patient's fields (e.g. read from a file) is a Patient; another key is not.
    assert flr.measure(im["liver"], patient={"height_cm": 170, "weight_kg": 70}).telv_ml == \
        flr.measure(im["liver"], patient=flr.Patient(170, 70)).telv_ml
    with pytest.raises(InputError, match="patient has no field 'height'"):
        flr.measure(im["liver"], patient={"height": 170})
    with pytest.raises(InputError, match="patient must be a Patient"):
        flr.measure(im["liver"], patient=(170, 70))
    # Text from a CSV is a number once checked.
    assert flr.Patient("170", "70") == flr.Patient(170.0, 70.0)
    with pytest.raises(InputError, match="height_cm must be a number"):
        flr.Patient("tall", 70)


def test_float_labels_are_rounded_not_truncated():
    lab = sitk.GetImageFromArray(np.array([[[0.99999, 1.99999, 2.0, 4.00001]]], np.float32))
    assert flr.label_volumes_ml(lab) == {"1": 0.001, "2": 0.002, "4": 0.001}


def test_an_flr_of_tumour_only_is_said_as_such():
    im, _, _ = box_case()
    with pytest.raises(InputError, match="the FLR mask holds only tumour"):
        flr.measure(im["liver"], tumor=im["tumor"], flr=im["tumor"])


def test_field_of_view_warnings_name_the_patients_side_however_the_scan_is_stored():
    from flr_volumetry.volumetry import field_of_view_warnings

    # A liver cut at the patient's top, stored axially and as coronal slices: the same
    # warning (the coronal file had said "in-plane edge" where the axial said "slice").
    a = np.zeros((8, 9, 10), np.uint8)
    a[5:, 2:6, 2:7] = 1                           # reaches the last z index: superior (LPS)
    axial = sitk.GetImageFromArray(a)
    coronal = sitk.PermuteAxes(axial, [0, 2, 1])   # stored with y as the slice axis
    assert coronal.GetDirection() != axial.GetDirection()
    for img in (axial, coronal, sitk.Flip(axial, [False, False, True])):
        assert field_of_view_warnings(img) == [
            "the liver touches the superior end of the field of view: it may be cut there, so "
            "its volume may be too small."]


def test_field_of_view_warnings_on_an_oblique_scan_name_each_side_once():
    import math

    from flr_volumetry.volumetry import field_of_view_warnings

    a = np.zeros((8, 9, 10), np.uint8)
    a[3:5, 2:6, 0] = 1
    a[3:5, 2:6, -1] = 1
    img = sitk.GetImageFromArray(a)
    c, s = math.cos(math.radians(45.5)), math.sin(math.radians(45.5))
    img.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    # Both in-plane axes lean more than 45 degrees: each had been named by its largest
    # component, the same patient axis twice ("right and left and right and left").
    warnings = field_of_view_warnings(img)
    assert warnings == [
        "the liver touches the anterior and posterior edges of the field of view: part of it "
        "may lie outside the scan, so its volume may be too small."]


def test_names_are_recorded_in_their_canonical_form():
    # 'Cirrhosis' and 'Vauthey' were accepted and recorded as typed: a cohort grouped by
    # these fields split into 'cirrhosis' and 'Cirrhosis'.
    im, _, _ = box_case()
    m = flr.measure(im["liver"], flr=im["flr"],
                    patient=flr.Patient(170, 70, liver_condition=" Cirrhosis"),
                    options=flr.VolumetryOptions("Mosteller", "Korean-Dubois"))
    assert m.liver_condition == "cirrhosis" and m.sflr_threshold_pct == 40.0
    assert m.methods["telv_formula"] == "korean_dubois"
    assert m.methods["bsa_formula"] == "dubois"
    assert flr.VolumetryOptions("Mosteller", "Vauthey") == flr.VolumetryOptions()


def test_extra_warnings_text_is_one_warning_and_other_items_are_refused():
    # measure(extra_warnings="resampled") had split the sentence into letters
    liver = sitk.Image([4, 4, 4], sitk.sitkUInt8) + 1
    m = flr.measure(liver, extra_warnings="the liver mask was resampled.")
    assert m.warnings[0] == "the liver mask was resampled."
    assert "t" not in m.warnings
    assert list(flr.measure(liver, extra_warnings=("a.", "b.")).warnings[:2]) == ["a.", "b."]
    with pytest.raises(InputError, match="extra_warnings must be text or a list of text"):
        flr.measure(liver, extra_warnings=[3])
    with pytest.raises(InputError, match="extra_methods must be a dict"):
        flr.measure(liver, extra_methods=["segmented"])


@pytest.mark.parametrize("height_cm, weight_kg, said", [  # said: whether a warning is due
    (100, 25, True),      # a child's size typed for an adult's liver: sFLR 122 %
    (178, 84, False),
])
def test_a_liver_far_from_the_estimate_of_body_size_is_said(height_cm, weight_kg, said):
    a = np.zeros((30, 130, 130), np.uint8)
    a[1:-1, 1:-1, 1:-1] = 1                          # 1835 mL at 1 x 1 x 4 mm, inside the scan
    f = a.copy()
    f[:, :, 60:] = 0
    liver = sitk.GetImageFromArray(a)
    liver.SetSpacing((1.0, 1.0, 4.0))
    flr_img = sitk.GetImageFromArray(f)
    flr_img.CopyInformation(liver)
    m = flr.measure(liver, flr=flr_img, patient=flr.Patient(height_cm, weight_kg))
    found = [w for w in m.warnings if "estimated from height and weight" in w]
    if not said:
        assert not found
    else:
        (w,) = found
        assert f"{m.functional_liver_ml / m.telv_ml:.1f} times" in w
        assert "check the height and weight" in w


def test_no_liver_mask_is_refused_in_a_sentence():
    # measure(None) had failed with an AttributeError inside SimpleITK.
    with pytest.raises(InputError, match="needs the liver mask"):
        flr.measure(None)


def test_a_patient_size_too_large_for_a_float_is_refused_in_a_sentence():
    # float(10**400) had raised a bare OverflowError.
    with pytest.raises(InputError, match="height_cm must be a number"):
        flr.Patient(10**400, 70)


def test_a_grid_refused_for_its_direction_alone_is_described_with_it():
    # A flipped segment map had been refused as "(20x20x20 voxels at 5,5,5 mm, origin ...)
    # is not on the liver mask's grid (20x20x20 voxels at 5,5,5 mm, origin ...)": two grids
    # told alike. label_volumes_ml's reference is the label map, not a liver mask.
    a = np.zeros((6, 6, 6), np.uint8); a[1:5, 1:5, 1:5] = 1
    liver = sitk.GetImageFromArray(a)
    flipped = sitk.GetImageFromArray(a)
    flipped.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(GeometryError, match=r"direction \(-1,0,0,0,1,0,0,0,1\)\) is not on the "
                                            r"liver mask's grid"):
        flr.measure(liver, segments=flipped)
    with pytest.raises(GeometryError, match="is not on the label map's grid"):
        flr.label_volumes_ml(liver, within=flipped)


def test_a_scan_of_positive_whole_numbers_is_no_liver_mask():
    # An MR scan (0-850, whole numbers) given to measure had been measured as a 23 L liver;
    # load_mask refused the same file as "holds 855 different values".
    rng = np.random.default_rng(0)
    mr = sitk.GetImageFromArray(rng.integers(0, 850, (20, 20, 20)).astype(np.uint16))
    with pytest.raises(InputError, match="different values, no mask or label map does"):
        flr.measure(mr)
    big = sitk.GetImageFromArray(np.full((4, 4, 4), 70000, np.uint32))
    with pytest.raises(InputError, match="values up to 70000"):
        flr.mask_volume_ml(big)
    # A label map numbered up to 1000 with few labels, and a 0/255 mask, are masks.
    labels = np.zeros((20, 20, 20), np.uint16); labels[2:8] = 1000; labels[9:12] = 3
    assert flr.label_volumes_ml(sitk.GetImageFromArray(labels)) == {"3": 1.2, "1000": 2.4}
    assert flr.mask_volume_ml(sitk.GetImageFromArray((labels > 0).astype(np.uint8) * 255)) == 3.6


def test_a_tumour_mask_covering_the_whole_liver_is_refused_in_a_sentence():
    # A liver-and-tumour label map given whole as the tumour too: FLV 0 mL, unsaid.
    im, _, _ = box_case()
    with pytest.raises(InputError, match="the tumour mask covers the whole liver .* give the "
                                         "tumour's own label"):
        flr.measure(im["liver"], tumor=im["liver"])


def test_a_liver_over_2_5_times_its_telv_is_said_from_the_ratio_not_at_it():
    from flr_volumetry.volumetry import TELV_RATIO_MAX, _telv_plausibility

    assert TELV_RATIO_MAX == 2.5
    assert _telv_plausibility(2500.0, 1000.0) == []
    (w,) = _telv_plausibility(2501.0, 1000.0)
    assert "is 2.5 times the total liver volume estimated" in w


def test_a_segment_map_missing_the_liver_entirely_is_said_once():
    # No label inside the liver: the unlabelled volume says it; listing all eight segments
    # as missing besides would say it twice.
    from flr_volumetry.volumetry import segment_map_warnings

    (w,) = segment_map_warnings({}, unlabelled_ml=1500.0)
    assert w.startswith("1500.0 mL of the liver has no segment label")


def test_a_scan_is_refused_where_a_mask_is_expected(tmp_path):
    # A uint8 scan passed as the liver had been measured as a 215 mL liver.
    import SimpleITK as sitk

    a = np.random.default_rng(0).integers(0, 255, (30, 30, 30)).astype(np.uint8)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(img, str(tmp_path / "scan8.nii.gz"))
    scan = flr.load_image(tmp_path / "scan8.nii.gz")
    with pytest.raises(InputError, match="liver mask is a scan .* not a mask"):
        flr.measure(scan)
    with pytest.raises(InputError, match="is a scan"):
        flr.mask_volume_ml(scan)
