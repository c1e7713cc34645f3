"""Remnant plans: named resections, segment maps, landmarks, cut surfaces, CLI."""

import json
import os
import re

import numpy as np
import pytest
import SimpleITK as sitk

import flr_volumetry as flr
from flr_volumetry import InputError
from flr_volumetry.cli import main
from flr_volumetry.remnant import (
    RESECTIONS,
    SEGMENTS,
    RemnantPlan,
    cut_surface,
    flr_from_plan,
    flr_from_segments,
    landmarks_from_segments,
    needed_segments,
    segments_from_landmarks,
    split_liver,
)
from flr_volumetry.remnant._plan import PLAN_SCHEMA_VERSION, remnant_segments_of
from flr_volumetry.workflow import measure_files

from _phantom_boxes import ROTATED, image_like

N_SEG = 5 * 10 * 5  # voxels per segment slab of _segment_liver


def _image(arr, spacing=(2.0, 2.5, 3.0), origin=(-60.0, -40.0, 10.0), direction=None):
    return image_like(arr, spacing=spacing, origin=origin, direction=direction)


def _segment_liver(direction=None):
    """A box liver of 8 slabs along x, one per segment (label = slab + 1), N_SEG voxels each."""
    seg = np.zeros((7, 12, 44), np.uint8)
    for s in range(8):
        seg[1:6, 1:11, 2 + 5 * s:2 + 5 * (s + 1)] = s + 1
    liver = (seg > 0).astype(np.uint8)
    return _image(seg, direction=direction), _image(liver, direction=direction)


# The remnants of ../shared/CLINICAL.md, written out by hand.
CLINICAL_REMNANTS = {
    "right_hepatectomy": (1, 2, 3, 4),
    "extended_right_hepatectomy": (1, 2, 3),
    "left_hepatectomy": (1, 5, 6, 7, 8),
    "extended_left_hepatectomy": (1, 6, 7),
    "left_lateral_sectionectomy": (1, 4, 5, 6, 7, 8),
    "right_posterior_sectionectomy": (1, 2, 3, 4, 5, 8),
}


@pytest.mark.parametrize("name", sorted(CLINICAL_REMNANTS))
def test_named_resections_match_clinical_table(name):
    assert remnant_segments_of(name) == CLINICAL_REMNANTS[name]
    assert remnant_segments_of(name, resect_caudate=True) == CLINICAL_REMNANTS[name][1:]
    assert set(RESECTIONS) == set(CLINICAL_REMNANTS)


def test_unknown_resection_lists_valid_names():
    with pytest.raises(InputError, match="right_hepatectomy.*left_lateral_sectionectomy"):
        RemnantPlan(resection="right_lobectomy")


@pytest.mark.parametrize("direction", [None, ROTATED])
def test_flr_from_segments_counts_exactly(direction):
    seg, liver = _segment_liver(direction)
    flr, warnings = flr_from_segments(seg, liver, resection="right_hepatectomy")
    assert int(sitk.GetArrayViewFromImage(flr).sum()) == 4 * N_SEG
    assert warnings == []
    flr, _ = flr_from_segments(seg, liver, remnant_segments=(2, 3))
    a = sitk.GetArrayViewFromImage(flr)
    assert int(a.sum()) == 2 * N_SEG
    assert set(np.unique(sitk.GetArrayViewFromImage(seg)[a > 0])) == {2, 3}
    flr, _ = flr_from_segments(seg, liver, resection="right_hepatectomy", resect_caudate=True)
    assert int(sitk.GetArrayViewFromImage(flr).sum()) == 3 * N_SEG


def test_segments_outside_liver_and_unlabelled_liver_warn_with_ml():
    seg, liver = _segment_liver()
    a = sitk.GetArrayFromImage(liver)
    a[1:6, 1:11, 2:4] = 0          # 100 voxels of segment 1 outside the liver
    a[0, 0, 0:10] = 1              # 10 liver voxels without a segment
    liver2 = _image(a)
    flr, warnings = flr_from_segments(seg, liver2, resection="right_hepatectomy")
    v_ml = 2.0 * 2.5 * 3.0 / 1000
    assert int(sitk.GetArrayViewFromImage(flr).sum()) == 4 * N_SEG - 100
    assert any(f"{100 * v_ml:.1f} mL of the segment map lies outside" in w for w in warnings)
    assert any(f"{10 * v_ml:.1f} mL of the liver has no segment label" in w for w in warnings)


def test_missing_segments_are_named():
    seg, liver = _segment_liver()
    a = sitk.GetArrayFromImage(seg)
    a[a == 4] = 0
    a[a == 7] = 0
    with pytest.raises(InputError, match=r"segment\(s\) 4, 7"):
        flr_from_segments(_image(a), liver, resection="right_hepatectomy")
    # An explicit list needs only its own segments.
    flr, _ = flr_from_segments(_image(a), liver, remnant_segments=(2, 3))
    assert int(sitk.GetArrayViewFromImage(flr).sum()) == 2 * N_SEG


def test_plan_json_round_trip_and_version(tmp_path):
    plans = [
        RemnantPlan(resection="extended_right_hepatectomy", resect_caudate=True),
        RemnantPlan(remnant_segments=(3, 2)),
        RemnantPlan(surface_points=[(0, 0, 0), (10, 0, 0), (0, 10, 1), (5, 5, 2)],
                    keep_point=(1, 2, 30)),
        RemnantPlan(resection="right_hepatectomy", landmarks={"ivc": [1, 2, 3],
                                                              "middle_hepatic_vein": [[1, 2, 3],
                                                                                      [4, 5, 6]]}),
    ]
    for i, plan in enumerate(plans):
        path = tmp_path / f"plan{i}.json"
        plan.save(path)
        data = json.loads(path.read_text())
        assert data["schema_version"] == PLAN_SCHEMA_VERSION
        assert RemnantPlan.load(path) == plan
    data["schema_version"] = "7.0"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="schema_version 7.0"):
        RemnantPlan.load(path)
    # A hand-written plan (inline in patient.json) is told the key to add.
    del data["schema_version"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=f'add "schema_version": "{PLAN_SCHEMA_VERSION}"'):
        RemnantPlan.load(path)
    path.write_text('{"schema_version": "1.0", "resection": "right_hepatectomy", "cut": 1}')
    with pytest.raises(InputError, match="unknown key"):
        RemnantPlan.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        RemnantPlan.load(path)


