"""Volumetry widget: patient size, formula choices and the live table."""

from __future__ import annotations

import time
from dataclasses import replace

from flr_volumetry import InputError, clinical
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import (
    LiveMeasure, PatientSettings, PatientValues, find_timepoints, measurement_rows,
    on_undo_redo, patient_key, settings_for,
)
from ._common import LayerCombo, ResultTable, follow_timepoint

__all__ = ["VolumetryWidget", "PatientForm", "ProcedureDateForm"]

DEBOUNCE_MS = 150


class PatientForm(QWidget):
    """Height, weight, liver condition and formula choices (0 = unknown size) of one patient.

    A view of a :class:`PatientSettings` shared by the widgets of a viewer: what is typed
    here is what the other widgets show, measure and export for the same patient.
    """

    changed = Signal()

    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        self.settings = settings if settings is not None else PatientSettings()
        self.key = ""  # the patient shown (see _model.patient_key)
        self._showing = False
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.height_cm = QDoubleSpinBox(suffix=" cm", decimals=1, maximum=250.0)
        self.weight_kg = QDoubleSpinBox(suffix=" kg", decimals=1, maximum=350.0)
        for box in (self.height_cm, self.weight_kg):
            box.setSpecialValueText("unknown")
        self.condition = QComboBox()
        self.condition.addItems(list(clinical.LIVER_CONDITIONS))
        self.bsa = QComboBox()
        self.bsa.addItems(list(clinical.BSA_FORMULAS))
        self.telv = QComboBox()
        self.telv.addItems(list(clinical.TELV_FORMULAS))
        self.source = QLabel("")
        self.source.setWordWrap(True)
        # Two fields per row keeps the dock short enough to show the whole table.
        for row, pairs in enumerate(((("Height", self.height_cm), ("Weight", self.weight_kg)),
                                     (("Liver", self.condition), ("", self.source)),
                                     (("BSA", self.bsa), ("TELV", self.telv)))):
            for col, (text, widget) in enumerate(pairs):
                grid.addWidget(QLabel(text), row, 2 * col)
                grid.addWidget(widget, row, 2 * col + 1)
        for box in (self.height_cm, self.weight_kg):
            box.valueChanged.connect(self._size_edited)
        self.condition.currentIndexChanged.connect(self._condition_edited)
        for combo in (self.bsa, self.telv):
            combo.currentIndexChanged.connect(self._formula_edited)
        settings, ref = self.settings, self.settings.connect(self._settings_changed)
        self.destroyed.connect(lambda *_: settings.disconnect(ref))
        self._show()

    def show_patient(self, key, scan_facts=None, patient_facts=None):
        """Show (and from now on edit) the values of patient ``key``; a patient shown for the
        first time takes its size and condition from the facts given, else unknown."""
        self.settings.values(key, scan_facts, patient_facts)
        self.key = key
        self._show()
        self.changed.emit()

    def prefill(self, scan_facts, patient_facts):
        """Take the shown patient's height/weight from patient.json, else the DICOM header,
        else unknown (never another patient's), and the liver condition from patient.json."""
        values = PatientValues.from_facts(scan_facts, patient_facts)
        self.settings.set_values(self.key, **vars(values))

    def patient(self):
        return self.settings.peek(self.key).patient()

    def options(self):
        return self.settings.options()

    def connect(self, slot):
        self.changed.connect(slot)

    def _show(self):
        v = self.settings.peek(self.key)
        self._showing = True
        try:
            self.height_cm.setValue(v.height_cm)
            self.weight_kg.setValue(v.weight_kg)
            self.condition.setCurrentText(v.liver_condition)
            self.bsa.setCurrentText(self.settings.bsa_formula)
            self.telv.setCurrentText(self.settings.telv_formula)
            self.source.setText(v.source)
        finally:
            self._showing = False

    def _size_edited(self, *_):
        if not self._showing:
            self.settings.set_values(self.key, height_cm=self.height_cm.value(),
                                     weight_kg=self.weight_kg.value(), source="size typed here")

    def _condition_edited(self, *_):
        if not self._showing:
            self.settings.set_values(self.key, liver_condition=self.condition.currentText())

    def _formula_edited(self, *_):
        if not self._showing:
            self.settings.set_formulas(self.bsa.currentText(), self.telv.currentText())

    def _settings_changed(self, key):
        if key is None or key == self.key:
            self._show()
            self.changed.emit()


