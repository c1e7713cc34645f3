"""Carrying a plan from baseline to follow-up: point mapping, refusal, a small phantom."""

import numpy as np
import pytest
import SimpleITK as sitk

from flr_volumetry import InputError
from flr_volumetry.registration import (
    RegistrationOptions,
    carry_plan,
    dice,
    map_points,
    register_livers,
)
from flr_volumetry.remnant import RemnantPlan, flr_from_plan, landmarks_from_segments


def _ellipsoid(shape=(30, 40, 40), spacing=(4.0, 4.0, 5.0), centre=(0.0, 0.0, 0.0),
               axes=(60.0, 45.0, 50.0), origin=(-80.0, -80.0, -75.0)):
    img = sitk.Image([shape[2], shape[1], shape[0]], sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    z, y, x = np.meshgrid(*(origin[i] + spacing[i] * np.arange(n)
                            for i, n in ((2, shape[0]), (1, shape[1]), (0, shape[2]))),
                          indexing="ij")
    inside = (((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2
              + ((z - centre[2]) / axes[2]) ** 2) < 1
    out = sitk.GetImageFromArray(inside.astype(np.uint8))
    out.CopyInformation(img)
    return out


def test_map_points_inverts_affine_and_composite():
    affine = sitk.AffineTransform(3)
    affine.SetMatrix((1.1, 0.05, 0.0, -0.03, 0.95, 0.02, 0.0, 0.01, 1.05))
    affine.SetTranslation((4.0, -3.0, 7.0))
    baseline_pts = np.array([[10.0, 20.0, -5.0], [-30.0, 0.0, 12.0]])
    q, residual = map_points(affine, baseline_pts)
    back = np.array([affine.TransformPoint(tuple(p)) for p in q])
    np.testing.assert_allclose(back, baseline_pts, atol=1e-6)
    assert residual < 1e-6
    # A smooth displacement field on top: the fixed-point iteration solves it.
    ref = sitk.Image([40, 40, 40], sitk.sitkVectorFloat64, 3)
    ref.SetOrigin((-60.0, -60.0, -60.0))
    ref.SetSpacing((3.0, 3.0, 3.0))
    arr = np.zeros((40, 40, 40, 3))
    zz = np.linspace(-1, 1, 40)[:, None, None]
    arr[..., 0] = 3.0 * np.sin(np.pi * zz) * np.ones((40, 40, 40))
    field = sitk.GetImageFromArray(arr, isVector=True)
    field.CopyInformation(ref)
    composite = sitk.CompositeTransform([affine, sitk.DisplacementFieldTransform(field)])
    q, residual = map_points(composite, baseline_pts)
    back = np.array([composite.TransformPoint(tuple(p)) for p in q])
    np.testing.assert_allclose(back, baseline_pts, atol=0.05)
    assert residual < 0.05


def test_mask_registration_recovers_a_shift_and_refuses_poor_overlap():
    base = _ellipsoid()
    follow = _ellipsoid(centre=(8.0, -6.0, 5.0))
    transform, report = register_livers(base, follow)
    assert report.dice > 0.95 > report.dice_before
    # Follow-up centre (8, -6, 5) maps to the baseline centre (0, 0, 0).
    np.testing.assert_allclose(transform.TransformPoint((8.0, -6.0, 5.0)), (0, 0, 0), atol=2.0)
    plan = RemnantPlan(surface_points=[(10, -50, -40), (10, 50, -40), (10, 0, 40)],
                       keep_point=(40.0, 0.0, 0.0))
    tiny = _ellipsoid(axes=(15.0, 10.0, 12.0), centre=(40.0, 30.0, 20.0))
    with pytest.raises(InputError, match="could not be registered well.*Dice"):
        carry_plan(plan, None, base, None, tiny,
                   options=RegistrationOptions(method="deformable", min_dice=0.8))
    carried, report = carry_plan(plan, None, base, None, follow)
    assert any("scans were not given" in w for w in report.warnings)
    assert report.method.startswith("mask distance maps")
    # The keep point and the cut moved with the liver (by about (8, -6, 5) mm).
    assert carried.keep_point[0] == pytest.approx(48.0, abs=3.0)
    with pytest.raises(InputError, match="'rigid' or 'deformable'"):
        RegistrationOptions(method="elastic")


def test_segment_plans_need_no_registration():
    base = _ellipsoid()
    plan = RemnantPlan(resection="right_hepatectomy")
    carried, report = carry_plan(plan, None, base, None, _ellipsoid(axes=(20, 20, 20)))
    assert carried == plan and report.method.startswith("none")
    # Nothing was registered: no Dice is reported (1.0 had been), and the plan stands.
    assert report.to_dict()["dice"] is None and not report.registered and report.accepted


def test_a_scan_in_a_liver_masks_place_is_refused_before_registering(phantom_pair):
    # The images first, then the masks: registered for half a minute, then "Dice 0.095".
    base, follow = phantom_pair
    plan = RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)], keep_point=(0, 0, 5))
    with pytest.raises(InputError, match="the follow-up liver mask holds negative values"):
        carry_plan(plan, base["image"], base["liver"], follow["image"], follow["image"])


