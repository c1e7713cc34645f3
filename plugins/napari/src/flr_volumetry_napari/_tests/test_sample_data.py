"""The sample-data contribution: synthetic patient P001 reviewed end to end against its truth."""

import json

import pytest



@pytest.mark.parametrize("patient, followup", [("P001", "post_pve"), ("P002", "post_pve"),
                                               ("P003", "post_alpps")])
def test_sample_patient_growth_matches_the_phantom_truth(make_napari_viewer, qtbot, patient,
                                                         followup):
    from flr_volumetry_napari import _sample_data
    from flr_volumetry_napari._widgets import HypertrophyWidget, VolumetryWidget

    sample = getattr(_sample_data, f"sample_{patient.lower()}")
    viewer = make_napari_viewer()
    layers = [getattr(viewer, f"add_{kind}")(data, **kw) for data, kw, kind in sample()]
    names = [lay.name for lay in layers]
    # Baseline and follow-up, each with its scan and masks; the FLR comes from the patient's plan.
    for tp in ("baseline", followup):
        for role in ("scan", "liver", "tumor", "segments", "flr"):
            assert f"{patient} {tp} {role}" in names
    flr_layer = viewer.layers[f"{patient} {followup} flr"]
    assert flr_layer.metadata["flr_plan"]["resection"] == "right_hepatectomy"

    truth = json.loads((_sample_data.sample_study_folder() / patient / "truth.json").read_text())
    growth = HypertrophyWidget(viewer)
    qtbot.addWidget(growth)
    assert growth.procedure_date.text() == truth["procedure_date"]
    h = growth.compute()
    assert h is not None, growth.status.text()
    exp = truth["expected"]
    assert h.interval_days == exp["interval_days"]
    assert h.dh_pct_points == pytest.approx(exp["dh_pct_points"], abs=1e-6)
    assert h.kgr_pct_per_week == pytest.approx(exp["kgr_pct_per_week"], abs=1e-6)
    assert h.gr_pct_per_week == pytest.approx(exp["gr_pct_per_week"], abs=1e-6)
    assert growth.table.check("KGR (Shindoh)").startswith(
        "pass" if exp["kgr_meets_2pct"] else "FAIL")
    assert growth.table.check("GR (Leung)").startswith(
        "pass" if exp["gr_meets_2_66pct"] else "FAIL")

    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    vol.liver.set_layer(viewer.layers[f"{patient} baseline liver"])
    vol.tumor.set_layer(viewer.layers[f"{patient} baseline tumor"])
    vol.flr.set_layer(viewer.layers[f"{patient} baseline flr"])
    m = vol.recompute()
    base = truth["timepoints"][0]
    assert m.total_liver_ml == pytest.approx(base["total_liver_ml"])
    assert m.flr_ml == pytest.approx(base["flr_ml"])
    assert vol.table.value("Adequacy") == ("adequate" if base["sflr_adequate"] else "inadequate")