class ProcedureDateForm(QWidget):
    """The procedure date (PVE, ALPPS stage 1) of one patient, or the choice to count the
    growth from the baseline scan without it.

    A view of the patient's :class:`PatientSettings` values, as :class:`PatientForm`: the
    growth and export widgets show and use the same date for a patient, and a date typed for
    one patient is never another's.
    """

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.key = None  # the patient shown (see _model.patient_key)
        self._showing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QFormLayout()
        self.procedure_date = QLineEdit()
        self.procedure_date.setPlaceholderText("YYYY-MM-DD (PVE or ALPPS stage 1)")
        row.addRow("Procedure date", self.procedure_date)
        layout.addLayout(row)
        self.from_baseline = QCheckBox("No procedure date: count from the baseline scan")
        layout.addWidget(self.from_baseline)
        hbs_row = QFormLayout()
        self.hbs = QLineEdit()
        self.hbs.setPlaceholderText("after ALPPS stage 1, optional")
        self.hbs.setToolTip("The FLR's function on hepatobiliary scintigraphy (%/min/m²): the "
                            "growth then judges the ALPPS registry criterion (Tomassini 2020).")
        hbs_row.addRow("FLR HBS (%/min/m²)", self.hbs)
        layout.addLayout(hbs_row)
        self.hbs.textChanged.connect(self._edited)
        self.procedure_date.textChanged.connect(self._edited)
        self.from_baseline.toggled.connect(self._edited)
        settings, ref = self.settings, self.settings.connect(self._settings_changed)
        self.destroyed.connect(lambda *_: settings.disconnect(ref))

    def show_patient(self, key):
        """Show (and from now on edit) the date of patient ``key`` (shown first by a
        :class:`PatientForm`, which takes its values from its files)."""
        self.key = key
        self._show()

    def values(self):
        """(procedure date or None, count from the baseline scan) of the patient shown."""
        v = self.settings.peek(self.key)
        return (v.procedure_date.strip() or None), v.from_baseline_date

    def _show(self):
        v = self.settings.peek(self.key)
        self._showing = True
        try:
            if self.procedure_date.text() != v.procedure_date:  # keeps the cursor in place
                self.procedure_date.setText(v.procedure_date)
            if self.hbs.text() != v.hbs_pct_per_min_m2:
                self.hbs.setText(v.hbs_pct_per_min_m2)
            self.from_baseline.setChecked(v.from_baseline_date)
        finally:
            self._showing = False

    def _edited(self, *_):
        if not self._showing and self.key is not None:
            self.settings.set_values(self.key, procedure_date=self.procedure_date.text(),
                                     from_baseline_date=self.from_baseline.isChecked(),
                                     hbs_pct_per_min_m2=self.hbs.text())

    def _settings_changed(self, key):
        if key is not None and key == self.key:
            self._show()


