"""Small Qt helpers shared by the widgets (layer pickers, tables, messages)."""

from __future__ import annotations

import numpy as np
from flr_volumetry import InputError
from napari.layers import Image, Labels, Points
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
)

from .._geometry import display_kwargs, metadata_geometry, to_display, to_original
from .._model import data_digest

# napari hands plugins a proxy of the viewer that warns on private attributes:
# layer kinds are told apart by class, never by private names.
LAYER_TYPES = {"image": Image, "labels": Labels, "points": Points}

__all__ = ["core_module", "LayerCombo", "ResultTable", "report_error", "note", "labels_like",
           "scan_image", "add_mask_layer", "disabled_note", "follow_timepoint"]


def core_module(name, *needed):
    """``flr_volumetry.<name>`` when installed with the functions ``needed``, else None.

    Widget parts that depend on it are disabled, with a note, when it is None.
    """
    import importlib

    try:
        module = importlib.import_module(f"flr_volumetry.{name}")
    except ImportError:
        return None
    return module if all(hasattr(module, n) for n in needed) else None


def report_error(action, exc):
    """Show an exception as a napari notification in plain words."""
    if isinstance(exc, InputError):
        show_error(f"{action}: {exc}")
    else:
        show_error(f"{action} failed unexpectedly ({type(exc).__name__}: {exc}).")


def note(message, warning=False):
    (show_warning if warning else show_info)(message)


def closed_while_running(viewer, action, layers, status):
    """Whether a layer a background ``action``'s result belongs to was closed while it ran
    (the result had been added for a scan no longer open, silently); if so, the result is
    to be dropped, and a notification and the ``status`` label say so."""
    closed = [layer.name for layer in layers if layer is not None and layer not in viewer.layers]
    if not closed:
        return False
    said = (f"{action}: '{closed[0]}' was closed while it ran, so its result is dropped; "
            f"open it again and repeat.")
    note(said, warning=True)
    status.setText(said)
    return True


def disabled_note(text):
    """A grey label explaining why a part of a widget is disabled."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #999; font-style: italic;")
    return label


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of one kind (and role), kept in sync."""

    def __init__(self, viewer, kind, roles=None, allow_none=False, parent=None):
        super().__init__(parent)
        self.viewer, self.kind, self.roles, self.allow_none = viewer, kind, roles, allow_none
        self._refreshing = False
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed,
                   viewer.layers.events.reordered):
            ev.connect(self.refresh)
        # A layer renamed in the layer list is shown by its new name (the item would keep
        # the old one, maybe the name of another layer by now).
        viewer.layers.events.renamed.connect(self._renamed)
        self.refresh()

    def _accepts(self, layer):
        if self.kind is not None and not isinstance(layer, LAYER_TYPES[self.kind]):
            return False
        if self.roles is None:
            return True
        return layer.metadata.get("flr_role") in self.roles

    def refresh(self, *_):
        current = self.layer()
        self._refreshing = True
        self.blockSignals(True)
        self.clear()
        if self.allow_none:
            self.addItem("(none)", None)
        for layer in self.viewer.layers:
            if self._accepts(layer):
                self.addItem(layer.name, layer)
        self.blockSignals(False)
        self._refreshing = False
        if current is not None and current in self.viewer.layers:
            self.set_layer(current)
        elif self.count():
            # Prefer the most recently added layer of the role.
            self.setCurrentIndex(self.count() - 1 if not self.allow_none or self.count() > 1
                                 else 0)
        self.currentIndexChanged.emit(self.currentIndex())

    def _renamed(self, *_):
        for i in range(self.count()):
            layer = self.itemData(i)
            if layer is not None and self.itemText(i) != layer.name:
                self.setItemText(i, layer.name)

    def layer(self):
        return self.currentData()

    def set_layer(self, layer):
        for i in range(self.count()):
            if self.itemData(i) is layer:
                self.setCurrentIndex(i)
                return True
        return False


def follow_timepoint(liver, combos):
    """Choose in each mask combo the layer of the liver's timepoint (the most recent, as the
    combos prefer), or none: masks of two timepoints must not be used together."""
    key = None if liver is None else liver.metadata.get("flr_timepoint")
    if key is None:
        return
    for combo in combos:
        same = [combo.itemData(i) for i in range(combo.count())
                if combo.itemData(i) is not None
                and combo.itemData(i).metadata.get("flr_timepoint") == key]
        if same:
            combo.set_layer(same[-1])
        elif combo.allow_none:
            combo.setCurrentIndex(0)