def test_a_liver_mask_off_its_scans_grid_is_refused_by_its_grid(phantom_pair):
    base, follow = phantom_pair
    shifted = sitk.Image(follow["liver"])
    shifted.SetOrigin([o + 30.0 for o in shifted.GetOrigin()])
    plan = RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)], keep_point=(0, 0, 5))
    # The size matched, so it had failed later as 'could not be registered well'.
    with pytest.raises(InputError, match="follow-up liver mask is not on the follow-up scan's"):
        carry_plan(plan, base["image"], base["liver"], follow["image"], shifted)


def test_dice():
    a = _ellipsoid()
    assert dice(a, a) == 1.0


@pytest.fixture(scope="module")
def phantom_pair():
    from flr_volumetry import phantoms

    grid = phantoms.grid_preset("small")
    patient = phantoms.make_patient(0)          # right PVE
    arrays = [phantoms.render_timepoint(patient, i, grid) for i in (0, 1)]

    # The follow-up as if the patient lay differently (known rotation and shift).
    follow = phantoms.repositioned(arrays[1], grid)
    base = {name: phantoms.to_image(arrays[0][name], grid)
            for name in ("image", "liver", "segments")}
    return base, follow


@pytest.mark.parametrize("plan_kind", ["landmarks", "plane"])
def test_baseline_plan_gives_follow_up_flr_within_5_percent(phantom_pair, plan_kind):
    base, follow = phantom_pair
    seg = sitk.GetArrayFromImage(base["segments"])
    if plan_kind == "landmarks":
        plan = RemnantPlan(resection="right_hepatectomy",
                           landmarks=landmarks_from_segments(base["segments"]))
    else:
        # Three points on Cantlie's plane of the phantom, picked from the baseline map.
        lm = landmarks_from_segments(base["segments"])
        pts = lm["middle_hepatic_vein"][:3]
        keep = np.argwhere(seg == 3)[len(np.argwhere(seg == 3)) // 2]
        plan = RemnantPlan(surface_points=pts, keep_point=base["segments"]
                           .TransformIndexToPhysicalPoint(tuple(int(v) for v in keep[::-1])))
    carried, report = carry_plan(plan, base["image"], base["liver"], follow["image"],
                                 follow["liver"])
    assert report.accepted and report.dice > 0.85
    assert report.point_residual_mm < 0.1
    flr, _, _ = flr_from_plan(carried, follow["liver"])
    truth = np.isin(sitk.GetArrayViewFromImage(follow["segments"]), [1, 2, 3, 4]).sum()
    found = sitk.GetArrayViewFromImage(flr).sum()
    assert abs(found / truth - 1) < 0.05, (found, truth)
    # Without registration (the plan used as is on the moved scan) it would be far off.
    if plan_kind == "landmarks":
        naive, _, _ = flr_from_plan(plan, follow["liver"])
        assert abs(sitk.GetArrayViewFromImage(naive).sum() / truth - 1) > 0.05


def test_cli_carries_a_baseline_plan(phantom_pair, tmp_path, capsys):
    import json

    from flr_volumetry.cli import main

    base, follow = phantom_pair
    files = {}
    for when, images in (("base", base), ("follow", follow)):
        for name in ("image", "liver"):
            files[when, name] = str(tmp_path / f"{when}_{name}.nii.gz")
            sitk.WriteImage(images[name], files[when, name])
    plan = RemnantPlan(resection="right_hepatectomy",
                       landmarks=landmarks_from_segments(base["segments"]))
    plan.save(tmp_path / "plan.json")
    out, carried = tmp_path / "m.json", tmp_path / "carried.json"
    common = ["measure", files["follow", "image"], "--liver", files["follow", "liver"],
              "--plan", str(tmp_path / "plan.json"), "--plan-baseline", files["base", "image"],
              "--plan-baseline-liver", files["base", "liver"]]
    assert main([*common, "--json", str(out), "--save-plan", str(carried)]) == 0
    r = json.loads(out.read_text())
    truth_ml = (np.isin(sitk.GetArrayViewFromImage(follow["segments"]), [1, 2, 3, 4]).sum()
                * np.prod(follow["liver"].GetSpacing()) / 1000)
    assert abs(r["flr_ml"] / truth_ml - 1) < 0.05
    assert r["methods"]["registration"]["dice"] > 0.85
    # The saved plan is the carried one: used on the follow-up alone it gives the same FLR.
    assert RemnantPlan.load(carried) != plan
    out2 = tmp_path / "m2.json"
    assert main(["measure", files["follow", "image"], "--liver", files["follow", "liver"],
                 "--plan", str(carried), "--json", str(out2)]) == 0
    assert json.loads(out2.read_text())["flr_ml"] == pytest.approx(r["flr_ml"])
    capsys.readouterr()
    assert main([*common, "--min-registration-dice", "0.99"]) == 1
    err = capsys.readouterr().err
    assert "could not be registered well" in err and len(err.strip().splitlines()) == 1


def test_scanner_origins_far_apart_register_from_the_livers_centres(phantom_pair):
    # Another scanner's table position: from the scanners' own coordinates the scans do not
    # overlap at all, and ITK's 'all samples map outside' escaped as an unexpected failure.
    base, follow = phantom_pair
    far = {}
    for name in ("image", "liver", "segments"):
        img = sitk.Image(follow[name])
        img.SetOrigin(tuple(np.add(img.GetOrigin(), (0.0, 0.0, 400.0))))
        far[name] = img
    plan = RemnantPlan(resection="right_hepatectomy",
                       landmarks=landmarks_from_segments(base["segments"]))
    carried, report = carry_plan(plan, base["image"], base["liver"], far["image"], far["liver"])
    assert report.accepted and "start: centres" in report.method
    flr, _, _ = flr_from_plan(carried, far["liver"])
    truth = np.isin(sitk.GetArrayViewFromImage(far["segments"]), [1, 2, 3, 4]).sum()
    assert abs(sitk.GetArrayViewFromImage(flr).sum() / truth - 1) < 0.05


def test_a_liver_mask_too_small_to_register_is_refused_in_a_sentence(phantom_pair):
    base, follow = phantom_pair
    one = sitk.Image(follow["liver"].GetSize(), sitk.sitkUInt8)
    one.CopyInformation(follow["liver"])
    one[tuple(s // 2 for s in one.GetSize())] = 1
    plan = RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)], keep_point=(0, 0, 5))
    # ITK had failed with 'Negative spacing is not supported'.
    with pytest.raises(InputError, match=r"the follow-up liver mask holds .* mL, too little to "
                                         r"register"):
        carry_plan(plan, base["image"], base["liver"], follow["image"], one)


