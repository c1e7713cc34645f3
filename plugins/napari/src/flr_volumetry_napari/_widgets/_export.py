"""Export widget: masks on the scan's grid, the remnant plan, JSON and the HTML report.

Output layout (the batch's, so the same tools read both)::

    OUT/masks/<patient>/<timepoint>/{liver,tumor,flr,segments}.nii.gz   (<timepoint>_2 ...
                                                                          for a label twice)
    OUT/masks/<patient>/<timepoint>/{measurement,plan}.json, overlay.png
    OUT/results.json, OUT/report.html
"""

from __future__ import annotations

import datetime as _dt
import json
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

from .._model import (LiveMeasure, find_patients, method_with_edits, patient_name, patient_of,
                      source_method)
from .._model import patient_id as patient_id_of
from .._reader import _stem
from .._writer import labels_image
from ._common import note, report_error, scan_image
from ._volumetry import add_patient_forms

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


def _export_label(t):
    """The timepoint's label as the export writes it: a scan opened on its own (outside the
    study layout) is named by its scan date, else 'scan', never by the folder or file name
    its label came from (a folder may bear the patient's name).

    Examples
    --------
    >>> from types import SimpleNamespace as T
    >>> lone, study = T(metadata={"flr_label_from_path": True}), T(metadata={})
    >>> [_export_label(T(label=lb, scan=sc, liver=None, scan_date=d)) for lb, sc, d in
    ...  [("P1 baseline", study, None), ("DOE^JOHN", lone, "2024-02-26"), ("DOE^JOHN", lone, None)]]
    ['P1 baseline', '2024-02-26', 'scan']
    """
    # The scan's own reading decides (a mask file opened on its own inside a study's
    # timepoint folder joins that timepoint, whose study name stays).
    first = t.scan if t.scan is not None else t.liver
    if first is not None and first.metadata.get("flr_label_from_path"):
        return t.scan_date or "scan"
    return t.label


