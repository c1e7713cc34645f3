"""The sample-data contribution: synthetic patient P001 reviewed end to end against its truth."""

import json

import pytest

phantoms = pytest.importorskip("flr_volumetry.phantoms")


def test_sample_patient_growth_matches_the_phantom_truth(make_napari_viewer, qtbot):
    if not hasattr(phantoms, "sample_study"):
        pytest.skip("flr_volumetry.phantoms has no sample_study yet")
    from flr_volumetry_napari._sample_data import sample_p001, sample_study_folder
    from flr_volumetry_napari._widgets import HypertrophyWidget, VolumetryWidget

    viewer = make_napari_viewer()
    layers = [getattr(viewer, f"add_{kind}")(data, **kw) for data, kw, kind in sample_p001()]
    names = [lay.name for lay in layers]
    # Baseline and follow-up, each with its scan and masks; the FLR comes from the patient's plan.
    for tp in ("baseline", "post_pve"):
        for role in ("scan", "liver", "tumor", "segments", "flr"):
            assert f"P001 {tp} {role}" in names
    flr_layer = viewer.layers["P001 post_pve flr"]
    assert flr_layer.metadata["flr_plan"]["resection"] == "right_hepatectomy"

    truth = json.loads((sample_study_folder() / "P001" / "truth.json").read_text())
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
    assert growth.table.check("KGR (Shindoh)").startswith("pass")

    vol = VolumetryWidget(viewer)
    qtbot.addWidget(vol)
    vol.liver.set_layer(viewer.layers["P001 baseline liver"])
    vol.tumor.set_layer(viewer.layers["P001 baseline tumor"])
    vol.flr.set_layer(viewer.layers["P001 baseline flr"])
    m = vol.recompute()
    base = truth["timepoints"][0]
    assert m.total_liver_ml == pytest.approx(base["total_liver_ml"])
    assert m.flr_ml == pytest.approx(base["flr_ml"])
    assert vol.table.value("Adequacy") == ("adequate" if base["sflr_adequate"] else "inadequate")
