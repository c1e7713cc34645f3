"""Hypertrophy widget: baseline vs follow-up among the open timepoints; DH, KGR, GR, chart."""

from __future__ import annotations

from flr_volumetry import InputError, hypertrophy
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import LiveMeasure, find_timepoints, hypertrophy_rows, patient_name, settings_for
from ._common import ResultTable, report_error
from ._volumetry import PatientForm

__all__ = ["HypertrophyWidget"]


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
        self.procedure_date = QLineEdit()
        self.procedure_date.setPlaceholderText("YYYY-MM-DD (PVE or ALPPS stage 1)")
        self.from_baseline = QCheckBox("No procedure date: count from the baseline scan")
        form.addRow("Baseline", self.baseline)
        form.addRow("Follow-up", self.followup)
        form.addRow("Procedure date", self.procedure_date)
        layout.addLayout(form)
        layout.addWidget(self.from_baseline)
        # The same patient settings as the Volumetry and Export widgets.
        self.patient_form = PatientForm(settings_for(napari_viewer))
        layout.addWidget(self.patient_form)
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
        self._date_filled = None  # the procedure date taken from the patient's file
        self.baseline.currentIndexChanged.connect(self._baseline_changed)
        self.refresh()

    def _timepoints(self):
        """Timepoints with a liver and an FLR layer, ordered by scan date (undated last)."""
        tps = [t for t in find_timepoints(self.viewer.layers)
               if t.liver is not None and t.flr is not None]
        return sorted(tps, key=lambda t: (t.scan_date is None, t.scan_date or ""))

    def refresh(self, *_):
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
            combo.setCurrentIndex(idx if idx >= 0 else max(default, 0))
            combo.blockSignals(False)
        self._baseline_changed()

    def _baseline_changed(self, *_):
        """Show the baseline's patient in the form (and its procedure date when untyped)."""
        tp = next((t for t in self._timepoints() if t.key == self.baseline.currentData()), None)
        if tp is None:
            return
        facts = tp.patient_facts
        date = None if facts.get("procedure_date") is None else str(facts["procedure_date"])
        # Replace a date taken from another patient's file, never one the user typed.
        if not self.procedure_date.text() or self.procedure_date.text() == self._date_filled:
            self.procedure_date.setText(date or "")
            self._date_filled = date
        self.patient_form.show_patient(tp.patient, tp.scan_facts, facts)

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
            patient, options = self.patient_form.patient(), self.patient_form.options()
            measured = {}
            # Boxes found afresh on every click: this widget is not told of later paint,
            # and a box kept from the last click would leave new paint uncounted.
            live = LiveMeasure()
            for t in (pre, post):
                measured[t.key] = live.measure(
                    t.liver, tumor=t.tumor, flr=t.flr, patient=patient, options=options,
                    scan_date=t.scan_date)
            procedure_date = self.procedure_date.text().strip() or None
            if procedure_date is None and not self.from_baseline.isChecked():
                # (The library's sentence names command-line options.)
                raise InputError("the procedure date is unknown: type the PVE or ALPPS stage-1 "
                                 "date above, or tick 'No procedure date: count from the "
                                 "baseline scan'.")
            h = hypertrophy(measured[pre.key], measured[post.key],
                            procedure_date=procedure_date,
                            from_baseline_date=self.from_baseline.isChecked())
        except InputError as exc:
            report_error("Hypertrophy", exc)
            self.status.setText(str(exc))
            self.table.set_rows([])
            self.result = None
            return None
        self.result = h
        self.measurements = {pre.label: measured[pre.key], post.label: measured[post.key]}
        self.table.set_rows(hypertrophy_rows(h))
        self.status.setText("\n".join(f"⚠ {w}" for w in h.warnings))
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
