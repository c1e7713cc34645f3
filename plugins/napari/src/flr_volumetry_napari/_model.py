"""What the widgets show, computed without Qt: timepoints, live measurement, table rows.

Every number comes from ``flr_volumetry`` (``measure``, ``hypertrophy``);
this module only finds the layers, crops them and formats the results.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk
from flr_volumetry import InputError, Patient, VolumetryOptions, measure
from flr_volumetry import clinical
from flr_volumetry.io import same_grid

from ._geometry import metadata_geometry

__all__ = [
    "Timepoint",
    "find_timepoints",
    "find_patients",
    "patient_key",
    "patient_id",
    "patient_name",
    "patient_of",
    "check_same_scan",
    "placed_on",
    "check_placed_on",
    "PatientSettings",
    "settings_for",
    "BoundingBox",
    "LiveMeasure",
    "on_undo_redo",
    "measurement_rows",
    "hypertrophy_rows",
]

MASK_ROLES = ("liver", "tumor", "flr", "segments")


@dataclass
class Timepoint:
    """A scan and the masks opened with it (napari layers, any may be None).

    ``layers``: every layer of the timepoint, in the order opened (a role may have several);
    ``chosen``: the roles whose layer the user chose in the Volumetry table.
    """

    key: str
    label: str
    scan: object = None
    liver: object = None
    tumor: object = None
    flr: object = None
    segments: object = None
    layers: list = field(default_factory=list)
    chosen: frozenset = frozenset()

    @property
    def scan_date(self):
        if self.scan is None:
            return None
        return self.scan.metadata.get("flr_scan", {}).get("study_date")

    @property
    def scan_facts(self):
        return {} if self.scan is None else dict(self.scan.metadata.get("flr_scan", {}))

    @property
    def patient(self):
        """The patient's key (see :func:`patient_key`), from every layer of the timepoint: a
        layer opened later without the patient's ID does not take the timepoint from it."""
        return patient_key(*(self.layers or [x for x in (self.scan, self.liver)
                                              if x is not None]))

    @property
    def patient_facts(self):
        for layer in (self.scan, self.liver, *self.layers):
            if layer is not None and layer.metadata.get("flr_patient_facts"):
                return dict(layer.metadata["flr_patient_facts"])
        return {}

    def file_warnings(self):
        """What reading the scan and making the masks used here said (a DICOM header, a mask
        resampled onto the scan's grid, a plan's warnings, the segmentation's), once each:
        the batch records them with the measurement, so does the export.

        Examples
        --------
        >>> from types import SimpleNamespace as L
        >>> scan = L(metadata={"flr_warnings": ["liver mask resampled."]})
        >>> flr = L(metadata={"flr_warnings": ["landmark near the edge.",
        ...                                    "liver mask resampled."]})
        >>> Timepoint("k", "P001 baseline", scan=scan, flr=flr).file_warnings()
        ['liver mask resampled.', 'landmark near the edge.']
        """
        layers = (self.scan, self.liver, self.tumor, self.flr, self.segments)
        said = [w for x in layers if x is not None for w in x.metadata.get("flr_warnings", ())]
        return list(dict.fromkeys(said))

    def unsure_roles(self, label=None):
        """Sentences naming each role with several layers here that the user did not choose
        in the Volumetry table, and the layer used (the most recent). ``label``: the
        timepoint's name in the sentences (the export's), also where a layer's name starts
        with the timepoint's own label.

        Examples
        --------
        >>> from types import SimpleNamespace as L
        >>> a, b = (L(name=n, metadata={"flr_role": "flr"}) for n in ("plan flr", "painted"))
        >>> Timepoint("k", "P001 baseline", flr=b, layers=[a, b]).unsure_roles()
        ["P001 baseline holds 2 flr layers; 'painted' is used (the most recent): choose another in the Volumetry table to use it instead."]
        >>> c = L(name="CT flr", metadata={"flr_role": "flr"})
        >>> Timepoint("k", "CT", flr=c, layers=[a, c]).unsure_roles("2024-02-26")[0][:47]
        "2024-02-26 holds 2 flr layers; '2024-02-26 flr'"
        """
        label = label or self.label
        out = []
        for role in MASK_ROLES:
            same = [x for x in self.layers if x.metadata.get("flr_role") == role]
            if len(same) > 1 and role not in self.chosen and getattr(self, role) is not None:
                name = getattr(self, role).name
                if name.startswith(self.label):  # ('DOE^JOHN flr', made in napari)
                    name = label + name[len(self.label):]
                out.append(f"{label} holds {len(same)} {role} layers; '{name}' is used (the "
                           f"most recent): choose another in the Volumetry table to use it "
                           f"instead.")
        return out


