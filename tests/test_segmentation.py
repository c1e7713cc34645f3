"""Liver and tumour segmentation: synthetic CT, bad inputs, CLI, real scans."""

from __future__ import annotations

import builtins
import json
import re
import sys
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

import flr_volumetry as flr
from flr_volumetry.cli import main
from flr_volumetry.errors import InputError
from flr_volumetry.segmentation import (
    SegmentationOptions,
    check_ct_intensities,
    liver_from_totalsegmentator_output,
    segment_liver,
)

SPACING_MM = 4.0
SHAPE = (60, 80, 80)  # z, y, x; LPS: low x = patient right, high z = superior


def _ellipsoid(center, radii):
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return (((z - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2
            + ((x - center[2]) / radii[2]) ** 2) <= 1.0


def synthetic_ct(touching_spleen=False, seed=0):
    """A small CT in HU: body (fat), lungs, heart, liver with a hypodense tumour, spleen."""
    a = np.full(SHAPE, -1000.0)
    a[_ellipsoid((30, 40, 40), (40, 30, 37))] = -90.0          # body (fat)
    liver = _ellipsoid((27, 40, 27), (11, 17, 14))
    a[liver] = 100.0
    spleen_center = (30, 44, 47) if touching_spleen else (30, 46, 60)
    spleen = _ellipsoid(spleen_center, (7, 8, 6)) & ~liver
    a[spleen] = 100.0 if touching_spleen else 115.0
    a[_ellipsoid((47, 36, 45), (8, 9, 9))] = 130.0             # heart above the diaphragm
    lungs = _ellipsoid((50, 40, 24), (12, 15, 11)) | _ellipsoid((50, 40, 58), (12, 15, 10))
    a[lungs] = -850.0
    liver &= ~lungs
    tumor = _ellipsoid((26, 40, 24), (3, 3, 3))
    a[tumor] = 35.0
    a += np.random.default_rng(seed).normal(0.0, 8.0, SHAPE)
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((SPACING_MM,) * 3)
    img.SetOrigin((-160.0, -160.0, -120.0))
    return img, liver, tumor, spleen


def _arr(img):
    return sitk.GetArrayFromImage(img) > 0


def dice(a, b):
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def ct():
    return synthetic_ct()


# ----------------------------------------------------------------------------- synthetic CT
def test_padding_far_below_air_is_air(ct):
    # A float scan padded with float32's lowest value outside the reconstruction circle
    # had lost 8.5 % of the real partial CT's liver, with numpy overflow warnings on stderr.
    img, liver, _, _ = ct
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    outside = (y - 40) ** 2 + (x - 40) ** 2 > 39 ** 2
    results = []
    for pad in (-1024.0, float(np.finfo(np.float32).min)):
        padded = sitk.GetImageFromArray(np.where(outside, pad, a).astype(np.float32))
        padded.CopyInformation(img)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            results.append(_arr(segment_liver(padded).liver))
    assert dice(results[0], liver) >= 0.92
    assert np.array_equal(results[0], results[1])


def test_real_ct_padded_far_below_air_keeps_its_liver(shared_data):
    img = sitk.ReadImage(str(shared_data / "ct-partial-totalsegmentator" / "ct.nii.gz"))
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    _, y, x = np.ogrid[: a.shape[0], : a.shape[1], : a.shape[2]]
    outside = ((y - a.shape[1] / 2) / (a.shape[1] / 2)) ** 2 + (
        (x - a.shape[2] / 2) / (a.shape[2] / 2)) ** 2 > 1.0
    volumes = []
    for pad in (-1024.0, float(np.finfo(np.float32).min)):
        padded = sitk.GetImageFromArray(np.where(outside, pad, a).astype(np.float32))
        padded.CopyInformation(img)
        volumes.append(_arr(segment_liver(padded).liver).sum())
    assert volumes[1] == volumes[0]


def test_automatic_ct_finds_the_liver(ct):
    img, liver, tumor, spleen = ct
    r = segment_liver(img)
    seg = _arr(r.liver)
    assert r.liver.GetSize() == img.GetSize() and r.liver.GetSpacing() == img.GetSpacing()
    assert r.liver.GetPixelID() == sitk.sitkUInt8
    assert dice(seg, liver) >= 0.92
    assert not np.any(seg & spleen)  # a separate organ of similar density stays out
    assert np.all(seg[tumor]) or np.mean(seg[tumor]) > 0.9  # the lesion is filled in
    assert r.methods["backend"] == "classic"
    assert "automatic" in r.methods["algorithm"]


def test_seeded_ct(ct):
    img, liver, _, _ = ct
    r = segment_liver(img, seeds=[(22, 40, 24)])
    assert dice(_arr(r.liver), liver) >= 0.93
    assert r.methods["parameters"]["seeds"] == [[22, 40, 24]]


def test_tumour_inside_liver_is_found(ct):
    img, _, tumor, _ = ct
    r = segment_liver(img)
    assert r.tumor is not None and r.tumor.GetSize() == img.GetSize()
    found = _arr(r.tumor)
    assert dice(found, tumor) >= 0.5
    assert np.all(found <= _arr(r.liver))  # tumours lie inside the liver


def _noisy_block_of_liver(a):
    """(smoothed image, its reference image, a liver mask filling it) for tumour candidates:
    ``a`` blurred, with CT noise of 12 HU, lightly smoothed as the pipeline does."""
    a = ndi.gaussian_filter(a, 1.0) + np.random.default_rng(0).normal(0.0, 12.0, a.shape)
    smooth = ndi.gaussian_filter(a, 1.0)
    liver = np.zeros(a.shape, bool)
    liver[1:-1, 1:-1, 1:-1] = True
    return smooth, sitk.GetImageFromArray(smooth.astype(np.float32)), liver


def test_fat_in_a_fissure_is_no_tumour_candidate_but_a_cyst_is():
    # On the real CT, 2.5 of the 3.1 mL of candidates were fissure and hilar fat enclosed by
    # the liver mask (6 and 24 % of their voxels below -30 HU).
    from flr_volumetry.segmentation._classic import find_tumors

    z, y, x = np.ogrid[:40, :60, :60]
    a = np.full((40, 60, 60), 100.0)
    cyst = (z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 36
    fissure = ((z - 20) ** 2 + (y - 40) ** 2 + (x - 40) ** 2 <= 81) & (np.abs(x - 40) <= 1)
    a[cyst], a[fissure] = 5.0, -80.0  # a cyst near water; a fat sheet 3 voxels thick
    smooth, ref, liver = _noisy_block_of_liver(a)
    found = find_tumors(smooth, liver, (100.0, 8.0), ref, 0.1, fat_level=-30.0)
    assert found[cyst].mean() > 0.95
    assert not found[fissure].any()
    assert find_tumors(smooth, liver, (100.0, 8.0), ref, 0.1)[fissure].mean() > 0.95


def test_lesion_touching_enclosed_fat_is_still_a_tumour_candidate():
    # A metastasis at the surface of the real CT with 8 mL of fat enclosed at its mouth
    # (6 % of the candidate) had been dropped whole as fat: 113 mL of tumour missed.
    from flr_volumetry.segmentation._classic import find_tumors

    z, y, x = np.ogrid[:40, :60, :60]
    a = np.full((40, 60, 60), 100.0)
    lesion = (z - 20) ** 2 + (y - 30) ** 2 + (x - 30) ** 2 <= 100
    fat = ((z - 20) ** 2 + (y - 30) ** 2 + (x - 46) ** 2 <= 36) & ~lesion
    a[lesion], a[fat] = 25.0, -100.0
    smooth, ref, liver = _noisy_block_of_liver(a)
    found = find_tumors(smooth, liver, (100.0, 8.0), ref, 0.1, fat_level=-30.0)
    assert found[lesion].mean() > 0.8
    assert not found[smooth < -30.0].any()  # the fat itself stays out


def test_tumour_seed_adds_a_surface_lesion():
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    # A hypodense lesion bulging out of the liver's lateral surface.
    lesion = _ellipsoid((27, 40, 14), (4, 4, 4)) & (a > -500)
    a[lesion] = 30 + (a[lesion] - a[lesion].mean()) * 0.1
    bulged = sitk.GetImageFromArray(a)
    bulged.CopyInformation(img)
    truth = liver | lesion
    plain = segment_liver(bulged)
    assert np.mean(_arr(plain.liver)[lesion]) < 0.7  # the automatic liver misses much of it
    seed = tuple(int(v) for v in np.argwhere(lesion).mean(axis=0)[::-1].round())
    r = segment_liver(bulged, tumor_seeds=[seed])
    assert np.mean(_arr(r.liver)[lesion]) > 0.9
    assert dice(_arr(r.liver), truth) >= 0.92
    assert dice(_arr(r.tumor) & lesion, lesion) >= 0.8
    assert r.methods["parameters"]["tumor_seeds"] == [list(seed)]


def _with_surface_blob(hu, center, radii):
    """The synthetic CT with a blob of ``hu`` cut into the liver at its surface."""
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    blob = _ellipsoid(center, radii) & liver
    a[blob] = hu + (a[blob] - 100.0)  # the scan's own noise
    out = sitk.GetImageFromArray(a)
    out.CopyInformation(img)
    return out, liver, blob


def test_lesion_at_the_surface_is_part_of_the_automatic_liver():
    # Hypo-attenuating, wrapped by the liver on most sides, open to the outside: too broad a
    # pocket for the closing. The liver's window had left it out (a lesion inserted into the
    # real CT lost a quarter of its 113 mL, a phantom's 78 mL surface lesion all of it).
    img, liver, lesion = _with_surface_blob(45.0, (27, 40, 17), (6, 7, 6))
    r = segment_liver(img)
    assert np.mean(_arr(r.liver)[lesion]) > 0.6  # 0.02 before
    assert dice(_arr(r.liver), liver) >= 0.98  # 0.946 before
    assert dice(_arr(r.tumor) & lesion, lesion) >= 0.5  # and a tumour candidate, for review
    assert "lesions at the surface taken in" in r.methods["algorithm"]  # said in the record


def test_surface_lesion_holding_an_exclude_point_stays_out():
    # The exclude point's ball had been cut out and the rest of the blob taken in (40 of 58
    # mL), with a warning that the point "could not be cut off".
    img, liver, lesion = _with_surface_blob(45.0, (27, 40, 17), (6, 7, 6))
    r = segment_liver(img, exclude=[(18, 40, 27)])
    assert np.mean(_arr(r.liver)[lesion]) < 0.1
    assert "lesions at the surface" not in r.methods["algorithm"]


def test_neighbour_cut_by_the_field_of_view_is_no_surface_lesion():
    # Its face on the scan's edge had counted as no border at all: contact 0.47 instead of
    # 0.24, and 10.6 mL of the organ taken into the liver.
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    organ = _ellipsoid((14, 40, 27), (6, 8, 8)) & ~liver  # 40 HU, under the liver
    a[organ] = 40.0 + np.random.default_rng(5).normal(0.0, 8.0, organ.sum())
    cropped = sitk.GetImageFromArray(a[14:].copy())
    cropped.SetSpacing(img.GetSpacing())
    cropped.SetOrigin(img.TransformIndexToPhysicalPoint((0, 0, 14)))
    r = segment_liver(cropped)
    assert np.count_nonzero(_arr(r.liver) & organ[14:]) * SPACING_MM ** 3 / 1000.0 < 2.0


def test_seed_in_a_surface_lesion_segments_the_liver_the_automatic_path_finds():
    # The automatic path takes this lesion in; clicked, it had been written as a 56 mL
    # "liver" (its wrap was measured differently), or refused when the growth covered part
    # of it.
    for center in ((27, 40, 17), (27, 40, 21)):
        img, liver, lesion = _with_surface_blob(50.0, center, (6, 7, 6))
        seed = (center[2] + 1, center[1], center[0])
        r = segment_liver(img, seeds=[seed])
        assert dice(_arr(r.liver), liver) >= 0.95, center
        assert [w for w in r.warnings if "a lesion or vessel was clicked" in w]


def test_fluid_at_the_surface_stays_out_of_the_automatic_liver():
    # Bile, effusion and cysts (below 20 HU) in a fossa of the liver are not taken for a lesion.
    img, liver, fluid = _with_surface_blob(5.0, (27, 40, 17), (6, 7, 6))
    r = segment_liver(img)
    assert np.mean(_arr(r.liver)[fluid]) < 0.5


def test_result_on_input_grid_for_flipped_orientation(ct):
    img, liver, _, _ = ct
    # Same scan stored with x and y flipped (RAS-like, as NIfTI from many tools).
    flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(img)[:, ::-1, ::-1].copy())
    flipped.SetSpacing(img.GetSpacing())
    size = np.array(img.GetSize()) - 1
    corner = img.TransformIndexToPhysicalPoint([int(size[0]), int(size[1]), 0])
    flipped.SetOrigin(corner)
    flipped.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    r = segment_liver(flipped)
    assert r.liver.GetDirection() == flipped.GetDirection()
    assert r.liver.GetOrigin() == flipped.GetOrigin()
    assert dice(_arr(r.liver)[:, ::-1, ::-1], liver) >= 0.92


def test_integer_scan_gives_the_mask_of_its_float_copy(ct):
    # The pipeline keeps the scan in its own pixel type and casts what each step reads:
    # an average taken in integers (BinShrink of int16) would round the coarse grid.
    # An 8 mm coarse grid, so that the 4 mm synthetic scan is averaged down at all.
    img = ct[0]
    assert img.GetPixelID() == sitk.sitkInt16
    as_float = sitk.Cast(img, sitk.sitkFloat32)
    options = SegmentationOptions(coarse_spacing_mm=8.0)
    for seeds in ([], [(22, 40, 24)]):
        a = segment_liver(img, seeds=seeds, options=options)
        b = segment_liver(as_float, seeds=seeds, options=options)
        assert np.array_equal(sitk.GetArrayViewFromImage(a.liver),
                              sitk.GetArrayViewFromImage(b.liver))
        assert np.array_equal(sitk.GetArrayViewFromImage(a.tumor),
                              sitk.GetArrayViewFromImage(b.tumor))
        assert a.methods == b.methods


def test_integer_mr_with_bias_correction(ct):
    # N4 divides the scan by a float field: an unsigned-integer MR is cast first.
    a = sitk.GetArrayFromImage(ct[0]).astype(np.float64)
    mr = sitk.GetImageFromArray(np.round(np.clip(a + 1000.0, 0, None) * 0.4).astype(np.uint16))
    mr.CopyInformation(ct[0])
    options = SegmentationOptions(mr_bias_correction=True)
    r = segment_liver(mr, modality="mr", seeds=[(22, 40, 24)], options=options)
    f = segment_liver(sitk.Cast(mr, sitk.sitkFloat32), modality="mr", seeds=[(22, 40, 24)],
                      options=options)
    assert r.methods["parameters"]["mr_bias_correction"] is True
    assert np.array_equal(sitk.GetArrayViewFromImage(r.liver), sitk.GetArrayViewFromImage(f.liver))
    assert dice(_arr(r.liver), ct[1]) >= 0.85


def test_exclude_point_keeps_region_off_touching_organ():
    img, liver, _, spleen = synthetic_ct(touching_spleen=True)
    spleen_point = tuple(int(v) for v in np.argwhere(spleen).mean(axis=0)[::-1].round())
    seed = (22, 40, 24)
    r = segment_liver(img, seeds=[seed], exclude=[spleen_point])
    seg = _arr(r.liver)
    assert np.mean(seg[spleen]) < 0.2
    assert dice(seg, liver) >= 0.9


def rough_neighbour_ct(seed=0):
    """A liver and, joined through a thin but broad bridge, tissue with the liver's
    mean HU and a coarse grid that hides its texture (like bowel or stomach)."""
    shape = (40, 60, 100)  # z, y, x at 1.5 mm: finer than the 3 mm coarse grid
    a = np.full(shape, -1000.0)
    a[2:38, 2:58, 2:98] = -90.0  # body: fat
    liver = np.zeros(shape, bool)
    liver[6:34, 8:52, 6:50] = True
    rough = np.zeros(shape, bool)
    rough[8:32, 12:48, 54:80] = True
    bridge = np.zeros(shape, bool)
    bridge[17:23, 12:48, 50:54] = True  # 9 mm thick: a neck, but 324 mm^2 of contact
    a[liver | bridge] = 100.0
    rng = np.random.default_rng(seed)
    a[rough] = 100.0 + 45.0 * np.where(rng.random(np.count_nonzero(rough)) < 0.5, -1, 1)
    a += rng.normal(0.0, 6.0, shape)
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((1.5, 1.5, 1.5))
    return img, liver, rough


@pytest.mark.parametrize("texture_ratio, rough_kept", [(None, True), (1.4, False)])
def test_rough_neighbour_touching_broadly_stays_out(texture_ratio, rough_kept):
    # Without the texture test the broad contact merges the neighbour; with it, it stays out.
    img, liver, rough = rough_neighbour_ct()
    options = SegmentationOptions(merge_texture_ratio=texture_ratio)
    r = segment_liver(img, seeds=[(28, 30, 20)], options=options)
    seg = _arr(r.liver)
    assert np.mean(seg[liver]) >= 0.8
    assert (np.mean(seg[rough]) > 0.3) == rough_kept
    assert r.methods["parameters"]["merge_texture_ratio"] == texture_ratio


def test_robust_mode_is_finer_than_its_histogram_bins():
    from flr_volumetry.segmentation._common import robust_mode

    rng = np.random.default_rng(1)
    for true_mode in (56.0, 56.5, 57.25):
        values = np.concatenate([rng.normal(true_mode, 4.0, 20000),
                                 rng.uniform(-50.0, 250.0, 2000)])  # vessels, fat, lesions
        assert abs(robust_mode(values, -50.0, 250.0, bin_width=2.0) - true_mode) < 0.3


def test_exclude_side_ends_at_the_thinnest_section():
    # Two blocks joined by a thin neck; the exclude point sits just past the neck and the
    # seed far from it. Plain geodesic distance would split block A in its middle.
    from flr_volumetry.segmentation._classic import _closer_through_thick
    from flr_volumetry.segmentation._common import distance_inside_mm

    cand = np.zeros((12, 40, 90), bool)
    cand[1:11, 2:38, 2:40] = True    # block A, the liver
    cand[5:7, 18:22, 40:50] = True   # neck
    cand[1:11, 2:38, 50:88] = True   # block B, another organ
    ref = sitk.GetImageFromArray(cand.astype(np.uint8))
    seed, exclude = np.zeros_like(cand), np.zeros_like(cand)
    seed[6, 20, 5] = True
    exclude[6, 20, 53] = True
    to_liver = _closer_through_thick(cand, distance_inside_mm(cand, ref), seed, exclude, ref)
    assert to_liver[:, :, :40][cand[:, :, :40]].all()
    assert not to_liver[:, :, 50:][cand[:, :, 50:]].any()


def test_exclude_point_is_in_neither_the_liver_nor_the_tumour_mask():
    # A click in an enclosed cyst (like the gallbladder in its fossa) as an exclude
    # point: the tumour candidates must not take it back into the total liver volume.
    shape = (60, 80, 100)
    a = np.full(shape, -1000.0)
    a[2:58, 2:78, 2:98] = -90.0
    a[8:52, 10:70, 10:80] = 100.0
    z, y, x = np.ogrid[:60, :80, :100]
    a[((z - 30) ** 2 + (y - 40) ** 2 + (x - 60) ** 2) <= 8 ** 2] = 20.0
    a += np.random.default_rng(0).normal(0.0, 8.0, shape)
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    r = segment_liver(img, seeds=[(30, 40, 30)], exclude=[(60, 40, 30)])
    assert not _arr(r.liver)[30, 40, 60]
    assert not _arr(r.tumor)[30, 40, 60]
    assert any("exclude point 60,40,30" in w for w in r.warnings)


def test_ct_second_pass_keeps_the_first_region_when_it_misses_the_seed():
    # The seed sits in a heterogeneous 15 mm zone: the second, narrower window centred
    # on the whole liver misses the seed's own voxels; the first region must stand.
    shape = (40, 54, 66)
    a = np.full(shape, -1000.0)
    a[1:39, 1:53, 1:65] = -90.0
    liver = np.zeros(shape, bool)
    liver[5:35, 7:47, 7:54] = True
    a[liver] = 100.0
    z, y, x = np.ogrid[:40, :54, :66]
    zone = (((z - 20) ** 2 + (y - 27) ** 2 + (x - 20) ** 2) <= 5 ** 2) & liver
    rng = np.random.default_rng(0)
    a += rng.normal(0.0, 5.0, shape)
    a[zone] = 140.0 + rng.normal(0.0, 40.0, np.count_nonzero(zone))
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((3.0, 3.0, 3.0))
    r = segment_liver(img, seeds=[(20, 27, 20)])
    assert np.mean(_arr(r.liver)[liver & ~zone]) >= 0.95


def test_exclude_cut_from_the_seeds_own_tissue_is_said():
    # A thin lobe with an organ of the same HU fused onto it: an exclude click in the
    # organ cannot know where the lobe ends and takes some of it; the user is told.
    shape = (50, 80, 120)
    a = np.full(shape, -1000.0)
    a[1:49, 1:79, 1:119] = -90.0
    a[5:45, 10:70, 5:55] = 100.0     # right lobe
    a[20:32, 15:65, 55:105] = 100.0  # left lobe: a 24 mm plate
    a[32:46, 20:60, 70:110] = 100.0  # another organ lying on it
    a += np.random.default_rng(0).normal(0.0, 8.0, shape)
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((2.0, 2.0, 2.0))
    r = segment_liver(img, seeds=[(25, 40, 25)], exclude=[(90, 40, 40)])
    assert any("exclude points cut" in w and "add a seed there" in w for w in r.warnings)
    assert not any("exclude points cut" in w
                   for w in segment_liver(img, seeds=[(25, 40, 25)]).warnings)


def test_exclude_warnings_of_an_automatic_liver_speak_of_no_seeds():
    # Automatic mode has no seeds; its exclude warnings had spoken of "the liver grown from
    # the seeds".
    from flr_volumetry.segmentation._pipeline import _exclude_warnings

    notes = {"cut_from_seed_cores_ml": 500.0}
    auto = _exclude_warnings(notes, [(1, 2, 3)], seeded=False)
    assert len(auto) == 2 and not any("grown from the seeds" in w for w in auto)
    assert all("found automatically" in w for w in auto)
    assert all("grown from the seeds" in w for w in _exclude_warnings(notes, [(1, 2, 3)]))


# ----------------------------------------------------------------------------- bad input
def test_seed_outside_image(ct):
    img = ct[0]
    with pytest.raises(InputError, match="outside the image"):
        segment_liver(img, seeds=[(80, 10, 10)])


def test_seed_in_air(ct):
    img = ct[0]
    with pytest.raises(InputError, match="air"):
        segment_liver(img, seeds=[(1, 1, 1)])


def test_seed_that_is_also_an_exclude_point(ct):
    with pytest.raises(InputError, match="both a seed and an exclude point"):
        segment_liver(ct[0], seeds=[(22, 40, 24)], exclude=[(22, 40, 24)])


def test_exclude_point_next_to_a_seed_is_refused(ct):
    # One voxel apart, the exclude ball had cut the seed out of its own region: a mask
    # beside the seed was written, said only to have left the seed out.
    with pytest.raises(InputError, match=r"exclude point 23,40,24 lies 4\.0 mm from the seed "
                                         r"22,40,24.*at least 8 mm from the seeds"):
        segment_liver(ct[0], seeds=[(22, 40, 24)], exclude=[(23, 40, 24)])
    # Two voxels (8 mm) apart the balls only touch: accepted.
    segment_liver(ct[0], seeds=[(22, 40, 24)], exclude=[(24, 40, 24)])


def test_seed_in_a_lesion_is_said():
    # The real CT clicked in its HCC (83 HU in liver of 57): 1377 of 2128 mL, no warning.
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    lesion = _ellipsoid((27, 40, 30), (3, 4, 4)) & liver
    a[lesion] += 25  # a hyper-enhancing lesion of 125 HU in liver of 100
    bright = sitk.GetImageFromArray(a)
    bright.CopyInformation(img)
    r = segment_liver(bright, seeds=[(30, 40, 27)])
    said = [w for w in r.warnings if "lies in tissue" in w]
    assert len(said) == 1 and "seed 30,40,27 lies in tissue brighter than the liver" in said[0]
    parenchyma = segment_liver(bright, seeds=[(22, 40, 24)])
    assert not [w for w in parenchyma.warnings if "lies in tissue" in w]


def test_seed_in_a_lesion_inside_the_liver_segments_the_liver_around_it(ct):
    # The window is centred on the clicked tissue: a click in a 33 mL lesion inserted into
    # the real CT had been refused as "no liver found", one in a 113 mL lesion written as a
    # 108 mL liver. The automatic liver around the lesion is taken, and that is said.
    img, liver, tumor, _ = ct
    r = segment_liver(img, seeds=[(24, 40, 26)])  # the centre of the 35 HU lesion
    assert dice(_arr(r.liver), liver) >= 0.95
    assert np.mean(_arr(r.liver)[tumor]) > 0.9
    said = [w for w in r.warnings if "a lesion or vessel was clicked" in w]
    assert len(said) == 1 and said[0].startswith("the seed grew no region (24,40,26 in tissue of")
    assert "embedded in the liver that the automatic search found" in said[0]
    assert not [w for w in r.warnings if "than the liver grown from it" in w]  # said once
    assert "which was grown instead" in r.methods["algorithm"]


def test_seed_in_a_lesion_is_reported_as_such():
    img, liver, blob = _with_surface_blob(50.0, (27, 40, 17), (6, 7, 6))
    # The record keeps the steps of the automatic liver that stood in (it had lost its
    # surface lesion).
    r = segment_liver(img, seeds=[(24, 40, 26)])  # in the deep 35 HU tumour
    assert "lesions at the surface taken in" in r.methods["algorithm"]
    assert r.methods["seeds_in_a_lesion"] == [[24, 40, 26]]
    # A click on the lesion's outer face, which the boundary leaves out: not said to lie
    # outside the mask, nor grown again as a separate part (which had run the pipeline
    # twice and contradicted the first warning).
    r = segment_liver(img, seeds=[(16, 41, 25)])
    assert [w for w in r.warnings if "a lesion or vessel was clicked" in w]
    assert not [w for w in r.warnings if "lies outside the mask" in w]
    # One seed in parenchyma, one in a lesion: only the second is named.
    img, liver, blob = _with_surface_blob(35.0, (27, 40, 17), (6, 7, 6))
    r = segment_liver(img, seeds=[(30, 40, 27), (18, 40, 27)])
    said = [w for w in r.warnings if "a lesion or vessel was clicked" in w]
    assert len(said) == 1 and "18,40,27 in tissue of" in said[0] and "30,40,27" not in said[0]
    assert r.methods["seeds_in_a_lesion"] == [[18, 40, 27]]


def test_small_liver_clicked_in_its_parenchyma_stands_as_grown():
    # Under the adult range (a remnant after hepatectomy), yet no lesion was clicked: the
    # automatic search may find the same liver, but nothing stands in for it.
    img, liver, tumor, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    small = _ellipsoid((27, 40, 27), (8, 11, 9)) & liver
    a[liver & ~small] = -90.0 + (a[liver & ~small] - 100.0)  # the rest of it made fat
    a[tumor & small] = 100.0 + (a[tumor & small] - 35.0)
    img2 = sitk.GetImageFromArray(a)
    img2.CopyInformation(img)
    r = segment_liver(img2, seeds=[(27, 40, 27)])
    assert not [w for w in r.warnings if "a lesion or vessel was clicked" in w]
    assert dice(_arr(r.liver), small) >= 0.9
    assert "which was grown instead" not in r.methods["algorithm"]


def test_small_liver_in_soft_tissue_without_lungs_stands_as_grown():
    # Without a lung base the automatic search takes the thickest soft tissue: a 405 mL
    # liver clicked in a body of other soft tissue had been replaced by that body (2011 mL,
    # then refused as filling half the field of view).
    a = np.full((40, 60, 60), -1000, np.int16)
    a[5:35, 5:55, 5:55] = 40
    a[10:30, 15:45, 10:35] = 110
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    r = segment_liver(img, seeds=[(20, 30, 20)])
    assert dice(_arr(r.liver), a == 110) > 0.98
    assert not [w for w in r.warnings if "a lesion or vessel was clicked" in w]


def test_seed_in_fluid_beside_the_liver_is_not_replaced_by_the_liver():
    # A click in fluid at the liver's surface (the gallbladder in its fossa) is no lesion
    # of the liver: the automatic liver does not stand in for it (the usual checks speak).
    img, liver, fluid = _with_surface_blob(5.0, (27, 40, 17), (6, 7, 6))
    seed = tuple(int(v) for v in np.argwhere(fluid).mean(axis=0)[::-1].round())
    try:
        r = segment_liver(img, seeds=[seed])
    except InputError as exc:
        assert "smaller than 50 mL" in str(exc)
        return
    assert not [w for w in r.warnings if "a lesion or vessel was clicked" in w]
    assert dice(_arr(r.liver), liver) < 0.5


def test_bad_point_format(ct):
    with pytest.raises(InputError, match="three voxel indices"):
        segment_liver(ct[0], seeds=[(1, 2)])


def test_mr_passed_as_ct_is_refused(ct):
    a = sitk.GetArrayFromImage(ct[0]).astype(np.float64)
    mr = sitk.GetImageFromArray(np.clip(a + 1000.0, 0, None) * 0.4)  # float, 0-~450
    mr.CopyInformation(ct[0])
    with pytest.raises(InputError, match="MR"):
        segment_liver(mr, modality="ct")
    with pytest.raises(InputError, match="seed"):
        segment_liver(mr, modality="mr")  # automatic MR is not offered


def test_ct_passed_as_mr_is_warned_about(ct):
    r = segment_liver(ct[0], modality="mr", seeds=[(22, 40, 24)])
    assert any("like the air of a CT" in w and "--modality ct" in w for w in r.warnings)
    a = sitk.GetArrayFromImage(ct[0]).astype(np.float64)
    mr = sitk.GetImageFromArray(np.clip(a + 1000.0, 0, None) * 0.4)
    mr.CopyInformation(ct[0])
    r = segment_liver(mr, modality="mr", seeds=[(22, 40, 24)])
    assert not any("like the air of a CT" in w for w in r.warnings)
    # Without seeds the refusal says it too (it had said only that automatic is for CT).
    with pytest.raises(InputError, match="if it is a CT, --modality ct segments it "
                                         "automatically"):
        segment_liver(ct[0], modality="mr")
    with pytest.raises(InputError) as e:
        segment_liver(mr, modality="mr")
    assert "like a CT" not in str(e.value)


def test_mr_seed_outside_the_body_is_refused(ct):
    a = sitk.GetArrayFromImage(ct[0]).astype(np.float64)
    mr = sitk.GetImageFromArray(np.clip(a + 1000.0, 0, None) * 0.4)  # background 0
    mr.CopyInformation(ct[0])
    with pytest.raises(InputError, match="dark background outside the body"):
        segment_liver(mr, modality="mr", seeds=[(1, 1, 1)])


def test_seed_in_fat_is_refused(ct):
    # Subcutaneous fat, far from every organ: no soft tissue to grow a liver from.
    with pytest.raises(InputError, match="no soft tissue around the seeds"):
        segment_liver(ct[0], seeds=[(40, 65, 30)])


def test_seed_in_a_small_organ_is_refused():
    img, _, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    blob = _ellipsoid((30, 64, 40), (2, 2, 2))  # about 2 mL of soft tissue in the fat
    a[blob] = 100
    small = sitk.GetImageFromArray(a)
    small.CopyInformation(img)
    with pytest.raises(InputError, match="smaller than 50 mL"):
        segment_liver(small, seeds=[(40, 64, 30)])


def test_automatic_ct_refuses_tissue_that_is_not_liver():
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[liver] = a[liver] - 100  # fluid (about 0 HU) fills the space under the right lung
    fluid = sitk.GetImageFromArray(a)
    fluid.CopyInformation(img)
    with pytest.raises(InputError, match="HU, not liver; give a --seed"):
        segment_liver(fluid)


def test_ct_without_lungs_warns_that_the_diaphragm_is_unknown():
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[a < -700] = -1000  # the lungs' density becomes that of air outside the body...
    body = _ellipsoid((30, 40, 40), (40, 30, 37))
    a[body & (a == -1000)] = -90  # ...and is then filled with fat: no lung left
    nolung = sitk.GetImageFromArray(a)
    nolung.CopyInformation(img)
    r = segment_liver(nolung, seeds=[(22, 40, 24)])
    assert any("no lung was found" in w for w in r.warnings)
    assert dice(_arr(r.liver), liver) >= 0.85
    with_lungs = segment_liver(img, seeds=[(22, 40, 24)])
    assert not any("no lung was found" in w for w in with_lungs.warnings)


def test_ct_whose_header_puts_the_lungs_at_the_feet_is_said_to_be_flipped():
    # The real CT stored upside down under its own header: the automatic sample had been
    # taken in the pelvis and a 147 mL "liver" written, said only to be small.
    img, liver, _, _ = synthetic_ct()
    flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(img)[::-1].copy())
    flipped.CopyInformation(img)
    with pytest.raises(InputError, match="superior-inferior direction looks flipped"):
        segment_liver(flipped)
    r = segment_liver(flipped, seeds=[(22, 40, 60 - 1 - 24)])
    assert any("looks flipped" in w for w in r.warnings)
    assert not any("no lung was found" in w for w in r.warnings)
    assert dice(_arr(r.liver), liver[::-1]) >= 0.85
    assert not any("flipped" in w for w in segment_liver(img).warnings)


def test_gassy_colon_at_the_feet_of_an_abdominal_scan_is_no_flipped_header():
    # Turned upside down, 180 mL of colon at -850 HU at the scan's inferior end looks like
    # lung bases at its top: a right CT without lungs had been refused as flipped (review).
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)[:39].copy()  # cut below the lungs
    gas = _ellipsoid((0, 42, 45), (12, 9, 12))[:39]
    a[gas] = -850 + np.random.default_rng(1).normal(0, 30, gas.sum()).astype(np.int16)
    cut = sitk.GetImageFromArray(a)
    cut.SetSpacing(img.GetSpacing())
    cut.SetOrigin(img.GetOrigin())
    r = segment_liver(cut)
    assert dice(_arr(r.liver), liver[:39]) > 0.95
    assert not any("flipped" in w for w in r.warnings)


