"""Hypertrophy widget: baseline vs follow-up among the open timepoints; DH, KGR, GR, chart."""

from __future__ import annotations

import numpy as np
from flr_volumetry import InputError, hypertrophy
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import (LiveMeasure, find_timepoints, hypertrophy_rows, on_undo_redo,
                      patient_name)
from ._common import ResultTable, report_error
from ._volumetry import add_patient_forms

__all__ = ["HypertrophyWidget"]


def _voxels(layer):
    return int(np.count_nonzero(layer.data))


class HypertrophyWidget(QWidget):
    """Growth of the remnant between two open timepoints (after PVE, PVL or ALPPS)."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result = None
        self.measurements = {}
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.baseline = QComboBox()
        self.followup = QComboBox()
        form.addRow("Baseline", self.baseline)
        form.addRow("Follow-up", self.followup)
        layout.addLayout(form)
        add_patient_forms(self, layout, napari_viewer)
        self.compute_button = QPushButton("Compute growth")
        self.compute_button.clicked.connect(self.compute)
        layout.addWidget(self.compute_button)
        self.table = ResultTable()
        layout.addWidget(self.table)
        self.chart = QLabel()
        self.chart.setScaledContents(False)
        layout.addWidget(self.chart)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self.refresh)
        self._computed = None  # (baseline key, follow-up key, patient) of the table shown
        self._watched = []  # (layer, callbacks) of the masks the table shown was measured on
        self._points = {}  # id(layer): the viewer's point at its last refresh
        self.baseline.currentIndexChanged.connect(self._baseline_changed)
        self.followup.currentIndexChanged.connect(self._check_current)
        settings, ref = self.settings, self.settings.connect(self._settings_changed)
        self.destroyed.connect(lambda *_: settings.disconnect(ref))
        self.refresh()

    def _timepoints(self):
        """Timepoints with a liver and an FLR layer, ordered by scan date (undated last); with
        the layers the Volumetry table measures, when it chose them."""
        tps = [t for t in find_timepoints(self.viewer.layers, self.settings.chosen_layers())
               if t.liver is not None and t.flr is not None]
        return sorted(tps, key=lambda t: (t.scan_date is None, t.scan_date or ""))

    def refresh(self, *_):
        if any(layer not in self.viewer.layers for layer, *_ in self._watched):
            self._clear("A mask of the growth shown was closed: click 'Compute growth'.")
        tps = self._timepoints()
        for combo, default in ((self.baseline, 0), (self.followup, len(tps) - 1)):
            current = combo.currentData()
            if combo is self.followup and current == self.baseline.currentData():
                # Only one timepoint was open when it was filled: the follow-up is the
                # latest, not the baseline again.
                current = None
            combo.blockSignals(True)
            combo.clear()
            for t in tps:
                combo.addItem(f"{t.label} ({t.scan_date or 'no date'})", t.key)
            idx = combo.findData(current)
            if idx < 0 and combo is self.baseline and tps:
                # As the batch and the export: the last scan on or before the procedure
                # date of the latest timepoint's patient (a diagnostic and a planning scan).
                default = tps.index(self._baseline_of(tps[-1], tps))
            combo.setCurrentIndex(idx if idx >= 0 else max(default, 0))
            combo.blockSignals(False)
        self._baseline_changed()

    def _baseline_of(self, post, tps):
        """The timepoint the batch and the export take as the baseline of ``post``'s
        patient (:func:`flr_volumetry.hypertrophy.baseline_index`)."""
        from flr_volumetry.hypertrophy import baseline_index, parse_date

        same = [t for t in tps if t.patient == post.patient and t.scan_date]
        if not same:
            return post
        try:
            # (First shown with the earliest scan's facts, as the form would show them.)
            date = parse_date(self.settings.values(post.patient, same[0].scan_facts,
                                                   same[0].patient_facts).procedure_date.strip())
        except InputError:  # said when the growth is computed
            date = None
        return same[baseline_index([t.scan_date for t in same],
                                   None if date is None else date.isoformat())]

    def _watch(self, layers):
        """Clear the table when a mask it was measured on changes: a brush stroke, undo or
        redo, or new data (a remnant plan run again replaces the FLR layer's data)."""
        self._unwatch()
        for layer in layers:
            on_change = (lambda *_: self._clear("A mask of the growth shown changed: click "
                                                "'Compute growth'."))
            on_refresh = (lambda *_, lay=layer: self._refreshed(lay))
            layer.events.paint.connect(on_change)
            layer.events.data.connect(on_change)
            layer.events.set_data.connect(on_refresh)
            # (An undo of a hidden layer sends no refresh: the figures had stayed shown.)
            stop = on_undo_redo(layer, on_change)
            self._watched.append((layer, (on_change, on_refresh, stop), _voxels(layer)))
            self._points[id(layer)] = tuple(self.viewer.dims.point)

    def _unwatch(self):
        for layer, (on_change, on_refresh, stop), _ in self._watched:
            layer.events.paint.disconnect(on_change)
            layer.events.data.disconnect(on_change)
            layer.events.set_data.disconnect(on_refresh)
            stop()
        self._watched = []
        self._points = {}  # id(layer): the viewer's point at its last refresh

    def _refreshed(self, layer):
        # napari's undo/redo changes the data without a paint event, then refreshes the
        # layer; so do a layer added to the viewer, which changes nothing: an undo or redo
        # step of one stroke changes the mask's voxel count. A move to another slice
        # refreshes every layer too: it is passed over uncounted (a whole-array count per
        # watched mask per step had slowed the scroll), as VolumetryWidget does.
        point = tuple(self.viewer.dims.point)
        moved = self._points.get(id(layer)) != point
        self._points[id(layer)] = point
        if moved:
            return
        if any(lay is layer and _voxels(layer) != n for lay, _, n in self._watched):
            self._clear("A mask of the growth shown changed: click 'Compute growth'.")

    def _clear(self, why):
        self._unwatch()
        self.result = None
        self._computed = None
        self.measurements = {}
        self.table.set_rows([])
        self.chart.clear()
        self.status.setText(why)

    def _check_current(self, *_):
        """A table of another pair of timepoints than the one chosen is not shown."""
        if self._computed is not None and self._computed[:2] != (
                self.baseline.currentData(), self.followup.currentData()):
            self._clear("Baseline or follow-up changed: click 'Compute growth'.")

    def _settings_changed(self, key):
        """The patient's size, condition, procedure date, the formulas or the layers the
        Volumetry table measures for one of the two timepoints changed."""
        if self._computed is None:
            return
        if key in self._computed[:2]:
            self._clear("Other masks were chosen in the Volumetry table: click 'Compute "
                        "growth'.")
        elif key is None or key == self._computed[2]:
            self._clear("The patient's values or the formulas changed: click 'Compute "
                        "growth'.")

    def _baseline_changed(self, *_):
        """Show the baseline's patient in the form, with its own procedure date."""
        self._check_current()
        tp = next((t for t in self._timepoints() if t.key == self.baseline.currentData()), None)
        if tp is None:
            return
        self.patient_form.show_patient(tp.patient, tp.scan_facts, tp.patient_facts)
        self.date_form.show_patient(tp.patient)

    def compute(self):
        """Measure both timepoints and compute DH, KGR and GR."""
        try:
            tps = {t.key: t for t in self._timepoints()}
            pre, post = tps.get(self.baseline.currentData()), tps.get(self.followup.currentData())
            if pre is None or post is None:
                raise InputError("open two timepoints with liver and FLR masks (for example a "
                                 "patient folder of a study) and choose them here.")
            if pre.key == post.key:
                raise InputError("choose two different timepoints for baseline and follow-up.")
            if pre.patient != post.patient:
                raise InputError(f"the baseline is patient {patient_name(pre.patient)}'s and "
                                 f"the follow-up patient {patient_name(post.patient)}'s; choose "
                                 f"two timepoints of one patient.")
            # The patient's own values, whichever patient the form shows.
            patient = self.settings.values(pre.patient, pre.scan_facts,
                                           pre.patient_facts).patient()
            options = self.settings.options()
            warnings = pre.unsure_roles() + post.unsure_roles()
            usual = self._baseline_of(post, list(tps.values()))
            if usual.key != pre.key and pre.scan_date and usual.scan_date and \
                    usual.scan_date > pre.scan_date:
                warnings.append(
                    f"{usual.label} ({usual.scan_date}) is a later scan before the procedure: "
                    f"the batch and the export take it as the baseline; choose it here for "
                    f"the same figures.")
            measured = {}
            # Boxes found afresh on every click: this widget is not told of later paint,
            # and a box kept from the last click would leave new paint uncounted.
            live = LiveMeasure()
            for t in (pre, post):
                measured[t.key] = live.measure(
                    t.liver, tumor=t.tumor, flr=t.flr, patient=patient, options=options,
                    scan_date=t.scan_date)
            # The patient's own date (the form shows the baseline's patient: the same one).
            v = self.settings.peek(pre.patient)
            procedure_date = v.procedure_date.strip() or None
            if procedure_date is None and not v.from_baseline_date:
                # (The library's sentence names command-line options.)
                raise InputError("the procedure date is unknown: type the PVE or ALPPS stage-1 "
                                 "date above, or tick 'No procedure date: count from the "
                                 "baseline scan'.")
            h = hypertrophy(measured[pre.key], measured[post.key],
                            procedure_date=procedure_date,
                            from_baseline_date=v.from_baseline_date,
                            hbs_pct_per_min_m2=v.hbs(),
                            procedure=pre.patient_facts.get("procedure"))
        except InputError as exc:
            report_error("Hypertrophy", exc)
            self._clear(str(exc))
            return None
        self.result = h
        self._computed = (pre.key, post.key, pre.patient)
        self._watch([x for t in (pre, post) for x in (t.liver, t.tumor, t.flr) if x is not None])
        self.measurements = {pre.label: measured[pre.key], post.label: measured[post.key]}
        self.table.set_rows(hypertrophy_rows(h))
        self.status.setText("\n".join(f"⚠ {w}" for w in warnings + list(h.warnings)))
        self._draw_chart([measured[pre.key], measured[post.key]], h,
                         measured[pre.key].sflr_threshold_pct)
        return h

    def _draw_chart(self, measurements, h, threshold):
        try:
            from flr_volumetry.report import growth_chart_png
        except ImportError:
            self.chart.setText("(growth chart: needs flr_volumetry.report)")
            return
        points = [{"scan_date": m.scan_date, "sflr_pct": m.sflr_pct,
                   "measured_flr_pct": m.measured_flr_pct} for m in measurements]
        png = growth_chart_png(points, procedure_date=h.interval_start,
                               sflr_threshold_pct=threshold)
        pix = QPixmap()
        pix.loadFromData(png, "PNG")
        self.chart.setPixmap(pix.scaledToWidth(max(300, min(480, pix.width()))))
        self.chart_png = png