def _scrubbed(text, t):
    """``text`` (a warning, a mask's method) as the export writes it: no folder of its files
    (a folder may bear the patient's name; a file's own name stays), and for a scan opened
    on its own, exported under its date, not its file's name either, which the masks paired
    with it begin with ('DOE_JOHN_liver.nii.gz' with 'DOE_JOHN.nii.gz').

    Examples
    --------
    >>> from types import SimpleNamespace as T
    >>> t = T(layers=[T(metadata={"flr_source": "/data/DOE JOHN/liver.nii.gz"})])
    >>> _scrubbed("/data/DOE JOHN/liver.nii.gz and \\\\data\\\\DOE JOHN\\\\tumor.nii.gz", t)
    'liver.nii.gz and tumor.nii.gz'
    >>> lone = T(metadata={"flr_label_from_path": True, "flr_source": "/d/DOE_JOHN.nii.gz"})
    >>> _scrubbed("file DOE_JOHN_liver.nii.gz; 'DOE_JOHN_flr' is used", T(layers=[], scan=lone))
    "file scan_liver.nii.gz; 'scan_flr' is used"
    >>> a = T(metadata={"flr_label_from_path": True, "flr_source": "/d/a.nii.gz"})
    >>> _scrubbed("a scan holds 2 flr layers; 'a_flr' is used", T(layers=[], scan=a))
    "a scan holds 2 flr layers; 'scan_flr' is used"
    """
    sources = {str(layer.metadata.get(key)) for layer in t.layers
               for key in ("flr_source", "flr_scan_source") if layer.metadata.get(key)}
    # Longest first: a scan's folder holding its masks is replaced whole, not in part.
    for src in sorted(sources, key=len, reverse=True):
        if not os.path.isabs(src):
            continue  # read_path makes every path it reads absolute: a plan's text
        if os.path.isdir(src):
            text = _path_pattern(src).sub("the scan's folder", text)
        else:
            text = _path_pattern(os.path.dirname(src), r"[\\/]").sub("", text)
    scan = getattr(t, "scan", None)
    source = None if scan is None else scan.metadata.get("flr_source")
    if source and scan.metadata.get("flr_label_from_path"):
        stem = _stem(source)
        if stem:
            # As the start of a name only ('a.nii.gz': not the article of "a scan").
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(stem)}(?=[_.\-'])", "scan", text,
                          flags=re.IGNORECASE if os.name == "nt" else 0)
    return text


def _path_pattern(path, tail=""):
    """``path`` as a pattern that matches it with either separator (Windows takes '/' too,
    and a message may quote either), in any case on Windows (its paths ignore case)."""
    parts = [re.escape(part) for part in re.split(r"[\\/]", path)]
    return re.compile(r"[\\/]".join(parts) + tail, re.IGNORECASE if os.name == "nt" else 0)


def _timepoint_folders(tps, patient_id):
    """A folder name per timepoint: its label without the patient ID, made unique with a
    suffix ('image', 'image_2'): two scans of one patient may share a label (two DICOM
    series in folders named 'image'), and one's files must not replace the other's.

    Examples
    --------
    >>> from types import SimpleNamespace as T
    >>> _timepoint_folders([T(label="P1 baseline", scan=None, liver=None),
    ...                     T(label="image", scan=None, liver=None),
    ...                     T(label="image", scan=None, liver=None)], "P1")
    ['baseline', 'image', 'image_2']
    """
    names = []
    for t in tps:
        label = _export_label(t)
        base = _safe(label.split(" ", 1)[1] if label.startswith(patient_id + " ") else label)
        name, n = base, 1
        while name.lower() in (x.lower() for x in names):  # case-blind file systems too
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def _check_folder_is_this_patients(out_dir, patient_id):
    """Refuse a folder holding another patient's export: its results.json and report.html
    would be replaced by this patient's, and its masks left without them."""
    path = os.path.join(out_dir, "results.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            ids = {str(p.get("patient_id")) for p in json.load(f).get("patients", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        raise InputError(f"{out_dir} holds a results.json that is not a readable export; "
                         f"choose another folder for patient {patient_id}.") from None
    others = sorted(ids - {patient_id})
    if others:
        # Two pseudonyms of one DICOM PatientID differ when their keys do (another machine,
        # an export made before the key): said, or the same patient reads as another.
        keyed = (" (or the same patient under another pseudonym key, see FLR_PSEUDONYM_KEY)"
                 if patient_id.startswith("dicom-") and all(o.startswith("dicom-")
                                                            for o in others) else "")
        raise InputError(f"{out_dir} holds the export of patient{'s' * (len(others) > 1)} "
                         f"{', '.join(others)}{keyed}; choose another folder for patient "
                         f"{patient_id}.")


def _check_growth_dates(sp, tps, measured, names, from_baseline_date):
    """Refuse, before anything is written, an export of several dated scans whose growth
    the form's procedure date cannot give: none typed (nor 'count from the baseline scan'
    ticked), or one that no scan precedes or that follows the follow-up. Such an export
    had overwritten a good one with a failed patient, said on the status line only, in the
    words of the command line (patient.json, --from-baseline-date)."""
    from flr_volumetry.batch import analyse_patient

    if sum(t.scan_date is not None for t in tps) < 2:
        return
    if sp.procedure_date is None and not from_baseline_date:
        raise InputError("the procedure date is unknown, so the growth between the scans "
                         "cannot be computed: type the PVE or ALPPS stage-1 date, or tick 'No "
                         "procedure date: count from the baseline scan', then export again "
                         "(nothing was written).")
    records = [{"patient_id": sp.patient_id, "timepoint": name, "scan_date": t.scan_date,
                "status": "ok", "error": None, "measurement": m.to_dict()}
               for t, m, name in zip(tps, measured, names)]
    error = analyse_patient(sp, records, from_baseline_date=from_baseline_date)["error"]
    if error and sp.procedure_date and "procedure" in error:
        raise InputError(f"{error.rstrip('.')}: correct the procedure date, then export "
                         f"again (nothing was written).")


def _prepare_timepoint(t, name, patient_id, report):
    """(folder relative to the export, {role: mask image}, plan, overlay PNG bytes or None)
    of one timepoint, refusing a mask layer that does not lie on its scan's grid."""
    import SimpleITK as sitk
    from flr_volumetry.io import grid_description, same_grid, same_voxels

    rel_dir = os.path.join("masks", _safe(patient_id), name)
    scan = None if t.scan is None else scan_image(t.scan)
    images, on_scan = {}, {}
    for role in ("liver", "tumor", "flr", "segments"):
        layer = getattr(t, role)
        if layer is None:
            continue
        images[role] = on_scan[role] = labels_image(layer.data, layer.metadata, layer.name)
        if scan is None or same_grid(images[role], scan):
            continue
        if same_voxels(images[role], scan):
            # Its file's own axis order (stored flipped, as dcm2niix writes): written so,
            # and drawn on the scan's voxels, which it holds exactly.
            on_scan[role] = sitk.Resample(images[role], scan, sitk.Transform(),
                                          sitk.sitkNearestNeighbor, 0,
                                          images[role].GetPixelID())
        else:
            raise InputError(
                f"the {role} layer of {_export_label(t)} lies on another grid "
                f"({grid_description(images[role])}) than its scan ({grid_description(scan)}), "
                f"so it cannot be exported as the scan's mask; open the mask with its scan's "
                f"timepoint folder, which resamples it onto the scan (nothing was written).")
    plan = None if t.flr is None else t.flr.metadata.get("flr_plan")
    png = None
    if scan is not None:
        png = report.overlay_png(scan, on_scan["liver"], on_scan.get("flr"), on_scan.get("tumor"),
                                 modality=t.scan_facts.get("modality"), title=_export_label(t))
    return rel_dir, images, plan, png


def export_review(viewer_layers, out_dir, patient, options, procedure_date=None,
                  from_baseline_date=False, live=None, patient_key=None, chosen=None,
                  hbs_pct_per_min_m2=None):
    """Write the masks, plans, measurements, results.json and report.html of one patient.

    ``patient_key``: the patient to export (see ``_model.patient_key``); may be left out
    when only one patient is open. ``chosen``: the layers the Volumetry table measures
    (``PatientSettings.chosen_layers``), exported instead of a timepoint's most recent ones.
    ``hbs_pct_per_min_m2``: the FLR's scintigraphic function typed in the form, with which
    the growth judges the ALPPS registry criterion.
    Returns the results dict (``flr_volumetry.batch`` schema) written to ``results.json``.
    """
    from flr_volumetry import __version__, report
    from flr_volumetry.batch import RESULTS_SCHEMA, RESULTS_SCHEMA_VERSION, analyse_patient
    from flr_volumetry.hypertrophy import parse_date
    from flr_volumetry.study import StudyPatient

    live = live or LiveMeasure()
    patients = find_patients(viewer_layers, chosen)
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
    patient_id = patient_id_of(patient_key)
    # Everything that can be refused is checked before the first file is written: an
    # export stopped half-way would leave one timepoint's files beside the last run's.
    _check_folder_is_this_patients(out_dir, patient_id)
    date = parse_date(procedure_date, "procedure date")
    procedure_date = None if date is None else date.isoformat()
    measured = [live.measure(t.liver, tumor=t.tumor, flr=t.flr, segments=t.segments,
                             patient=patient, options=options, scan_date=t.scan_date,
                             extra_warnings=[_scrubbed(w, t) for w in t.file_warnings()])
                for t in tps]
    warnings = [_scrubbed(w, t) for t in tps for w in t.unsure_roles(_export_label(t))]
    sp = StudyPatient(
        patient_id=patient_id, folder=out_dir, height_cm=patient.height_cm,
        weight_kg=patient.weight_kg, liver_condition=patient.liver_condition,
        procedure=facts.get("procedure"), procedure_date=procedure_date or None,
        hbs_pct_per_min_m2=hbs_pct_per_min_m2)
    names = _timepoint_folders(tps, patient_id)
    _check_growth_dates(sp, tps, measured, names, from_baseline_date)
    # Every file's content is made before the first is written: a mask on another grid
    # than its scan had failed in the overlay (an IndexError) after the timepoint's masks
    # were written, beside the last export's results.json.
    prepared = [_prepare_timepoint(t, name, patient_id, report) for t, name in zip(tps, names)]
    records = []
    for t, m, name, (rel_dir, images, plan, png) in zip(tps, measured, names, prepared):
        folder = os.path.join(out_dir, rel_dir)
        written = {f"{role}.nii.gz" for role in images} | {"measurement.json"}
        written |= {"plan.json"} if plan else set()
        written |= {"overlay.png"} if png is not None else set()
        _remove_stale(folder, written)
        masks = {}
        for role, image in images.items():
            write_mask(image, os.path.join(folder, f"{role}.nii.gz"))
            masks[role] = os.path.join(rel_dir, f"{role}.nii.gz")
        if plan:
            write_json_atomic(plan, os.path.join(folder, "plan.json"))
        write_json_atomic(m.to_dict(), os.path.join(folder, "measurement.json"))
        overlay = None
        if png is not None:
            overlay = os.path.join(rel_dir, "overlay.png")
            report.write_text_atomic(png, os.path.join(out_dir, overlay), mode="wb")
        records.append({
            "patient_id": patient_id, "timepoint": name, "scan_date": t.scan_date,
            "date_source": "napari review", "status": "ok", "error": None,
            "measurement": m.to_dict(), "masks": masks, "overlay": overlay,
            "liver_method": _scrubbed(method_with_edits(
                t.liver, source_method(t.liver.metadata.get("flr_source"))), t),
            "flr_method": None if t.flr is None else _scrubbed(method_with_edits(t.flr, (
                "plan" if plan else
                source_method(t.flr.metadata.get("flr_source", "painted in napari")))), t),
        })
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
        "warnings": warnings, "patients": [entry],
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
        add_patient_forms(self, layout, napari_viewer)
        self.export_button = QPushButton("Export masks, plan, JSON and report")
        self.export_button.clicked.connect(self.export)
        layout.addWidget(self.export_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
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
        idx = self.patient_pick.findData(patient_of(self.viewer.layers, layer))
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
        self.date_form.show_patient(key)

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
            tps = find_patients(self.viewer.layers).get(key) or [None]
            values = self.settings.values(key, *(({}, {}) if tps[0] is None else
                                                 (tps[0].scan_facts, tps[0].patient_facts)))
            patient, options = values.patient(), self.settings.options()
            date, from_baseline = values.procedure_date.strip() or None, values.from_baseline_date
            hbs = values.hbs()
            layers, chosen = list(self.viewer.layers), self.settings.chosen_layers()
        except InputError as exc:
            report_error("Export", exc)
            self.status.setText(str(exc))
            return None

        def run():
            try:
                return export_review(layers, out, patient, options, date,
                                     from_baseline_date=from_baseline, patient_key=key,
                                     chosen=chosen, hbs_pct_per_min_m2=hbs)
            except OSError as exc:
                raise InputError(f"cannot write into {out} ({exc}).") from exc

        # The worker measures and writes the masks: a stroke made meanwhile could land in
        # the written mask and not in the measured one. Painting waits for the export.
        locked = [(lay, lay.editable) for lay in layers
                  if lay.metadata.get("flr_role") in ("liver", "tumor", "flr", "segments")]
        for lay, _ in locked:
            lay.editable = False

        def finished():
            for lay, editable in locked:
                lay.editable = editable
            self.export_button.setEnabled(True)

        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting to {out}… (masks locked until it is written)")
        self.worker = create_worker(run, _progress={"desc": "Exporting"}, _ignore_errors=True)
        self.worker.returned.connect(lambda results: self._exported(out, results))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(finished)
        self.worker.start()
        return self.worker

    def _exported(self, out, results):
        self.results = results
        entry = results["patients"][0]
        text = f"Written to {out}: masks, measurement JSON, results.json and report.html."
        if entry.get("error"):
            text += f"\n⚠ {entry['error']}"
            note(f"Export: written, but {entry['error']}", warning=True)
        text += "".join(f"\n⚠ {w}" for w in results.get("warnings", []))
        self.status.setText(text)

    def _failed(self, exc):
        report_error("Export", exc)
        self.status.setText(str(exc))