def test_check_ct_intensities():
    check_ct_intensities(np.array([-1024.0, 40.0]))
    with pytest.raises(InputError):
        check_ct_intensities(np.array([0.0, 900.0]))
    # A scan rescaled to 0-1 had been said to "range from 0 to 0", as a blank one.
    with pytest.raises(InputError, match="range from 0.00244 to 0.617, not like a CT"):
        check_ct_intensities(np.array([0.00244, 0.617]))


def test_no_liver_found():
    a = np.full((20, 40, 40), -1000, np.int16)
    a[2:18, 5:35, 5:35] = -100  # only fat, no lung, no liver
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((4.0, 4.0, 4.0))
    with pytest.raises(InputError, match="no liver found"):
        segment_liver(img)


def _head_like_ct():
    """A skull around brain-like tissue (40 HU), in air: no lungs, no liver."""
    z, y, x = np.mgrid[:40, :64, :64]
    r = np.sqrt(((z - 20) * 4.0) ** 2 + ((y - 32) * 3.0) ** 2 + ((x - 32) * 2.5) ** 2)
    a = np.full(r.shape, -1000, np.int16)
    a[r < 75] = 700  # bone
    a[r < 68] = 40
    a += np.random.default_rng(0).normal(0, 8, a.shape).astype(np.int16)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((2.5, 3.0, 4.0))
    return img