def test_plan_bad_combinations():
    with pytest.raises(InputError, match="not both"):
        RemnantPlan(resection="right_hepatectomy", remnant_segments=(2, 3))
    with pytest.raises(InputError, match="keep point"):
        RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)])
    with pytest.raises(InputError, match="1-8"):
        RemnantPlan(remnant_segments=(2, 9))
    with pytest.raises(InputError, match="no remnant"):
        RemnantPlan(landmarks={"ivc": [0, 0, 0]})


def test_plan_values_are_read_as_meant_not_truncated_or_truthy():
    # bool("false") is True: a plan file's "false" must keep the caudate.
    assert RemnantPlan(resection="right_hepatectomy", resect_caudate="false").segments == (
        1, 2, 3, 4)
    assert RemnantPlan.from_dict({"schema_version": "1.0", "resection": "right_hepatectomy",
                                  "resect_caudate": "false"}).segments == (1, 2, 3, 4)
    assert RemnantPlan(resection="right_hepatectomy", resect_caudate="true").segments == (
        2, 3, 4)
    with pytest.raises(InputError, match="resect_caudate must be true or false"):
        RemnantPlan(resection="right_hepatectomy", resect_caudate="sometimes")
    assert RemnantPlan(remnant_segments="2,3").segments == (2, 3)
    assert RemnantPlan(remnant_segments=2).segments == (2,)
    for bad in ([2.7, 3], [2, "x"], [True]):
        with pytest.raises(InputError, match="Couinaud numbers 1-8"):
            RemnantPlan(remnant_segments=bad)


def _box_liver(direction=None):
    a = np.zeros((12, 16, 20), np.uint8)
    a[1:11, 1:15, 1:19] = 1
    return _image(a, spacing=(1.5, 2.0, 2.5), origin=(-14.0, -16.0, -13.0), direction=direction)


@pytest.mark.parametrize("direction", [None, ROTATED])
def test_plane_cut_is_exact_in_physical_space(direction):
    liver = _box_liver(direction)
    pts = [(0.3, 0.0, 0.0), (0.3, 10.0, 0.0), (0.3, 0.0, 10.0)]  # the plane x = 0.3 mm
    liv = sitk.GetArrayViewFromImage(liver)
    xs = [liver.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
          for k, j, i in np.argwhere(liv)]
    keep = max(xs, key=lambda p: p[0])    # the liver voxel farthest on the +x side
    remnant, warnings = split_liver(liver, pts, keep)
    rem = sitk.GetArrayViewFromImage(remnant)
    liv = sitk.GetArrayViewFromImage(liver)
    # Independent truth: SimpleITK's own index -> physical mapping, voxel by voxel.
    expected = np.zeros_like(liv)
    keep_sign = np.sign(keep[0] - 0.3)
    for z, y, x in np.argwhere(liv):
        px = liver.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))[0]
        expected[z, y, x] = np.sign(px - 0.3) == keep_sign
    np.testing.assert_array_equal(rem, expected)
    resected = liv.astype(bool) & ~rem.astype(bool)
    assert int(rem.sum()) + int(resected.sum()) == int(liv.sum())
    assert not np.any(rem.astype(bool) & ~liv.astype(bool))
    assert 0 < rem.sum() < liv.sum() and warnings == []


def test_thin_plate_surface_passes_through_its_points_and_partitions():
    pts = [(-10, -10, 0), (10, -10, 4), (-10, 10, -4), (10, 10, 2), (0, 0, 6), (5, -3, -2)]
    s = cut_surface(pts)
    assert np.allclose(s.signed_distance(pts), 0, atol=1e-6)
    liver = _box_liver()
    rem, _ = split_liver(liver, [(x, y, z * 0.5) for x, y, z in pts], (0.0, 0.0, 9.0))
    rem_up, _ = split_liver(liver, [(x, y, z * 0.5) for x, y, z in pts], (0.0, 0.0, -9.0))
    r1, r2 = (sitk.GetArrayViewFromImage(r).astype(bool) for r in (rem, rem_up))
    liv = sitk.GetArrayViewFromImage(liver).astype(bool)
    # The two sides partition the liver exactly.
    assert not np.any(r1 & r2)
    np.testing.assert_array_equal(r1 | r2, liv)


def test_cut_bad_inputs():
    liver = _box_liver()
    with pytest.raises(InputError, match="collinear"):
        split_liver(liver, [(0, 0, 0), (5, 5, 5), (10, 10, 10)], (0, 0, 0))
    with pytest.raises(InputError, match="collinear"):
        split_liver(liver, [(0, 0, 0), (5, 5, 5), (10, 10, 10), (20, 20, 20)], (0, 0, 0))
    plane = [(0.3, 0, 0), (0.3, 10, 0), (0.3, 0, 10)]
    with pytest.raises(InputError, match="not inside the liver"):
        split_liver(liver, plane, (500.0, 0.0, 0.0))
    with pytest.raises(InputError, match="on the cut surface"):
        split_liver(liver, plane, (0.3, 1.0, 1.0))


def _sphere_liver():
    """A sphere (radius 90 mm) at the origin on a 6 mm grid, with landmarks for its segments."""
    n = 34
    arr = np.zeros((n, n, n), np.uint8)
    c = (np.arange(n) - (n - 1) / 2) * 6.0
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    arr[x ** 2 + y ** 2 + z ** 2 < 90 ** 2] = 1
    liver = _image(arr, spacing=(6.0, 6.0, 6.0), origin=(c[0], c[0], c[0]))
    # Right is -x, posterior +y, superior +z (LPS).
    landmarks = {
        "ivc": [0.0, 50.0, 40.0],
        "ivc_inferior": [0.0, 50.0, -40.0],
        "middle_hepatic_vein": [[0.0, -40.0, 20.0]],          # Cantlie: x = 0
        "right_hepatic_vein": [[-60.0, 50.0, 20.0]],          # coronal plane y = 50 on the right
        "left_hepatic_vein": [[40.0, -40.0, 20.0]],
        "portal_bifurcation": [0.0, 20.0, 0.0],               # portal plane z = 0
    }
    return liver, landmarks, (x, y, z)


