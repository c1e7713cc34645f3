"""Liver widget: automatic or seeded segmentation, tumours, and imported masks."""

from __future__ import annotations

import numpy as np
from flr_volumetry import InputError, load_label_map, load_mask
from napari.qt.threading import create_worker
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._model import check_placed_on, placed_on
from ._common import (
    LayerCombo, add_mask_layer, closed_while_running, core_module, disabled_note,
    follow_timepoint, note, report_error, scan_image,
)

__all__ = ["LiverWidget", "points_to_indices"]


def points_to_indices(points_layer, image):
    """Voxel indices (i, j, k) of ``image`` (SimpleITK order) under a Points layer's points.

    napari world coordinates are physical LPS mm in (z, y, x) order (see
    ``_geometry``), so each point is reversed into (x, y, z) before SimpleITK
    maps it to an index.
    """
    if points_layer is None:
        return []
    out = []
    for p in np.asarray(points_layer.data):
        world = np.asarray(points_layer.data_to_world(p), float)
        if world.size != 3:
            raise InputError(f"the points of '{points_layer.name}' are not 3-D.")
        ci = image.TransformPhysicalPointToContinuousIndex([float(v) for v in world[::-1]])
        out.append(tuple(int(round(c)) for c in ci))
    return out


def _segmentation_module():
    return core_module("segmentation", "segment_liver", "SegmentationOptions")