def test_tissue_filling_most_of_the_body_is_no_liver():
    # A head CT (or a block of 60 HU) gave a 1947 mL "liver", 76 % of the body, exit 0 with
    # only the no-lungs warnings: no liver fills most of a body.
    img = _head_like_ct()
    with pytest.raises(InputError, match=r"no liver found: the tissue found fills \d+ % of the "
                                         r"body"):
        segment_liver(img)
    # Seeded, the reader said it is liver: measured, with a warning.
    r = segment_liver(img, seeds=[(32, 32, 20)])
    assert any("fills" in w and "of the body" in w for w in r.warnings), r.warnings


def test_bad_texture_ratio():
    with pytest.raises(InputError, match="merge_texture_ratio"):
        SegmentationOptions(merge_texture_ratio=0)


@pytest.mark.parametrize("bad", [-1, 2.5, "20", True])
def test_bad_edge_iterations(bad):
    with pytest.raises(InputError, match="edge_iterations"):
        SegmentationOptions(edge_iterations=bad)


def test_bad_options():
    with pytest.raises(InputError, match="backend"):
        SegmentationOptions(backend="unet")
    with pytest.raises(InputError, match="positive"):
        SegmentationOptions(neck_radius_mm=0)


@pytest.mark.parametrize("field, value, said", [
    # merge_ratio 0 or below had hung segment_liver (its merging never stopped).
    ("merge_ratio", 0.0, "positive"), ("merge_ratio", -1.0, "positive"),
    ("smooth_mm", -1.0, "0 or more"), ("min_tumor_ml", -1.0, "0 or more"),
    ("pocket_radius_mm", -2.0, "0 or more"),
    # 1000 mm had failed inside SimpleITK's BinShrink, 60 mm as "no soft tissue".
    ("coarse_spacing_mm", 60.0, "at most 20 mm")])
def test_options_no_segmentation_can_run_with_are_refused(field, value, said):
    with pytest.raises(InputError, match=f"{field} must be {said}"):
        SegmentationOptions(**{field: value})


def test_small_volume_and_fov_warnings():
    a = np.full((30, 50, 50), -1000, np.int16)
    a[:, 3:47, 3:47] = -90
    a[:, 15:35, 10:30] = 100  # "liver" running through the whole z range: cut by the FOV
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((2.0, 2.0, 2.0))
    r = segment_liver(img, seeds=[(20, 25, 15)])
    assert any("inferior end of the field of view" in w for w in r.warnings)
    # Cut by the field of view: small for the reason that warning gives, not a wrong organ.
    assert not any("adult range" in w for w in r.warnings)


def test_seed_in_another_organ_is_warned_about(ct):
    # A seed in the spleen (about 90 mL, whole in the scan) grows the spleen.
    r = segment_liver(ct[0], seeds=[(60, 46, 30)])
    assert any("seeded liver volume" in w and "seeds lie in the liver" in w
               for w in r.warnings)
    assert not any("adult range" in w for w in segment_liver(ct[0]).warnings)


def test_seed_in_bone_is_refused():
    img, _, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[_ellipsoid((30, 64, 40), (3, 3, 3))] = 700  # a bone in the fat
    bone = sitk.GetImageFromArray(a)
    bone.CopyInformation(img)
    with pytest.raises(InputError, match="bone or a contrast-filled vessel"):
        segment_liver(bone, seeds=[(40, 64, 30)])


def test_automatic_ct_below_the_liver_is_refused():
    """A scan of the lower abdomen: no lungs, and the only soft tissue (a kidney-like
    organ) lies well below its top, where a liver would be cut by the field of view."""
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[liver] = -90  # no liver...
    a[_ellipsoid((21, 40, 27), (6, 9, 7))] = 40  # ...but a kidney-like organ on the right
    low = sitk.GetImageFromArray(a[:38].copy())  # ending 40 mm below the top slice
    low.CopyInformation(img[:, :, :38])
    with pytest.raises(InputError, match="does not reach its top slices"):
        segment_liver(low)


def test_ct_without_body_is_refused():
    # Air with a scanner's noise (an image of one value is refused as blank, before this).
    air = -1000 + np.random.default_rng(0).integers(-20, 21, (20, 40, 40))
    img = sitk.GetImageFromArray(air.astype(np.int16))
    with pytest.raises(InputError, match="holds no body"):
        segment_liver(img)