def test_segments_from_landmarks_follow_the_planes():
    liver, lm, (x, y, z) = _sphere_liver()
    seg = sitk.GetArrayFromImage(segments_from_landmarks(liver, lm))
    inside = sitk.GetArrayViewFromImage(liver) > 0
    assert set(np.unique(seg[inside])) == set(range(1, 9))
    assert np.all(seg[~inside] == 0)
    not_caudate = inside & (seg != 1)
    # Cantlie's plane x = 0: left hemiliver (2-4) at x > 0, right (5-8) at x < 0.
    assert np.all(np.isin(seg[not_caudate & (x > 1)], [2, 3, 4]))
    assert np.all(np.isin(seg[not_caudate & (x < -1)], [5, 6, 7, 8]))
    # Portal plane z = 0 on the right: 7/8 above, 5/6 below.
    right = not_caudate & (x < -1)
    assert np.all(np.isin(seg[right & (z > 1)], [7, 8]))
    assert np.all(np.isin(seg[right & (z < -1)], [5, 6]))
    # Right hepatic vein plane y = 50: posterior 6/7 behind it.
    assert np.all(np.isin(seg[right & (y > 51)], [6, 7]))
    # Caudate: between hilum and IVC, below the confluence, left of the IVC.
    cz = np.argwhere(seg == 1)
    assert len(cz) > 0
    assert np.all(x[seg == 1] > 0) and np.all(z[seg == 1] < 40) and np.all(y[seg == 1] > 20)


def test_landmark_bad_inputs():
    liver, lm, _ = _sphere_liver()
    far = dict(lm, portal_bifurcation=[95.0, 95.0, 95.0])  # in the scan's corner
    with pytest.raises(InputError, match="portal_bifurcation .* outside the liver mask; check"):
        segments_from_landmarks(liver, far)
    # Beyond the scan (a follow-up scanned over a shorter length): said so, not "check its
    # coordinates" (which are right).
    beyond = dict(lm, portal_bifurcation=[0.0, 0.0, 400.0])
    with pytest.raises(InputError, match="portal_bifurcation .* lies outside this scan, whose "
                                         "field of view does not reach it"):
        segments_from_landmarks(liver, beyond)
    missing = {k: v for k, v in lm.items() if k != "right_hepatic_vein"}
    with pytest.raises(InputError, match="missing landmark.*right_hepatic_vein"):
        segments_from_landmarks(liver, missing)
    with pytest.raises(InputError, match="unknown landmark name.*gallbladder"):
        segments_from_landmarks(liver, dict(lm, gallbladder=[0, 0, 0]))


def test_landmarks_round_trip_on_their_own_segments():
    liver, lm, _ = _sphere_liver()
    seg = segments_from_landmarks(liver, lm)
    again = segments_from_landmarks(liver, landmarks_from_segments(seg))
    a, b = sitk.GetArrayViewFromImage(seg), sitk.GetArrayViewFromImage(again)
    left_a, left_b = np.isin(a, [2, 3, 4]), np.isin(b, [2, 3, 4])
    # A loose check: the landmarks derived from a map rebuild its hemilivers
    # (the caudate heuristic moves some voxels).
    assert 2 * (left_a & left_b).sum() / (left_a.sum() + left_b.sum()) > 0.9


def test_flr_from_plan_landmarks_and_tumour_warning():
    liver, lm, (x, _, _) = _sphere_liver()
    tumor = ((x > 30) & (x < 50) & (sitk.GetArrayViewFromImage(liver) > 0)).astype(np.uint8)
    tumor_img = sitk.GetImageFromArray(tumor)
    tumor_img.CopyInformation(liver)
    plan = RemnantPlan(resection="right_hepatectomy", landmarks=lm)
    flr, warnings, methods = flr_from_plan(plan, liver, tumor=tumor_img)
    assert methods["remnant"]["resection"] == "right_hepatectomy"
    assert methods["remnant"]["segments_from"].startswith("landmarks")
    assert any("tumour lies inside the planned remnant" in w for w in warnings)
    # The mask keeps the tumour (measure() excludes it from the volume).
    assert np.all(sitk.GetArrayViewFromImage(flr)[tumor > 0] == 1)
    with pytest.raises(InputError, match="neither a segment map"):
        flr_from_plan(RemnantPlan(resection="right_hepatectomy"), liver)


# ----------------------------------------------------------------------- files and CLI

@pytest.fixture()
def case(tmp_path):
    seg, liver = _segment_liver()
    ct = sitk.Cast(liver, sitk.sitkInt16) * 100
    tumor = sitk.GetArrayFromImage(liver) * 0
    tumor[2:4, 3:5, 3:5] = 1        # 8 voxels inside segment 1
    paths = {}
    for name, img in (("ct", ct), ("liver", liver), ("segments", seg),
                      ("tumor", _image(tumor.astype(np.uint8)))):
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        sitk.WriteImage(img, paths[name])
    return paths, tmp_path


def test_measure_files_with_plan_excludes_tumour_once(case):
    paths, _ = case
    v_ml = 2.0 * 2.5 * 3.0 / 1000
    m = measure_files(paths["ct"], liver=paths["liver"], tumor=paths["tumor"],
                      segments=paths["segments"], plan=RemnantPlan(resection="right_hepatectomy"))
    assert m.flr_ml == pytest.approx((4 * N_SEG - 8) * v_ml)
    assert m.segments_ml["1"] == pytest.approx(N_SEG * v_ml)
    assert m.methods["remnant"]["resection"] == "right_hepatectomy"
    with pytest.raises(InputError, match="not both"):
        measure_files(paths["ct"], liver=paths["liver"], flr=paths["liver"],
                      plan=RemnantPlan(resection="right_hepatectomy"))


def test_cli_resection_plane_with_negative_coordinates(case, capsys):
    paths, tmp = case
    liver = sitk.ReadImage(paths["liver"])
    # A plane x = -5 mm (physical); the box spans x = -56 .. 26 mm.
    keep = liver.TransformIndexToPhysicalPoint((40, 5, 3))
    out, flr_out, plan_out = tmp / "m.json", tmp / "flr.nii.gz", tmp / "plan.json"
    rc = main(["measure", paths["ct"], "--liver", paths["liver"],
               "--resection-plane", "-5,0,0;-5,10,0;-5,0,10",
               "--keep-point", ",".join(f"{c:g}" for c in keep),
               "--flr-out", str(flr_out), "--save-plan", str(plan_out), "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    flr = sitk.GetArrayFromImage(sitk.ReadImage(str(flr_out)))
    # x index i has physical x = -60 + 2 i; x > -5 for i >= 28: columns 28..41 of the liver.
    expected = int(sitk.GetArrayViewFromImage(liver)[:, :, 28:].sum())
    assert int(flr.sum()) == expected
    assert result["flr_ml"] == pytest.approx(expected * 2.0 * 2.5 * 3.0 / 1000)
    assert result["methods"]["remnant"]["surface"] == "plane"
    # The saved plan gives the same FLR.
    out2 = tmp / "m2.json"
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--plan", str(plan_out),
                 "--json", str(out2)]) == 0
    assert json.loads(out2.read_text())["flr_ml"] == result["flr_ml"]