def test_refusal_names_the_threshold_as_set():
    base = _ellipsoid()
    tiny = _ellipsoid(axes=(15.0, 10.0, 12.0), centre=(40.0, 30.0, 20.0))
    plan = RemnantPlan(surface_points=[(10, -50, -40), (10, 50, -40), (10, 0, 40)],
                       keep_point=(40.0, 0.0, 0.0))
    # "Dice 0.892 < 0.89" had been printed for a threshold of 0.893.
    with pytest.raises(InputError, match=r"< 0\.893\)"):
        carry_plan(plan, None, base, None, tiny,
                   options=RegistrationOptions(method="deformable", min_dice=0.893))


def test_a_registration_that_only_just_passes_is_warned_about():
    base = _ellipsoid()
    follow = _ellipsoid(centre=(8.0, -6.0, 5.0))
    plan = RemnantPlan(surface_points=[(10, -50, -40), (10, 50, -40), (10, 0, 40)],
                       keep_point=(40.0, 0.0, 0.0))
    opts = RegistrationOptions(method="deformable")
    _, report = carry_plan(plan, None, base, None, follow, options=opts)
    assert not any("only just passed" in w for w in report.warnings)
    near = RegistrationOptions(method="deformable", min_dice=round(report.dice - 0.01, 3))
    _, report = carry_plan(plan, None, base, None, follow, options=near)
    assert any("only just passed" in w for w in report.warnings)


@pytest.mark.parametrize("field, value", [("min_dice", "0.9"), ("iterations", "100"),
                                          ("iterations", 10.5), ("sampling", "0.1"),
                                          ("working_spacing_mm", "3"), ("min_dice", True)])
def test_registration_options_refuse_wrong_kinds_in_a_sentence(field, value):
    # "0.9" (from a YAML file) had raised a raw TypeError; 10.5 iterations were accepted.
    with pytest.raises(InputError, match=field):
        RegistrationOptions(**{field: value})