def data_digest(data):
    """SHA-256 of a mask's voxels (with its shape and type): whether a layer still holds
    the mask it was given (a file, a segmentation, a remnant plan) or was corrected since.

    Examples
    --------
    >>> a = np.zeros((2, 3, 4), np.uint8)
    >>> before = data_digest(a)
    >>> a[1, 1, 1] = 1
    >>> data_digest(a) == before
    False
    """
    arr = np.ascontiguousarray(data)
    h = hashlib.sha256(f"{arr.shape}{arr.dtype.str}".encode("ascii"))
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def method_with_edits(layer, method):
    """``method`` (how the layer's mask was made), with ", edited in napari" when its
    voxels are no longer those it was made with."""
    made = layer.metadata.get("flr_data_sha256")
    if method and made is not None and data_digest(layer.data) != made:
        return f"{method}, edited in napari"
    return method


def source_method(source):
    """How a mask was made, as results.json says it: a file by its name alone, as the batch
    writes it ('file liver.nii.gz'); its folders may name the patient (hospital exports are
    often foldered by name), and no output may carry them. Other sources unchanged.

    Examples
    --------
    >>> source_method("/data/DOE_JOHN/ct/liver.nii.gz"), source_method("segmentation")
    ('file liver.nii.gz', 'segmentation')
    >>> source_method(r"C:\\exports\\DOE_JOHN\\seg.nrrd:Liver")
    'file seg.nrrd:Liver'
    """
    parts = [p for p in re.split(r"[/\\]", str(source or "")) if p]
    return f"file {parts[-1]}" if len(parts) > 1 else source


def find_timepoints(layers, chosen=None):
    """Group layers by their ``flr_timepoint`` metadata, in the order opened.

    The last layer of a role wins, so a newly created FLR layer replaces the
    one opened from file; unless ``chosen`` (:meth:`PatientSettings.chosen_layers`) holds the
    layers the Volumetry table measures for a timepoint: the export and the growth must be
    figures of the layers the user read (a timepoint may hold two FLR layers).
    """
    layers = list(layers)
    out = {}
    for layer in layers:
        meta = getattr(layer, "metadata", None) or {}
        key = meta.get("flr_timepoint")
        role = meta.get("flr_role")
        if key is None or role not in ("scan",) + MASK_ROLES:
            continue
        tp = out.setdefault(key, Timepoint(key=key, label=meta.get("flr_label", key)))
        setattr(tp, role, layer)
        tp.layers.append(layer)
    for key, choice in (chosen or {}).items():
        tp = out.get(key)
        if tp is None:
            continue
        roles = set()
        for role, layer in choice.items():
            # A layer closed since, or moved to another timepoint, is no choice any more.
            if layer is None or any(layer is x for x in tp.layers):
                setattr(tp, role, layer)
                roles.add(role)
        tp.chosen = frozenset(roles)
    return list(out.values())


NO_ID = "no patient ID: "
DICOM_ID = "DICOM PatientID "


def patient_key(*layers):
    """The patient layers belong to, as a key.

    Its ``flr_patient`` ID (a patient folder of a study), else the DICOM PatientID of its
    scan's header (a pseudonymous ID: two scans naming one ID are one patient's), else the
    scan's own timepoint: a scan opened on its own, whose files say nothing of who it is, is
    a patient of its own (two such scans may be two people: one's size, growth or export
    must never be the other's).

    Examples
    --------
    >>> from types import SimpleNamespace as L
    >>> patient_key(L(metadata={"flr_timepoint": "/a", "flr_patient": "P001"}))
    'P001'
    >>> patient_key(L(metadata={"flr_timepoint": "/a", "flr_scan": {"patient_id": "4711"}}))
    'DICOM PatientID 4711'
    >>> patient_key(L(metadata={"flr_timepoint": "/data/ct"}))
    'no patient ID: /data/ct'
    """
    metas = [getattr(layer, "metadata", None) or {} for layer in layers]
    for meta in metas:
        if meta.get("flr_patient"):
            return str(meta["flr_patient"])
    for meta in metas:
        pid = (meta.get("flr_scan") or {}).get("patient_id")
        if pid:
            return DICOM_ID + str(pid)
    for meta in metas:
        if meta.get("flr_timepoint"):
            return NO_ID + str(meta["flr_timepoint"])
    return ""


#: The secret key of DICOM PatientID pseudonyms, when set (e.g. one key shared by a research
#: group's machines); else a key kept in the user's configuration folder.
PSEUDONYM_KEY_ENV = "FLR_PSEUDONYM_KEY"