def test_cli_resection_segments_and_surface_file(case, capsys):
    paths, tmp = case
    out = tmp / "m.json"
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--segments",
                 paths["segments"], "--remnant-segments", "2,3", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["flr_ml"] == pytest.approx(2 * N_SEG * 0.015)
    assert r["segments_ml"]["8"] == pytest.approx(N_SEG * 0.015)
    assert r["methods"]["remnant"]["remnant_segments"] == [2, 3]
    surface = tmp / "surface.json"
    surface.write_text(json.dumps({"points": [[-5, 0, 0], [-5, 10, 0], [-5, 0, 10],
                                              [-5, 20, 20]], "keep_point": [10, -25, 20]}))
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--resection-surface",
                 str(surface), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["methods"]["remnant"]["surface"] == "thin-plate spline"
    # The same keep point given twice is fine; two different ones keep different sides.
    base = ["measure", paths["ct"], "--liver", paths["liver"], "--resection-surface", str(surface)]
    assert main([*base, "--keep-point", "10,-25,20", "--json", str(out)]) == 0
    capsys.readouterr()
    assert main([*base, "--keep-point", "-60,0,0", "--json", str(out)]) == 1
    assert "differ; give one of them" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--resection", "trisectionectomy"], "unknown resection"),
    (["--resection", "right_hepatectomy"], "neither a segment map"),
    (["--resection-plane", "0,0,0;1,1,1;2,2,2", "--keep-point", "0,0,0"], "collinear"),
    (["--resection-plane", "0,0,0;1,0,0;0,1,0"], "keep point"),
    (["--resection-plane", "-5,0,0;-5,10,0;-5,0,10", "--keep-point", "900,0,0"],
     "not inside the liver"),
    (["--resection-plane", "0,0,0;1,0,0"], "exactly three points"),
    (["--resection-plane", "-5,0,0;-5,10,0;-20.5,0,nan", "--keep-point", "0,0,0"],
     "resection plane point"),
    (["--plan", "PLAN", "--resection", "right_hepatectomy"], "--plan already defines"),
])
def test_cli_bad_plans_fail_with_one_line(case, capsys, extra, message):
    paths, tmp = case
    plan = tmp / "p.json"
    RemnantPlan(remnant_segments=(2,)).save(plan)
    extra = [paths["liver"] if e == "LIVER" else str(plan) if e == "PLAN" else e for e in extra]
    rc = main(["measure", paths["ct"], "--liver", paths["liver"], *extra])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ real segment maps

TARGET_HEMI_DICE = 0.93
TARGET_FLR_ERROR = 0.10


@pytest.mark.slow
def test_landmark_segments_on_3dircadb(shared_data):
    files = sorted((shared_data / "couinaud-3dircadb").glob("*.nii.gz"))
    if not files:
        pytest.skip("couinaud-3dircadb segment maps not found")
    for f in files:
        ref = sitk.ReadImage(str(f))
        liver = sitk.Cast(ref > 0, sitk.sitkUInt8)
        built = segments_from_landmarks(liver, landmarks_from_segments(ref))
        a, b = sitk.GetArrayViewFromImage(ref), sitk.GetArrayViewFromImage(built)
        # The two-class split Dice: mean of the left (2-4) and right (5-8) Dice.
        hemi = np.mean([2 * (np.isin(a, side) & np.isin(b, side)).sum()
                        / (np.isin(a, side).sum() + np.isin(b, side).sum())
                        for side in ([2, 3, 4], [5, 6, 7, 8])])
        assert hemi >= TARGET_HEMI_DICE, f.name
        for name in ("right_hepatectomy", "extended_right_hepatectomy"):
            keep = remnant_segments_of(name)
            err = np.isin(b, keep).sum() / np.isin(a, keep).sum() - 1
            assert abs(err) <= TARGET_FLR_ERROR, (f.name, name, err)


def test_cli_landmarks_file_builds_segments(tmp_path):
    liver, lm, (x, _, _) = _sphere_liver()
    paths = {name: str(tmp_path / f"{name}.nii.gz") for name in ("ct", "liver")}
    sitk.WriteImage(sitk.Cast(liver, sitk.sitkInt16) * 100, paths["ct"])
    sitk.WriteImage(liver, paths["liver"])
    (tmp_path / "lm.json").write_text(json.dumps({"landmarks": lm}))
    out, flr_out = tmp_path / "m.json", tmp_path / "flr.nii.gz"
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--landmarks",
                 str(tmp_path / "lm.json"), "--resection", "left_lateral_sectionectomy",
                 "--flr-out", str(flr_out), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    expected = segments_from_landmarks(liver, lm)
    seg = sitk.GetArrayFromImage(expected)
    v_ml = 6.0 ** 3 / 1000
    assert r["flr_ml"] == pytest.approx(np.isin(seg, [1, 4, 5, 6, 7, 8]).sum() * v_ml)
    assert r["segments_ml"]["2"] == pytest.approx((seg == 2).sum() * v_ml)
    assert r["methods"]["segment_map"] == "built from the plan's landmarks"
    flr = sitk.GetArrayFromImage(sitk.ReadImage(str(flr_out)))
    np.testing.assert_array_equal(flr > 0, np.isin(seg, [1, 4, 5, 6, 7, 8]))
    # As a Slicer file its segment says what it is (it had been named after the file).
    seg_out = tmp_path / "plan_result.seg.nrrd"
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--landmarks",
                 str(tmp_path / "lm.json"), "--resection", "left_lateral_sectionectomy",
                 "--flr-out", str(seg_out)]) == 0
    import nrrd

    assert nrrd.read_header(str(seg_out))["Segment0_Name"] == "FLR"


@pytest.mark.parametrize("kw, message", [
    ({"landmarks": {"ivc": 5}}, "the landmark 'ivc' is 5, not a point"),
    ({"landmarks": {"ivc": None}}, "the landmark 'ivc' is None, not a point"),
    ({"landmarks": [1, 2, 3]}, "landmarks must be an object of named points"),
    ({"landmarks": "abc"}, "landmarks must be an object of named points"),
])
def test_malformed_landmarks_are_one_sentence_not_a_type_error(kw, message):
    with pytest.raises(InputError, match=message):
        RemnantPlan(resection="right_hepatectomy", **kw)


