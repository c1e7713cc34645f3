"""Export widget: masks on the scan's grid, the remnant plan, JSON and the HTML report.

Output layout (the batch's, so the same tools read both)::

    OUT/masks/<patient>/<timepoint>/{liver,tumor,flr,segments}.nii.gz
    OUT/masks/<patient>/<timepoint>/{measurement,plan}.json, overlay.png
    OUT/results.json, OUT/report.html
"""

from __future__ import annotations

import datetime as _dt
import os
import re

from flr_volumetry import InputError, write_mask
from flr_volumetry.io import write_json_atomic
from napari.qt.threading import create_worker
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import LiveMeasure, find_patients, patient_key, patient_name, settings_for
from .._writer import labels_image
from ._common import report_error, scan_image
from ._volumetry import PatientForm

__all__ = ["ExportWidget", "export_review"]


def _safe(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "timepoint"


# Every file an export writes into a timepoint's folder: a new export removes those of the
# last one it does not write again (no FLR any more: no flr.nii.gz, no plan.json), and
# never touches anything else.
EXPORTED_FILES = ("liver.nii.gz", "tumor.nii.gz", "flr.nii.gz", "segments.nii.gz", "plan.json",
                  "measurement.json", "overlay.png")


def _remove_stale(folder, written):
    for name in EXPORTED_FILES:
        path = os.path.join(folder, name)
        if name not in written and os.path.isfile(path):
            os.remove(path)


def export_review(viewer_layers, out_dir, patient, options, procedure_date=None,
                  from_baseline_date=False, live=None, patient_key=None):
    """Write the masks, plans, measurements, results.json and report.html of one patient.

    ``patient_key``: the patient to export (see ``_model.patient_key``); may be left out
    when only one patient is open. Returns the results dict (``flr_volumetry.batch``
    schema) written to ``results.json``.
    """
    from flr_volumetry import __version__, report
    from flr_volumetry.batch import RESULTS_SCHEMA, RESULTS_SCHEMA_VERSION, analyse_patient
    from flr_volumetry.hypertrophy import parse_date
    from flr_volumetry.study import StudyPatient

    live = live or LiveMeasure()
    patients = find_patients(viewer_layers)
    if not patients:
        raise InputError("nothing to export: open or segment a liver mask first.")
    if patient_key is None and len(patients) > 1:
        raise InputError(f"{len(patients)} patients are open "
                         f"({', '.join(patient_name(k) for k in patients)}); choose the one to "
                         f"export.")
    if patient_key is None:
        patient_key = next(iter(patients))
    if patient_key not in patients:
        raise InputError(f"patient {patient_name(patient_key)} has no liver mask open.")
    # One patient only: another patient's scans would be written as this one's follow-ups.
    tps = patients[patient_key]
    out_dir = os.fspath(out_dir)
    facts = tps[0].patient_facts
    patient_id = patient_key or "patient"
    # Everything that can be refused is checked before the first file is written: an
    # export stopped half-way would leave one timepoint's files beside the last run's.
    date = parse_date(procedure_date, "procedure date")
    procedure_date = None if date is None else date.isoformat()
    measured = [live.measure(t.liver, tumor=t.tumor, flr=t.flr, segments=t.segments,
                             patient=patient, options=options, scan_date=t.scan_date)
                for t in tps]
    records = []
    for t, m in zip(tps, measured):
        name = _safe(t.label.split(" ", 1)[1] if t.label.startswith(patient_id + " ")
                     else t.label)
        rel_dir = os.path.join("masks", _safe(patient_id), name)
        folder = os.path.join(out_dir, rel_dir)
        masks, images = {}, {}
        plan = None if t.flr is None else t.flr.metadata.get("flr_plan")
        written = {f"{role}.nii.gz" for role in ("liver", "tumor", "flr", "segments")
                   if getattr(t, role) is not None} | {"measurement.json"}
        written |= {"plan.json"} if plan else set()
        written |= {"overlay.png"} if t.scan is not None else set()
        _remove_stale(folder, written)
        for role in ("liver", "tumor", "flr", "segments"):
            layer = getattr(t, role)
            if layer is None:
                continue
            images[role] = labels_image(layer.data, layer.metadata, layer.name)
            write_mask(images[role], os.path.join(folder, f"{role}.nii.gz"))
            masks[role] = os.path.join(rel_dir, f"{role}.nii.gz")
        if plan:
            write_json_atomic(plan, os.path.join(folder, "plan.json"))
        write_json_atomic(m.to_dict(), os.path.join(folder, "measurement.json"))
        overlay = None
        if t.scan is not None:
            png = report.overlay_png(scan_image(t.scan), images["liver"], images.get("flr"),
                                     images.get("tumor"),
                                     modality=t.scan_facts.get("modality"), title=t.label)
            overlay = os.path.join(rel_dir, "overlay.png")
            report.write_text_atomic(png, os.path.join(out_dir, overlay), mode="wb")
        records.append({
            "patient_id": patient_id, "timepoint": name, "scan_date": t.scan_date,
            "date_source": "napari review", "status": "ok", "error": None,
            "measurement": m.to_dict(), "masks": masks, "overlay": overlay,
            "liver_method": t.liver.metadata.get("flr_source"),
            "flr_method": None if t.flr is None else (
                "plan" if plan else t.flr.metadata.get("flr_source", "painted in napari")),
        })
    sp = StudyPatient(
        patient_id=patient_id, folder=out_dir, height_cm=patient.height_cm,
        weight_kg=patient.weight_kg, liver_condition=patient.liver_condition,
        procedure=facts.get("procedure"), procedure_date=procedure_date or None)
    entry = analyse_patient(sp, records, from_baseline_date=from_baseline_date)
    n_ok = sum(r["status"] == "ok" for r in entry["timepoints"])
    results = {
        "schema": RESULTS_SCHEMA, "schema_version": RESULTS_SCHEMA_VERSION,
        "software_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "study": "napari review",
        "options": {"bsa_formula": options.bsa_formula, "telv_formula": options.telv_formula,
                    "from_baseline_date": from_baseline_date},
        "summary": {"patients": 1, "patients_ok": int(entry["status"] == "ok"),
                    "patients_failed": int(entry["status"] != "ok"),
                    "timepoints": len(records), "timepoints_ok": n_ok,
                    "timepoints_failed": len(records) - n_ok, "timepoints_resumed": 0},
        "warnings": [], "patients": [entry],
    }
    write_json_atomic(results, os.path.join(out_dir, "results.json"))
    report.write_text_atomic(report.render_report_html(results, out_dir),
                             os.path.join(out_dir, "report.html"))
    return results


class ExportWidget(QWidget):
    """Save everything of one open patient into one folder."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.results = None
        self.worker = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("output folder")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.folder)
        row.addWidget(browse)
        layout.addLayout(row)
        pick = QFormLayout()
        self.patient_pick = QComboBox()
        pick.addRow("Patient", self.patient_pick)
        layout.addLayout(pick)
        self.procedure_date = QLineEdit()
        self.procedure_date.setPlaceholderText("procedure date YYYY-MM-DD (for growth)")
        layout.addWidget(self.procedure_date)
        # The same patient settings as the Volumetry and Hypertrophy widgets.
        self.patient_form = PatientForm(settings_for(napari_viewer))
        layout.addWidget(self.patient_form)
        self.export_button = QPushButton("Export masks, plan, JSON and report")
        self.export_button.clicked.connect(self.export)
        layout.addWidget(self.export_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._date_filled = None  # the procedure date taken from the patient's file
        self.patient_pick.currentIndexChanged.connect(self._patient_changed)
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self._refresh)
        napari_viewer.layers.selection.events.active.connect(self._follow_selection)
        self._refresh()

    def _follow_selection(self, event=None):
        """Choose the patient of the layer the user selects in the layer list."""
        layer = getattr(event, "value", None)
        meta = getattr(layer, "metadata", None) or {}
        if meta.get("flr_timepoint") is None:
            return
        idx = self.patient_pick.findData(patient_key(layer))
        if idx >= 0:
            self.patient_pick.setCurrentIndex(idx)

    def _refresh(self, *_):
        """List the open patients (with a liver); keep the choice while it is open."""
        current = self.patient_pick.currentData()
        self.patient_pick.blockSignals(True)
        self.patient_pick.clear()
        for key in find_patients(self.viewer.layers):
            self.patient_pick.addItem(patient_name(key), key)
        idx = self.patient_pick.findData(current)
        self.patient_pick.setCurrentIndex(idx if idx >= 0 else self.patient_pick.count() - 1)
        self.patient_pick.blockSignals(False)
        self._patient_changed()

    def _patient_changed(self, *_):
        key = self.patient_pick.currentData()
        tps = find_patients(self.viewer.layers).get(key)
        if not tps:
            return
        self.patient_form.show_patient(key, tps[0].scan_facts, tps[0].patient_facts)
        date = tps[0].patient_facts.get("procedure_date")
        date = None if date is None else str(date)
        # Replace a date taken from another patient's file, never one the user typed.
        if not self.procedure_date.text() or self.procedure_date.text() == self._date_filled:
            self.procedure_date.setText(date or "")
            self._date_filled = date

    def _browse(self):
        path = QFileDialog.getExistingDirectory(self, "Export folder")
        if path:
            self.folder.setText(path)

    def export(self):
        """Write everything in a worker thread (NIfTI and PNG writing takes seconds)."""
        try:
            out = self.folder.text().strip()
            if not out:
                raise InputError("choose an output folder first.")
            key = self.patient_pick.currentData()
            if key is None:
                raise InputError("nothing to export: open or segment a liver mask first.")
            patient, options = self.patient_form.patient(), self.patient_form.options()
            date = self.procedure_date.text().strip() or None
            layers = list(self.viewer.layers)
        except InputError as exc:
            report_error("Export", exc)
            self.status.setText(str(exc))
            return None

        def run():
            try:
                return export_review(layers, out, patient, options, date, patient_key=key)
            except OSError as exc:
                raise InputError(f"cannot write into {out} ({exc}).") from exc

        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting to {out}…")
        self.worker = create_worker(run, _progress={"desc": "Exporting"}, _ignore_errors=True)
        self.worker.returned.connect(lambda results: self._exported(out, results))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(lambda: self.export_button.setEnabled(True))
        self.worker.start()
        return self.worker

    def _exported(self, out, results):
        self.results = results
        entry = results["patients"][0]
        text = f"Written to {out}: masks, measurement JSON, results.json and report.html."
        if entry.get("error"):
            text += f"\n⚠ {entry['error']}"
        self.status.setText(text)

    def _failed(self, exc):
        report_error("Export", exc)
        self.status.setText(str(exc))