def pseudonym_key_path():
    """Where the pseudonym key is kept: ``$XDG_CONFIG_HOME/flr-volumetry/pseudonym.key``
    (``~/.config`` without it)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".config")
    return os.path.join(base, "flr-volumetry", "pseudonym.key")


def _write_new(path, text):
    """Write ``text`` to ``path`` unless it exists (then another process made it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _pseudonym_key():
    """The secret key of DICOM PatientID pseudonyms, made on first use.

    A plain hash of a record number is no pseudonym: record numbers are few (10^8 for 8
    digits) and this code is public, so anyone could hash them all and read the number
    back. Keyed with a secret that never leaves this machine (or the group's
    ``FLR_PSEUDONYM_KEY``), one patient keeps one pseudonym across exports.
    """
    if os.environ.get(PSEUDONYM_KEY_ENV):
        return os.environ[PSEUDONYM_KEY_ENV].encode("utf-8")
    path = pseudonym_key_path()
    try:
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            key_text = secrets.token_hex(32) + "\n"
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".key-")
            with os.fdopen(fd, "w") as fh:  # mkstemp: readable by this user only
                fh.write(key_text)
            try:
                os.link(tmp, path)  # never replaces a key another process just made
            except FileExistsError:
                pass
            except OSError:
                # No hard links here (FAT, exFAT, some network drives): made in place, still
                # never replacing another's key (O_EXCL) and readable by the user only.
                _write_new(path, key_text)
            finally:
                os.remove(tmp)
        with open(path, encoding="utf-8") as fh:
            key = fh.read().strip()
    except OSError as exc:
        raise InputError(f"cannot keep the key of DICOM PatientID pseudonyms at {path} "
                         f"({exc.strerror or exc}); set {PSEUDONYM_KEY_ENV} to a secret text "
                         f"instead.") from None
    if not key:
        raise InputError(f"the pseudonym key file {path} is empty; remove it (a new key is "
                         f"made) or set {PSEUDONYM_KEY_ENV}.")
    return key.encode("utf-8")


def patient_id(key):
    """The patient's ID to write in files: its study ID; for a DICOM PatientID (often the
    hospital's record number, which no output should carry) a pseudonym made from it with
    a secret key ('dicom-' and 10 hex digits, see :func:`_pseudonym_key`); else 'patient'.

    Examples
    --------
    >>> patient_id("P001"), patient_id("no patient ID: /data/ct")
    ('P001', 'patient')
    """
    if not key or key.startswith(NO_ID):
        return "patient"
    if key.startswith(DICOM_ID):
        digest = hmac.new(_pseudonym_key(), key[len(DICOM_ID):].encode("utf-8"),
                          hashlib.sha256).hexdigest()
        return f"dicom-{digest[:10]}"
    return key


def patient_name(key):
    """How a patient key is shown to the user.

    Examples
    --------
    >>> patient_name("P001"), patient_name("no patient ID: /data/P7/baseline/image")
    ('P001', '(no patient ID: baseline/image)')
    """
    if not key:
        return "(no patient ID)"
    if key.startswith(NO_ID):
        parts = [p for p in re.split(r"[/\\]", key[len(NO_ID):]) if p]
        return f"(no patient ID: {'/'.join(parts[-2:])})"
    return key


def patient_of(layers, layer, chosen=None):
    """The patient key of ``layer``'s timepoint among ``layers`` (a mask made in napari
    carries no header of its own: its scan's says whose it is)."""
    key = (getattr(layer, "metadata", None) or {}).get("flr_timepoint")
    tp = next((t for t in find_timepoints(layers, chosen) if t.key == key), None)
    return patient_key(layer) if tp is None else tp.patient


def find_patients(layers, chosen=None):
    """Timepoints with a liver, grouped by patient (in the order opened)."""
    out = {}
    for tp in find_timepoints(layers, chosen):
        if tp.liver is not None:
            out.setdefault(tp.patient, []).append(tp)
    return out