def test_malformed_surface_plans_are_refused():
    with pytest.raises(InputError, match="are not a list of points"):
        RemnantPlan(surface_points=5, keep_point=(0, 0, 1))
    # The caudate flag means nothing to a cut: it had been accepted and ignored.
    with pytest.raises(InputError, match="resect_caudate applies to a segment plan"):
        RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)], keep_point=(0, 0, 5),
                    resect_caudate=True)


def test_tumour_left_in_the_remnant_is_seen_with_a_parenchyma_only_liver_mask():
    liver, lm, (x, _, _) = _sphere_liver()
    inside = sitk.GetArrayViewFromImage(liver) > 0
    tumor = ((x > 30) & (x < 50) & inside).astype(np.uint8)
    tumor_img = sitk.GetImageFromArray(tumor)
    tumor_img.CopyInformation(liver)
    parenchyma = sitk.GetImageFromArray((inside & (tumor == 0)).astype(np.uint8))
    parenchyma.CopyInformation(liver)
    plan = RemnantPlan(resection="right_hepatectomy", landmarks=lm)
    whole_flr, whole_warnings, _ = flr_from_plan(plan, liver, tumor=tumor_img)
    flr, warnings, _ = flr_from_plan(plan, parenchyma, tumor=tumor_img)
    tumour_warning = [w for w in whole_warnings if "tumour lies inside the planned remnant" in w]
    assert tumour_warning and tumour_warning[0] in warnings
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(flr),
                                  sitk.GetArrayViewFromImage(whole_flr))


def _save_cut_plan(paths, tmp):
    """measure --save-plan of a cut at x = -5 mm on the case's scan; the plan's path."""
    keep = sitk.ReadImage(paths["liver"]).TransformIndexToPhysicalPoint((40, 5, 3))
    plan_out = tmp / "plan.json"
    assert main(["measure", paths["ct"], "--liver", paths["liver"],
                 "--resection-plane", "-5,0,0;-5,10,0;-5,0,10",
                 "--keep-point", ",".join(f"{c:g}" for c in keep),
                 "--save-plan", str(plan_out), "--json", str(tmp / "m.json")]) == 0
    return plan_out


def test_a_saved_cut_plan_used_on_another_scan_without_registration_is_warned_about(case):
    paths, tmp = case
    liver = sitk.ReadImage(paths["liver"])
    plan_out = _save_cut_plan(paths, tmp)
    saved = json.loads(plan_out.read_text())
    assert saved["placed_on"]["size"] == list(liver.GetSize())
    assert saved["placed_on"]["origin"] == pytest.approx(list(liver.GetOrigin()))
    # The same scan: the plan's own points, nothing to say.
    same = measure_files(paths["ct"], liver=paths["liver"], plan=str(plan_out))
    assert not any("placed on another scan" in w for w in same.warnings)
    # Another scan (the patient lies 6 mm further along x): the plan's points, used as
    # they are, cut elsewhere; the measurement says so.
    for name in ("ct", "liver"):
        img = sitk.ReadImage(paths[name])
        img.SetOrigin((img.GetOrigin()[0] + 6.0,) + img.GetOrigin()[1:])
        sitk.WriteImage(img, str(tmp / f"follow_{name}.nii.gz"))
    follow = measure_files(tmp / "follow_ct.nii.gz", liver=str(tmp / "follow_liver.nii.gz"),
                           plan=str(plan_out))
    assert any("placed on another scan and are used here as they are" in w
               for w in follow.warnings)
    # Carried by registration, it is placed on the follow-up and saved with its grid.
    carried = measure_files(tmp / "follow_ct.nii.gz", liver=str(tmp / "follow_liver.nii.gz"),
                            plan=str(plan_out), plan_baseline=(paths["ct"], paths["liver"]))
    assert not any("placed on another scan" in w for w in carried.warnings)
    assert carried.methods["plan_applied"]["placed_on"]["origin"][0] == pytest.approx(
        liver.GetOrigin()[0] + 6.0)


def test_api_resection_names_are_read_alike_and_a_second_selection_is_refused():
    seg, liver = _segment_liver()
    # remnant_segments_of took these names; needed_segments and flr_from_segments raised
    # a raw KeyError.
    assert needed_segments(" Right-Hepatectomy") == SEGMENTS
    a, _ = flr_from_segments(seg, liver, resection="Right Hepatectomy")
    b, _ = flr_from_segments(seg, liver, resection="right_hepatectomy")
    assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    # The segment list had been ignored in favour of the resection.
    with pytest.raises(InputError, match="not both"):
        flr_from_segments(seg, liver, resection="right_hepatectomy", remnant_segments=[2, 3])


@pytest.mark.parametrize("shift, message", [
    (1, r"holds labels \[9\] besides Couinaud 1-8 \(is it numbered 0-7 or 1-9\?\)"),
    (-1, r"mL of the liver has no segment label.*no voxel of segment\(s\) 8"),
])
def test_per_segment_volumes_of_a_map_numbered_otherwise_are_warned_about(tmp_path, shift,
                                                                          message):
    seg, liver = _segment_liver()
    arr = sitk.GetArrayFromImage(seg).astype(np.int16)
    arr[arr > 0] += shift
    shifted = sitk.GetImageFromArray(arr.astype(np.uint8))
    shifted.CopyInformation(seg)
    m = flr.measure(liver, segments=shifted)
    assert re.search(message, " ".join(m.warnings))
    assert not any("segment" in w for w in flr.measure(liver, segments=seg).warnings)


def test_a_plan_that_leaves_no_remnant_says_so_and_why(tmp_path):
    sphere, lm, _ = _sphere_liver()
    # A liver without the part its landmarks call segments 6 and 7.
    seg = sitk.GetArrayFromImage(segments_from_landmarks(sphere, lm))
    liver = sitk.GetImageFromArray(((sitk.GetArrayFromImage(sphere) > 0)
                                    & ~np.isin(seg, [6, 7])).astype(np.uint8))
    liver.CopyInformation(sphere)
    sitk.WriteImage(liver, str(tmp_path / "liver.nii.gz"))
    sitk.WriteImage(sitk.Cast(liver, sitk.sitkInt16) * 60, str(tmp_path / "ct.nii.gz"))
    plan = RemnantPlan(remnant_segments=(6, 7), landmarks=lm)
    # Before: "the FLR mask is empty", of a mask nobody gave, the landmarks' note lost.
    with pytest.raises(InputError, match=r"the plan leaves no remnant on this liver \(the FLR "
                                         r"it defines is empty; the segment map has no voxel "
                                         r"of segment\(s\) 6, 7 .*check the landmarks\)\.$"):
        measure_files(tmp_path / "ct.nii.gz", liver=str(tmp_path / "liver.nii.gz"), plan=plan)