class LiverWidget(QWidget):
    """Segment the liver (automatic on CT, seeded on CT and MR) or import a mask."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self._scan_shown = None
        self.scan = LayerCombo(napari_viewer, "image", ("scan",))
        self.scan.currentIndexChanged.connect(self._scan_changed)
        self.modality = QComboBox()
        self.modality.addItems(["ct", "mr"])
        self.seeds = LayerCombo(napari_viewer, "points", ("seeds",), allow_none=True)
        self.exclude = LayerCombo(napari_viewer, "points", ("exclude",), allow_none=True)
        self.tumor_seeds = LayerCombo(napari_viewer, "points", ("tumor_seeds",),
                                      allow_none=True)
        form.addRow("Scan", self.scan)
        form.addRow("Modality", self.modality)
        form.addRow("Seeds (inside liver)", self.seeds)
        form.addRow("Exclude points", self.exclude)
        form.addRow("Tumour seeds (one per lesion)", self.tumor_seeds)
        layout.addLayout(form)
        # After the combos' own refresh (connected first), which may have picked another
        # scan's points.
        for ev in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            ev.connect(self._keep_to_scan)
        row = QHBoxLayout()
        self.add_seeds_button = QPushButton("Add seed points")
        self.add_seeds_button.clicked.connect(lambda: self.add_points_layer("seeds"))
        self.add_exclude_button = QPushButton("Add exclude points")
        self.add_exclude_button.clicked.connect(lambda: self.add_points_layer("exclude"))
        self.add_tumor_seeds_button = QPushButton("Add tumour seeds")
        self.add_tumor_seeds_button.clicked.connect(
            lambda: self.add_points_layer("tumor_seeds"))
        row.addWidget(self.add_seeds_button)
        row.addWidget(self.add_exclude_button)
        row.addWidget(self.add_tumor_seeds_button)
        layout.addLayout(row)
        self.tumors = QCheckBox("Also find tumours (CT)")
        self.tumors.setChecked(True)
        layout.addWidget(self.tumors)
        self.segment_button = QPushButton("Segment liver")
        self.segment_button.clicked.connect(self.segment)
        layout.addWidget(self.segment_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        if _segmentation_module() is None:
            self.segment_button.setEnabled(False)
            layout.addWidget(disabled_note(
                "Automatic segmentation needs flr_volumetry.segmentation, which this "
                "installation lacks; import a mask below instead."))

        box = QGroupBox("Import a mask (TotalSegmentator, Slicer .seg.nrrd, DICOM SEG, NIfTI)")
        imp = QFormLayout(box)
        self.import_role = QComboBox()
        self.import_role.addItems(["liver", "tumor", "flr", "segments"])
        self.import_labels = QLineEdit()
        self.import_labels.setPlaceholderText("all non-zero; or 5, or liver, or a segment name")
        self.import_task = QComboBox()
        self.import_task.addItems(["total", "total_mr", "liver_segments", "liver_segments_mr",
                                   "liver_vessels"])
        imp.addRow("As", self.import_role)
        imp.addRow("Labels", self.import_labels)
        imp.addRow("TotalSegmentator task", self.import_task)
        buttons = QHBoxLayout()
        self.import_file_button = QPushButton("Import file…")
        self.import_file_button.clicked.connect(self._choose_file)
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.clicked.connect(self._choose_folder)
        buttons.addWidget(self.import_file_button)
        buttons.addWidget(self.import_folder_button)
        imp.addRow(buttons)
        layout.addWidget(box)
        layout.addStretch(1)
        self._scan_changed()

    # --- helpers ----------------------------------------------------------
    def _points_combos(self):
        """The points combos, by the words that name their points to the user."""
        return {"seed points": self.seeds, "exclude points": self.exclude,
                "tumour seeds": self.tumor_seeds}

    def _scan_changed(self, *_):
        scan = self.scan.layer()
        # The scan combo says 'changed' on every layer added or removed: the modality is
        # set from the header only when another scan is chosen, never over the user's.
        if scan is None or scan is self._scan_shown:
            return
        self._scan_shown = scan
        modality = (scan.metadata.get("flr_scan", {}).get("modality") or "").upper()
        self.modality.setCurrentText("mr" if modality in ("MR", "MRI") else "ct")
        # The points clicked on another scan would mark another place on this one (or lie
        # outside it): offer this scan's own, or none.
        follow_timepoint(scan, self._points_combos().values())

    def _keep_to_scan(self, *_):
        """After a layer is added or removed, a combo left on (or fallen to) another scan's
        points takes the chosen scan's again."""
        scan = self.scan.layer()
        if scan is None:
            return
        for combo in self._points_combos().values():
            layer = combo.layer()
            if layer is not None and not placed_on(layer, scan):
                follow_timepoint(scan, (combo,))

    def _points(self, scan):
        """The chosen seed, exclude and tumour-seed layers, refused in words when placed on
        another scan."""
        out = []
        for what, combo in self._points_combos().items():
            check_placed_on(combo.layer(), scan, what)
            out.append(combo.layer())
        return out

    def _require_scan(self):
        scan = self.scan.layer()
        if scan is None:
            raise InputError("open a scan first (File > Open, or File > Open Sample).")
        return scan

    _POINTS = {  # kind: (layer name, colour)
        "seeds": ("liver seeds", "#30c0ff"),
        "exclude": ("exclude points", "#ff40ff"),
        "tumor_seeds": ("tumour seeds", "#ffd21e"),
    }

    def add_points_layer(self, kind):
        """Add an empty Points layer of the chosen scan for seeds, exclude points or tumour
        seeds, ready to click (None, with a message, before a scan is open)."""
        try:
            scan = self._require_scan()
        except InputError as exc:
            report_error("Add points", exc)
            self.status.setText(str(exc))
            return None
        name, color = self._POINTS[kind]
        label = scan.metadata.get("flr_label", scan.name)
        # Given at creation, so that the combos see the layer's role and scan when it is
        # inserted.
        metadata = {"flr_role": kind, **{k: scan.metadata[k] for k in (
            "flr_timepoint", "flr_label", "flr_patient") if k in scan.metadata}}
        layer = self.viewer.add_points(ndim=3, name=f"{label} {name}", face_color=color,
                                       size=3 * max(scan.scale), metadata=metadata)
        layer.mode = "add"
        {"seeds": self.seeds, "exclude": self.exclude,
         "tumor_seeds": self.tumor_seeds}[kind].set_layer(layer)
        return layer

    # --- segmentation -----------------------------------------------------
    def segment(self):
        """Start the segmentation in a worker thread; masks are added when it finishes."""
        try:
            segmentation = _segmentation_module()
            if segmentation is None:
                raise InputError("automatic segmentation is not available in this installation.")
            scan = self._require_scan()
            image = scan_image(scan)
            seeds, exclude, tumor_seeds = (points_to_indices(points, image)
                                           for points in self._points(scan))
            modality = self.modality.currentText()
            if modality == "mr" and not seeds:
                raise InputError("MR needs at least one seed: click 'Add seed points' and click "
                                 "inside the liver.")
            options = segmentation.SegmentationOptions(tumors=self.tumors.isChecked())
        except InputError as exc:
            report_error("Liver segmentation", exc)
            self.status.setText(str(exc))
            return None

        def run():
            return segmentation.segment_liver(image, modality=modality, seeds=seeds or None,
                                              exclude=exclude or None, options=options,
                                              tumor_seeds=tumor_seeds or None)

        self.segment_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy
        self.status.setText("Segmenting… the viewer stays usable.")
        self.worker = create_worker(run, _progress={"desc": "Segmenting the liver"},
                                    _ignore_errors=True)
        self.worker.returned.connect(lambda result: self._segmented(scan, result))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._finished)
        self.worker.start()
        return self.worker

    def _segmented(self, scan, result):
        if closed_while_running(self.viewer, "Liver segmentation", [scan], self.status):
            return
        label = scan.metadata.get("flr_label", scan.name)
        liver = add_mask_layer(self.viewer, scan, result.liver, "liver", f"{label} liver",
                               "segmentation")
        liver.metadata["flr_methods"] = dict(result.methods)
        liver.metadata["flr_warnings"] = list(result.warnings)  # exported with the measurement
        text = [f"Liver segmented ({result.methods.get('backend', 'classic')})."]
        if result.tumor is not None:
            # The layer returned, not the one of that name: another timepoint's tumour may
            # hold the name (two scans in folders named alike), this one then named "... [1]".
            tumor = add_mask_layer(self.viewer, scan, result.tumor, "tumor", f"{label} tumor",
                                   "segmentation")
            n = int(np.count_nonzero(tumor.data))
            n_seeds = len(result.methods.get("parameters", {}).get("tumor_seeds", []))
            if n_seeds:
                text.append(f"Lesions grown from {n_seeds} tumour seed"
                            f"{'s' if n_seeds > 1 else ''}: review them.")
            else:
                text.append("Tumour candidates found." if n else "No tumour candidate found.")
        text += [f"⚠ {w}" for w in result.warnings]
        for w in result.warnings:
            note(w, warning=True)
        self.status.setText("\n".join(text))

    def _failed(self, exc):
        report_error("Liver segmentation", exc)
        self.status.setText(str(exc))

    def _finished(self):
        self.progress.setRange(0, 1)
        self.segment_button.setEnabled(_segmentation_module() is not None)

    # --- import -----------------------------------------------------------
    def _choose_file(self):
        path, _ = QFileDialog.getOpenFileName(self, "Import a mask")
        if path:
            self.import_mask(path)

    def _choose_folder(self):
        path = QFileDialog.getExistingDirectory(self, "Import a TotalSegmentator output folder")
        if path:
            self.import_mask(path)

    def import_mask(self, path):
        """Load a mask onto the chosen scan's grid (resampled with a warning if needed)."""
        try:
            scan = self._require_scan()
            reference = scan_image(scan)
            role = self.import_role.currentText()
            labels = self.import_labels.text().strip().replace(" ", "")
            label = scan.metadata.get("flr_label", scan.name)
            if role == "segments":
                if labels:
                    raise InputError("a segment map is imported whole; leave 'Labels' empty.")
                image, warnings = load_label_map(path, reference, what="segment map")
                source = str(path)
            else:
                spec = f"{path}:{labels}" if labels else str(path)
                structure = {"liver": "liver", "tumor": "liver_tumor"}.get(role, role)
                m = load_mask(spec, reference, structure=structure,
                              task=self.import_task.currentText(), what=f"{role} mask",
                              whole_liver=role == "liver")
                image, warnings, source = m.image, list(m.warnings), m.source
            layer = add_mask_layer(self.viewer, scan, image, role, f"{label} {role}", source)
            layer.metadata["flr_warnings"] = list(warnings)  # exported with the measurement
        except InputError as exc:
            report_error("Import", exc)
            self.status.setText(str(exc))
            return None
        for w in warnings:
            note(w, warning=True)
        self.status.setText(f"Imported {source} as '{layer.name}'."
                            + "".join(f"\n⚠ {w}" for w in warnings))
        return layer