@dataclass(frozen=True)
class PatientValues:
    """One patient's size (0 = unknown), liver condition and where the size came from, and
    the date of the procedure that grows the remnant (PVE, ALPPS stage 1: as typed, checked
    when used) or the choice to count the growth from the baseline scan without it."""

    height_cm: float = 0.0
    weight_kg: float = 0.0
    liver_condition: str = "normal"
    source: str = ""
    procedure_date: str = ""
    from_baseline_date: bool = False
    # After ALPPS stage 1: the FLR's function on hepatobiliary scintigraphy (%/min/m^2), as
    # typed (checked when used); the growth judges the ALPPS registry criterion with it.
    hbs_pct_per_min_m2: str = ""

    def hbs(self):
        """The scintigraphic function as a number (a decimal comma read), or None.

        Examples
        --------
        >>> PatientValues(hbs_pct_per_min_m2=" 2,4 ").hbs(), PatientValues().hbs()
        (2.4, None)
        """
        text = self.hbs_pct_per_min_m2.strip().replace(",", ".", 1)
        return clinical.check_hbs(text) if text else None

    @classmethod
    def from_facts(cls, scan_facts, patient_facts):
        """Size from patient.json, else the DICOM header, else unknown; condition likewise.

        Examples
        --------
        >>> v = PatientValues.from_facts({"height_cm": 181.0, "weight_kg": 77.5}, {})
        >>> v.height_cm, v.weight_kg, v.source
        (181.0, 77.5, 'size from the DICOM header')
        >>> PatientValues.from_facts({}, {"liver_condition": "cirrhosis"}).height_cm
        0.0
        """
        size = (0.0, 0.0, "size unknown: type it for the sFLR and FLR/BW")
        sources = ((patient_facts, "patient.json"), (scan_facts, "the DICOM header"))
        for facts, where in sources:
            h, w = facts.get("height_cm"), facts.get("weight_kg")
            if h and w:
                size = (float(h), float(w), f"size from {where}")
                break
        else:
            # A weight alone still gives FLR/body weight.
            for facts, where in sources:
                if facts.get("weight_kg") and not facts.get("height_cm"):
                    size = (0.0, float(facts["weight_kg"]),
                            f"weight from {where}; height unknown: type it for the sFLR")
                    break
        cond = patient_facts.get("liver_condition")
        date = patient_facts.get("procedure_date")
        hbs = patient_facts.get("hbs_pct_per_min_m2")
        return cls(height_cm=size[0], weight_kg=size[1], source=size[2],
                   liver_condition=cond if cond in clinical.LIVER_CONDITIONS else "normal",
                   procedure_date="" if date is None else str(date),
                   hbs_pct_per_min_m2="" if hbs is None else str(hbs))

    def patient(self):
        h, w = self.height_cm, self.weight_kg
        if h == 0 and w == 0:
            return Patient(liver_condition=self.liver_condition)
        if w == 0:
            raise InputError("give both height and weight, or the weight alone for FLR/body "
                             "weight (or set both to unknown).")
        return Patient(height_cm=h or None, weight_kg=w, liver_condition=self.liver_condition)


class PatientSettings:
    """Each open patient's size, liver condition and procedure date, the formula choices, and
    the layers measured in the Volumetry table.

    One object per viewer (see :func:`settings_for`), shared by every widget: the export
    and the growth figures must be those of the table the user read and corrected. A
    patient's values are taken from its files the first time it is shown, then kept as the
    user edits them; another patient never inherits them.
    """

    def __init__(self):
        self._values = {}
        self._chosen = {}
        self._listeners = []
        defaults = VolumetryOptions()
        self.bsa_formula, self.telv_formula = defaults.bsa_formula, defaults.telv_formula

    def values(self, key, scan_facts=None, patient_facts=None):
        """The patient's values, taken from the facts given on first use."""
        if key not in self._values:
            self._values[key] = PatientValues.from_facts(scan_facts or {}, patient_facts or {})
        return self._values[key]

    def peek(self, key):
        """The patient's values if it was shown, else unknown (without fixing them)."""
        return self._values.get(key, PatientValues())

    def set_values(self, key, **changes):
        self._values[key] = replace(self.peek(key), **changes)
        self._changed(key)

    def choose_layers(self, timepoint, layers):
        """Record the layers (by role; None: none) the Volumetry table measures for a
        timepoint, so that the export and the growth measure the same ones. Held weakly: a
        closed layer is no choice; a role left out keeps its last choice (the table's pickers
        move one by one from one timepoint to another, each step recorded). Another layer
        for a role chosen before is told to the listeners with the timepoint's key (figures
        measured on the old layer are stale)."""
        before = self.chosen_layers().get(timepoint) or {}
        changed = any(role in before and before[role] is not layer
                      for role, layer in layers.items())
        refs = self._chosen.setdefault(timepoint, {})
        refs.update({role: None if layer is None else weakref.ref(layer)
                     for role, layer in layers.items()})
        if changed:
            self._changed(timepoint)

    def chosen_layers(self):
        """{timepoint key: {role: layer or None}} of the layers still open."""
        out = {}
        for key, refs in self._chosen.items():
            out[key] = {role: None if ref is None else ref() for role, ref in refs.items()
                        if ref is None or ref() is not None}
        return out

    def set_formulas(self, bsa_formula=None, telv_formula=None):
        self.bsa_formula = bsa_formula or self.bsa_formula
        self.telv_formula = telv_formula or self.telv_formula
        self._changed(None)

    def options(self):
        return VolumetryOptions(bsa_formula=self.bsa_formula, telv_formula=self.telv_formula)

    def connect(self, callback):
        """Call ``callback(key)`` after a change (key None: the formulas; a patient's key: its
        values; a timepoint's key: the layers chosen for it). Held weakly."""
        ref = (weakref.WeakMethod(callback) if hasattr(callback, "__self__")
               else weakref.ref(callback))
        self._listeners.append(ref)
        return ref

    def disconnect(self, ref):
        if ref in self._listeners:
            self._listeners.remove(ref)

    def _changed(self, key):
        for ref in list(self._listeners):
            callback = ref()
            if callback is None:
                self._listeners.remove(ref)
            else:
                callback(key)