def test_mask_selection_messages_name_what_went_wrong(case):
    paths, _ = case
    with pytest.raises(InputError, match=r"label selection '2.5' is not a whole label number"):
        measure_files(paths["ct"], liver=paths["liver"], flr=paths["segments"] + ":2.5")
    with pytest.raises(InputError, match=r"TotalSegmentator's total number for liver; the file "
                                         r"holds 1\)"):
        measure_files(paths["ct"], liver=paths["liver"] + ":liver")


def test_float_segment_maps_are_rounded_once_for_counting_and_selecting():
    seg, liver = _segment_liver()
    noisy = sitk.GetImageFromArray(sitk.GetArrayFromImage(seg).astype(np.float32) * 1.0001)
    noisy.CopyInformation(seg)
    a, _ = flr_from_segments(noisy, liver, resection="right_hepatectomy")
    b, _ = flr_from_segments(seg, liver, resection="right_hepatectomy")
    # 1.0001 had been counted as segment 1 but not selected: an empty FLR, no word.
    assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))


def test_a_plan_baseline_other_than_the_plans_scan_is_warned_about(case):
    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    for name in ("ct", "liver"):
        img = sitk.ReadImage(paths[name])
        img.SetOrigin((img.GetOrigin()[0] + 6.0,) + img.GetOrigin()[1:])
        sitk.WriteImage(img, str(tmp / f"follow_{name}.nii.gz"))
    follow = (str(tmp / "follow_ct.nii.gz"), str(tmp / "follow_liver.nii.gz"))
    m = measure_files(follow[0], liver=follow[1], plan=str(plan_out), plan_baseline=follow)
    assert any("placed on another scan than the plan baseline given" in w for w in m.warnings)


def test_a_plan_baseline_without_a_liver_mask_is_segmented_once_while_unchanged(case,
                                                                                monkeypatch):
    # Each follow-up of a batch had read and segmented the plan's baseline again (26 s each
    # at 518 slices): kept while its files are unchanged, segmented again when they change.
    from flr_volumetry import workflow

    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    calls = []

    def auto_liver(scan, modality):
        calls.append(scan.source)
        return sitk.ReadImage(paths["liver"]), [], {}
    monkeypatch.setattr(workflow, "_auto_liver", auto_liver)
    workflow._SEGMENTED_BASELINE.clear()
    given = measure_files(paths["ct"], liver=paths["liver"], plan=str(plan_out),
                          plan_baseline=(paths["ct"], paths["liver"]))
    for _ in range(2):
        m = measure_files(paths["ct"], liver=paths["liver"], plan=str(plan_out),
                          plan_baseline=(paths["ct"], None))
        assert m.flr_ml == given.flr_ml
    assert len(calls) == 1
    # Rewritten in place with the same size and its modification time set back (cp -p,
    # rsync -t): the change time still tells.
    stat = os.stat(paths["ct"])
    data = open(paths["ct"], "rb").read()
    with open(paths["ct"], "r+b") as fh:
        fh.write(data)
    os.utime(paths["ct"], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    measure_files(paths["ct"], liver=paths["liver"], plan=str(plan_out),
                  plan_baseline=(paths["ct"], None))
    assert len(calls) == 2


def test_a_plan_placed_on_a_scan_resampled_onto_the_same_grid_is_warned_about(case):
    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    assert len(json.loads(plan_out.read_text())["placed_on"]["voxel_sha256"]) == 64
    # Another scan on the very same grid (a follow-up resampled onto the baseline's, as
    # pipelines do): the grid alone had called it the plan's own scan.
    ct = sitk.ReadImage(paths["ct"])
    moved = sitk.GetImageFromArray(np.roll(sitk.GetArrayFromImage(ct), 2, axis=2))
    moved.CopyInformation(ct)
    sitk.WriteImage(moved, str(tmp / "resampled_ct.nii.gz"))
    m = measure_files(tmp / "resampled_ct.nii.gz", liver=paths["liver"], plan=str(plan_out))
    assert any("placed on another scan" in w for w in m.warnings)
    # The plan's own scan read again (int32 instead of int16): the same voxels, no warning.
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt32), str(tmp / "ct32.nii.gz"))
    m = measure_files(tmp / "ct32.nii.gz", liver=paths["liver"], plan=str(plan_out))
    assert not any("placed on another scan" in w for w in m.warnings)


def test_a_plan_used_uncarried_on_another_scan_is_saved_as_the_first_scans(case):
    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    first = json.loads(plan_out.read_text())["placed_on"]
    for name in ("ct", "liver"):
        img = sitk.ReadImage(paths[name])
        img.SetOrigin((img.GetOrigin()[0] + 6.0,) + img.GetOrigin()[1:])
        sitk.WriteImage(img, str(tmp / f"follow_{name}.nii.gz"))
    again = tmp / "again.json"
    assert main(["measure", str(tmp / "follow_ct.nii.gz"), "--liver",
                 str(tmp / "follow_liver.nii.gz"), "--plan", str(plan_out),
                 "--save-plan", str(again), "--json", str(tmp / "f.json")]) == 0
    # The points are still the first scan's: the copy says so (it had recorded the
    # follow-up's grid, and its next use on the follow-up went unwarned).
    assert json.loads(again.read_text())["placed_on"] == first
    m = measure_files(tmp / "follow_ct.nii.gz", liver=str(tmp / "follow_liver.nii.gz"),
                      plan=str(again))
    assert any("placed on another scan" in w for w in m.warnings)


def test_a_saved_plan_given_as_landmarks_is_refused(case, capsys):
    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    capsys.readouterr()
    # Read as landmarks it would lose the scan it was placed on and its own resection.
    assert main(["measure", paths["ct"], "--liver", paths["liver"], "--landmarks",
                 str(plan_out), "--resection", "right_hepatectomy"]) == 1
    assert "is a saved remnant plan, not a landmarks file; give it with --plan" in \
        capsys.readouterr().err