class VolumetryWidget(QWidget):
    """Live table of TLV, tumour, FLR, sFLR, measured ratio, FLR/BW and adequacy.

    Recomputed 150 ms after the last brush stroke (debounced) on the layers
    chosen here; ``flr_volumetry.measure`` does every count.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.live = LiveMeasure()
        self.last_measurement = None
        self.last_ms = None
        self._watched = []
        layout = QVBoxLayout(self)
        pick = QFormLayout()
        self.liver = LayerCombo(napari_viewer, "labels", ("liver",))
        self.tumor = LayerCombo(napari_viewer, "labels", ("tumor",), allow_none=True)
        self.flr = LayerCombo(napari_viewer, "labels", ("flr",), allow_none=True)
        self.segments = LayerCombo(napari_viewer, "labels", ("segments",), allow_none=True)
        pick.addRow("Liver", self.liver)
        pick.addRow("Tumour", self.tumor)
        pick.addRow("FLR", self.flr)
        pick.addRow("Segments", self.segments)
        layout.addLayout(pick)
        self.patient_form = PatientForm(settings_for(napari_viewer))
        layout.addWidget(self.patient_form)
        self.table = ResultTable()
        layout.addWidget(self.table)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.recompute_button = QPushButton("Recompute")
        self.recompute_button.clicked.connect(self.recompute_afresh)
        layout.addWidget(self.recompute_button)
        layout.addStretch(1)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.recompute)
        self._liver_shown = None
        self._following = False
        self.liver.currentIndexChanged.connect(self._follow_liver)
        for combo in (self.liver, self.tumor, self.flr, self.segments):
            combo.currentIndexChanged.connect(self._layers_changed)
        # After the combos' own refresh (connected first): a new mask of the liver's
        # timepoint ("FLR = liver, then erase", an import) is the one being worked on.
        napari_viewer.layers.events.inserted.connect(self._layer_added)
        napari_viewer.layers.events.removed.connect(self._keep_to_liver)
        self.patient_form.connect(self.schedule)
        self._follow_liver()
        self._layers_changed()

    # --- wiring -------------------------------------------------------
    def _masks(self):
        return {"tumor": self.tumor, "flr": self.flr, "segments": self.segments}

    def _follow_liver(self, *_):
        """When another liver is chosen, choose the tumour, FLR and segment layers of its
        timepoint (or none): masks of two timepoints would be measured together."""
        liver = self.liver.layer()
        if liver is self._liver_shown:
            return
        self._liver_shown = liver
        self._follow(lambda: follow_timepoint(liver, self._masks().values()))

    def _follow(self, move_pickers):
        """Move the mask pickers to the liver's timepoint, then record the choice once: the
        pickers move one by one, and a picker not yet moved (an empty one included) is no
        choice for the new timepoint (it had cleared the growth as 'other masks chosen')."""
        self._following = True
        try:
            move_pickers()
        finally:
            self._following = False
        self._layers_changed()

    def _layer_added(self, event):
        layer, liver = event.value, self.liver.layer()
        combo = self._masks().get(getattr(layer, "metadata", {}).get("flr_role"))
        if combo is not None and liver is not None and (
                layer.metadata.get("flr_timepoint") == liver.metadata.get("flr_timepoint")):
            combo.set_layer(layer)
        self._keep_to_liver()

    def _keep_to_liver(self, *_):
        """After the combos' own refresh (a layer opened or closed), which prefers the most
        recent layer of a role, whatever its patient: bring each mask back to the chosen
        liver's timepoint (its most recent layer of the role, else none)."""
        self._follow_liver()
        liver = self.liver.layer()
        key = None if liver is None else liver.metadata.get("flr_timepoint")
        strays = [combo for combo in self._masks().values() if combo.layer() is not None
                  and combo.layer().metadata.get("flr_timepoint") != key]
        if not strays:
            return

        def move_strays():
            for combo in strays:
                if liver is None:
                    combo.setCurrentIndex(0)
                else:
                    follow_timepoint(liver, (combo,))

        self._follow(move_strays)

    def _chosen(self):
        return [c.layer() for c in (self.liver, self.tumor, self.flr, self.segments)]

    def _layers_changed(self, *_):
        chosen = self._chosen()
        for layer, cbs in self._watched:
            layer.events.paint.disconnect(cbs[0])
            layer.events.data.disconnect(cbs[1])
            layer.events.set_data.disconnect(cbs[2])
            cbs[3]()  # (stops the undo/redo callback)
            if not any(layer is x for x in chosen):
                # No longer watched: paint or new data from now on would not grow its box,
                # and a box kept for it would leave them uncounted when it is chosen again
                # (or be taken by a new layer given the same id).
                self.live.forget(layer)
        self._watched = []
        self._points = {}  # id(layer): the viewer's point at its last refresh
        for layer in chosen:
            if layer is None:
                continue
            on_paint = (lambda ev, lay=layer: self._painted(lay, ev))
            on_data = (lambda ev, lay=layer: self._data_changed(lay))
            on_refresh = (lambda ev, lay=layer: self._refreshed(lay))
            layer.events.paint.connect(on_paint)
            layer.events.data.connect(on_data)
            layer.events.set_data.connect(on_refresh)
            # An undo restores voxels that may lie outside the box grown from paint: it is
            # found again (napari's refresh after an undo is no sign of it while hidden).
            stop = on_undo_redo(layer, lambda lay=layer: self._data_changed(lay))
            self._watched.append((layer, (on_paint, on_data, on_refresh, stop)))
            self._points[id(layer)] = tuple(self.viewer.dims.point)
        liver = self.liver.layer()
        if liver is not None and not self._following:
            # The form shows the liver's patient: its size, never the last patient's.
            key = liver.metadata.get("flr_timepoint")
            if key is not None:
                # The export and the growth measure the layers of this table.
                self.patient_form.settings.choose_layers(key, {
                    role: combo.layer() for role, combo in
                    (("liver", self.liver), *self._masks().items())
                    if combo.layer() is None or
                    combo.layer().metadata.get("flr_timepoint") == key})
            tp = next((t for t in find_timepoints(self.viewer.layers) if t.key == key), None)
            self.patient_form.show_patient(
                patient_key(liver) if tp is None else tp.patient,
                {} if tp is None else tp.scan_facts, {} if tp is None else tp.patient_facts)
        self.schedule()

    def _painted(self, layer, event):
        self.live.painted(layer, getattr(event, "value", []) or [])
        self.schedule()

    def _refreshed(self, layer):
        # napari's undo/redo changes the data without a paint event, then
        # refreshes the layer. A refresh also follows every move to another
        # slice, of every layer: recompute only when this layer's slice did not
        # move (one point for all had taken each layer after the first as undone).
        point = tuple(self.viewer.dims.point)
        if point == self._points.get(id(layer)):
            self.schedule()
        self._points[id(layer)] = point

    def _data_changed(self, layer):
        self.live.data_changed(layer)
        self.schedule()

    def schedule(self, *_):
        """Recompute after the debounce delay (restarted by every new stroke)."""
        self.timer.start()

    # --- computation ----------------------------------------------------
    def recompute_afresh(self):
        """The Recompute button: every mask's box found again from its voxels, so the
        table is the whole-scan count whatever changed the masks unseen."""
        self.live.forget_all()
        return self.recompute()

    def recompute(self):
        liver, tumor, flr, segments = self._chosen()
        if liver is None:
            self.table.set_rows([])
            self.status.setText("Open or segment a liver mask to see volumes.")
            return None
        try:
            scan_date, said = None, []
            tp = next((t for t in find_timepoints(self.viewer.layers)
                       if t.key == liver.metadata.get("flr_timepoint")), None)
            if tp is not None:
                scan_date = tp.scan_date
                # What reading these layers said, as the export writes it beside the figures.
                said = replace(tp, liver=liver, tumor=tumor, flr=flr,
                               segments=segments).file_warnings()
            t0 = time.perf_counter()
            m = self.live.measure(liver, tumor=tumor, flr=flr, segments=segments,
                                  patient=self.patient_form.patient(),
                                  options=self.patient_form.options(), scan_date=scan_date,
                                  extra_warnings=said)
            self.last_ms = (time.perf_counter() - t0) * 1e3
        except InputError as exc:
            self.last_measurement = None
            self.table.set_rows([])
            self.status.setText(str(exc))
            return None
        self.last_measurement = m
        self.table.set_rows(measurement_rows(m))
        text = [f"computed in {self.last_ms:.0f} ms"]
        if m.segments_ml:
            ordered = sorted(m.segments_ml.items(), key=lambda kv: int(kv[0]))
            text.append("segments (mL): " + ", ".join(f"{k}: {v:.0f}" for k, v in ordered))
        text += [f"⚠ {w}" for w in m.warnings]
        self.status.setText("\n".join(text))
        return m


def add_patient_forms(widget, layout, viewer):
    """Give ``widget`` the viewer's shared patient settings and the forms that show them
    (procedure date and from-baseline choice, then size and condition), added to ``layout``:
    the growth and export widgets must use the figures of the table the user read."""
    widget.settings = settings_for(viewer)
    widget.date_form = ProcedureDateForm(widget.settings)
    widget.procedure_date = widget.date_form.procedure_date
    widget.from_baseline = widget.date_form.from_baseline
    layout.addWidget(widget.date_form)
    widget.patient_form = PatientForm(widget.settings)
    layout.addWidget(widget.patient_form)