_SETTINGS = {}


def settings_for(viewer):
    """The :class:`PatientSettings` of a viewer (napari may hand each widget its own proxy
    of the same viewer: the proxies are seen through)."""
    while getattr(viewer, "__wrapped__", None) is not None:
        viewer = viewer.__wrapped__
    for key, (ref, _) in list(_SETTINGS.items()):
        if ref() is None:
            del _SETTINGS[key]
    entry = _SETTINGS.get(id(viewer))
    if entry is None or entry[0]() is not viewer:
        entry = _SETTINGS[id(viewer)] = (weakref.ref(viewer), PatientSettings())
    return entry[1]


_HISTORY_CALLBACKS = weakref.WeakKeyDictionary()  # layer: callbacks after its undo/redo


def on_undo_redo(layer, callback):
    """Call ``callback()`` after each ``layer.undo()`` and ``layer.redo()``; returns the
    function that stops it.

    napari signals an undo or redo with a refresh of the layer only, and with nothing
    at all while the layer is hidden: the live table had kept the volume from before
    an undo (and a growth table its figures) until the layer was shown again. The
    layer's two methods are wrapped once, for every callback registered on it.

    Examples
    --------
    >>> class Layer:
    ...     def undo(self): print("undone")
    ...     def redo(self): print("redone")
    >>> layer = Layer()
    >>> stop = on_undo_redo(layer, lambda: print("told"))
    >>> layer.undo()
    undone
    told
    >>> stop(); layer.redo()
    redone
    """
    callbacks = _HISTORY_CALLBACKS.get(layer)
    if callbacks is None:
        callbacks = _HISTORY_CALLBACKS[layer] = []
        for name in ("undo", "redo"):
            method = getattr(layer, name)

            def run(*args, _method=method, _callbacks=callbacks, **kwargs):
                result = _method(*args, **kwargs)
                for cb in list(_callbacks):
                    cb()
                return result
            setattr(layer, name, run)
    callbacks.append(callback)

    def stop():
        if callback in callbacks:
            callbacks.remove(callback)
    return stop


class BoundingBox:
    """Box holding every non-zero voxel of a layer, kept up to date while painting.

    Recomputed in full (one pass over the array) only when the data are
    replaced; a brush stroke only grows it, which keeps it a superset of the
    non-zero voxels (erasing never needs to shrink it for exact counting).
    """

    def __init__(self, data):
        self.reset(data)

    def reset(self, data):
        arr = np.asarray(data)
        self.shape = arr.shape
        self.lo = self.hi = None
        for axis in range(arr.ndim):
            others = tuple(a for a in range(arr.ndim) if a != axis)
            # Project the smallest axis pair first would be faster; any() on
            # uint8 is fast enough for one pass per data replacement.
            prof = np.flatnonzero(arr.any(axis=others))
            if prof.size == 0:
                self.lo = self.hi = None
                return
            lo, hi = int(prof[0]), int(prof[-1]) + 1
            self.lo = (self.lo or ()) + (lo,)
            self.hi = (self.hi or ()) + (hi,)

    def grow(self, lo, hi):
        if self.lo is None:
            self.lo, self.hi = tuple(lo), tuple(hi)
        else:
            self.lo = tuple(min(a, b) for a, b in zip(self.lo, lo))
            self.hi = tuple(max(a, b) for a, b in zip(self.hi, hi))

    def grow_from_paint(self, atoms):
        """Grow by the voxels of a napari ``paint`` event; False if not understood."""
        for atom in atoms:
            key = getattr(atom, "slice_key", None)
            if key is not None:
                self.grow([s.start or 0 for s in key],
                          [s.stop if s.stop is not None else n for s, n in zip(key, self.shape)])
                continue
            try:
                indices = atom[0]
                if len(indices) != len(self.shape):
                    return False
                idx = [np.asarray(i).ravel() for i in indices]
            except (TypeError, IndexError):
                return False
            if idx[0].size:
                self.grow([int(i.min()) for i in idx], [int(i.max()) + 1 for i in idx])
        return True


