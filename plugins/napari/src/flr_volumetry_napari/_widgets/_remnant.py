"""Remnant widget: named resection or segment checklist, landmarks, cut surface, or paint."""

from __future__ import annotations

import numpy as np
from flr_volumetry import InputError
from napari.layers import Points
from napari.qt.threading import create_worker
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._geometry import layer_image, metadata_geometry
from .._model import check_same_scan
from ._common import (
    LayerCombo, add_mask_layer, closed_while_running, core_module, disabled_note,
    follow_timepoint, labels_like, note, report_error,
)

__all__ = ["RemnantWidget", "points_mm"]

CUSTOM = "custom (checklist)"


def points_mm(points_layer):
    """Physical LPS (x, y, z) mm of a Points layer's points (world is z, y, x)."""
    if points_layer is None:
        return []
    return [tuple(float(v) for v in np.asarray(points_layer.data_to_world(p))[::-1])
            for p in np.asarray(points_layer.data)]


def _remnant_module():
    return core_module("remnant", "RemnantPlan", "RESECTIONS", "flr_from_plan",
                       "segments_from_landmarks")


def _registration_module():
    return core_module("registration", "carry_plan")


class RemnantWidget(QWidget):
    """Define the future liver remnant on the liver layer, four ways."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        self.remnant = _remnant_module()
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.liver = LayerCombo(napari_viewer, "labels", ("liver",))
        self.segments = LayerCombo(napari_viewer, "labels", ("segments",), allow_none=True)
        self.tumor = LayerCombo(napari_viewer, "labels", ("tumor",), allow_none=True)
        form.addRow("Liver", self.liver)
        form.addRow("Segments", self.segments)
        form.addRow("Tumour", self.tumor)
        layout.addLayout(form)
        self._liver_shown = None
        self.liver.currentIndexChanged.connect(self._follow_liver)
        # After the combos' own refresh (connected first), which may have picked another
        # timepoint's mask.
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self._keep_to_liver)

        # 1. Named resection or checklist on the segment layer.
        seg_box = QGroupBox("Resection on Couinaud segments")
        seg = QVBoxLayout(seg_box)
        self.resection = QComboBox()
        names = list(self.remnant.RESECTIONS) if self.remnant else []
        self.resection.addItems(names + [CUSTOM])
        seg.addWidget(self.resection)
        grid = QGridLayout()
        self.keep = {}
        for i in range(1, 9):
            cb = QCheckBox(str(i))
            self.keep[i] = cb
            grid.addWidget(cb, (i - 1) // 4, (i - 1) % 4)
        seg.addWidget(QLabel("Segments that remain (FLR):"))
        seg.addLayout(grid)
        self.resect_caudate = QCheckBox("Resect the caudate (segment 1) too")
        seg.addWidget(self.resect_caudate)
        self.segments_button = QPushButton("FLR from segments")
        self.segments_button.clicked.connect(self.flr_from_segments)
        seg.addWidget(self.segments_button)
        layout.addWidget(seg_box)
        self.resection.currentTextChanged.connect(self._resection_changed)
        self.resect_caudate.toggled.connect(lambda *_: self._resection_changed(
            self.resection.currentText()))
        for cb in self.keep.values():
            cb.clicked.connect(lambda *_: self.resection.setCurrentText(CUSTOM))

        # 2. Landmarks -> Couinaud segments.
        lm_box = QGroupBox("Landmarks → Couinaud segments")
        lm = QVBoxLayout(lm_box)
        row = QHBoxLayout()
        self.landmark_name = QComboBox()
        if self.remnant is not None:
            self.landmark_name.addItems(list(getattr(self.remnant, "LANDMARK_NAMES", ())))
        self.add_landmark_button = QPushButton("Add points")
        self.add_landmark_button.clicked.connect(
            lambda: self.add_points_layer("landmark", self.landmark_name.currentText()))
        row.addWidget(self.landmark_name)
        row.addWidget(self.add_landmark_button)
        lm.addLayout(row)
        self.landmarks_button = QPushButton("Segments from landmarks")
        self.landmarks_button.clicked.connect(self.segments_from_landmarks)
        lm.addWidget(self.landmarks_button)
        layout.addWidget(lm_box)

        # 3. Resection surface.
        cut_box = QGroupBox("Resection surface")
        cut = QVBoxLayout(cut_box)
        row = QHBoxLayout()
        self.add_surface_button = QPushButton("Add surface points")
        self.add_surface_button.clicked.connect(lambda: self.add_points_layer("surface"))
        self.add_keep_button = QPushButton("Add keep point")
        self.add_keep_button.clicked.connect(lambda: self.add_points_layer("keep"))
        row.addWidget(self.add_surface_button)
        row.addWidget(self.add_keep_button)
        cut.addLayout(row)
        self.split_button = QPushButton("Split the liver")
        self.split_button.clicked.connect(self.split)
        cut.addWidget(self.split_button)
        layout.addWidget(cut_box)

        # 4. The same plan on another timepoint (registration of the livers).
        carry_box = QGroupBox("Carry this timepoint's plan to")
        carry = QHBoxLayout(carry_box)
        self.carry_target = LayerCombo(napari_viewer, "labels", ("liver",))
        self.carry_button = QPushButton("Carry plan")
        self.carry_button.clicked.connect(self.carry_plan)
        carry.addWidget(self.carry_target, 1)
        carry.addWidget(self.carry_button)
        layout.addWidget(carry_box)
        if _registration_module() is None:
            carry_box.setEnabled(False)

        # 5. Paint.
        paint_box = QGroupBox("Paint the FLR")
        paint = QHBoxLayout(paint_box)
        self.new_flr_button = QPushButton("New empty FLR")
        self.new_flr_button.clicked.connect(lambda: self.new_flr_layer(copy_liver=False))
        self.copy_flr_button = QPushButton("FLR = liver, then erase")
        self.copy_flr_button.clicked.connect(lambda: self.new_flr_layer(copy_liver=True))
        paint.addWidget(self.new_flr_button)
        paint.addWidget(self.copy_flr_button)
        layout.addWidget(paint_box)

        if self.remnant is None:
            for w in (seg_box, lm_box, cut_box):
                w.setEnabled(False)
            layout.addWidget(disabled_note(
                "Resections, landmarks and cut surfaces need flr_volumetry.remnant, which this "
                "installation lacks; paint the FLR instead."))
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        if names:
            self._resection_changed(self.resection.currentText())
        self._follow_liver()

    # --- helpers ----------------------------------------------------------
    def _resection_changed(self, name):
        if self.remnant is None or name == CUSTOM:
            return
        removed = set(self.remnant.RESECTIONS[name])
        if self.resect_caudate.isChecked():
            removed.add(1)
        for i, cb in self.keep.items():
            cb.setChecked(i not in removed)

    def _follow_liver(self, *_):
        """When another liver is chosen, choose the segment and tumour layers of its
        timepoint (or none): another scan's Couinaud map would cut this liver."""
        liver = self.liver.layer()
        if liver is self._liver_shown:
            return
        self._liver_shown = liver
        follow_timepoint(liver, (self.segments, self.tumor))

    def _keep_to_liver(self, *_):
        liver = self.liver.layer()
        key = None if liver is None else liver.metadata.get("flr_timepoint")
        for combo in (self.segments, self.tumor):
            layer = combo.layer()
            if layer is not None and layer.metadata.get("flr_timepoint") != key:
                follow_timepoint(liver, (combo,))

    def _masks(self, liver):
        """The chosen segment and tumour layers, refused in words when of another scan."""
        out = []
        for combo, what in ((self.segments, "segment"), (self.tumor, "tumour")):
            layer = combo.layer()
            if layer is not None:
                check_same_scan(layer, liver, what)
            out.append(layer)
        return out

    def _liver(self):
        liver = self.liver.layer()
        if liver is None:
            raise InputError("open or segment a liver mask first.")
        return liver, metadata_geometry(liver)

    def _image(self, layer, geometry):
        return None if layer is None else layer_image(layer.data, geometry)

    def _scan_image(self, timepoint, liver_layer, geometry):
        """The timepoint's scan on the liver's grid, or None when it has none."""
        scan = None if timepoint is None else timepoint.scan
        if scan is None or np.shape(scan.data) != np.shape(liver_layer.data):
            return None
        return layer_image(np.asarray(scan.data), geometry)

    def _points_layers(self, role, name=None):
        """The Points layers of a role placed on the chosen liver's scan (timepoint): the
        points of another scan lie elsewhere in the body and must not be mixed in."""
        liver = self.liver.layer()
        key = None if liver is None else liver.metadata.get("flr_timepoint")
        return [lay for lay in self.viewer.layers if isinstance(lay, Points)
                and lay.metadata.get("flr_role") == role
                and lay.metadata.get("flr_timepoint") == key
                and (name is None or lay.metadata.get("flr_landmark") == name)]

    def add_points_layer(self, role, name=None):
        """A Points layer of the chosen liver's scan to click landmarks, surface points or
        the keep point into (None, with a message, before a liver is chosen)."""
        colors = {"landmark": "#ffd000", "surface": "#ff8000", "keep": "#30ff60"}
        title = {"landmark": f"landmark {name}", "surface": "cut surface",
                 "keep": "keep point"}[role]
        liver = self.liver.layer()
        if liver is None:
            exc = InputError("choose the liver layer first: the points belong to its scan.")
            report_error("Add points", exc)
            self.status.setText(str(exc))
            return None
        existing = self._points_layers(role, name)
        if existing:
            layer = existing[0]
        else:
            label = liver.metadata.get("flr_label", liver.name)
            layer = self.viewer.add_points(ndim=3, name=f"{label} {title}",
                                           face_color=colors[role], size=3 * max(liver.scale))
            layer.metadata["flr_role"] = role
            for key in ("flr_timepoint", "flr_label", "flr_patient"):
                if key in liver.metadata:
                    layer.metadata[key] = liver.metadata[key]
            if name:
                layer.metadata["flr_landmark"] = name
        layer.mode = "add"
        self.viewer.layers.selection.active = layer
        return layer

    def plan(self):
        """The RemnantPlan the segment section describes."""
        if self.remnant is None:
            raise InputError("flr_volumetry.remnant is not available in this installation.")
        name = self.resection.currentText()
        caudate = self.resect_caudate.isChecked()
        if name != CUSTOM:
            return self.remnant.RemnantPlan(resection=name, resect_caudate=caudate)
        keep = [i for i, cb in self.keep.items() if cb.isChecked()]
        if not keep:
            raise InputError("tick at least one segment that remains.")
        return self.remnant.RemnantPlan(remnant_segments=keep)

    def _set_flr(self, liver, image, plan, warnings, methods):
        label = liver.metadata.get("flr_label", liver.name)
        layer = add_mask_layer(self.viewer, liver, image, "flr", f"{label} flr", "remnant plan")
        layer.metadata["flr_plan"] = None if plan is None else plan.to_dict()
        layer.metadata["flr_methods"] = dict(methods or {})
        layer.metadata["flr_warnings"] = list(warnings)  # exported with the measurement
        for w in warnings:
            note(w, warning=True)
        self.status.setText(f"FLR layer '{layer.name}' updated."
                            + "".join(f"\n⚠ {w}" for w in warnings))
        return layer

    def _run(self, action, func, done, layers):
        # The buttons stay usable while a run works (a registration takes seconds): a run
        # finishing after one clicked later must not overwrite its FLR, nor its status.
        # ``layers``: those the result belongs to; one closed meanwhile drops it.
        def failed(exc):
            if worker is self.worker:
                report_error(action, exc)
                self.status.setText(str(exc))

        def done_if_latest(result):
            if worker is self.worker and not closed_while_running(self.viewer, action, layers,
                                                                  self.status):
                done(result)

        self.status.setText(f"{action}…")
        worker = self.worker = create_worker(func, _progress={"desc": action},
                                             _ignore_errors=True)
        worker.returned.connect(done_if_latest)
        worker.errored.connect(failed)
        worker.start()
        return worker

    # --- actions ------------------------------------------------------------
    def flr_from_segments(self):
        """FLR = liver voxels in the remaining segments (segment layer, or landmarks)."""
        try:
            plan = self.plan()
            liver, geo = self._liver()
            seg_layer, tumor_layer = self._masks(liver)
            if seg_layer is None:
                landmarks = self._landmarks()
                if not landmarks:
                    raise InputError("choose a segment layer, or place landmarks to derive the "
                                     "segments from.")
                plan = type(plan)(**{**_plan_kwargs(plan), "landmarks": landmarks})
            liver_img = self._image(liver, geo)
            seg_img = self._image(seg_layer, geo)
            tumor_img = self._image(tumor_layer, geo)
        except InputError as exc:
            report_error("FLR from segments", exc)
            self.status.setText(str(exc))
            return None
        return self._run(
            "FLR from segments",
            lambda: self.remnant.flr_from_plan(plan, liver_img, segments=seg_img,
                                               tumor=tumor_img),
            lambda res: self._set_flr(liver, res[0], plan, res[1], res[2]),
            [liver, seg_layer, tumor_layer])

    def _landmarks(self):
        out = {}
        for layer in self._points_layers("landmark"):
            pts = points_mm(layer)
            if pts:
                out.setdefault(layer.metadata["flr_landmark"], []).extend(pts)
        return out

    def segments_from_landmarks(self):
        """Couinaud segments 1-8 of the liver from the landmark points."""
        try:
            if self.remnant is None:
                raise InputError("flr_volumetry.remnant is not available in this installation.")
            liver, geo = self._liver()
            landmarks = self._landmarks()
            if not landmarks:
                raise InputError("place landmark points first: choose a name, click 'Add "
                                 "points' and click on the scan.")
            liver_img = self._image(liver, geo)
        except InputError as exc:
            report_error("Segments from landmarks", exc)
            self.status.setText(str(exc))
            return None

        def done(seg_img):
            label = liver.metadata.get("flr_label", liver.name)
            layer = add_mask_layer(self.viewer, liver, seg_img, "segments",
                                   f"{label} segments", "landmarks")
            self.segments.set_layer(layer)
            self.status.setText(f"Segments 1-8 in '{layer.name}' from {len(landmarks)} "
                                f"landmarks.")

        return self._run("Segments from landmarks",
                         lambda: self.remnant.segments_from_landmarks(liver_img, landmarks),
                         done, [liver])

    def split(self):
        """FLR = the liver on the keep point's side of the surface through the points."""
        try:
            if self.remnant is None:
                raise InputError("flr_volumetry.remnant is not available in this installation.")
            liver, geo = self._liver()
            surface = [p for lay in self._points_layers("surface") for p in points_mm(lay)]
            keep = [p for lay in self._points_layers("keep") for p in points_mm(lay)]
            if len(keep) != 1:
                raise InputError(f"place exactly one keep point on the remnant side (there are "
                                 f"{len(keep)}).")
            tumor_layer = self._masks(liver)[1]
            liver_img = self._image(liver, geo)
            # The points are this scan's: recorded, so the exported plan.json warns when it
            # is used on another scan without registration.
            plan = self.remnant.RemnantPlan(surface_points=surface, keep_point=keep[0],
                                            placed_on=liver_img)
            tumor_img = self._image(tumor_layer, geo)
        except InputError as exc:
            report_error("Split the liver", exc)
            self.status.setText(str(exc))
            return None
        return self._run(
            "Split the liver",
            lambda: self.remnant.flr_from_plan(plan, liver_img, tumor=tumor_img),
            lambda res: self._set_flr(liver, res[0], plan, res[1], res[2]),
            [liver, tumor_layer])

    def carry_plan(self):
        """Register the plan's liver onto the target liver and apply the carried plan there."""
        from .._model import find_timepoints

        try:
            registration = _registration_module()
            if registration is None or self.remnant is None:
                raise InputError("carrying a plan needs flr_volumetry.registration and .remnant.")
            source, geo = self._liver()
            target = self.carry_target.layer()
            if target is None or target is source:
                raise InputError("choose the liver layer of another timepoint to carry the plan "
                                 "to.")
            tps = {t.key: t for t in find_timepoints(self.viewer.layers)}
            src_tp = tps.get(source.metadata.get("flr_timepoint"))
            dst_tp = tps.get(target.metadata.get("flr_timepoint"))
            plan_dict = None if src_tp is None or src_tp.flr is None else \
                src_tp.flr.metadata.get("flr_plan")
            if not plan_dict:
                raise InputError(f"the timepoint of '{source.name}' has no plan yet: define the "
                                 f"remnant there first (segments, landmarks or a cut surface).")
            plan = self.remnant.RemnantPlan.from_dict(plan_dict)
            dst_geo = metadata_geometry(target)
            src_img = self._image(source, geo)
            dst_img = self._image(target, dst_geo)
            # The scans let the registration use the vessels and the surroundings,
            # not only the liver outline (which drags the plan along with growth).
            src_scan = self._scan_image(src_tp, source, geo)
            dst_scan = self._scan_image(dst_tp, target, dst_geo)
            dst_seg = None if dst_tp is None else self._image(dst_tp.segments, dst_geo)
            dst_tumor = None if dst_tp is None else self._image(dst_tp.tumor, dst_geo)
            if plan.kind == "segments" and plan.landmarks is None and dst_seg is None:
                raise InputError(f"the plan selects segments, but '{target.name}' has no segment "
                                 f"layer at its timepoint.")
        except InputError as exc:
            report_error("Carry plan", exc)
            self.status.setText(str(exc))
            return None

        def run():
            carried, report = registration.carry_plan(plan, src_scan, src_img, dst_scan, dst_img)
            flr, warnings, methods = self.remnant.flr_from_plan(carried, dst_img,
                                                                segments=dst_seg, tumor=dst_tumor)
            methods = {**methods, "registration": report.to_dict()}
            return carried, flr, list(report.warnings) + list(warnings), methods, report

        def done(res):
            carried, flr, warnings, methods, report = res
            self._set_flr(target, flr, carried, warnings, methods)
            said = (f"registration Dice {report.dice:.3f} ({report.method})"
                    if report.registered else f"not registered ({report.method})")
            self.status.setText(self.status.text() + f"\n{said}")

        return self._run("Carry plan", run, done, [source, target])

    def new_flr_layer(self, copy_liver=False):
        """An FLR Labels layer on the liver's grid, ready to paint with label 1."""
        try:
            liver, _ = self._liver()
        except InputError as exc:
            report_error("New FLR layer", exc)
            self.status.setText(str(exc))
            return None
        label = liver.metadata.get("flr_label", liver.name)
        data = (np.asarray(liver.data) != 0).astype(np.uint8) if copy_liver else None
        data, kwargs = labels_like(liver, "flr", f"{label} flr (painted)", data)
        from .._reader import ROLE_COLORS

        layer = self.viewer.add_labels(data, opacity=0.45, colormap={
            None: "transparent", 0: "transparent", 1: ROLE_COLORS["flr"]}, **kwargs)
        layer.selected_label = 1
        layer.mode = "erase" if copy_liver else "paint"
        self.status.setText("Paint the remnant with label 1" if not copy_liver else
                            "Erase the part that will be resected")
        return layer


def _plan_kwargs(plan):
    return {"resection": plan.resection, "remnant_segments": plan.remnant_segments,
            "resect_caudate": plan.resect_caudate}