def test_totalsegmentator_missing_is_clear(ct, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("totalsegmentator"):
            raise ImportError("No module named 'totalsegmentator'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "totalsegmentator", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(InputError, match="TotalSegmentator package"):
        segment_liver(ct[0], options=SegmentationOptions(backend="totalsegmentator"))


@pytest.mark.parametrize("behaviour, message", [
    ("exits", r"TotalSegmentator total failed \(no licence for this task\)"),
    # "failed (1)" had been all a bare exit said.
    ("exits 1", r"TotalSegmentator total failed \(it stopped with exit code 1\)"),
    ("writes nothing", "TotalSegmentator total finished without writing its result"),
    # An empty result had been "the TotalSegmentator liver /tmp/flr-totalseg-.../seg.nii.gz:5
    # has no voxel", a cut-short one "... cut short ...; copy it again".
    ("finds no liver", r"^TotalSegmentator total found no liver in the scan; check"),
    ("writes half", r"^TotalSegmentator total wrote a result that cannot be used \(its output "
                    r"is cut short\); check its installation"),
])
def test_totalsegmentator_failures_are_one_sentence(ct, monkeypatch, behaviour, message):
    from flr_volumetry.segmentation import _totalseg

    def fake_run(src, out, **kwargs):
        if behaviour == "exits":
            sys.exit("no licence for this task")  # as TotalSegmentator itself does
        if behaviour == "exits 1":
            sys.exit(1)
        if behaviour in ("finds no liver", "writes half"):
            image = sitk.ReadImage(src)
            labels = sitk.Image(image.GetSize(), sitk.sitkUInt8)
            labels.CopyInformation(image)
            if behaviour == "writes half":
                labels[4:20, 4:20, 4:20] = 5
            sitk.WriteImage(labels, out)
            if behaviour == "writes half":
                data = open(out, "rb").read()
                open(out, "wb").write(data[: len(data) // 2])

    monkeypatch.setattr(_totalseg, "import_totalsegmentator", lambda: fake_run)
    with pytest.raises(InputError, match=message) as exc:
        segment_liver(ct[0], options=SegmentationOptions(backend="totalsegmentator"))
    assert "flr-totalseg-" not in str(exc.value)  # no temporary path in the message


def _coarse_result(label):
    """A stand-in for TotalSegmentator whose result, a block of ``label``, lies on a grid
    twice as coarse as the scan's."""
    def run(src, out, **kwargs):
        image = sitk.ReadImage(src)
        coarse = sitk.Image([s // 2 for s in image.GetSize()], sitk.sitkUInt8)
        coarse.SetSpacing([2 * s for s in image.GetSpacing()])
        coarse.SetOrigin(image.GetOrigin())
        coarse.SetDirection(image.GetDirection())
        coarse[5:15, 5:15, 5:12] = label
        sitk.WriteImage(coarse, out)
    return run


def test_totalsegmentator_result_on_another_grid_is_said_without_its_temporary_path(
        ct, monkeypatch):
    from flr_volumetry.segmentation import _totalseg

    monkeypatch.setattr(_totalseg, "import_totalsegmentator", lambda: _coarse_result(5))
    r = segment_liver(ct[0], options=SegmentationOptions(backend="totalsegmentator"))
    said = [w for w in r.warnings if "another grid" in w]
    assert said and said[0].startswith("TotalSegmentator's liver was on another grid")
    assert not any("flr-totalseg-" in w for w in r.warnings)


def test_totalsegmentator_refuses_mr_passed_as_ct(ct, monkeypatch):
    from flr_volumetry.segmentation import _totalseg

    calls = []
    monkeypatch.setattr(_totalseg, "import_totalsegmentator", lambda: lambda *a, **k:
                        calls.append(k["task"]))
    mr_like = sitk.Cast(ct[0], sitk.sitkFloat32) + 1100.0  # no air: MR intensities
    # The CT task had been run on it (the classic backend refuses it).
    with pytest.raises(InputError, match=r"is this an MR scan\? Use --modality mr") as exc:
        segment_liver(mr_like, options=SegmentationOptions(backend="totalsegmentator"))
    assert "--seed" not in str(exc.value)  # this backend takes no seeds
    assert calls == []


# ----------------------------------------------------------------------------- CLI
def test_cli_round_trip(ct, tmp_path, capsys):
    img, liver, _, _ = ct
    src = tmp_path / "ct.nii.gz"
    sitk.WriteImage(img, str(src))
    out, tout = tmp_path / "liver.nii.gz", tmp_path / "tumor.nii.gz"
    rc = main(["segment", str(src), "-o", str(out), "--seed", "22,40,24", "--seed", "30,40,22",
               "--tumor-seed", "24,40,26", "--tumor-out", str(tout)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mL" in printed and "liver" in printed
    m = sitk.ReadImage(str(out))
    assert m.GetSize() == img.GetSize()
    assert dice(_arr(m), liver) >= 0.93
    assert dice(_arr(sitk.ReadImage(str(tout))), ct[2]) >= 0.5


def test_cli_writes_seg_nrrd_and_refuses_dicom_seg_without_dicom_input(ct, tmp_path, capsys):
    from flr_volumetry import load_mask

    img, liver, _, _ = ct
    src = tmp_path / "ct.nii.gz"
    sitk.WriteImage(img, str(src))
    out = tmp_path / "liver.seg.nrrd"
    assert main(["segment", str(src), "-o", str(out), "--seed", "22,40,24"]) == 0
    back = load_mask(str(out), img).image
    assert dice(_arr(back), liver) >= 0.93
    assert main(["segment", str(src), "-o", str(tmp_path / "liver.dcm"),
                 "--seed", "22,40,24"]) == 1
    assert "DICOM series folder" in capsys.readouterr().err
    assert not (tmp_path / "liver.dcm").exists()


def test_cli_errors(ct, tmp_path, capsys):
    src = tmp_path / "ct.nii.gz"
    sitk.WriteImage(ct[0], str(src))
    out = tmp_path / "liver.nii.gz"
    assert main(["segment", str(src), "-o", str(out), "--seed", "500,1,1"]) == 1
    err = capsys.readouterr().err
    assert "outside the image" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        main(["segment", str(src), "-o", str(out), "--seed", "1,2"])
    assert e.value.code == 2
    assert main(["segment", str(src), "-o", str(out), "--backend", "totalsegmentator"]) in (0, 1)
    # No tumour search on MR: refused before any work, not a run without the promised file.
    tumour = tmp_path / "tumour.nii.gz"
    capsys.readouterr()
    assert main(["segment", str(src), "--modality", "mr", "--seed", "22,40,24", "-o", str(out),
                 "--tumor-out", str(tumour)]) == 1
    assert "--tumor-seed" in capsys.readouterr().err
    assert not out.exists() and not tumour.exists()


@pytest.mark.parametrize("value, argv_tail", [(60, ["--modality", "mr", "--seed", "8,8,8"]),
                                               (60, []), (0, [])])
def test_cli_refuses_a_uniform_image(tmp_path, capsys, value, argv_tail):
    # Seeded as MR, a blank image had grown into the whole field of view (written, exit 0);
    # as CT it was asked whether it was an MR scan.
    img = sitk.GetImageFromArray(np.full((16, 20, 20), value, np.int16))
    img.SetSpacing((3.0, 3.0, 3.0))
    src, out = tmp_path / "blank.nii.gz", tmp_path / "liver.nii.gz"
    sitk.WriteImage(img, str(src))
    assert main(["segment", str(src), "-o", str(out), *argv_tail]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"has the same value ({value})" in err
    assert "MR scan" not in err and not out.exists()


def test_cli_refuses_a_region_larger_than_any_liver_running_out_of_the_scan(tmp_path, capsys):
    # The real CT segmented as MR from a seed had grown through the body: 17.5 L written,
    # exit 0, with a volume warning and edge warnings only.
    a = np.zeros((40, 80, 80), np.float32)
    a[:, :, :30] = 300.0  # tissue of one level through the scan, on one side: 12 L
    a += np.random.default_rng(0).normal(0.0, 10.0, a.shape).astype(np.float32)
    img = sitk.GetImageFromArray(np.abs(a))
    img.SetSpacing((5.0, 5.0, 5.0))
    src, out = tmp_path / "mr.nii.gz", tmp_path / "liver.nii.gz"
    sitk.WriteImage(img, str(src))
    assert main(["segment", str(src), "-o", str(out), "--modality", "mr",
                 "--seed", "15,40,20"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than any adult liver" in err
    assert "sides of the field of view) grew through the body" in err
    assert not out.exists()


@pytest.mark.parametrize("argv_tail", [["--seed", "20,20,1"], []])
def test_cli_refuses_a_slab_too_thin_to_hold_a_liver(tmp_path, capsys, argv_tail):
    # Three 1 mm slices through a liver (a DICOM export of 3 slices) had been refused as
    # "smaller than 50 mL (0 mL)", as if the seed were wrong.
    a = np.full((3, 40, 40), -1000, np.int16)
    a[:, 5:35, 5:35] = 40
    a[:, 10:30, 10:30] = 110
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 1.0))
    src, out = tmp_path / "slab.nii.gz", tmp_path / "liver.nii.gz"
    sitk.WriteImage(img, str(src))
    assert main(["segment", str(src), "-o", str(out), *argv_tail]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "covers only 3 mm along its k axis" in err
    assert not out.exists()


@pytest.mark.parametrize("argv_tail", [["--modality", "mr", "--seed", "16,16,10"],
                                       ["--seed", "16,16,10"], []])
def test_cli_refuses_a_mask_that_fills_the_field_of_view(tmp_path, capsys, argv_tail):
    # Noise about one value, MR-like or soft tissue with a strip of air on CT: the region
    # had grown over the whole image (4.2-4.4 L), written with exit 0 and only field-of-view
    # warnings saying its volume "may be too small".
    rng = np.random.default_rng(0)
    a = 300 + rng.normal(0, 10, (20, 32, 32))
    if "mr" not in argv_tail:
        a -= 240
        a[:, :2, :] = -1000
    img = sitk.GetImageFromArray(a.astype(np.int16))
    img.SetSpacing((4.0, 4.0, 4.0))
    src, out = tmp_path / "noise.nii.gz", tmp_path / "liver.nii.gz"
    sitk.WriteImage(img, str(src))
    assert main(["segment", str(src), "-o", str(out), *argv_tail]) == 1
    err = capsys.readouterr().err
    # (Automatic, the tissue is refused sooner as filling the body, as no liver does.)
    said = "% of the body in the scan" if not argv_tail else "of the field of view"
    assert err.count("\n") == 1 and said in err and "no liver" in err
    assert not out.exists()


@pytest.mark.parametrize("missing", ["FrameOfReferenceUID", "StudyInstanceUID"])
def test_cli_refuses_a_dicom_seg_of_a_series_without_frame_of_reference(tmp_path, capsys,
                                                                       monkeypatch, missing):
    # The SEG writer refused it, but only after the whole segmentation had run.
    import pydicom

    import flr_volumetry.segmentation as seg_module
    from flr_volumetry import write_dicom_series

    a = np.full((20, 40, 40), -1000, np.int16)
    a[2:18, 5:35, 5:35] = 40
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    for f in write_dicom_series(img, tmp_path / "ct", patient_id="P1"):
        ds = pydicom.dcmread(f)
        del ds[missing]
        ds.save_as(f)

    def no_work(*args, **kwargs):
        raise AssertionError("segmented before the output was checked")

    monkeypatch.setattr(seg_module, "segment_liver", no_work)
    out = tmp_path / "liver.dcm"
    assert main(["segment", str(tmp_path / "ct"), "-o", str(out), "--seed", "12,20,10"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no {missing}" in err
    assert not out.exists()


def test_cli_writes_an_empty_tumour_seg_without_a_library_warning(tmp_path, capsys, caplog):
    # highdicom's "Encoding an empty image with omit_empty_frames ..." had reached stderr
    # beside our own lines when no tumour candidate was found.
    import pydicom

    from flr_volumetry import write_dicom_series

    a = np.full((20, 40, 40), -1000, np.int16)
    a[2:18, 5:35, 5:35] = 40
    a[5:15, 10:30, 6:20] = 110  # a liver block without lesions
    a = a + np.random.default_rng(0).integers(-8, 9, a.shape).astype(np.int16)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    write_dicom_series(img, tmp_path / "ct", patient_id="P1")
    liver, tumour = tmp_path / "liver.dcm", tmp_path / "tumour.dcm"
    assert main(["segment", str(tmp_path / "ct"), "-o", str(liver), "--seed", "12,20,10",
                 "--tumor-out", str(tumour)]) == 0
    assert "tumour candidates 0.0 mL" in capsys.readouterr().out
    assert not [r for r in caplog.records if r.levelno >= 30], caplog.text
    seg = pydicom.dcmread(tumour)
    assert seg.SegmentSequence[0].SegmentLabel == "liver tumor" and not seg.pixel_array.any()


# ----------------------------------------------------------------------------- real data
def test_totalsegmentator_outputs_parse(shared_data):
    d = shared_data / "ct-partial-totalsegmentator"
    ref = sitk.ReadImage(str(d / "ct.nii.gz"))
    multi = liver_from_totalsegmentator_output(d / "totalseg_multilabel.nii.gz", ref)
    per_class = liver_from_totalsegmentator_output(d / "per-class", ref)
    vox_ml = np.prod(ref.GetSpacing()) / 1000.0
    assert np.count_nonzero(_arr(multi.image)) * vox_ml == pytest.approx(1043.1, abs=0.1)
    assert np.count_nonzero(_arr(per_class.image)) * vox_ml == pytest.approx(1062.4, abs=0.1)


def _deepest(mask, spacing_xyz):
    d = ndi.distance_transform_edt(mask, sampling=spacing_xyz[::-1])
    z, y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y), int(z)


@pytest.mark.slow
def test_real_ct_automatic_and_seeded(shared_data):
    """Issue 4 targets on ct-whole-liver: automatic Dice >= 0.93 and volume within 5 %.

    One seed (deepest voxel of the parenchyma, where a user clicks) is held to
    the bar for unknown scans (0.93); the 0.95 target for this scan is not met
    yet (0.937, see benchmarks/segmentation_accuracy.py).
    """
    d = shared_data / "ct-whole-liver"
    img = sitk.ReadImage(str(d / "ct.nii.gz"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels.nii.gz")))
    ref = labels > 0
    result = segment_liver(img)
    auto = _arr(result.liver)
    assert dice(auto, ref) >= 0.93
    assert abs(auto.sum() / ref.sum() - 1) <= 0.05
    # Its hyper-enhancing HCC is no candidate; fissure and hilar fat (2.5 mL) had been.
    candidates = _arr(result.tumor)
    assert candidates.sum() * np.prod(img.GetSpacing()) / 1000.0 < 1.0
    seed = _deepest(labels == 1, img.GetSpacing())
    seeded = _arr(segment_liver(img, seeds=[seed]).liver)
    assert dice(seeded, ref) >= 0.93


def test_real_ct_automatic_second_pass_on_a_partial_scan(shared_data):
    """Automatic CT re-estimates its window from the first region's interior, like seeded CT.

    The dome sample of the non-contrast ct-partial scan mixes tissues: its
    window (10-77 HU) took in the aorta and IVC (+12 % volume, Dice 0.910
    against TotalSegmentator's liver).
    """
    d = shared_data / "ct-partial-totalsegmentator"
    img = sitk.ReadImage(str(d / "ct.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "totalseg_multilabel.nii.gz"))) == 5
    r = segment_liver(img)
    assert r.methods["parameters"]["ct_second_pass"] is True
    auto = _arr(r.liver)
    assert dice(auto, ref) >= 0.92
    assert abs(auto.sum() / ref.sum() - 1) <= 0.05


def test_real_ct_seed_in_the_gallbladder_finds_no_liver(shared_data, tmp_path, capsys):
    # The coarse region held 50 mL or more, the full-resolution mask 44 mL, 1190 of its
    # 1631 voxels gallbladder: written as the liver, exit 0.
    ct = shared_data / "ct-partial-totalsegmentator" / "ct.nii.gz"
    out = tmp_path / "liver.nii.gz"
    assert main(["segment", str(ct), "-o", str(out), "--seed", "76,61,8"]) == 1
    err = capsys.readouterr().err
    assert "no liver found: the region grown from the seeds is smaller than 50 mL" in err
    assert err.count("\n") == 1 and not out.exists()


def test_real_ct_tumour_seed_in_the_parenchyma_grows_no_lesion_and_says_so(shared_data):
    # Grown against the liver's own level, this click (49 HU in liver of 57 +- 8) had given
    # a 342 mL 'tumour' and 77 mL more liver, exit 0. The real lesion's clicks grow still.
    crop = shared_data / "ct-whole-liver" / "crop"
    img = sitk.ReadImage(str(crop / "ct.nii.gz"))
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(crop / "labels.nii.gz"))) == 2
    options = SegmentationOptions(tumors=False)
    r = segment_liver(img, tumor_seeds=[(28, 93, 42)], options=options)
    said = [w for w in r.warnings if "tumour seed 28,93,42 lies in tissue close to the "
            "liver's own level" in w]
    assert len(said) == 1 and "no lesion was grown from it" in said[0]
    assert r.tumor is None or not _arr(r.tumor).any()
    lesions = segment_liver(img, tumor_seeds=[(30, 118, 24), (38, 72, 49), (134, 63, 49)],
                            options=options)
    assert not any("own level" in w for w in lesions.warnings)
    # 0.69 around the automatic liver (the benchmark's one-seed liver: 0.82).
    assert dice(_arr(lesions.tumor), truth) >= 0.65


def test_real_ct_mirrored_left_right_is_said_to_be_so(shared_data):
    # Flipped data under an unchanged header (or a file without orientation): the search
    # under the 'right' lung had written the spleen as the liver (341 mL, exit 0), with
    # only the adult-range warning.
    img = sitk.ReadImage(str(shared_data / "ct-partial-totalsegmentator" / "ct.nii.gz"))
    plain = segment_liver(img)
    assert not any("mirrored" in w for w in plain.warnings)
    a = sitk.GetArrayFromImage(img)
    lps_x = int(np.argmax(np.abs(np.array(img.GetDirection()).reshape(3, 3)[0])))
    mirrored = sitk.GetImageFromArray(np.flip(a, axis=2 - lps_x).copy())
    mirrored.CopyInformation(img)
    r = segment_liver(mirrored)
    said = [w for w in r.warnings if "mirrored left-right" in w]
    assert len(said) == 1 and "of liver-like tissue lies on the left" in said[0]


def test_real_ct_of_a_soft_kernel_or_a_blank_top_slice_keeps_its_lung_bases(shared_data):
    # Smoothed by 2 mm (a soft reconstruction kernel), the lung bases' median density went
    # from -618 to -598 HU, past the -600 HU bound: "no lung was found", the heart
    # unbounded and the liver found as the thickest soft tissue instead.
    d = shared_data / "ct-whole-liver"
    img = sitk.SmoothingRecursiveGaussian(sitk.Cast(sitk.ReadImage(str(d / "ct.nii.gz")),
                                                    sitk.sitkFloat32), 2.0)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels.nii.gz"))) > 0
    r = segment_liver(img)
    assert not any("lung" in w for w in r.warnings)
    assert "classic: automatic (right lung dome sample)" in r.methods["algorithm"]
    assert dice(_arr(r.liver), ref) >= 0.92
    # A blank slice padded on top (by a resampling tool): the lungs no longer reached the
    # array's top slice, and were lost the same way.
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "ct.nii.gz")))
    padded = sitk.GetImageFromArray(np.concatenate([a, np.full_like(a[:1], -1024)]))
    padded.SetSpacing(img.GetSpacing())
    padded.SetOrigin(img.GetOrigin())
    padded.SetDirection(img.GetDirection())
    r = segment_liver(padded)
    assert not any("lung" in w for w in r.warnings)
    assert dice(_arr(r.liver)[:-1], ref) >= 0.93


@pytest.mark.slow
def test_real_ct_seeded_does_not_depend_on_the_click(shared_data):
    """A click at the parenchyma's centroid (2 mm from the hilum, where the seed's
    ball mixes vessels and fat) ends with the liver a deep click gives."""
    d = shared_data / "ct-whole-liver"
    img = sitk.ReadImage(str(d / "ct.nii.gz"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels.nii.gz")))
    z, y, x = np.argwhere(labels == 1).mean(axis=0).round().astype(int)
    assert labels[z, y, x] == 1
    near_hilum = _arr(segment_liver(img, seeds=[(int(x), int(y), int(z))]).liver)
    deep = _arr(segment_liver(img, seeds=[_deepest(labels == 1, img.GetSpacing())]).liver)
    assert dice(near_hilum, deep) >= 0.99
    assert dice(near_hilum, labels > 0) >= 0.93


@pytest.mark.slow
def test_real_ct_exclude_click_cuts_off_the_stomach(shared_data):
    """One exclude click in the stomach, which the left lobe lies on broadly with the
    same HU: the stomach tissue that had leaked in is cut off, not only the click."""
    d = shared_data / "ct-whole-liver"
    img = sitk.ReadImage(str(d / "ct.nii.gz"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "labels.nii.gz")))
    seed = _deepest(labels == 1, img.GetSpacing())
    stomach = (162, 144, 172)
    assert labels[stomach[2], stomach[1], stomach[0]] == 0
    before = _arr(segment_liver(img, seeds=[seed]).liver)
    after = _arr(segment_liver(img, seeds=[seed], exclude=[stomach]).liver)
    assert before[stomach[2], stomach[1], stomach[0]]
    assert not after[stomach[2], stomach[1], stomach[0]]
    voxel_ml = float(np.prod(img.GetSpacing())) / 1000.0
    assert np.count_nonzero(before & ~after & (labels == 0)) * voxel_ml >= 10.0
    assert dice(after, labels > 0) > dice(before, labels > 0)


def _largest_leak_click(img, ref, seeds, options=None):
    """The first mask, and the deepest voxel of the largest part it holds wrongly: where a
    reader would put an exclude point."""
    first = _arr(segment_liver(img, modality="mr", seeds=seeds, options=options).liver)
    lab, n = ndi.label(first & ~ref)
    leak = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    return first, leak, _deepest(leak, img.GetSpacing())


def test_real_mr_exclude_point_cuts_off_the_leak(shared_data):
    """CHAOS case 2: one exclude click in the bowel that the liver has leaked into cuts
    the leak off at the growth (the speckled MR tissue is measured with its one-voxel gaps
    closed; before, it had no thick core and only the point was cut). Since the seed alone
    keeps the largest leak out (0.822 -> 0.858), the click lands in a smaller one:
    0.858 -> 0.866 (it had been 0.822 -> 0.846). Without the random-walker boundary, which
    takes that leak off by itself (0.887), and leaves a largest part that cannot be cut
    (the next test)."""
    d = shared_data / "mr-chaos-t2"
    img = sitk.ReadImage(str(d / "image_2.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "label_2.nii.gz"))) == 1
    seeds = [_deepest(ref, img.GetSpacing())]
    no_walk = SegmentationOptions(mr_random_walker_beta=None)
    first, leak, (x, y, z) = _largest_leak_click(img, ref, seeds, no_walk)
    r = segment_liver(img, modality="mr", seeds=seeds, exclude=[(x, y, z)], options=no_walk)
    assert not _arr(r.liver)[z, y, x]
    assert not any(f"exclude point {x},{y},{z}" in w for w in r.warnings)  # cut, not holed
    assert dice(_arr(r.liver), ref) >= dice(first, ref) + 0.005
    assert dice(_arr(r.liver), ref) >= 0.86


def test_real_mr_exclude_point_the_walker_cannot_cut_is_said(shared_data):
    """CHAOS case 2 with the random-walker boundary: a part left wrongly (41 mL, at
    52,158,14 its deepest voxel; the largest until the walker's result was filled) is
    joined too broadly to be cut at one click. The point is left out and the warning says
    the tissue around it was not (the walker, given the point as background, had holed
    the mask there silently)."""
    d = shared_data / "mr-chaos-t2"
    img = sitk.ReadImage(str(d / "image_2.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "label_2.nii.gz"))) == 1
    seeds = [_deepest(ref, img.GetSpacing())]
    first = _arr(segment_liver(img, modality="mr", seeds=seeds).liver)
    x, y, z = 52, 158, 14
    wrong, _ = ndi.label(first & ~ref)
    assert wrong[z, y, x]
    leak = wrong == wrong[z, y, x]
    r = segment_liver(img, modality="mr", seeds=seeds, exclude=[(x, y, z)])
    after = _arr(r.liver)
    assert not after[z, y, x]
    assert np.count_nonzero(after & leak) > 0.5 * np.count_nonzero(leak)  # not cut ...
    assert any(f"exclude point {x},{y},{z}" in w and "could not be cut off" in w
               for w in r.warnings), r.warnings  # ... and said
    assert dice(after, ref) >= dice(first, ref) - 0.002


@pytest.mark.parametrize("case", [
    1,
    pytest.param(2, marks=pytest.mark.xfail(
        strict=True, reason="CHAOS case 2 leaks into the bowel and body wall below the liver "
                            "tip through 7.7 mm slices and misses its dark dome (Dice 0.887); "
                            "target 0.90 not met yet")),
])
def test_real_mr_seeded(shared_data, case):
    d = shared_data / "mr-chaos-t2"
    img = sitk.ReadImage(str(d / f"image_{case}.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / f"label_{case}.nii.gz"))) == 1
    r = segment_liver(img, modality="mr", seeds=[_deepest(ref, img.GetSpacing())])
    assert r.liver.GetDirection() == img.GetDirection()
    # Not 1.5 x the 7.7 mm slice spacing: that band carries a leak outwards in-plane.
    assert r.methods["parameters"]["refine_band_mm"] == 8.0
    assert dice(_arr(r.liver), ref) >= 0.90


def test_speckled_candidates_keep_their_cores_and_necks():
    """MR candidates (noisy voxels in a narrow window) are cracked by one-voxel gaps into
    strips too thin for a core: the liver then had no core of its own and its marker
    flooded every candidate connected to it, bowel behind a narrow neck included (CHAOS
    case 2, Dice 0.822). Measured with the gaps closed in-plane, the liver and the bowel
    each keep a core and the watershed cuts the neck between them."""
    from flr_volumetry.segmentation._classic import split_by_necks

    shape = (12, 60, 100)
    cand = np.zeros(shape, bool)
    cand[2:10, 5:55, 5:50] = True  # liver, 112 x 125 x 62 mm
    cand[2:10, 15:45, 60:95] = True  # bowel
    cand[5:7, 28:32, 50:60] = True  # a neck 10 mm wide between them
    z, y, x = np.indices(shape)
    cand &= ~np.where(z % 2 == 0, x % 4 == 0, y % 4 == 0)  # cracks, alternating per slice
    ref = sitk.Image(shape[2], shape[1], shape[0], sitk.sitkUInt8)
    ref.SetSpacing((2.5, 2.5, 7.7))
    marker = np.zeros(shape, bool)
    marker[5, 29, 26] = True
    assert cand[5, 29, 26]
    region = split_by_necks(cand, ref, marker, np.zeros(shape, bool), 6.0, 0.2, speckled=True)
    assert region[:, :, :50].sum() == cand[:, :, :50].sum()
    assert not region[:, :, 60:].any()


def test_real_mr_two_pass_runs_from_a_speckled_first_region(shared_data):
    """CHAOS case 1, a click in a bright spot low in the liver: the narrow first-pass
    region (366 mL) is speckled and keeps no interior after erosion. The model used to
    stay the seed ball's (305-450, Dice 0.880); the first region itself is the sample."""
    d = shared_data / "mr-chaos-t2"
    img = sitk.ReadImage(str(d / "image_1.nii.gz"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "label_1.nii.gz"))) == 1
    r = segment_liver(img, modality="mr", seeds=[(52, 144, 18)])
    assert "two-pass" in r.methods["algorithm"]
    assert dice(_arr(r.liver), ref) >= 0.90


def test_snap_to_edges_moves_surface_onto_the_edge():
    """The short geodesic active contour pulls a too-small and a too-large mask onto the edge."""
    from flr_volumetry.segmentation._classic import snap_to_edges

    z, y, x = np.mgrid[:64, :64, :64]
    r = np.sqrt((z - 32) ** 2 + (y - 32) ** 2 + (x - 32) ** 2)
    noisy = np.where(r < 20, 60.0, -100.0) + np.random.default_rng(0).normal(0, 10, r.shape)
    img = sitk.GetImageFromArray(noisy.astype(np.float32))
    for r0 in (17, 23):
        out = snap_to_edges(r < r0, img, 20)
        radius = (out.sum() * 3 / 4 / np.pi) ** (1 / 3)
        assert abs(radius - 20) < abs(r0 - 20) / 2


def _drifting_mr_scene():
    """A 'liver' (300, noise SD 10) whose right end drifts darker (to 285: 3.5 SDs of the median-filtered image, as
    the dome of a T2 scan under the coil's fall-off) beside darker tissue (150), on thick
    slices; and the mask a window would give: 7.5 mm short of the end (within the 8 mm band that
    is re-decided)."""
    shape = (12, 70, 90)
    a = np.full(shape, 150.0, np.float32)
    a[:, 10:60, 10:80] = 300.0
    a[:, 10:60, 60:80] -= np.linspace(0.0, 15.0, 20, dtype=np.float32)  # a slow drift
    a += np.random.default_rng(1).normal(0, 10, shape).astype(np.float32)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((1.25, 1.25, 7.7))
    truth = np.zeros(shape, bool)
    truth[:, 10:60, 10:80] = True
    windowed = np.zeros(shape, bool)
    windowed[:, 10:60, 10:74] = True
    return img, truth, windowed


def test_random_walker_keeps_liver_whose_level_drifts():
    """The MR boundary is decided last by a random walker: liver a few SDs darker than
    its core, with nothing but liver between (the dark dome of CHAOS case 2), is kept,
    and the edge to other tissue stays where it is (CHAOS 2 0.858 -> 0.887, case 1
    0.924 -> 0.933, MR phantoms 0.974 / 0.934 -> 0.978 / 0.949)."""
    from flr_volumetry.segmentation._classic import random_walker_boundary

    img, truth, windowed = _drifting_mr_scene()
    new = random_walker_boundary(img, windowed)
    assert new[:, 10:60, 74:80].mean() > 0.5 and not windowed[:, :, 74:80].any()
    assert dice(new, truth) > dice(windowed, truth) + 0.02
    assert not (new & ~ndi.binary_dilation(truth, iterations=2)).any()


def test_random_walker_respects_exclude_points_and_leaves_out_far_seeds():
    from flr_volumetry.segmentation._classic import random_walker_boundary

    img, truth, windowed = _drifting_mr_scene()
    outside = np.zeros(truth.shape, bool)
    outside[:, 10:60, 77:80] = True  # the user's exclude ball across the dark part's end
    new = random_walker_boundary(img, windowed, outside=outside)
    assert not (new & outside).any() and new[:, 15:55, 15:68].all()
    # A mask with no core (thinner than 12 mm) is returned as it is.
    thin = np.zeros(truth.shape, bool)
    thin[:, 30:35, 10:80] = True
    assert random_walker_boundary(img, thin) is thin  # the same object: it did not run


def test_random_walk_matches_scikit_image():
    """The band-only solver gives scikit-image's probabilities (its beta is divided by 10 x
    the data's SD, undone here), on anisotropic voxels; with one label only, every voxel
    is that label's."""
    from skimage.segmentation import random_walker

    from flr_volumetry.segmentation._classic import random_walk

    rng = np.random.default_rng(3)
    data = ndi.gaussian_filter(rng.normal(0, 1, (6, 20, 24)), 1.5) * 4.0
    labels = np.zeros(data.shape, np.int8)
    labels[:, 8:12, 2:5] = 1
    labels[:, :, 18:] = 2
    labels[:, 0:3, 12:18] = 2
    step = np.array([3.0, 1.0, 1.0])
    ours = random_walk(data, labels, 2.0, step)
    theirs = random_walker(data, labels, beta=2.0 * 10.0 * data.std(), mode="cg",
                           tol=1e-8, spacing=step, return_full_prob=True)[0]
    assert np.abs(ours - theirs).max() < 1e-2
    assert 0.05 < ours[labels == 0].mean() < 0.95  # a real mix, not all one side
    assert (random_walk(data, np.where(labels == 1, 0, labels), 2.0, step) == 0).all()
    assert (random_walk(data, np.where(labels == 2, 0, labels), 2.0, step) > 0.99).all()


def test_mr_pipeline_records_the_random_walker_and_ct_does_not(ct):
    mr = sitk.GetImageFromArray(np.clip(sitk.GetArrayFromImage(ct[0]) + 1000.0, 0, None) * 0.4)
    mr.CopyInformation(ct[0])
    r = segment_liver(mr, modality="mr", seeds=[(22, 40, 24)])
    assert r.methods["parameters"]["random_walker_beta"] == 40.0
    assert "random walker" in r.methods["algorithm"]
    off = segment_liver(mr, modality="mr", seeds=[(22, 40, 24)],
                        options=SegmentationOptions(mr_random_walker_beta=None))
    assert off.methods["parameters"]["random_walker_beta"] is None
    assert "random walker" not in off.methods["algorithm"]
    with pytest.raises(InputError, match="mr_random_walker_beta must be positive"):
        SegmentationOptions(mr_random_walker_beta=-40.0)
    c = segment_liver(ct[0], modality="ct", seeds=[(22, 40, 24)])
    assert c.methods["parameters"]["random_walker_beta"] is None
    assert "random walker" not in c.methods["algorithm"]


# ----------------------------------------------------------------------------- seeded lesions
def _lesion_scene(lesion_center_x, lesion_radius, with_tube=False):
    """2 mm grid: a liver slab (x < 30, 100 HU), a 30 HU sphere, fat (-90 HU) elsewhere."""
    from flr_volumetry.segmentation._classic import grow_lesion

    shape = (50, 50, 80)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    liver = np.broadcast_to(x < 30, shape).copy()
    lesion = ((z - 25) ** 2 + (y - 25) ** 2 + (x - lesion_center_x) ** 2) <= lesion_radius ** 2
    a = np.where(liver, 100.0, -90.0)
    a[lesion] = 30.0
    if with_tube:
        # A vessel of liver intensity running through the lesion from top to bottom:
        # a hole in every slice, open in 3D.
        tube = np.broadcast_to(((y - 25) ** 2 + (x - lesion_center_x) ** 2) <= 4, shape)
        a[tube & lesion] = 100.0
    img = sitk.GetImageFromArray(a.astype(np.float32))
    img.SetSpacing((2.0, 2.0, 2.0))
    seed = (25, 25, int(lesion_center_x) + (3 if with_tube else 0))

    def grow(liver_mask):
        return grow_lesion(a, liver_mask, img, seed, 100.0, 8.0)

    return grow, liver, lesion


def test_seeded_lesion_bulging_far_out_of_the_liver_mask_is_grown():
    # A 30 mm-radius lesion whose centre lies 24 mm outside the liver mask
    # (the mask left it out): it was refused when the click lay beyond 20 mm.
    grow, liver, lesion = _lesion_scene(lesion_center_x=42, lesion_radius=15)
    out = grow(liver & ~lesion)
    assert dice(out, lesion) >= 0.95


def test_seeded_lesion_must_touch_the_liver():
    # The same tissue 10 mm away from the liver (click 18 mm away, within the
    # 20 mm margin) is another organ, not a liver lesion.
    grow, liver, lesion = _lesion_scene(lesion_center_x=38, lesion_radius=4)
    assert not grow(liver).any()


def test_seeded_lesion_holes_open_in_3d_are_filled_slice_by_slice():
    grow, liver, lesion = _lesion_scene(lesion_center_x=34, lesion_radius=10, with_tube=True)
    out = grow(liver)
    assert dice(out, lesion) >= 0.95


def _lesion_beside_a_neighbour(bridge_half_width):
    """2 mm grid: a liver slab (x < 30, 100 HU) holding a 30 HU lesion at its surface, and
    outside it a larger 30 HU neighbour (the heart beside an enhancing lesion), joined to
    the lesion by a bridge along x of (2 * half width + 1) voxels square."""
    from flr_volumetry.segmentation._classic import grow_lesion

    shape = (50, 50, 80)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    liver = np.broadcast_to(x < 30, shape).copy()
    lesion = ((z - 25) ** 2 + (y - 25) ** 2 + (x - 25) ** 2) <= 16
    neighbour = ((z - 25) ** 2 + (y - 25) ** 2 + (x - 41) ** 2) <= 64
    bridge = ((np.abs(z - 25) <= bridge_half_width) & (np.abs(y - 25) <= bridge_half_width)
              & (x >= 29) & (x <= 34))
    a = np.where(liver, 100.0, -90.0)
    a[lesion | neighbour | bridge] = 30.0
    img = sitk.GetImageFromArray(a.astype(np.float32))
    img.SetSpacing((2.0, 2.0, 2.0))
    return grow_lesion(a, liver, img, (25, 25, 25), 100.0, 8.0), lesion


def test_seeded_lesion_is_the_part_holding_the_click():
    # A one-voxel thread to a larger neighbour is opened away: the larger part had been
    # kept, and the click's own lesion lost.
    out, lesion = _lesion_beside_a_neighbour(bridge_half_width=0)
    assert out[25, 25, 25]
    assert dice(out, lesion) >= 0.95


def test_seeded_lesion_is_cut_from_a_neighbour_at_a_neck():
    # A 6 mm bridge survives the opening: the neighbour (its part within the 20 mm margin,
    # larger than the lesion) had been added to the lesion, and so to the liver.
    out, lesion = _lesion_beside_a_neighbour(bridge_half_width=1)
    assert out[25, 25, 25]
    assert dice(out, lesion) >= 0.9
    assert not out[:, :, 33:].any()


def test_seeded_lesion_reaching_the_crops_end_is_cut_within_it():
    # A lesion at the far end of the crop: its box, widened by a voxel, had gone past the
    # crop ("Requested region is outside the largest possible region", exit 1 on 3 of 8
    # clicks of the real partial CT).
    from flr_volumetry.segmentation._classic import _cut_lesion_at_necks

    z, y, x = np.ogrid[:30, :30, :30]
    lesion = (z - 15) ** 2 + (y - 15) ** 2 + (x - 29) ** 2 <= 64
    ref = sitk.GetImageFromArray(np.zeros(lesion.shape, np.float32))
    ref.SetSpacing((2.0, 2.0, 2.0))
    ball = (z - 15) ** 2 + (y - 15) ** 2 + (x - 27) ** 2 <= 4
    out = _cut_lesion_at_necks(lesion, ball & lesion, lesion, ref, (15, 15, 27))
    assert np.array_equal(out, lesion)


def _grow_in_liver_slab(lesion_values, click_x=20):
    """grow_lesion on a 2 mm grid: a 100 HU liver slab (x < 60) holding ``lesion_values``
    ((mask, HU) pairs), clicked at (z, y, x) = (25, 25, ``click_x``)."""
    from flr_volumetry.segmentation._classic import grow_lesion

    shape = (50, 50, 80)
    liver = np.broadcast_to(np.arange(shape[2]) < 60, shape).copy()
    a = np.where(liver, 100.0, -90.0)
    for mask, value in lesion_values:
        a[mask] = value
    img = sitk.GetImageFromArray(a.astype(np.float32))
    img.SetSpacing((2.0, 2.0, 2.0))
    return grow_lesion(a, liver, img, (25, 25, click_x), 100.0, 8.0)


def test_seeded_lesion_keeps_its_own_lobes_inside_the_liver():
    # Two lobes joined by a narrow waist, all inside the liver: the cut at necks, meant
    # for neighbours outside the liver, had dropped the lobe not clicked (Dice 0.65).
    z, y, x = np.ogrid[:50, :50, :80]
    lobes = (((z - 25) ** 2 + (y - 25) ** 2 + (x - 20) ** 2 <= 36)
             | ((z - 25) ** 2 + (y - 25) ** 2 + (x - 36) ** 2 <= 36))
    waist = (np.abs(z - 25) <= 1) & (np.abs(y - 25) <= 1) & (x >= 20) & (x <= 36)
    out = _grow_in_liver_slab([(lobes | waist, 30.0)])
    assert dice(out, lobes | waist) >= 0.95


def test_seeded_lesion_clicked_on_a_thin_rim_is_the_rim_and_what_it_encloses():
    # An enhancing rim 2 voxels thick around liver-level necrosis: the opening leaves the
    # click only its 3 mm ball, which had been returned as the lesion (0.1 mL).
    z, y, x = np.ogrid[:50, :50, :80]
    r2 = (z - 25) ** 2 + (y - 25) ** 2 + (x - 30) ** 2
    rim = (r2 <= 100) & (r2 > 64)
    out = _grow_in_liver_slab([(rim, 30.0)], click_x=21)
    assert dice(out, r2 <= 100) >= 0.9


def test_seeded_low_contrast_lesion_is_snapped_to_its_edge():
    # A lesion only 22 HU brighter than the liver (an arterial-phase HCC): its window
    # reaches into the noisy parenchyma, and the edge decides where it ends.
    img, _, _, _ = synthetic_ct(seed=2)
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    lesion = _ellipsoid((27, 40, 30), (4, 4, 4))
    a[lesion] += 22.0
    bright = sitk.GetImageFromArray(a)
    bright.CopyInformation(img)
    r = segment_liver(bright, seeds=[(22, 40, 24)], tumor_seeds=[(30, 40, 27)],
                      options=SegmentationOptions(tumors=False))
    assert dice(_arr(r.tumor), lesion) >= 0.91


def _mr_phantom(size="sample", patient_index=0):
    """(image, arrays) of a phantom's baseline MR (P001's coil bias: about +-25 %), as the
    benchmark renders it (``size`` 'small': 3 mm pixels, 7 mm slices)."""
    from flr_volumetry import phantoms

    patient = phantoms.make_patient(patient_index)
    grid = phantoms.grid_preset(size, "mr")
    arrays = phantoms.render_timepoint(patient, 0, grid, modality="mr")
    img = sitk.GetImageFromArray(arrays["image"])
    img.SetSpacing(tuple(float(s) for s in grid.spacing_mm))
    img.SetOrigin(tuple(float(o) for o in grid.origin_mm))
    return img, arrays


def _mr_phantom_from_its_deepest_click(patient_index=0):
    """(arrays, liver reference image, result) of a phantom's MR segmented from one seed at
    the deepest voxel of its parenchyma (no lesion, no vessel), as the benchmark clicks."""
    img, arrays = _mr_phantom(patient_index=patient_index)
    ref = sitk.GetImageFromArray(arrays["liver"].astype(np.uint8))
    ref.CopyInformation(img)
    tissue = arrays["liver"].astype(bool) & ~arrays["tumor"].astype(bool) & ~arrays[
        "vessels"].astype(bool)
    return arrays, ref, segment_liver(img, modality="mr",
                                      seeds=[_deepest(tissue, img.GetSpacing())])


def test_mr_with_strong_coil_bias_keeps_the_bright_lobe():
    """The MR phantom's smooth bias (about +-25 %) makes its left lobe brighter than the
    window of the seed's side. The region grown against the local liver level keeps it, and
    so must the full-resolution band (it was decided against one window: Dice 0.887)."""
    from flr_volumetry.registration import dice as image_dice

    arrays, ref, r = _mr_phantom_from_its_deepest_click()
    assert "local liver level" in r.methods["algorithm"]
    assert image_dice(r.liver, ref) >= 0.95


def test_mr_lesion_at_the_surface_stays_in_the_liver_after_the_walker():
    """MR phantom P002: its largest lesion lies at the liver's surface. The fill of the
    full-resolution boundary takes it in; the random walker, which decides the band by
    intensity alone, had left it out again (1 % of it in the mask, Dice 0.949): the fill
    is applied to the walker's result too."""
    from flr_volumetry.registration import dice as image_dice

    arrays, ref, r = _mr_phantom_from_its_deepest_click(patient_index=1)
    assert "random walker" in r.methods["algorithm"]
    lesions, n = ndi.label(arrays["tumor"])
    sizes = np.bincount(lesions.ravel())[1:]
    largest = lesions == 1 + int(np.argmax(sizes))
    assert np.mean(_arr(r.liver)[largest]) >= 0.5
    assert image_dice(r.liver, ref) >= 0.96


@pytest.mark.parametrize("click", [(122, 114, 27), (48, 136, 20)])
def test_mr_with_strong_coil_bias_from_other_clicks(click):
    """Clicks 10 mm or more inside the MR phantom's parenchyma, away from its deepest voxel.

    (122, 114, 27), in the bright lobe: the region grown against the local level was good,
    but the full-resolution window was the seeds' (bright) one scaled again by the bias
    field, and the band threw most of the liver away (Dice 0.444). (48, 136, 20): the
    global window's region (814 mL, just over the switch to the adaptive one) was cut by
    the window through continuous tissue (Dice 0.460)."""
    from flr_volumetry.registration import dice as image_dice

    img, arrays = _mr_phantom()
    ref = sitk.GetImageFromArray(arrays["liver"].astype(np.uint8))
    ref.CopyInformation(img)
    r = segment_liver(img, modality="mr", seeds=[click])
    assert "local liver level" in r.methods["algorithm"]
    assert image_dice(r.liver, ref) >= 0.93


@pytest.mark.parametrize("click", [(36, 84, 15), (46, 80, 16)])
def test_mr_with_strong_coil_bias_on_coarse_pixels(click):
    """The MR phantom on 3 mm pixels and 7 mm slices (nothing averaged on the coarse grid):
    the global window's region (852, 954 mL) stopped where the window cut through the
    drifting liver, but the contacts were judged against the fine texture as if the
    coarse grid had averaged it, and half of them were called edges (Dice 0.552, 0.665;
    0.976 now)."""
    from flr_volumetry.registration import dice as image_dice

    img, arrays = _mr_phantom("small")
    ref = sitk.GetImageFromArray(arrays["liver"].astype(np.uint8))
    ref.CopyInformation(img)
    r = segment_liver(img, modality="mr", seeds=[click])
    assert "local liver level" in r.methods["algorithm"]
    assert image_dice(r.liver, ref) >= 0.95


def test_mr_lesions_keep_their_window_on_the_bias_adaptive_path():
    """MR phantom P001 (coil bias +-25 %): one click per lesion. Grown against the liver's
    window of the bias-divided image (narrow: the drift taken out), each lesion's own window
    missed its tails (tumour Dice 0.979 -> 0.860)."""
    from flr_volumetry.registration import dice as image_dice

    img, arrays = _mr_phantom()
    tumor = arrays["tumor"].astype(bool)
    tissue = arrays["liver"].astype(bool) & ~tumor & ~arrays["vessels"].astype(bool)
    lab, n = ndi.label(tumor)
    clicks = [tuple(int(v) + sl.start for v, sl in zip(_deepest(lab[sl] == i, img.GetSpacing()),
                                                         sl[::-1]))
              for i, sl in enumerate(ndi.find_objects(lab), start=1)]
    r = segment_liver(img, modality="mr", seeds=[_deepest(tissue, img.GetSpacing())],
                      tumor_seeds=clicks)
    assert "local liver level" in r.methods["algorithm"]
    ref = sitk.GetImageFromArray(tumor.astype(np.uint8))
    ref.CopyInformation(img)
    assert image_dice(r.tumor, ref) >= 0.95


def test_window_cut_is_told_from_an_edge():
    from flr_volumetry.segmentation._pipeline import _cut_by_window

    rng = np.random.default_rng(0)
    shape = (20, 30, 80)
    x = np.arange(80, dtype=np.float32)[None, None, :]
    texture = np.full(shape, 10.0, np.float32)  # the full-resolution local SD
    region = np.zeros(shape, bool)
    region[4:16, 5:25, 5:35] = True
    adaptive = np.zeros(shape, bool)
    adaptive[4:16, 5:25, 5:70] = True
    # Each coarse voxel averages 4 of the texture's (1.5 mm pixels on a 3 mm grid), and 1
    # (3 mm pixels, as on thick-slice MR of coarse pixels): the noise is 5, then 10.
    for averaged, sd in ((4, 5.0), (1, 10.0)):
        noise = rng.normal(0.0, sd, shape).astype(np.float32)
        # Tissue whose level drifts by 0.6 % a voxel: the window stopped, the tissue goes on.
        ramp = 500.0 * (1.0 + 0.006 * x) + noise
        assert _cut_by_window(region, adaptive, ramp, texture, averaged)
        # The same added tissue 12 % brighter than the region beside it: an edge.
        step = np.where(x >= 35, 560.0, 500.0) + noise
        assert not _cut_by_window(region, adaptive, step, texture, averaged)
        # Nothing added: nothing to judge.
        assert not _cut_by_window(region, region, ramp, texture, averaged)
    # Noise of 10 judged as if averaged over 4 voxels (the texture itself as the limit, as
    # before): the drifting tissue was called an edge.
    noise = rng.normal(0.0, 10.0, shape).astype(np.float32)
    assert not _cut_by_window(region, adaptive, 500.0 * (1.0 + 0.006 * x) + noise, texture, 4)


def test_bias_field_follows_a_ramp():
    from flr_volumetry.segmentation._classic import bias_field

    ref = sitk.Image(80, 40, 20, sitk.sitkFloat32)
    ref.SetSpacing((3.0, 3.0, 3.0))
    x = np.arange(80, dtype=np.float32)[None, None, :]
    arr = np.broadcast_to(100.0 * (1.0 + 0.01 * (x - 20)), (20, 40, 80)).astype(np.float32)
    region = np.zeros(arr.shape, bool)
    region[5:15, 5:35, 5:35] = True
    f = sitk.GetArrayFromImage(bias_field(arr, region, ref))
    # Inside, away from the region's x ends, the factor is the ramp over its median.
    expected = arr / np.median(arr[region])
    inner = np.zeros_like(region)
    inner[8:12, 10:30, 12:28] = True
    assert np.allclose(f[inner], expected[inner], rtol=0.01)
    # Far from the region (over 100 mm) nothing is known: no correction.
    assert np.all(f[:, :, 70:] == 1.0)


def test_snap_to_edges_leaves_a_noise_free_box_in_place():
    # No gradient inside: the edge contrast K must not fall to zero, or the contour
    # wanders over the blur tails (a 3 mm box grew by a fifth).
    from flr_volumetry.segmentation._classic import snap_to_edges

    a = np.full((28, 38, 33), 40.0, np.float32)  # the crop around the liver
    a[4:24, 4:34, 4:29] = 110.0
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((3.0, 3.0, 3.0))
    box = a == 110.0
    out = snap_to_edges(box, img, 20)
    assert dice(out, box) >= 0.98


def test_tumour_seed_grows_a_lesion_bulging_past_the_liver_crop():
    """Segment_liver end to end: a lesion centred 20 mm outside the liver's lateral edge.

    The lesion used to be grown on the liver's crop only, which ends about
    10-14 mm beyond the liver, and was cut there without a word (Dice 0.73)."""
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    lesion = _ellipsoid((27, 40, 10), (5, 5, 5))
    a[lesion] = 30 + np.random.default_rng(1).normal(0, 8, lesion.sum())
    bulged = sitk.GetImageFromArray(a.astype(np.int16))
    bulged.CopyInformation(img)
    r = segment_liver(bulged, seeds=[(30, 40, 27)], tumor_seeds=[(10, 40, 27)],
                      options=SegmentationOptions(tumors=False))
    assert dice(_arr(r.tumor), lesion) >= 0.95
    assert np.all(_arr(r.liver)[lesion])


def test_tumour_seed_far_from_the_liver_is_refused(ct):
    img, _, _, _ = ct
    # 60 mm below the liver's lower end: not a liver lesion.
    with pytest.raises(InputError, match="mm from the liver found"):
        segment_liver(img, seeds=[(22, 40, 24)], tumor_seeds=[(27, 40, 1)])


def _ct_with_kidney_on_the_liver():
    """The synthetic CT with an enhancing kidney (180 HU, 39 mL) lying on the liver's
    posterior surface."""
    img, liver, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img).astype(np.float32)
    kidney = _ellipsoid((22, 60, 30), (6, 5, 5)) & ~liver
    a[kidney] = 180 + np.random.default_rng(1).normal(0, 8, kidney.sum())
    out = sitk.GetImageFromArray(a.astype(np.int16))
    out.CopyInformation(img)
    return out, liver, kidney


def test_tumour_seed_in_fat_beside_the_liver_is_refused():
    # 12 mm lateral of the liver, in the body's fat: the 'lesion' grown there had been the
    # fat around the liver (2260 mL added to a 700 mL liver, with a warning about its edge).
    img, _, _ = _ct_with_kidney_on_the_liver()
    with pytest.raises(InputError, match=r"tumour seed 9,40,27 lies in fat or air \(-\d+ HU"):
        segment_liver(img, seeds=[(22, 40, 24)], tumor_seeds=[(9, 40, 27)],
                      options=SegmentationOptions(tumors=False))


def test_tumour_seed_in_an_organ_on_the_liver_is_said_with_what_it_adds():
    # A click in the kidney touching the liver grows the kidney as a lesion 'bulging from the
    # liver' (as it would a real one): the 37 mL it adds outside the liver found are said.
    img, liver, kidney = _ct_with_kidney_on_the_liver()
    r = segment_liver(img, seeds=[(22, 40, 24)], tumor_seeds=[(30, 60, 22)],
                      options=SegmentationOptions(tumors=False))
    added = (_arr(r.tumor) & ~liver).sum() * SPACING_MM ** 3 / 1000.0
    assert added > 30.0
    said = [w for w in r.warnings if "tumour seed 30,60,22" in w]
    assert len(said) == 1 and "outside the liver found" in said[0]
    assert f"{added:.0f} mL" in said[0] or f"{added:.1f} mL" in said[0]


def test_tumour_seed_inside_the_liver_is_not_warned_about(ct):
    img, _, tumor, _ = ct
    seed = tuple(int(v) for v in np.argwhere(tumor).mean(axis=0)[::-1].round())
    r = segment_liver(img, seeds=[(22, 40, 24)], tumor_seeds=[seed],
                      options=SegmentationOptions(tumors=False))
    assert dice(_arr(r.tumor), tumor) >= 0.5
    assert not [w for w in r.warnings if "tumour seed" in w]


@pytest.mark.parametrize("offset", [4, 5])
def test_snap_to_edges_on_a_fine_grid_keeps_every_slice_and_row(offset):
    # 0.75 mm pixels, 1 mm slices, odd sizes: the contour runs on a 2x2-binned grid. The
    # last slice and row (left over by the binning) and boxes off the bin grid must stay.
    from flr_volumetry.segmentation._classic import snap_to_edges

    a = np.full((31, 45, 47), 40.0, np.float32)
    box = np.zeros(a.shape, bool)
    box[offset:, offset:offset + 30, offset:offset + 31] = True  # reaches the last slice
    a[box] = 110.0
    a += np.random.default_rng(offset).normal(0, 5, a.shape).astype(np.float32)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.75, 0.75, 1.0))
    out = snap_to_edges(box, img, 20)
    assert dice(out, box) >= 0.97
    assert out[-1].sum() >= 0.9 * box[-1].sum()


def test_touches_crop_edge_ignores_the_image_border():
    from flr_volumetry.segmentation._pipeline import _touches_crop_edge

    image = sitk.Image(50, 40, 30, sitk.sitkUInt8)
    mask = np.zeros((10, 10, 10), bool)  # crop x 5..14, y 0..9, z 20..29 (z, y, x array)
    lo, hi = (5, 0, 20), (14, 9, 29)
    mask[4:6, 4:6, 4:6] = True
    assert not _touches_crop_edge(mask, lo, hi, image)
    mask[4, 0, 4] = True  # y = 0: the image's own border too
    mask[9, 4, 4] = True  # z = 29: the image's last slice
    assert not _touches_crop_edge(mask, lo, hi, image)
    mask[4, 4, 0] = True  # x = 5: inside the image, the crop's edge
    assert _touches_crop_edge(mask, lo, hi, image)


def test_automatic_ct_without_a_lung_base_uses_the_thickest_right_upper_tissue():
    """A scan that starts below the diaphragm: no lung dome to sample under. The liver is
    the thickest soft tissue of the right upper abdomen; a warning says how it was found."""
    img, liver, _, spleen = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    top = 38  # the lungs start at z = 38: keep the slices below
    no_lungs = sitk.GetImageFromArray(a[:top].copy())
    no_lungs.CopyInformation(img[:, :, :top])
    r = segment_liver(no_lungs)
    assert "thickest soft tissue" in r.methods["algorithm"]
    assert any("no right lung base" in w for w in r.warnings)
    seg = _arr(r.liver)
    assert dice(seg, liver[:top]) >= 0.9
    assert not np.any(seg & spleen[:top])


def test_measure_of_a_scan_it_cannot_segment_says_where_seeds_are_given(ct, tmp_path):
    # measure has no --seed: its refusal must not end on segment's options alone.
    from flr_volumetry.workflow import measure_files

    a = sitk.GetArrayFromImage(ct[0]).astype(np.float64)
    mr = sitk.GetImageFromArray(np.clip(a + 1000.0, 0, None) * 0.4)
    mr.CopyInformation(ct[0])
    sitk.WriteImage(mr, str(tmp_path / "mr.nii.gz"))
    with pytest.raises(InputError, match=r"is this an MR scan\?.*; measure and batch segment "
                                         r"without seeds, so seed it with flr-volumetry segment "
                                         r"IMAGE --seed I,J,K .* \(--liver, or liver.nii.gz"):
        measure_files(tmp_path / "mr.nii.gz")


def test_intensity_model_does_not_depend_on_the_intensity_scale():
    # MR intensities have no unit: a scan rescaled x100 is the same scan. The histogram's
    # bins had an absolute floor of 0.5, so a liver at 2-4 was binned 0.5 wide at x1 and
    # 0.006 wide at x100: CHAOS case 2's masks at x1 and x100 had Dice 0.88 to each other.
    from flr_volumetry.segmentation._classic import intensity_model

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(3.0, 0.25, 20000), rng.normal(2.2, 0.3, 6000)])
    lo, hi = np.percentile(values, [2, 98])
    windows = [np.array(intensity_model(values * s, lo * s, hi * s, 3.0, 0.06 * s, 0.9 * s))
               / s for s in (1.0, 100.0, 0.01)]
    np.testing.assert_allclose(windows[1], windows[0], rtol=1e-6)
    np.testing.assert_allclose(windows[2], windows[0], rtol=1e-6)


@pytest.mark.parametrize("stored_as", ["0-1 floats", "zero mean, unit SD", "raised by 500"])
def test_mr_mask_does_not_depend_on_how_intensities_are_stored(stored_as):
    # MR values have no unit: a scan stored as 0-1 floats, normalised to zero mean, or
    # raised by an offset is the same scan. An absolute floor of 1.0 on the bright tissue
    # level had widened every window of 0-1 data (CHAOS case 2: Dice 0.887 -> 0.804), and
    # negative values or an offset broke the ratios the bias-adaptive steps compare (0.850;
    # raised by 500, 0.761).
    img, arrays = _mr_phantom("small")
    tissue = arrays["liver"].astype(bool) & ~arrays["tumor"].astype(bool) & ~arrays[
        "vessels"].astype(bool)
    seed = _deepest(tissue, img.GetSpacing())
    a = sitk.GetArrayFromImage(img).astype(np.float64)
    stored = {"0-1 floats": lambda v: v / a.max(),
              "zero mean, unit SD": lambda v: (v - a.mean()) / a.std(),
              "raised by 500": lambda v: v + 500.0}[stored_as]
    b = stored(a)
    other = sitk.GetImageFromArray(b)
    other.CopyInformation(img)
    as_stored = segment_liver(img, modality="mr", seeds=[seed])
    r = segment_liver(other, modality="mr", seeds=[seed])
    assert np.array_equal(_arr(r.liver), _arr(as_stored.liver))
    # The window is recorded in the scan's own values.
    window = np.array(r.methods["parameters"]["intensity_window"])
    expected = stored(np.array(as_stored.methods["parameters"]["intensity_window"]))
    np.testing.assert_allclose(window, expected, rtol=1e-3, atol=1e-3 * np.ptp(b))
    assert ("shifted" in r.methods["algorithm"]) == (stored_as != "0-1 floats")


def test_a_seed_in_another_organ_is_said(ct):
    # A seed in the spleen had written the spleen as "liver", exit 0, without a word when
    # the mask was cut by the field of view; a second seed left out was dropped silently.
    img, liver, tumor, spleen = ct
    r = segment_liver(img, seeds=[(60, 46, 30)])
    assert dice(_arr(r.liver), spleen) > 0.8
    assert any("on the patient's left of the body's centre" in w for w in r.warnings)
    r = segment_liver(img, seeds=[(27, 40, 27), (60, 46, 30)])
    outside = [s for s in ((27, 40, 27), (60, 46, 30))
               if not sitk.GetArrayViewFromImage(r.liver)[s[2], s[1], s[0]]]
    assert outside and all(any(f"seed {','.join(map(str, s))} lies outside the mask" in w
                               for w in r.warnings) for s in outside)
    assert not segment_liver(img, seeds=[(27, 40, 27)]).warnings


def test_a_huge_mask_is_said_even_when_cut_by_the_field_of_view():
    from flr_volumetry.segmentation import _plausibility_warnings

    # 18.8 L from a CT read as MR had been written with "its volume may be too small" only.
    img = sitk.Image([10, 10, 10], sitk.sitkInt16)
    mask = sitk.Image([10, 10, 10], sitk.sitkUInt8) + 1
    cut = ["the liver touches the superior end of the field of view"]
    said = _plausibility_warnings(img, mask, 18834.0, [(5, 5, 5)], "ct", cut)
    assert any("18834 mL is outside the adult range" in w for w in said)
    # Small and cut: the cut is the reason, said by its own warning.
    assert not any("adult range" in w
                   for w in _plausibility_warnings(img, mask, 300.0, [(5, 5, 5)], "ct", cut))


def test_ct_without_its_rescale_intercept_is_named_and_refusals_name_exclude_points(ct):
    from flr_volumetry.segmentation._classic import check_ct_intensities

    with pytest.raises(InputError, match="stored without its rescale intercept"):
        check_ct_intensities(np.array([0.0, 1064.0, 2500.0]))
    with pytest.raises(InputError) as info:
        check_ct_intensities(np.array([0.0, 40.0, 855.0]))
    assert "rescale intercept" not in str(info.value)
    img, liver, tumor, spleen = ct
    a = sitk.GetArrayFromImage(img)
    blob = _ellipsoid((30, 64, 40), (3, 3, 3))
    a[blob] = 100
    small = sitk.GetImageFromArray(a)
    small.CopyInformation(img)
    with pytest.raises(InputError, match="that no exclude point lies in the liver near them"):
        segment_liver(small, seeds=[(40, 64, 30)], exclude=[(40, 64, 32)])


@pytest.mark.parametrize("slice_mm, kept", [(2.5, True), (1.0, False)])
def test_coarse_median_spans_slices_only_where_slices_were_averaged(slice_mm, kept):
    from flr_volumetry.segmentation._classic import coarse_grid

    # A sheet one coarse voxel thick along z: a median across 2.5 mm slices (each kept
    # as one coarse voxel) would erase it, as it had carried liver over the faint
    # liver-heart interface; 1 mm slices are averaged three to one first, as in-plane.
    n_z = 30
    arr = np.zeros((n_z, 24, 24), np.float32)
    sheet = slice(n_z // 2, n_z // 2 + (1 if slice_mm == 2.5 else 3))
    arr[sheet] = 100.0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, slice_mm))
    coarse = sitk.GetArrayFromImage(coarse_grid(img, 3.0))
    assert bool(coarse.max() == 100.0) is kept


def test_an_mhd_output_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    # .mhd passed the up-front check, so the whole segmentation ran before write_mask
    # refused it, in a sentence naming a temporary file (".tmp-...-liver.mhd").
    import os

    import flr_volumetry.segmentation as seg

    src = tmp_path / "ct.nii.gz"
    sitk.WriteImage(synthetic_ct()[0], str(src))

    def no_work(*args, **kwargs):
        raise AssertionError("segmented before the output was checked")

    monkeypatch.setattr(seg, "segment_liver", no_work)
    code = main(["segment", str(src), "-o", str(tmp_path / "liver.mhd")])
    err = capsys.readouterr().err
    assert code == 1
    assert "liver.mhd" in err and ".tmp-" not in err
    assert os.listdir(tmp_path) == ["ct.nii.gz"]


@pytest.mark.parametrize("field, value", [("tumors", "false"), ("fast", "no"),
                                          ("coarse_spacing_mm", "3"), ("window_k", "2.5"),
                                          ("smooth_mm", float("nan"))])
def test_segmentation_options_refuse_wrong_kinds_in_a_sentence(field, value):
    # tumors="false" had segmented tumours; "3" had raised a raw TypeError.
    with pytest.raises(InputError, match=field):
        SegmentationOptions(**{field: value})


@pytest.mark.parametrize("seed", [(10 ** 400, 0, 0), (float("inf"), 0, 0)])
def test_a_seed_too_large_for_a_number_is_refused_in_a_sentence(seed):
    # Had escaped as OverflowError ("unexpected failure") from `segment --seed 1000...0,0,0`.
    from flr_volumetry.segmentation._common import check_points

    with pytest.raises(InputError, match="is not three voxel indices"):
        check_points([seed], sitk.Image([4, 4, 3], sitk.sitkInt16))


def test_seeds_in_the_two_sides_of_a_transection_grow_both():
    # After ALPPS stage 1 the remnant lies a few mm from the rest, with nothing of the
    # liver's intensity between: one growth kept one side, and a seed in the other was
    # only said to lie outside the mask (the phantom's post-ALPPS FLR, 457 mL, was lost).
    img, liver, _, spleen = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[:, :, 26:28] = -90  # an 8 mm cut through the liver, filled with fat
    cut = sitk.GetImageFromArray(a)
    cut.CopyInformation(img)
    truth = liver & ~np.isin(np.arange(SHAPE[2]), [26, 27])[None, None, :]
    one = segment_liver(cut, seeds=[(20, 40, 27)])
    assert dice(_arr(one.liver), truth) < 0.85
    both = segment_liver(cut, seeds=[(20, 40, 27), (34, 40, 27)])
    assert dice(_arr(both.liver), truth) > 0.9
    assert any("the seeds grew 2 separate parts of liver" in w for w in both.warnings)
    assert both.methods["separate_parts"] == 2
    assert not (_arr(both.liver) & spleen).any()
    assert sum("separate parts" in w for w in both.warnings) == 1  # said once
    # The parts said are those of the mask written (the coarse grid's had been said).
    (said,) = [w for w in both.warnings if "separate parts" in w]
    parts = [float(v) for v in said.split("(")[1].split(" mL")[0].split(", ")]
    written_ml = _arr(both.liver).sum() * np.prod(both.liver.GetSpacing()) / 1000.0
    assert len(parts) == 2 and abs(sum(parts) - written_ml) <= 1.0
    # Automatic, each side is kept too (the full-resolution boundary had kept the larger
    # alone: Dice 0.684, while the warning said both were kept), and said.
    auto = segment_liver(cut)
    assert dice(_arr(auto.liver), truth) > 0.95
    assert any("the liver found is in 2 separate parts" in w for w in auto.warnings)
    assert not (_arr(auto.liver) & spleen).any()
    # A seed in soft tissue of another level a few mm from the liver (stomach wall, muscle)
    # is no side of a transection: left out and said, as before.
    a[20:34, 30:50, 8:12] = 40
    beside = sitk.GetImageFromArray(a)
    beside.CopyInformation(img)
    r = segment_liver(beside, seeds=[(20, 40, 27), (18, 44, 27), (22, 36, 27), (10, 40, 27)])
    assert not _arr(r.liver)[27, 40, 10] and "separate_parts" not in r.methods
    assert any("seed 10,40,27 lies outside the mask" in w for w in r.warnings)


def test_fill_liver_keeps_every_part_of_the_region():
    # After ALPPS stage 1 the transection splits the grown liver in two; keeping the largest
    # part alone, the phantom's automatic post-ALPPS liver lost its remnant (472 mL of
    # 2006, Dice 0.850) with no warning.
    from flr_volumetry.segmentation._classic import fill_liver

    region = np.zeros((20, 30, 50), bool)
    region[4:16, 5:25, 5:28] = True
    region[4:16, 5:25, 31:45] = True  # the remnant, 3 voxels away
    region[10, 15, 10] = False  # a vessel inside
    ref = sitk.Image([50, 30, 20], sitk.sitkUInt8)
    out = fill_liver(region, ref)
    assert out[10, 15, 35] and out[10, 15, 10]
    assert ndi.label(out)[1] == 2 and not out[10, 15, 29]  # the cut stays out


def test_automatic_liver_after_alpps_stage_1_keeps_both_sides_and_says_so():
    # The phantom's post-ALPPS liver (the transection between the remnant and the rest)
    # had lost the remnant: Dice 0.848 with no warning.
    from flr_volumetry import phantoms

    grid = phantoms.grid_preset("small", "ct")
    arrays = phantoms.render_timepoint(phantoms.make_patient(2), 1, grid, modality="ct")
    assert phantoms.make_patient(2).procedure == "ALPPS"
    img = sitk.GetImageFromArray(arrays["image"])
    img.SetSpacing(tuple(float(v) for v in grid.spacing_mm))
    img.SetOrigin(tuple(float(v) for v in grid.origin_mm))
    r = segment_liver(img)
    assert dice(_arr(r.liver), arrays["liver"].astype(bool)) > 0.95
    assert any("the liver found is in 2 separate parts" in w for w in r.warnings), r.warnings
    assert r.methods["separate_parts"] == 2


def test_separate_parts_are_counted_by_growth_not_by_crumbs():
    # The regrowth counted every connected piece of the united mask: a one-voxel crumb of
    # the first growth made "3 separate parts (325, 283, 0 mL)".
    from flr_volumetry.segmentation import _separate_parts
    from flr_volumetry.segmentation._pipeline import segment_classic

    img, _, _, _ = synthetic_ct()
    a = sitk.GetArrayFromImage(img)
    a[:, :, 26:28] = -90
    cut = sitk.GetImageFromArray(a)
    cut.CopyInformation(img)
    options = SegmentationOptions()
    seeds = [(20, 40, 27), (34, 40, 27)]
    first, _, warnings, methods = segment_classic(cut, "ct", seeds[:1], [], options)
    arr = sitk.GetArrayFromImage(first)
    arr[27, 40, 10] = 1  # a stray voxel
    crumbed = sitk.GetImageFromArray(arr)
    crumbed.CopyInformation(first)
    _, said = _separate_parts(cut, "ct", seeds, [], options, crumbed, warnings, methods)
    assert methods["separate_parts"] == 2
    parts = [w for w in said if "separate parts" in w]
    assert len(parts) == 1 and "the seeds grew 2 separate parts of liver (" in parts[0]
    assert ", 0 mL" not in parts[0]


def _fake_totalsegmentator(calls, segment_labels=range(1, 9)):
    """A stand-in for TotalSegmentator's Python API: 'total' writes the synthetic liver
    as label 5, 'liver_segments' splits it into ``segment_labels`` along x."""
    def run(src, out, **kwargs):
        calls.append(kwargs["task"])
        image = sitk.ReadImage(src)
        liver = sitk.GetArrayFromImage(image) > 80
        labels = np.zeros(liver.shape, np.uint8)
        if kwargs["task"].startswith("liver_segments"):
            x = np.nonzero(liver)[2]
            edges = np.linspace(x.min(), x.max() + 1, len(segment_labels) + 1)
            for label, lo, hi in zip(segment_labels, edges[:-1], edges[1:]):
                labels[:, :, int(lo):int(hi)][liver[:, :, int(lo):int(hi)]] = label
        else:
            labels[liver] = 5
        out_img = sitk.GetImageFromArray(labels)
        out_img.CopyInformation(image)
        sitk.WriteImage(out_img, out)
    return run


def test_cli_writes_couinaud_segments_from_totalsegmentator(ct, tmp_path, capsys, monkeypatch):
    from flr_volumetry.segmentation import _totalseg

    img, liver, _, _ = ct
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    calls = []
    monkeypatch.setattr(_totalseg, "import_totalsegmentator",
                        lambda: _fake_totalsegmentator(calls))
    out, seg = tmp_path / "liver.nii.gz", tmp_path / "segments.nii.gz"
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(out), "--backend",
                 "totalsegmentator", "--segments-out", str(seg)]) == 0
    assert calls == ["total", "liver_segments"]
    labels = sitk.ReadImage(str(seg))
    assert labels.GetSize() == img.GetSize() and labels.GetOrigin() == img.GetOrigin()
    assert set(np.unique(sitk.GetArrayFromImage(labels))) == set(range(9))
    assert "Couinaud segments written to" in capsys.readouterr().out
    # measure takes them: a right hepatectomy keeps segments 1-4.
    assert main(["measure", str(tmp_path / "ct.nii.gz"), "--liver", str(out), "--segments",
                 str(seg), "--resection", "right_hepatectomy", "--json",
                 str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0 < m["flr_ml"] < m["total_liver_ml"]


@pytest.mark.parametrize("args, labels, message", [
    (["--segments-out", "SEG"], range(1, 9), "add --backend totalsegmentator"),
    (["--backend", "totalsegmentator", "--segments-out", "SEG.seg.nrrd"], range(1, 9),
     "writes a label map"),
    (["--backend", "totalsegmentator", "--segments-out", "SEG"], (1, 2, 3, 4, 5, 6, 7, 9),
     r"wrote labels 1, 2, 3, 4, 5, 6, 7, 9, not the Couinaud segments"),
])
def test_cli_segments_out_refusals_are_one_sentence_and_write_nothing(
        ct, tmp_path, capsys, monkeypatch, args, labels, message):
    from flr_volumetry.segmentation import _totalseg

    img = ct[0]
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    monkeypatch.setattr(_totalseg, "import_totalsegmentator",
                        lambda: _fake_totalsegmentator([], labels))
    args = [a.replace("SEG", str(tmp_path / "segments.nii.gz")) if a == "SEG" else
            a.replace("SEG", str(tmp_path / "segments")) for a in args]
    code = main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "liver.nii.gz"),
                 *args])
    err = capsys.readouterr().err
    assert code == 1 and re.search(message, err) and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


def test_couinaud_segments_messages_name_no_temporary_path(ct, monkeypatch):
    from flr_volumetry.segmentation import _totalseg, couinaud_segments

    monkeypatch.setattr(_totalseg, "import_totalsegmentator", lambda: _coarse_result(3))
    _, warnings = couinaud_segments(ct[0])
    # It had read "the TotalSegmentator segments its output was on another grid".
    assert warnings and warnings[0].startswith("TotalSegmentator's segments was on another grid")

    def fails(src, out, **kwargs):
        raise RuntimeError(f"could not read {src}")

    monkeypatch.setattr(_totalseg, "import_totalsegmentator", lambda: fails)
    with pytest.raises(InputError, match="could not read its working folder") as exc:
        couinaud_segments(ct[0])
    assert "flr-totalseg-" not in str(exc.value)


def test_api_mistakes_are_said_in_a_sentence(ct):
    # Seeds given second, positionally, had raised "'list' object has no attribute 'lower'".
    with pytest.raises(InputError, match=r"modality must be 'ct' or 'mr', not list; give seed "
                                         r"points by name: seeds=\[\(i, j, k\)\]"):
        segment_liver(ct[0], [(20, 30, 20)])


def test_a_scan_loaded_from_an_mr_header_is_segmented_as_mr(ct, monkeypatch):
    from flr_volumetry.io import Scan
    from flr_volumetry.segmentation import _pipeline

    seen = []
    real = _pipeline.segment_classic
    monkeypatch.setattr(_pipeline, "segment_classic",
                        lambda image, modality, *a, **k: seen.append(modality)
                        or real(image, modality, *a, **k))
    scan = Scan(image=sitk.Cast(ct[0], sitk.sitkFloat32) + 1100.0, source="x", modality="MR")
    segment_liver(scan, seeds=[(40, 40, 27)])
    assert seen == ["mr"]


def test_a_mask_longer_than_any_liver_is_said_along_the_patients_axes():
    from flr_volumetry.segmentation import LIVER_MAX_EXTENT_MM, _extent_warnings

    a = np.zeros((40, 20, 20), np.uint8)
    a[2:38, 5:15, 5:15] = 1  # 36 slices: 35 steps between the outermost
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((2.0, 2.0, 8.0))  # 280 mm from head to feet: a (long) liver
    assert _extent_warnings(img, a, True) == []
    img.SetSpacing((2.0, 2.0, 9.0))  # 315 mm: no liver
    (w,) = _extent_warnings(img, a, True)
    assert w.startswith("the mask spans 315 mm from head to feet") and "a seed may lie" in w
    assert "unless this liver is very large" in w
    assert LIVER_MAX_EXTENT_MM == 300.0
    # The same voxels on a coronal grid (the slice axis front to back): the long axis is
    # now the rows', still head to feet in the patient.
    img.SetSpacing((2.0, 9.0, 2.0))
    img.SetDirection((1, 0, 0, 0, 0, 1, 0, -1, 0))
    (w,) = _extent_warnings(img, np.ascontiguousarray(a.transpose(1, 0, 2)), False)
    assert "from head to feet" in w and "the mask may hold other organs" in w


def test_a_seed_in_the_back_muscle_of_the_real_ct_is_said(shared_data):
    # The right back muscles behind the liver had grown a 1.9 L 'liver' 390 mm long, exit
    # 0, said only in that the seed, the only one, "did not join the liver grown from the
    # other seeds".
    img = sitk.ReadImage(str(shared_data / "ct-whole-liver" / "ct.nii.gz"))
    r = segment_liver(img, modality="ct", seeds=[(100, 225, 165)])
    assert any(w.startswith("the mask spans") and "from head to feet" in w
               for w in r.warnings), r.warnings
    assert any("seed 100,225,165 lies outside the mask: the tissue there differs from the "
               "mask grown around it" in w for w in r.warnings), r.warnings
    assert not any("other seeds" in w for w in r.warnings)


def test_a_seed_in_the_body_wall_of_the_real_mr_is_said(shared_data):
    # A 3.9 L ring of body wall around the abdomen had been written with exit 0, said only
    # to touch the field of view's edges ("its volume may be too small").
    img = sitk.ReadImage(str(shared_data / "mr-chaos-t2" / "image_1.nii.gz"))
    r = segment_liver(img, modality="mr", seeds=[(105, 80, 24)])
    assert any(w.startswith("the mask spans") and "from right to left" in w
               for w in r.warnings), r.warnings
    # The liver seeded where a reader would click says nothing of the kind.
    r = segment_liver(img, modality="mr", seeds=[(51, 130, 29)])
    assert not any("the mask spans" in w for w in r.warnings)


def _cut_by_a_scan_circle(img, centre_yx=(40, 47), radius=30, padding=-3024):
    """``img`` padded with ``padding`` outside a circle in every slice, as a scanner
    writes what lies beyond the field of view it reconstructs."""
    a = sitk.GetArrayFromImage(img)
    y, x = np.ogrid[: a.shape[1], : a.shape[2]]
    a[:, (y - centre_yx[0]) ** 2 + (x - centre_yx[1]) ** 2 > radius ** 2] = padding
    out = sitk.GetImageFromArray(a)
    out.CopyInformation(img)
    return out


def test_a_liver_cut_by_the_scans_reconstructed_circle_is_said(ct, tmp_path):
    # A patient wider than the scanner's circle: the real CT's liver cut by it (8 % outside)
    # was written at 1944 of 2128 mL with no word, the array's edges being far away.
    img, liver, _, _ = ct
    seed = [(27, 40, 27)]
    whole = segment_liver(img, "ct", seeds=seed)
    assert not any("reconstructed circle" in w for w in whole.warnings)
    cut = segment_liver(_cut_by_a_scan_circle(img), "ct", seeds=seed)
    said = [w for w in cut.warnings if "reconstructed circle" in w]
    assert len(said) == 1 and "outside it the scanner wrote -3024" in said[0]
    # measure with the liver mask given says it too (and not for the scan as it was).
    mask = sitk.GetImageFromArray(liver.astype(np.uint8))
    mask.CopyInformation(img)
    sitk.WriteImage(mask, str(tmp_path / "liver.nii.gz"))
    for scan, expected in ((img, 0), (_cut_by_a_scan_circle(img), 1)):
        sitk.WriteImage(scan, str(tmp_path / "ct.nii.gz"))
        m = flr.measure_files(str(tmp_path / "ct.nii.gz"), liver=str(tmp_path / "liver.nii.gz"))
        assert sum("reconstructed circle" in w for w in m.warnings) == expected