def _union(boxes, shape):
    boxes = [b for b in boxes if b is not None and b.lo is not None]
    if not boxes:
        return None
    lo = [min(b.lo[d] for b in boxes) for d in range(len(shape))]
    hi = [max(b.hi[d] for b in boxes) for d in range(len(shape))]
    # One empty voxel of margin (clipped at the scan's edge) keeps the
    # field-of-view check exact: the mask touches the crop's edge only where
    # it touches the scan's.
    return tuple(slice(max(0, a - 1), min(n, b + 1)) for a, b, n in zip(lo, hi, shape))


def _crop_image(data, crop, geometry):
    arr = np.ascontiguousarray(np.asarray(data)[crop])
    img = sitk.GetImageFromArray(arr)
    d = geometry["display"]
    direction = np.asarray(d["direction"], float).reshape(3, 3)
    start_xyz = np.array([s.start for s in crop[::-1]], float)
    origin = np.asarray(d["origin"], float) + direction @ (np.asarray(d["spacing"]) * start_xyz)
    img.SetSpacing(d["spacing"])
    img.SetOrigin([float(o) for o in origin])
    img.SetDirection(d["direction"])
    return img


class LiveMeasure:
    """``flr_volumetry.measure`` on the layers, cropped to where the masks are.

    Cropping to the union of the masks' bounding boxes (plus one empty voxel)
    changes no result of ``measure``: voxel counts, the voxel volume and the
    field-of-view check are the same as on the whole scan, at a fraction of
    the time on a 512x512x300 scan.
    """

    def __init__(self):
        self._boxes = {}

    def box(self, layer):
        """The tracked bounding box of ``layer`` (created on first use)."""
        b = self._boxes.get(id(layer))
        if b is None or b.shape != np.shape(layer.data):
            b = self._boxes[id(layer)] = BoundingBox(layer.data)
        return b

    def data_changed(self, layer):
        self._boxes.pop(id(layer), None)

    def painted(self, layer, atoms):
        if not self.box(layer).grow_from_paint(atoms):
            self.data_changed(layer)

    def forget(self, layer):
        self._boxes.pop(id(layer), None)

    def forget_all(self):
        """Drop every box: the next measurement finds each afresh (one pass per mask)."""
        self._boxes.clear()

    def measure(self, liver, *, tumor=None, flr=None, segments=None, patient=None,
                options=None, scan_date=None, extra_warnings=()):
        """Measure from Labels layers (``flr_geometry`` metadata required); ``extra_warnings``
        join the measurement's (see :meth:`Timepoint.file_warnings`)."""
        if liver is None:
            raise InputError("choose the liver layer first.")
        geometry = metadata_geometry(liver)
        shape = np.shape(liver.data)
        layers = {"tumor": tumor, "flr": flr, "segments": segments}
        for what, layer in layers.items():
            if layer is not None and np.shape(layer.data) != shape:
                raise InputError(
                    f"the {what} layer '{layer.name}' ({np.shape(layer.data)}) is not on the "
                    f"liver layer's grid {shape}; open it with its scan.")
            if layer is not None:
                check_same_scan(layer, liver, what)
        crop = _union([self.box(x) for x in (liver, tumor, flr) if x is not None], shape)
        if crop is None or self.box(liver).lo is None:
            raise InputError(f"the liver layer '{liver.name}' is empty: paint or segment the "
                             f"liver first.")
        images = {k: None if v is None else _crop_image(v.data, crop, geometry)
                  for k, v in layers.items()}
        return measure(_crop_image(liver.data, crop, geometry), tumor=images["tumor"],
                       flr=images["flr"], segments=images["segments"],
                       patient=patient or Patient(), options=options or VolumetryOptions(),
                       scan_date=scan_date, extra_warnings=extra_warnings)


def check_same_scan(layer, liver, what):
    """Refuse a mask of another scan or timepoint that merely has the liver's array shape:
    it would be counted with the liver's voxel size, as if it were drawn on its scan."""
    meta, liver_meta = getattr(layer, "metadata", {}), liver.metadata
    grid, liver_grid = meta.get("flr_geometry"), liver_meta.get("flr_geometry")
    if grid is not None and liver_grid is not None:
        if not same_grid(grid["display"], liver_grid["display"]):
            raise InputError(f"the {what} layer '{layer.name}' lies on another scan's grid than "
                             f"the liver layer '{liver.name}'; choose the {what} of the same "
                             f"scan.")
    tp, liver_tp = meta.get("flr_timepoint"), liver_meta.get("flr_timepoint")
    if tp and liver_tp and tp != liver_tp:
        raise InputError(f"the {what} layer '{layer.name}' belongs to another timepoint "
                         f"({meta.get('flr_label') or tp}) than the liver layer '{liver.name}' "
                         f"({liver_meta.get('flr_label') or liver_tp}); choose layers of one "
                         f"timepoint.")


