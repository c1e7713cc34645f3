"""The remnant plan: how the future liver remnant is defined, as a versioned JSON file.

A plan holds *what the surgeon decided*, in physical LPS millimetres, never
voxel indices, so that the same plan applies to any scan of the patient (a
segment plan directly, a geometric plan after registration, see
:func:`flr_volumetry.registration.carry_plan`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np

from .._options import as_flag
from ..errors import InputError, check_exists, json_object
from ..io import write_json_atomic

PLAN_SCHEMA_VERSION = "1.1"  # 1.1: placed_on
#: The plan formats read: every version written so far (1.0 had no placed_on).
READABLE_PLAN_VERSIONS = ("1.0", "1.1")

#: Named resections: the Couinaud segments each one removes (../shared/CLINICAL.md).
#: Segment 1 (caudate) is never listed: it stays unless ``resect_caudate``.
RESECTIONS = {
    "right_hepatectomy": (5, 6, 7, 8),
    "extended_right_hepatectomy": (4, 5, 6, 7, 8),
    "left_hepatectomy": (2, 3, 4),
    "extended_left_hepatectomy": (2, 3, 4, 5, 8),
    "left_lateral_sectionectomy": (2, 3),
    "right_posterior_sectionectomy": (6, 7),
}

#: The keys of a plan's JSON form.
PLAN_KEYS = ("schema_version", "coordinates", "resection", "remnant_segments", "resect_caudate",
             "landmarks", "surface_points", "keep_point", "note", "placed_on")

#: Couinaud segment numbers (segment 4 is not split into 4a/4b).
SEGMENTS = (1, 2, 3, 4, 5, 6, 7, 8)

__all__ = ["RESECTIONS", "SEGMENTS", "PLAN_SCHEMA_VERSION", "RemnantPlan", "remnant_segments_of",
           "parse_point", "parse_points"]


def parse_point(value, what="point"):
    """A 3-D point in mm from ``"x,y,z"`` or a sequence of three numbers.

    Examples
    --------
    >>> parse_point("-12.5, 3, 40")
    (-12.5, 3.0, 40.0)
    """
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p != ""]
    else:
        try:
            parts = list(value)
        except TypeError:
            parts = [value]
    try:
        point = tuple(float(p) for p in parts)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        raise InputError(f"the {what} {value!r} is not three numbers x,y,z in mm.") from None
    if len(point) != 3 or not all(math.isfinite(c) for c in point):
        raise InputError(f"the {what} {value!r} is not three finite numbers x,y,z in mm.")
    return point


def parse_points(value, what="points"):
    """Points from ``"x,y,z;x,y,z;..."`` or a sequence of points.

    Examples
    --------
    >>> parse_points("0,0,0; 1,0,0; 0,1,0")
    ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    """
    if isinstance(value, str):
        value = [v for v in value.split(";") if v.strip()]
    if isinstance(value, (dict, bytes)) or not hasattr(value, "__iter__"):
        raise InputError(f"the {what} {value!r} are not a list of points [[x, y, z], ...] in mm.")
    return tuple(parse_point(v, what=f"{what} entry") for v in value)


def remnant_segments_of(resection=None, remnant_segments=None, resect_caudate=False):
    """The segments that remain, from a named resection or an explicit list.

    Examples
    --------
    >>> remnant_segments_of("right_hepatectomy")
    (1, 2, 3, 4)
    >>> remnant_segments_of("right_hepatectomy", resect_caudate=True)
    (2, 3, 4)
    >>> remnant_segments_of(remnant_segments=[3, 2])
    (2, 3)
    """
    if resection is not None and remnant_segments is not None:
        raise InputError("give a named resection or a remnant segment list, not both.")
    if resection is not None:
        gone = set(RESECTIONS[resection_key(resection)]) | ({1} if resect_caudate else set())
        return tuple(s for s in SEGMENTS if s not in gone)
    segs = tuple(sorted({segment_number(s) for s in _as_list(remnant_segments)}))
    bad = [s for s in segs if s not in SEGMENTS]
    if bad:
        raise InputError(f"remnant segments must be Couinaud numbers 1-8, not {bad}.")
    if not segs:
        raise InputError("the remnant segment list is empty; name at least one segment (1-8).")
    if resect_caudate and 1 in segs:
        raise InputError("segment 1 is both kept (in the remnant list) and resected "
                         "(resect_caudate); choose one.")
    return segs


def resection_key(resection):
    """The :data:`RESECTIONS` key of a resection name ('Right Hepatectomy' too).

    Examples
    --------
    >>> resection_key(" Right-Hepatectomy")
    'right_hepatectomy'
    """
    name = str(resection).strip().lower().replace("-", "_").replace(" ", "_")
    if name not in RESECTIONS:
        raise InputError(f"unknown resection {resection!r}; use one of: {', '.join(RESECTIONS)}.")
    return name


def _as_list(segments):
    """``"2,3"``, ``2`` or a sequence, as a list of its items."""
    if isinstance(segments, str):
        return [p for p in segments.replace(";", ",").split(",") if p.strip()]
    if isinstance(segments, (int, float, np.number)):
        return [segments]
    return list(segments)


def segment_number(value):
    """A Couinaud number as an int; 2.7, True or "x" are refused, not truncated."""
    try:
        number = float(str(value).strip()) if not isinstance(value, (bool, np.bool_)) else None
    except ValueError:
        number = None
    if number is None or not number.is_integer():
        raise InputError(f"remnant segments must be Couinaud numbers 1-8, not {value!r}.")
    return int(number)


def _landmarks_tuple(landmarks):
    if isinstance(landmarks, (list, tuple)) and all(
            isinstance(item, (list, tuple)) and len(item) == 2 for item in landmarks):
        landmarks = dict(landmarks)  # the (name, points) pairs a plan stores
    if not isinstance(landmarks, dict):
        raise InputError(f"landmarks must be an object of named points {{name: [x, y, z]}}, "
                         f"not {type(landmarks).__name__}.")
    out = {}
    for name, pts in landmarks.items():
        if isinstance(pts, np.ndarray):
            # Points computed in a script are numpy arrays (a point of shape (3,), points
            # of shape (n, 3)); they had been refused as "not a point [x, y, z]".
            pts = pts.tolist()
        # One point ([x, y, z] or "x,y,z") or a list of points; numpy numbers are numbers.
        one = isinstance(pts, str) or (
            isinstance(pts, (list, tuple)) and len(pts) == 3
            and all(isinstance(c, numbers.Real) and not isinstance(c, (bool, np.bool_))
                    for c in pts))
        if one:
            out[str(name)] = (parse_point(pts, what=f"landmark {name!r}"),)
        elif isinstance(pts, (list, tuple)):
            out[str(name)] = parse_points(pts, what=f"landmark {name!r}")
        else:
            raise InputError(f"the landmark {name!r} is {pts!r}, not a point [x, y, z] or a "
                             f"list of points in mm.")
        if not out[str(name)]:
            raise InputError(f"the landmark {name!r} has no point.")
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class RemnantPlan:
    """How the future liver remnant is defined.

    Exactly one geometry: Couinaud segments (from a segment map, or from
    ``landmarks``) selected by ``resection`` or ``remnant_segments``; or a
    cut surface (``surface_points``: a plane through three points, a
    thin-plate-spline surface through four or more) with ``keep_point`` on
    the remnant side. All coordinates are physical LPS millimetres.

    Parameters
    ----------
    resection : str, optional
        One of :data:`RESECTIONS`.
    remnant_segments : sequence of int, optional
        The segments that remain (1-8).
    resect_caudate : bool
        Segment 1 stays in the remnant unless this is true.
    landmarks : dict, optional
        Named anatomical points, each ``[x, y, z]`` or a list of them (lists,
        tuples or numpy arrays; see
        :func:`flr_volumetry.remnant.segments_from_landmarks`), used when no
        segment map is given. Stored as a sorted tuple of (name, points).
    surface_points : sequence of (x, y, z), optional
    keep_point : (x, y, z), optional
    note : str, optional
        Free text (no patient name).
    placed_on : dict, optional
        The grid (``size``, ``spacing``, ``origin``, ``direction``) of the
        scan whose coordinates the landmarks or cut points are in, and, when
        the scan itself was at hand, a digest of its voxels
        (``voxel_sha256``, see :func:`placed_on_scan`): recorded when the
        plan is applied to a scan and saved; applied as it is to another
        scan (not carried by registration), it is warned about -- also when
        that scan was resampled onto the same grid.

    Examples
    --------
    >>> RemnantPlan(resection="right_hepatectomy").segments
    (1, 2, 3, 4)
    >>> RemnantPlan(surface_points=[(0, 0, 0), (1, 0, 0), (0, 1, 0)], keep_point=(0, 0, 5)).kind
    'surface'
    """

    resection: str | None = None
    remnant_segments: tuple | None = None
    resect_caudate: bool = False
    landmarks: tuple | None = None
    surface_points: tuple | None = None
    keep_point: tuple | None = None
    note: str | None = None
    placed_on: tuple | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        if self.placed_on is not None:
            set_(self, "placed_on", _grid_tuple(self.placed_on))
        set_(self, "resect_caudate", as_flag(self.resect_caudate, "resect_caudate"))
        if self.resection is not None:
            set_(self, "resection", resection_key(self.resection))
        if self.remnant_segments is not None:
            set_(self, "remnant_segments", remnant_segments_of(
                remnant_segments=self.remnant_segments, resect_caudate=self.resect_caudate))
        if self.landmarks is not None:
            set_(self, "landmarks", _landmarks_tuple(self.landmarks))
        if self.surface_points is not None:
            set_(self, "surface_points", parse_points(self.surface_points, "surface point"))
        if self.keep_point is not None:
            set_(self, "keep_point", parse_point(self.keep_point, "keep point"))
        by_segments = self.resection is not None or self.remnant_segments is not None
        if by_segments:
            remnant_segments_of(self.resection, self.remnant_segments, self.resect_caudate)
        if self.surface_points is not None:
            if by_segments or self.landmarks is not None:
                raise InputError("a plan is either a cut surface or a segment selection; "
                                 "give surface points or segments, not both.")
            if len(self.surface_points) < 3:
                raise InputError(f"a cut surface needs at least 3 points, got "
                                 f"{len(self.surface_points)}.")
            if self.keep_point is None:
                raise InputError("a cut surface needs a keep point on the remnant side "
                                 "(--keep-point x,y,z).")
            if self.resect_caudate:
                raise InputError("resect_caudate applies to a segment plan; a cut surface "
                                 "keeps or removes the caudate by the side it lies on.")
        else:
            if self.keep_point is not None:
                raise InputError("a keep point only makes sense with a resection plane or surface.")
            if not by_segments:
                what = "landmarks" if self.landmarks is not None else "nothing"
                raise InputError(f"the plan gives {what} but no remnant: name a resection "
                                 f"or the remnant segments (e.g. --resection right_hepatectomy).")

    @property
    def kind(self):
        """'surface' (plane or curved cut) or 'segments'."""
        return "surface" if self.surface_points is not None else "segments"

    @property
    def in_scan_coordinates(self):
        """Whether the plan holds points of the scan it was placed on (landmarks or a cut).

        Such a plan must be carried by registration to be used on another
        scan; a plain segment plan applies to each scan's own segment map.
        """
        return self.landmarks is not None or self.kind == "surface"

    @property
    def segments(self):
        """The remnant segments (segment plans), else None."""
        if self.kind != "segments":
            return None
        return remnant_segments_of(self.resection, self.remnant_segments, self.resect_caudate)

    @property
    def landmark_dict(self):
        """Landmarks as {name: ((x, y, z), ...)}, or None."""
        return None if self.landmarks is None else dict(self.landmarks)

    def describe(self):
        """Method facts for a result's ``methods`` (JSON-ready)."""
        d = {"kind": self.kind}
        if self.kind == "segments":
            d.update(resection=self.resection, remnant_segments=list(self.segments),
                     resect_caudate=self.resect_caudate)
            if self.landmarks is not None:
                d["landmarks"] = sorted(self.landmark_dict)
        else:
            d.update(surface="plane" if len(self.surface_points) == 3 else "thin-plate spline",
                     n_surface_points=len(self.surface_points))
        return d

    def to_dict(self):
        """The JSON form (with ``schema_version``)."""
        d = {"schema_version": PLAN_SCHEMA_VERSION, "coordinates": "physical LPS mm"}
        if self.resection is not None:
            d["resection"] = self.resection
        if self.remnant_segments is not None:
            d["remnant_segments"] = list(self.remnant_segments)
        d["resect_caudate"] = self.resect_caudate
        if self.landmarks is not None:
            d["landmarks"] = {k: [list(p) for p in v] for k, v in self.landmarks}
        if self.surface_points is not None:
            d["surface_points"] = [list(p) for p in self.surface_points]
        if self.keep_point is not None:
            d["keep_point"] = list(self.keep_point)
        if self.note:
            d["note"] = self.note
        if self.placed_on is not None:
            d["placed_on"] = self.placed_on_grid
        return d

    @property
    def placed_on_grid(self):
        """``placed_on`` as a dict of lists (``size``, ``spacing``, ``origin``,
        ``direction``; and ``voxel_sha256`` when recorded), or None."""
        if self.placed_on is None:
            return None
        d = {k: list(v) for k, v in zip(_GRID_KEYS, self.placed_on)}
        if self.placed_on[4] is not None:
            d["voxel_sha256"] = self.placed_on[4]
        return d

    def placed_on_another_scan(self, scan):
        """Whether the plan records a scan other than ``scan`` (another grid, or other
        voxels on the same grid); False when it records none. ``scan`` is a SimpleITK
        image or its :func:`placed_on_scan` (whose digest is then not computed again)."""
        from ..io import same_grid

        if self.placed_on is None:
            return False
        here = placed_on_scan(scan) if hasattr(scan, "GetSize") else scan
        if not same_grid(self.placed_on_grid, here):
            return True
        return self.placed_on[4] is not None and self.placed_on[4] != here["voxel_sha256"]

    @classmethod
    def from_dict(cls, d):
        """Read the JSON form; refuses unknown schema versions and keys.

        Examples
        --------
        >>> p = RemnantPlan(remnant_segments=(2, 3))
        >>> RemnantPlan.from_dict(p.to_dict()) == p
        True
        """
        if not isinstance(d, dict):
            raise InputError("a remnant plan must be a JSON object.")
        version = d.get("schema_version", "")
        version = version.strip() if isinstance(version, str) else version
        if not version:
            # Hand-written plans (inline in patient.json) miss it most often: say the fix.
            raise InputError(f'the remnant plan has no schema_version: add "schema_version": '
                             f'"{PLAN_SCHEMA_VERSION}" (the plan format this version reads, '
                             f'as --save-plan writes it).')
        if version not in READABLE_PLAN_VERSIONS:
            # Only the versions written: "1.banana", "1.9" or the number 1.1 had been read as
            # 1.x by their first digit.
            raise InputError(f"remnant plan schema_version {version} is not supported; this "
                             f"version reads {' or '.join(READABLE_PLAN_VERSIONS)} (a string).")
        coords = d.get("coordinates", "physical LPS mm")
        if coords != "physical LPS mm":
            raise InputError(f"remnant plan coordinates {coords!r} are not supported; "
                             f"give physical LPS mm.")
        known = set(PLAN_KEYS)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown key(s) in the remnant plan: {', '.join(unknown)}.")
        kw = {k: d[k] for k in known - {"schema_version", "coordinates"} if k in d}
        kw["resect_caudate"] = as_flag(kw.get("resect_caudate", False), "resect_caudate")
        return cls(**kw)

    def save(self, path):
        """Write the plan as JSON, atomically."""
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path):
        """Read a plan written by :meth:`save`."""
        return cls.from_dict(read_json(path, "remnant plan"))