def test_api_refuses_a_segment_map_with_fractional_labels():
    seg, liver = _segment_liver()
    # A map resampled with linear interpolation: measure refused it, the API rounded it
    # (x.5 to even, so odd segments shrank) and gave another FLR without a word.
    arr = sitk.GetArrayFromImage(seg).astype(np.float32)
    arr[arr == 3] = 2.5
    blurred = sitk.GetImageFromArray(arr)
    blurred.CopyInformation(seg)
    with pytest.raises(InputError, match="segment map holds fractional values"):
        flr_from_segments(blurred, liver, resection="right_hepatectomy")
    with pytest.raises(InputError, match="segment map holds fractional values"):
        flr_from_plan(RemnantPlan(resection="right_hepatectomy"), liver, segments=blurred)


@pytest.mark.parametrize("change, message", [
    ("mirror_front_back", "vena cava .* in front of the portal bifurcation"),
    ("swap_right_left_veins", "right hepatic vein lies on the patient's left"),
    ("left_vein_on_the_right", "left hepatic vein lies on the patient's right"),
])
def test_landmarks_in_an_order_no_liver_has_are_refused(change, message):
    liver, lm, _ = _sphere_liver()
    lm = {k: np.asarray(v, float) for k, v in lm.items()}
    if change == "mirror_front_back":
        lm = {k: v * np.array([1.0, -1.0, 1.0]) for k, v in lm.items()}
    elif change == "swap_right_left_veins":
        lm["right_hepatic_vein"], lm["left_hepatic_vein"] = (lm["left_hepatic_vein"],
                                                             lm["right_hepatic_vein"])
    else:
        lm["left_hepatic_vein"] = lm["left_hepatic_vein"] * np.array([-1.0, 1.0, 1.0])
    with pytest.raises(InputError, match=message):
        segments_from_landmarks(liver, {k: v.tolist() for k, v in lm.items()})


def test_resecting_the_landmark_models_caudate_is_warned_about():
    liver, lm, _ = _sphere_liver()
    seg = sitk.GetArrayFromImage(segments_from_landmarks(liver, lm))
    _, warnings, _ = flr_from_plan(RemnantPlan(resection="right_hepatectomy", landmarks=lm,
                                               resect_caudate=True), liver)
    caudate_ml = (seg == 1).sum() * 6.0 ** 3 / 1000
    assert any(f"segment 1) built from landmarks holds {caudate_ml:.1f} mL" in w
               for w in warnings)
    # Kept, or from a segment map, the coarse wedge decides nothing: no warning.
    _, kept, _ = flr_from_plan(RemnantPlan(resection="right_hepatectomy", landmarks=lm), liver)
    assert not any("built from landmarks holds" in w for w in kept)


def test_landmark_file_keys_and_tolerance_are_checked_in_their_own_words():
    liver, lm, _ = _sphere_liver()
    with pytest.raises(InputError, match="unknown landmark name.*comment"):
        segments_from_landmarks(liver, {**lm, "comment": "placed by Dr X on the baseline"})
    for bad in (float("nan"), -5.0):
        with pytest.raises(InputError, match="tolerance_mm must be a distance >= 0 mm"):
            segments_from_landmarks(liver, lm, tolerance_mm=bad)


def test_voxels_on_an_axial_cut_through_their_centres_are_said():
    arr = np.ones((20, 10, 10), np.uint8)
    liver = _image(arr, spacing=(1.0, 1.0, 5.0), origin=(0.0, 0.0, 0.0))
    # Three points on slice 8 (z = 40 mm): its 100 voxels' centres lie on the cut.
    plane = [(0, 0, 40.0), (9, 0, 40.0), (0, 9, 40.0)]
    below, warnings = split_liver(liver, plane, (5, 5, 10.0))
    above, _ = split_liver(liver, plane, (5, 5, 80.0))
    n_below = int(sitk.GetArrayViewFromImage(below).sum())
    n_above = int(sitk.GetArrayViewFromImage(above).sum())
    assert (n_below, n_above) == (800, 1100)  # slice 8 in neither remnant: cautious
    assert any("0.5 mL of liver has its voxel centres on the cut itself" in w for w in warnings)
    # Off the voxel centres, nothing to say.
    _, off = split_liver(liver, [(0, 0, 42.5), (9, 0, 42.5), (0, 9, 42.5)], (5, 5, 10.0))
    assert not any("on the cut itself" in w for w in off)