def placed_on(points, scan):
    """Whether a Points layer was placed on ``scan`` (its timepoint): points are positions in
    one scan's body, and on another scan they would mark another place, or none.

    Examples
    --------
    >>> from types import SimpleNamespace as L
    >>> scan = L(name="a scan", metadata={"flr_timepoint": "/study/P001/baseline"})
    >>> placed_on(L(metadata={"flr_timepoint": "/study/P001/baseline"}), scan)
    True
    >>> placed_on(L(metadata={"flr_timepoint": "/study/P001/post_pve"}), scan)
    False
    """
    return points.metadata.get("flr_timepoint") == scan.metadata.get("flr_timepoint")


def check_placed_on(points, scan, what):
    """Refuse, in one sentence, a Points layer (``what``: 'seed points', ...) placed on
    another scan than ``scan``: its voxel indices would be taken on the wrong image.

    Examples
    --------
    >>> from types import SimpleNamespace as L
    >>> scan = L(name="P001 post_pve scan", metadata={"flr_timepoint": "/P001/post_pve"})
    >>> seeds = L(name="P001 baseline liver seeds",
    ...           metadata={"flr_timepoint": "/P001/baseline", "flr_label": "P001 baseline"})
    >>> check_placed_on(seeds, scan, "seed points")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the seed points 'P001 baseline liver seeds' were placed on another scan (P001 baseline) than 'P001 post_pve scan'; add seed points on this scan.
    """
    if points is None or placed_on(points, scan):
        return
    meta = points.metadata
    where = meta.get("flr_label") or meta.get("flr_timepoint")
    raise InputError(f"the {what} '{points.name}' were placed on another scan"
                     f"{f' ({where})' if where else ''} than '{scan.name}'; add {what} on "
                     f"this scan.")


def _fmt(value, digits=1, unit=""):
    if value is None:
        return "–"
    return f"{value:.{digits}f}{unit}"


def _fmt_vs(value, cutoff, digits=1, unit="", strictly=False):
    """``_fmt`` for a figure shown beside its verdict: never rounded across ``cutoff``."""
    if value is None or cutoff is None:
        return _fmt(value, digits, unit)
    return f"{clinical.shown_against(value, cutoff, digits, strictly=strictly)}{unit}"


def _verdict(ok):
    return "" if ok is None else ("pass" if ok else "FAIL")


def measurement_rows(m):
    """Rows (quantity, value, verdict) of the live table for a Measurement.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = np.zeros((20, 20, 20), np.uint8); a[2:18, 2:18, 2:18] = 1
    >>> liver = sitk.GetImageFromArray(a); liver.SetSpacing((5.0, 5.0, 5.0))
    >>> f = a.copy(); f[:, :, 10:] = 0
    >>> flr = sitk.GetImageFromArray(f); flr.CopyInformation(liver)
    >>> rows = measurement_rows(measure(liver, flr=flr, patient=Patient(170, 70)))
    >>> rows[0], rows[4]
    (('TLV', '512.0 mL', ''), ('sFLR', '16.96 %', 'FAIL (< 20 %)'))
    """
    thr = m.sflr_threshold_pct
    rows = [
        ("TLV", _fmt(m.total_liver_ml, 1, " mL"), ""),
        ("Tumour", _fmt(m.tumor_ml, 1, " mL"), ""),
        ("FLV (TLV − tumour)", _fmt(m.functional_liver_ml, 1, " mL"), ""),
        ("FLR", _fmt(m.flr_ml, 1, " mL"), ""),
        ("sFLR", _fmt_vs(m.sflr_pct, thr, 2, " %"),
         "" if m.sflr_adequate is None else
         (f"pass (≥ {thr:g} %)" if m.sflr_adequate else f"FAIL (< {thr:g} %)")),
        ("Measured FLR / FLV", _fmt(m.measured_flr_pct, 2, " %"), ""),
        ("FLR / body weight", _fmt_vs(m.flr_bw_ratio_pct, clinical.FLR_BW_RATIO_THRESHOLD_PCT, 2,
                                       " %", strictly=True),
         "" if m.flr_bw_ratio_pct is None else
         ("pass (> 0.5 %)" if m.flr_bw_adequate else "FAIL (≤ 0.5 %)")),
        ("TELV", _fmt(m.telv_ml, 1, " mL"), m.methods.get("telv_formula") or ""),
        ("BSA", _fmt(m.bsa_m2, 3, " m²"), m.methods.get("bsa_formula") or ""),
    ]
    adequacy = ("–" if m.sflr_adequate is None else
                ("adequate" if m.sflr_adequate else "inadequate"))
    rows.append(("Adequacy", adequacy, f"{m.liver_condition} liver: sFLR ≥ {thr:g} %"))
    return rows