class ResultTable(QTableWidget):
    """A read-only three-column table: quantity, value, verdict."""

    def __init__(self, parent=None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Quantity", "Value", "Check"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

    def set_rows(self, rows):
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(str(text))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                if c == 2 and str(text).startswith("FAIL"):
                    item.setForeground(QColor("#ff5a5a"))
                elif c == 2 and str(text).startswith("pass"):
                    item.setForeground(QColor("#3fd46a"))
                self.setItem(r, c, item)
        self.resizeRowsToContents()
        # Show every row without a scroll bar: the table is short and read at a glance.
        header = self.horizontalHeader()
        height = (max(header.height(), header.sizeHint().height())
                  + sum(self.rowHeight(i) for i in range(len(rows))) + 2 * self.frameWidth() + 6)
        self.setFixedHeight(height)

    def value(self, quantity):
        """Text of the value cell of a quantity (None when absent)."""
        for r in range(self.rowCount()):
            if self.item(r, 0).text() == quantity:
                return self.item(r, 1).text()
        return None

    def check(self, quantity):
        for r in range(self.rowCount()):
            if self.item(r, 0).text() == quantity:
                return self.item(r, 2).text()
        return None


def scan_image(layer):
    """The SimpleITK image of a layer on the file's own grid (a copy)."""
    return to_original(np.asarray(layer.data), metadata_geometry(layer))


def labels_like(reference, role, name, data=None):
    """Metadata and placement of a new Labels layer on ``reference``'s grid."""
    meta = reference.metadata
    new_meta = {k: meta[k] for k in ("flr_geometry", "flr_timepoint", "flr_label", "flr_patient",
                                     "flr_patient_facts", "flr_scan_source",
                                     "flr_scan_series_uid", "flr_label_from_path") if k in meta}
    new_meta["flr_role"] = role
    kwargs = display_kwargs(meta["flr_geometry"])
    if data is None:
        data = np.zeros(np.shape(reference.data), np.uint8)
    return data, {"name": name, "metadata": new_meta, **kwargs}


def add_mask_layer(viewer, reference, image, role, name, source):
    """Add (or replace the data of) a Labels layer from a SimpleITK mask on the scan's grid."""
    from .._reader import ROLE_COLORS

    arr, geo = to_display(image)
    if list(geo["display"]["size"]) != list(metadata_geometry(reference)["display"]["size"]):
        raise InputError(f"the {role} mask is not on the scan's grid.")
    arr = arr.astype(np.uint8 if int(arr.max(initial=0)) < 256 else np.uint16, copy=False)
    data, kwargs = labels_like(reference, role, name, arr)
    kwargs["metadata"]["flr_source"] = source
    kwargs["metadata"]["flr_data_sha256"] = data_digest(data)  # corrections: see the export
    old = viewer.layers[name] if name in viewer.layers else None
    meta = kwargs["metadata"]
    # Replace only this timepoint's own mask of this role: two patients' timepoints may
    # share a label ("baseline"), and the other's mask must not be overwritten.
    if old is not None and all(old.metadata.get(k) == meta.get(k)
                               for k in ("flr_timepoint", "flr_role")):
        # The placement goes with the data: a layer keeping its old scale and translation
        # would draw the new mask away from its scan.
        placement = display_kwargs(meta["flr_geometry"])
        old.rotate = placement.get("rotate", np.eye(3))
        for key in ("scale", "translate"):
            setattr(old, key, placement[key])
        old.data = data
        # What made the old mask (a remnant plan, its methods and warnings) did not make
        # this one: an imported FLR must not be exported, or carried, as the old plan's.
        for key in ("flr_plan", "flr_methods", "flr_warnings"):
            old.metadata.pop(key, None)
        old.metadata.update(meta)
        return old
    colors = {None: "transparent", 0: "transparent", 1: ROLE_COLORS.get(role, "#3a8fd9")}
    return viewer.add_labels(data, opacity=0.45, colormap=colors if role != "segments" else None,
                             **kwargs) if role != "segments" else viewer.add_labels(
        data, opacity=0.35, **kwargs)