def _v_cut_points(arm_slope, half_height_mm=45.0, seed=0):
    """Clicks (1 mm jitter) on a V-shaped cut x = 20 + arm_slope * |z - 50| across a
    100 mm cube liver: 5 heights x 3 points along y."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-half_height_mm / arm_slope, half_height_mm / arm_slope, 5)
    return [(20 + arm_slope * abs(ti) + rng.normal(0, 0.5), y + rng.normal(0, 0.5),
             50 + ti + rng.normal(0, 0.5)) for ti in t for y in (10.0, 50.0, 90.0)]


def _cube_liver_2mm():
    return _image(np.ones((50, 50, 50), np.uint8), spacing=(2.0, 2.0, 2.0), origin=(1, 1, 1))


def test_a_cut_folded_into_a_v_is_warned_about():
    # A V whose arms rise steeper than 1:1 is no height over its points' best-fit plane
    # (that plane lies across the V): the spline folds, and the 'remnant' matched neither
    # side of the V (Dice 0.54 against it), without a word.
    _, warnings = split_liver(_cube_liver_2mm(), _v_cut_points(3.0), (5.0, 50.0, 50.0))
    folded = [w for w in warnings if "folds back" in w]
    assert len(folded) == 1 and "steepest" in folded[0]


@pytest.mark.parametrize("turn_deg", [0, 90, 150])
def test_a_curved_cut_that_faces_one_way_is_not_called_folded(turn_deg):
    rng = np.random.default_rng(1)
    th = np.radians(np.linspace(0, turn_deg, 6)) if turn_deg else np.zeros(6)
    pts = [(60 * np.cos(a) + rng.normal(0, 0.5) if turn_deg else 40.0 + rng.normal(0, 1.0),
            y + rng.normal(0, 0.5),
            60 * np.sin(a) + rng.normal(0, 0.5) if turn_deg else 15.0 * i + 10)
           for i, a in enumerate(th) for y in (10.0, 50.0, 90.0)]
    _, warnings = split_liver(_cube_liver_2mm(), pts, (2.0, 50.0, 2.0))
    assert not [w for w in warnings if "folds back" in w]


def test_a_few_voxel_centres_on_a_tilted_cut_are_not_said_as_0_0_ml():
    # Jittered clicks put a handful of voxel centres within 1 um of the cut: far below
    # any volume reported (0.1 mL), and not the 'points placed on one slice' case.
    _, warnings = split_liver(_cube_liver_2mm(), _v_cut_points(1.0), (5.0, 50.0, 50.0))
    assert not [w for w in warnings if "0.0 mL" in w]


def test_a_plan_baseline_of_another_patient_is_refused(case):
    # Dice of liver outlines cannot tell patients apart (another patient's baseline had
    # registered at 0.848, above the warning band): the DICOM PatientIDs can.
    from flr_volumetry.io import write_dicom_series

    paths, tmp = case
    plan_out = _save_cut_plan(paths, tmp)
    ct = sitk.ReadImage(paths["ct"])
    shifted = sitk.Image(ct)
    shifted.SetOrigin((ct.GetOrigin()[0] + 6.0,) + ct.GetOrigin()[1:])
    liver = sitk.ReadImage(paths["liver"])
    liver.SetOrigin(shifted.GetOrigin())
    sitk.WriteImage(liver, str(tmp / "follow_liver.nii.gz"))
    write_dicom_series(ct, tmp / "base", patient_id="PSEUDO-A")
    for pid in ("PSEUDO-A", "PSEUDO-B"):
        write_dicom_series(shifted, tmp / f"follow_{pid}", patient_id=pid)
    base = (str(tmp / "base"), paths["liver"])
    same = measure_files(tmp / "follow_PSEUDO-A", liver=str(tmp / "follow_liver.nii.gz"),
                         plan=str(plan_out), plan_baseline=base)
    assert same.flr_ml > 0
    with pytest.raises(InputError, match="another patient") as exc:
        measure_files(tmp / "follow_PSEUDO-B", liver=str(tmp / "follow_liver.nii.gz"),
                      plan=str(plan_out), plan_baseline=base)
    assert "PSEUDO" not in str(exc.value)


def test_plan_files_refused_in_a_sentence(tmp_path):
    from flr_volumetry.remnant._plan import parse_point

    # A folder (or an unreadable file) had escaped as IsADirectoryError.
    with pytest.raises(InputError, match="cannot read the remnant plan"):
        RemnantPlan.load(tmp_path)
    path = tmp_path / "plan.json"
    path.write_text('{"schema_version": "1.1", "resection": "right_hepatectomy", '
                    '"resection": "left_hepatectomy"}')
    with pytest.raises(InputError, match="'resection' is given twice"):
        RemnantPlan.load(path)
    # A 400-digit coordinate had escaped as OverflowError.
    with pytest.raises(InputError, match="not three numbers"):
        parse_point([10 ** 400, 0, 0], "keep point")


def test_landmarks_given_as_numpy_arrays_and_numbers_are_read_as_lists_are():
    # A point as np.array([x, y, z]), points as an (n, 3) array, or a list of np.float32 had
    # been refused ("not a point [x, y, z]"), though a script computes them so.
    liver, lm, _ = _sphere_liver()
    as_lists = segments_from_landmarks(liver, lm)
    as_arrays = {name: np.asarray(pts, dtype=np.float64) for name, pts in lm.items()}
    as_np_numbers = {name: [np.float32(c) for c in pts] if np.ndim(pts) == 1
                     else [[np.float32(c) for c in p] for p in pts] for name, pts in lm.items()}
    for given in (as_arrays, as_np_numbers):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(
            segments_from_landmarks(liver, given, tolerance_mm=np.float32(20))),
            sitk.GetArrayFromImage(as_lists))
    plan = RemnantPlan(resection="right_hepatectomy", landmarks=as_arrays)
    assert plan == RemnantPlan(resection="right_hepatectomy", landmarks=lm)
    with pytest.raises(InputError, match="tolerance_mm must be a distance >= 0 mm, not '5'"):
        segments_from_landmarks(liver, lm, tolerance_mm="5")


def test_flr_from_segments_reads_resect_caudate_as_remnant_plan_does():
    # resect_caudate="false" (from a JSON or YAML file) is a true value: it had resected
    # segment 1 without a word, where RemnantPlan reads it as False.
    lab = np.repeat(np.arange(1, 9, dtype=np.uint8), 2)[None, None, :]
    seg = sitk.GetImageFromArray(lab)
    liver = sitk.GetImageFromArray((lab > 0).astype(np.uint8))
    kept, _ = flr_from_segments(seg, liver, resection="right_hepatectomy")
    for flag in ("false", 0, np.bool_(False)):
        flr, _ = flr_from_segments(seg, liver, resection="right_hepatectomy", resect_caudate=flag)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(flr), sitk.GetArrayFromImage(kept))
    with pytest.raises(InputError, match="resect_caudate must be true or false"):
        flr_from_segments(seg, liver, resection="right_hepatectomy", resect_caudate="maybe")


@pytest.mark.parametrize("version", ["1.banana", "1.9", "1.1.7", "1", 1.1, "2.0"])
def test_a_plan_version_never_written_is_refused_in_a_sentence(version):
    # Read by its first digit, "1.banana" and "1.9" had been taken for 1.x.
    with pytest.raises(InputError, match="schema_version .* is not supported; this version "
                                         "reads 1.0 or 1.1"):
        RemnantPlan.from_dict({"schema_version": version, "remnant_segments": [2, 3]})
    # Spaces around a written version are only spaces.
    assert RemnantPlan.from_dict({"schema_version": " 1.1 ",
                                  "remnant_segments": [2, 3]}).remnant_segments == (2, 3)


@pytest.mark.parametrize("key, value, said", [
    ("origin", [float("nan"), 0.0, 0.0], "not finite"),
    ("size", [0, -5, 2.7], "whole numbers of voxels"),
])
def test_a_plan_placed_on_a_broken_grid_is_refused(key, value, said):
    placed = {"size": [10, 10, 10], "spacing": [1.0, 1.0, 1.0], "origin": [0.0, 0.0, 0.0],
              "direction": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]}
    placed[key] = value
    with pytest.raises(InputError, match=said):
        RemnantPlan.from_dict({"schema_version": "1.1", "surface_points": [
            [0, 0, 0], [10, 0, 0], [0, 10, 0]], "keep_point": [1, 1, 5], "placed_on": placed})