def hypertrophy_rows(h):
    """Rows (quantity, value, verdict) of the growth table for a Hypertrophy.

    Examples
    --------
    >>> from flr_volumetry import hypertrophy
    >>> pre = {"flr_ml": 400.0, "sflr_pct": 25.0, "measured_flr_pct": 20.0}
    >>> post = {"flr_ml": 520.0, "sflr_pct": 33.0, "measured_flr_pct": 28.0}
    >>> h = hypertrophy(pre, post, procedure_date="2024-01-01", post_date="2024-01-29")
    >>> [r for r in hypertrophy_rows(h) if r[0] == "KGR (Shindoh)"]
    [('KGR (Shindoh)', '2.00 %/week', 'pass (≥ 2 %/week)')]

    After ALPPS, figures just above the registry's cut-offs are not rounded onto them:

    >>> post = {"flr_ml": 514.8812, "sflr_pct": 33.0, "measured_flr_pct": 28.0}
    >>> h = hypertrophy(pre, post, procedure_date="2024-01-01", post_date="2024-01-08",
    ...                 hbs_pct_per_min_m2=2.700001)
    >>> [r[1:] for r in hypertrophy_rows(h) if r[0].startswith("ALPPS")]
    [('FLR growth 4.103 %/day, HBS 2.700001 %/min/m²', 'not the high-risk group')]
    """
    kgr_t = clinical.KGR_THRESHOLD_PCT_PER_WEEK
    gr_t = clinical.GR_THRESHOLD_PCT_PER_WEEK
    alpps_t = clinical.ALPPS_KGR_FLR_THRESHOLD_PCT_PER_DAY
    hbs_t = clinical.ALPPS_HBS_THRESHOLD_PCT_PER_MIN_M2
    return [
        ("Interval", f"{h.interval_days} days from {h.interval_start}", ""),
        ("FLR baseline → follow-up",
         f"{_fmt(h.flr_pre_ml)} → {_fmt(h.flr_post_ml)} mL", ""),
        ("FLR growth", f"{_fmt(h.flr_growth_ml, 1, ' mL')} ({_fmt(h.flr_growth_pct, 1, ' %')})",
         ""),
        ("DH (sFLR)", _fmt_vs(h.dh_pct_points, clinical.DH_THRESHOLD_PCT_POINTS, 2, " points"),
         "" if h.dh_meets_7_5_pct_points is None else
         ("pass (≥ 7.5 points)" if h.dh_meets_7_5_pct_points else "FAIL (< 7.5 points)")),
        ("KGR (Shindoh)", _fmt_vs(h.kgr_pct_per_week, kgr_t, 2, " %/week"),
         "" if h.kgr_meets_2pct is None else
         (f"pass (≥ {kgr_t:g} %/week)" if h.kgr_meets_2pct else f"FAIL (< {kgr_t:g} %/week)")),
        ("KGR per day", _fmt(h.kgr_pct_per_day, 3, " %/day"), ""),
        ("FLR growth per day", _fmt(h.flr_growth_pct_per_day, 2, " %/day"),
         "the FLR's own growth (ALPPS series)"),
        ("DH (measured FLR / FLV)", _fmt(h.measured_dh_pct_points, 2, " points"), ""),
        ("GR (Leung)", _fmt_vs(h.gr_pct_per_week, gr_t, 2, " %/week", strictly=True),
         "" if h.gr_meets_2_66pct is None else
         (f"pass (> {gr_t:g} %/week)" if h.gr_meets_2_66pct else f"FAIL (≤ {gr_t:g} %/week)")),
    ] + ([] if h.alpps_high_phlf_risk is None else [
        # Judged only with the scintigraphy typed in the form (ALPPS stage 2 decisions).
        ("ALPPS registry (Tomassini)",
         f"FLR growth {_fmt_vs(h.flr_growth_pct_per_day, alpps_t, 2, ' %/day', True)}, HBS "
         f"{_fmt_vs(h.hbs_pct_per_min_m2, hbs_t, 1, ' %/min/m²', True)}",
         f"HIGH RISK (≤ {alpps_t:g} %/day and ≤ {hbs_t:g} %/min/m²)"
         if h.alpps_high_phlf_risk else "not the high-risk group")])