_GRID_KEYS = ("size", "spacing", "origin", "direction")


def voxel_digest(image):
    """SHA-256 of a scan's voxel values (every second slice, third row and column, as
    float32, so the same scan read as int16 or int32 gives the same digest)."""
    import hashlib

    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(image)
    sample = np.ascontiguousarray(arr[::2, ::3, ::3], dtype=np.float32)
    return hashlib.sha256(sample.tobytes()).hexdigest()


def placed_on_scan(scan_image):
    """``placed_on`` of a plan whose points are in this scan's coordinates: its grid and
    the digest of its voxels (a scan resampled onto the grid of another is told apart).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> scan = sitk.Image([4, 4, 4], sitk.sitkInt16)
    >>> d = placed_on_scan(scan)
    >>> d["size"], len(d["voxel_sha256"])
    ([4, 4, 4], 64)
    """
    return {**_grid_dict(scan_image), "voxel_sha256": voxel_digest(scan_image)}


def _grid_dict(image):
    return {"size": list(image.GetSize()), "spacing": list(image.GetSpacing()),
            "origin": list(image.GetOrigin()), "direction": list(image.GetDirection())}


def _grid_tuple(grid):
    """A grid (dict with _GRID_KEYS and an optional voxel_sha256, or a SimpleITK image:
    its grid only) as a tuple of number tuples and the digest or None."""
    digest = None
    if hasattr(grid, "GetSize"):
        grid = _grid_dict(grid)
    if isinstance(grid, dict):
        digest = grid.get("voxel_sha256")
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64):
            raise InputError("the plan's placed_on voxel_sha256 must be a SHA-256 hex digest.")
        grid = tuple(grid.get(k) for k in _GRID_KEYS)
    elif isinstance(grid, tuple) and len(grid) == 5:
        grid, digest = grid[:4], grid[4]
    try:
        size, spacing, origin, direction = (tuple(float(v) for v in part) for part in grid)
    except (TypeError, ValueError):
        raise InputError("the plan's placed_on must give the size, spacing, origin and "
                         "direction of a scan.") from None
    if not (len(size) == len(spacing) == len(origin) == 3 and len(direction) == 9):
        raise InputError("the plan's placed_on must describe a 3-D scan grid.")
    # A NaN had been taken for "another scan" (wrong warning) and written back as a bare NaN
    # token, which strict JSON readers refuse; a size of -5 or 2.7 voxels is no grid either.
    if not all(math.isfinite(v) for part in (size, spacing, origin, direction) for v in part):
        raise InputError("the plan's placed_on holds a number that is not finite (NaN or "
                         "infinity); save the plan again from its scan.")
    if not all(v >= 1 and v == int(v) for v in size) or not all(v > 0 for v in spacing):
        raise InputError("the plan's placed_on size must be whole numbers of voxels and its "
                         "spacing positive; save the plan again from its scan.")
    return tuple(int(v) for v in size), spacing, origin, direction, digest


def read_json(path, what):
    path = os.fspath(path)
    check_exists(path, what)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh, object_pairs_hook=json_object)
    except OSError as exc:  # a folder, no permission to read
        raise InputError(f"cannot read the {what} {path} ({exc.strerror}).") from None
    except ValueError as exc:  # not JSON, not UTF-8, a key given twice
        raise InputError(f"the {what} {path} is not valid JSON ({exc}).") from None
