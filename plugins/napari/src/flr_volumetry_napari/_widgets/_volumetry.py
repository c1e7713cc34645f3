"""Volumetry widget: patient size, formula choices and the live table."""

from __future__ import annotations

import time

from flr_volumetry import InputError, Patient, VolumetryOptions, clinical
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import LiveMeasure, find_timepoints, measurement_rows
from ._common import LayerCombo, ResultTable

__all__ = ["VolumetryWidget", "PatientForm"]

DEBOUNCE_MS = 150


class PatientForm(QWidget):
    """Height, weight, liver condition and formula choices (0 = unknown size)."""

    def __init__(self, parent=None):
        super().__init__(parent)
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

    def prefill(self, scan_facts, patient_facts):
        """Fill height/weight from patient.json, else the DICOM header."""
        for facts, where in ((patient_facts, "patient.json"), (scan_facts, "the DICOM header")):
            h, w = facts.get("height_cm"), facts.get("weight_kg")
            if h and w:
                self.height_cm.setValue(float(h))
                self.weight_kg.setValue(float(w))
                self.source.setText(f"size from {where}")
                break
        cond = patient_facts.get("liver_condition")
        if cond in clinical.LIVER_CONDITIONS:
            self.condition.setCurrentText(cond)

    def patient(self):
        h, w = self.height_cm.value(), self.weight_kg.value()
        if h == 0 and w == 0:
            return Patient(liver_condition=self.condition.currentText())
        if h == 0 or w == 0:
            raise InputError("give both height and weight (or set both to unknown).")
        return Patient(height_cm=h, weight_kg=w, liver_condition=self.condition.currentText())

    def options(self):
        return VolumetryOptions(bsa_formula=self.bsa.currentText(),
                                telv_formula=self.telv.currentText())

    def connect(self, slot):
        for box in (self.height_cm, self.weight_kg):
            box.valueChanged.connect(slot)
        for combo in (self.condition, self.bsa, self.telv):
            combo.currentIndexChanged.connect(slot)


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
        self._prefilled = None
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
        self.patient_form = PatientForm()
        layout.addWidget(self.patient_form)
        self.table = ResultTable()
        layout.addWidget(self.table)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.recompute_button = QPushButton("Recompute")
        self.recompute_button.clicked.connect(self.recompute)
        layout.addWidget(self.recompute_button)
        layout.addStretch(1)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.recompute)
        self._liver_shown = None
        self.liver.currentIndexChanged.connect(self._follow_liver)
        for combo in (self.liver, self.tumor, self.flr, self.segments):
            combo.currentIndexChanged.connect(self._layers_changed)
        # After the combos' own refresh (connected first): a new mask of the liver's
        # timepoint ("FLR = liver, then erase", an import) is the one being worked on.
        napari_viewer.layers.events.inserted.connect(self._layer_added)
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
        key = None if liver is None else liver.metadata.get("flr_timepoint")
        if key is None:
            return
        for combo in self._masks().values():
            same = [combo.itemData(i) for i in range(combo.count())
                    if combo.itemData(i) is not None
                    and combo.itemData(i).metadata.get("flr_timepoint") == key]
            if same:
                combo.set_layer(same[-1])  # the most recent, as the combos prefer
            elif combo.allow_none:
                combo.setCurrentIndex(0)

    def _layer_added(self, event):
        layer, liver = event.value, self.liver.layer()
        combo = self._masks().get(getattr(layer, "metadata", {}).get("flr_role"))
        if combo is not None and liver is not None and (
                layer.metadata.get("flr_timepoint") == liver.metadata.get("flr_timepoint")):
            combo.set_layer(layer)

    def _chosen(self):
        return [c.layer() for c in (self.liver, self.tumor, self.flr, self.segments)]

    def _layers_changed(self, *_):
        for layer, cbs in self._watched:
            layer.events.paint.disconnect(cbs[0])
            layer.events.data.disconnect(cbs[1])
            layer.events.set_data.disconnect(cbs[2])
        self._watched = []
        self._last_point = None
        for layer in self._chosen():
            if layer is None:
                continue
            on_paint = (lambda ev, lay=layer: self._painted(lay, ev))
            on_data = (lambda ev, lay=layer: self._data_changed(lay))
            on_refresh = (lambda ev, lay=layer: self._refreshed(lay))
            layer.events.paint.connect(on_paint)
            layer.events.data.connect(on_data)
            layer.events.set_data.connect(on_refresh)
            self._watched.append((layer, (on_paint, on_data, on_refresh)))
        liver = self.liver.layer()
        key = None if liver is None else liver.metadata.get("flr_timepoint")
        if key is not None and key != self._prefilled:
            # Prefill once per timepoint, so that what the user typed stays.
            tp = next((t for t in find_timepoints(self.viewer.layers) if t.key == key), None)
            if tp is not None:
                self.patient_form.prefill(tp.scan_facts, tp.patient_facts)
                self._prefilled = key
        self.schedule()

    def _painted(self, layer, event):
        self.live.painted(layer, getattr(event, "value", []) or [])
        self.schedule()

    def _refreshed(self, layer):
        # napari's undo/redo changes the data without a paint event, then
        # refreshes the layer. A refresh also follows every move to another
        # slice: recompute only when the slice did not move.
        point = tuple(self.viewer.dims.point)
        if point == self._last_point:
            self.schedule()
        self._last_point = point

    def _data_changed(self, layer):
        self.live.data_changed(layer)
        self.schedule()

    def schedule(self, *_):
        """Recompute after the debounce delay (restarted by every new stroke)."""
        self.timer.start()

    # --- computation ----------------------------------------------------
    def recompute(self):
        liver, tumor, flr, segments = self._chosen()
        if liver is None:
            self.table.set_rows([])
            self.status.setText("Open or segment a liver mask to see volumes.")
            return None
        try:
            scan_date = None
            tp = next((t for t in find_timepoints(self.viewer.layers)
                       if t.key == liver.metadata.get("flr_timepoint")), None)
            if tp is not None:
                scan_date = tp.scan_date
            t0 = time.perf_counter()
            m = self.live.measure(liver, tumor=tumor, flr=flr, segments=segments,
                                  patient=self.patient_form.patient(),
                                  options=self.patient_form.options(), scan_date=scan_date)
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
