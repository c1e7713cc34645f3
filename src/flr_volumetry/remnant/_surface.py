"""Virtual resection: a plane through three points or a thin-plate-spline surface.

The cut surface is a height field over the best-fit plane of its points:
``w = f(u, v)`` in a frame (u, v in the plane, w along its normal), with
``f`` linear for three points and a thin-plate spline (exact through the
points) for four or more. A voxel's side is the sign of ``w - f(u, v)`` at
its centre; the keep point's side is the remnant. Remnant and resected part
partition the liver exactly (every liver voxel is in one or the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import as_image

__all__ = ["CutSurface", "cut_surface", "split_liver", "physical_points", "index_of_point",
           "point_in_mask"]


def physical_points(image, zyx):
    """Physical LPS mm of voxel centres given as (N, 3) array indices in z, y, x order."""
    idx = np.asarray(zyx, dtype=np.float64)[:, ::-1]
    d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    sp = np.asarray(image.GetSpacing(), dtype=np.float64)
    return (idx * sp) @ d.T + np.asarray(image.GetOrigin(), dtype=np.float64)


def index_of_point(image, point):
    """Nearest voxel (z, y, x) of a physical point, or None outside the image."""
    d = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    sp = np.asarray(image.GetSpacing(), dtype=np.float64)
    ijk = np.rint(d.T @ (np.asarray(point, float) - np.asarray(image.GetOrigin())) / sp)
    size = np.asarray(image.GetSize())
    if np.any(ijk < 0) or np.any(ijk >= size):
        return None
    return tuple(int(v) for v in ijk[::-1])


def point_in_mask(mask, point, tolerance_mm=0.0):
    """Whether a physical point lies in (or within ``tolerance_mm`` of) the mask."""
    arr = sitk.GetArrayViewFromImage(mask)
    if tolerance_mm <= 0:
        zyx = index_of_point(mask, point)
        return zyx is not None and bool(arr[zyx])
    # Look in a small block around the point instead of a whole-image distance map.
    sp = np.asarray(mask.GetSpacing())[::-1]
    d = np.asarray(mask.GetDirection(), dtype=np.float64).reshape(3, 3)
    ijk = (d.T @ (np.asarray(point, float) - np.asarray(mask.GetOrigin()))
           / np.asarray(mask.GetSpacing()))[::-1]
    r = np.ceil(tolerance_mm / sp).astype(int)
    lo = np.maximum(np.floor(ijk).astype(int) - r, 0)
    hi = np.minimum(np.ceil(ijk).astype(int) + r + 1, np.asarray(arr.shape))
    if np.any(lo >= hi):
        return False
    block = np.argwhere(arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]) + lo
    if not len(block):
        return False
    dist = np.linalg.norm((block - ijk) * sp, axis=1)
    return bool(dist.min() <= tolerance_mm)


@dataclass(frozen=True)
class CutSurface:
    """A cut surface as a height field ``w = f(u, v)`` over a frame."""

    origin: np.ndarray       # a point of the frame (centroid of the points)
    axes: np.ndarray         # rows: u, v, w (w is the normal) unit vectors
    rbf: object = None       # None: the plane w = 0

    def steepest_deg(self, points_mm, samples=48):
        """The steepest slope (degrees) of the surface to the frame's plane, over the
        hull of ``points_mm`` seen across it (sampled on a ``samples`` square grid).

        0 for a plane. A surface through points that turn back on themselves
        (a V deeper than wide, a fold) is no height over any plane: the
        spline then rises near 90 degrees between close points.
        """
        if self.rbf is None:
            return 0.0
        from scipy.spatial import Delaunay

        uv = ((np.asarray(points_mm, float) - self.origin) @ self.axes.T)[:, :2]
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], samples),
                                    np.linspace(lo[1], hi[1], samples)), -1).reshape(-1, 2)
        grid = grid[Delaunay(uv).find_simplex(grid) >= 0]
        h = 1e-3 * float(np.linalg.norm(hi - lo))
        du = (self.rbf(grid + [h, 0.0]) - self.rbf(grid - [h, 0.0])) / (2 * h)
        dv = (self.rbf(grid + [0.0, h]) - self.rbf(grid - [0.0, h])) / (2 * h)
        return float(np.degrees(np.arctan(np.hypot(du, dv).max())))

    def signed_distance(self, points_mm):
        """``w - f(u, v)`` in mm: positive on one side, negative on the other.

        For a plane it is the exact signed distance; for a curved surface the
        offset along the frame normal.
        """
        uvw = (np.atleast_2d(np.asarray(points_mm, float)) - self.origin) @ self.axes.T
        if self.rbf is None:
            return uvw[:, 2]
        return uvw[:, 2] - self.rbf(uvw[:, :2])


def cut_surface(points_mm):
    """Build the cut surface through ``points_mm`` (3: plane; >= 4: thin-plate spline).

    Examples
    --------
    >>> s = cut_surface([(0, 0, 0), (10, 0, 0), (0, 10, 0)])
    >>> [round(abs(float(v)), 6) for v in s.signed_distance([(3, 3, 5), (1, 2, -2)])]
    [5.0, 2.0]
    """
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 3:
        raise InputError("a cut surface needs at least three points x,y,z.")
    centre = pts.mean(axis=0)
    _, sv, vt = np.linalg.svd(pts - centre)
    # Collinear (or coincident) points span no surface: the second singular
    # value measures the spread across their common line, relative to along it.
    if sv[0] < 1e-6 or sv[1] < 0.01 * sv[0]:
        raise InputError(
            "the cut surface points are collinear (or coincide): they define no plane; "
            "place them so that they span the cut (not on one line)."
        )
    axes = vt.copy()
    if len(pts) == 3:
        return CutSurface(origin=centre, axes=axes)
    from scipy.interpolate import RBFInterpolator

    uvw = (pts - centre) @ axes.T
    uv = uvw[:, :2]
    dists = np.linalg.norm(uv[:, None] - uv[None], axis=-1)
    np.fill_diagonal(dists, np.inf)
    if dists.min() < 1e-6:
        raise InputError(
            "two cut surface points coincide when seen across the surface; remove duplicates."
        )
    rbf = RBFInterpolator(uv, uvw[:, 2], kernel="thin_plate_spline", degree=1)
    return CutSurface(origin=centre, axes=axes, rbf=rbf)


def _voxel_tolerance_mm(image):
    return 0.5 * float(np.linalg.norm(image.GetSpacing()))


# Voxel centres closer to the cut than this lie on it (rounding of points on a slice).
_ON_CUT_MM = 1e-3
# Less liver than this on the cut is below any volume reported (0.1 mL): not said.
_ON_CUT_SAID_ML = 0.05
# A cut surface steeper than this to its points' best-fit plane folds back on itself. A cut
# curving through 150 degrees stays under 65; a V deeper than wide rises to 88.
FOLDED_CUT_DEG = 80.0


def split_liver(liver, points_mm, keep_point):
    """Remnant = liver voxels on the keep point's side of the cut surface.

    Parameters
    ----------
    liver : SimpleITK.Image
        Liver mask.
    points_mm : sequence of (x, y, z)
        Three points (plane) or more (thin-plate spline), physical LPS mm.
    keep_point : (x, y, z)
        A point inside the liver on the remnant side.

    Returns
    -------
    remnant : SimpleITK.Image
        uint8; ``liver & ~remnant`` is the resected part, exactly.
    warnings : list of str

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> liver = sitk.GetImageFromArray(np.ones((4, 4, 10), np.uint8))
    >>> rem, _ = split_liver(liver, [(2.5, 0, 0), (2.5, 9, 0), (2.5, 0, 9)], (1, 1, 1))
    >>> int(sitk.GetArrayViewFromImage(rem).sum())   # x = 0, 1, 2 of 10 columns
    48
    """
    liver = as_image(liver, "liver mask")
    surface = cut_surface(points_mm)
    keep_point = np.asarray(keep_point, dtype=np.float64)
    if not point_in_mask(liver, keep_point):
        raise InputError(
            f"the keep point {tuple(round(float(c), 1) for c in keep_point)} (LPS mm) is not "
            f"inside the liver mask; place it in the part of the liver that remains."
        )
    keep_side = float(surface.signed_distance(keep_point[None])[0])
    if abs(keep_side) < _voxel_tolerance_mm(liver):
        raise InputError(
            "the keep point lies on the cut surface, so it does not tell which side remains; "
            "move it into the remnant."
        )
    arr = np.asarray(sitk.GetArrayViewFromImage(liver)) != 0
    zyx = np.argwhere(arr)
    side = surface.signed_distance(physical_points(liver, zyx))
    keep = side * np.sign(keep_side) > 0
    out = np.zeros(arr.shape, np.uint8)
    out[tuple(zyx[keep].T)] = 1
    warnings = []
    if keep.all():
        warnings.append("the cut surface does not cross the liver mask: the whole liver is "
                        "the remnant.")
    # Points clicked on one displayed slice make a plane through its voxel centres: those
    # voxels belong to neither side and go with the resection, a whole slice on thick CT.
    voxel_ml = float(np.prod(liver.GetSpacing())) / 1000.0
    on_ml = np.count_nonzero(np.abs(side) < _ON_CUT_MM) * voxel_ml
    if on_ml >= _ON_CUT_SAID_ML:
        warnings.append(f"{on_ml:.1f} mL of liver has its voxel centres on the cut itself (points "
                        f"placed on one slice make a plane through its voxels) and was counted "
                        f"as resected, not as remnant; to keep those voxels, place the cut half "
                        f"a voxel further into the resected part.")
    steepest = surface.steepest_deg(points_mm)
    if steepest > FOLDED_CUT_DEG:
        # The remnant of a folded height field matches neither side of the cut drawn.
        warnings.append(
            f"the cut surface folds back on itself (steepest {steepest:.0f} degrees to the "
            f"best-fit plane of its points): it is modelled as one height over that plane, so a "
            f"V-shaped or folded cut is not measured as drawn; check the remnant, and place "
            f"the points of a cut that faces one way."
        )
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(liver)
    return img, warnings
