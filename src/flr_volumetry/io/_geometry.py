"""Grid comparisons and deliberate resampling of masks onto a scan's grid."""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from ..errors import GeometryError

# Tolerances: headers written by different tools round spacings, origins and
# direction cosines differently; 1e-4 of a spacing, 1e-2 of a voxel (origin) and
# 1e-4 of a cosine are far below anything that changes which voxel a point falls in.
_SPACING_RTOL = 1e-4
_ORIGIN_ATOL_VOXELS = 1e-2
_DIRECTION_ATOL = 1e-4


def grid_description(image):
    """Size, spacing, origin and direction of ``image`` (or of a grid dict, as
    :func:`same_grid` takes) in one line.

    The direction is given when it is not the identity: two grids that differ only in
    it (a flipped axis) had been described alike, so a refusal named two equal grids.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> img = sitk.Image([3, 3, 3], sitk.sitkUInt8)
    >>> grid_description(img)
    '3x3x3 voxels at 1,1,1 mm, origin (0.0,0.0,0.0)'
    >>> img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    >>> grid_description(img)
    '3x3x3 voxels at 1,1,1 mm, origin (0.0,0.0,0.0), direction (-1,0,0,0,1,0,0,0,1)'
    """
    size, spacing, origin, direction = _grid(image)
    sp = ",".join(f"{s:g}" for s in spacing)
    org = ",".join(f"{o:.1f}" for o in origin)
    text = f"{'x'.join(str(s) for s in size)} voxels at {sp} mm, origin ({org})"
    direction = np.asarray(direction, float)
    if not np.allclose(direction, np.eye(len(size)).ravel(), atol=_DIRECTION_ATOL):
        text += f", direction ({','.join(f'{d:.3g}' for d in direction + 0.0)})"
    return text


def _grid(x):
    """(size, spacing, origin, direction) of an image, or of a dict with those keys."""
    if isinstance(x, dict):
        return tuple(x[k] for k in ("size", "spacing", "origin", "direction"))
    return x.GetSize(), x.GetSpacing(), x.GetOrigin(), x.GetDirection()


def same_voxels(a, b):
    """Whether two grids hold the same voxel centres, whatever the order of their axes.

    dcm2niix, for one, stores a DICOM series with its y axis flipped: another grid
    (origin, direction), but the same voxels, so that resampling one onto the other
    moves none. ``a`` and ``b`` are images or grid dicts, as for :func:`same_grid`.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([4, 3, 2], sitk.sitkUInt8)
    >>> a.SetSpacing((1.0, 2.0, 3.0))
    >>> same_voxels(a, sitk.Flip(a, [False, True, False]))   # flipped, same voxels
    True
    >>> b = sitk.Image(a)
    >>> b.SetOrigin((0.5, 0.0, 0.0))                        # half a voxel off
    >>> same_voxels(a, b)
    False
    """
    (size_a, sa, oa, da), (size_b, sb, ob, db) = _grid(a), _grid(b)
    n = len(size_a)
    if len(size_b) != n:
        return False
    # Columns: the physical step of one index along each axis.
    step_a = np.reshape(np.asarray(da, float), (n, n)) * np.asarray(sa, float)
    step_b = np.reshape(np.asarray(db, float), (n, n)) * np.asarray(sb, float)
    try:
        to_b = np.linalg.solve(step_b, np.column_stack([step_a, np.subtract(oa, ob)]))
    except np.linalg.LinAlgError:
        return False
    turn, start = to_b[:, :n], to_b[:, n]
    perm = np.rint(turn)
    if not (np.allclose(turn, perm, atol=_DIRECTION_ATOL + _SPACING_RTOL)
            and (np.abs(perm).sum(axis=0) == 1).all() and (np.abs(perm).sum(axis=1) == 1).all()
            and np.allclose(start, np.rint(start), atol=_ORIGIN_ATOL_VOXELS)):
        return False
    # The two corners of a, in b's indices, must be b's corners.
    ends = np.stack([start, start + perm @ (np.asarray(size_a, float) - 1)])
    return bool(np.allclose(ends.min(axis=0), 0, atol=_ORIGIN_ATOL_VOXELS)
                and np.allclose(ends.max(axis=0), np.asarray(size_b, float) - 1,
                                atol=_ORIGIN_ATOL_VOXELS))


def same_grid(a, b):
    """Whether two images share size, spacing, origin and direction.

    ``a`` and ``b`` may also be dicts with the keys ``size``, ``spacing``,
    ``origin`` and ``direction`` (a grid kept without its voxels).

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> a = sitk.Image([3, 3, 3], sitk.sitkUInt8)
    >>> b = sitk.Image([3, 3, 3], sitk.sitkUInt8)
    >>> same_grid(a, b)
    True
    >>> b.SetSpacing((1, 1, 2))
    >>> same_grid(a, b)
    False
    """
    (size_a, sa, oa, da), (size_b, sb, ob, db) = _grid(a), _grid(b)
    if tuple(size_a) != tuple(size_b):
        return False
    sa, sb = np.array(sa), np.array(sb)
    if not np.allclose(sa, sb, rtol=_SPACING_RTOL, atol=0):
        return False
    if not np.allclose(oa, ob, rtol=0, atol=_ORIGIN_ATOL_VOXELS * sa.min()):
        return False
    return bool(np.allclose(da, db, rtol=0, atol=_DIRECTION_ATOL))


def foreground_physical_box(mask_array_zyx, image):
    """Physical corners of the bounding box of non-zero voxels (None when empty)."""
    nz = np.nonzero(mask_array_zyx)
    if nz[0].size == 0:
        return None
    lo = [int(nz[d].min()) for d in (2, 1, 0)]
    hi = [int(nz[d].max()) for d in (2, 1, 0)]
    return np.array([
        image.TransformIndexToPhysicalPoint(list(idx))
        for idx in itertools.product(*zip(lo, hi))
    ])


def points_inside(points_mm, image, margin_voxels=0.5):
    """Whether every physical point lies inside the image (with a half-voxel margin)."""
    for p in points_mm:
        ci = np.array(image.TransformPhysicalPointToContinuousIndex([float(x) for x in p]))
        size = np.array(image.GetSize())
        if np.any(ci < -margin_voxels) or np.any(ci > size - 1 + margin_voxels):
            return False
    return True


def resample_mask_to(mask, reference, *, what="mask"):
    """Nearest-neighbour resampling of a binary ``mask`` onto ``reference``'s grid.

    Returns the resampled mask and a warning sentence that states the volume
    before and after, so that the change of grid is never silent; the warning is
    None when the two grids hold the same voxels in another axis order (a mask
    stored flipped or permuted, as by dcm2niix), which are placed exactly. Raises
    :class:`GeometryError` when the mask's foreground does not lie inside
    the reference image.
    """
    arr = sitk.GetArrayViewFromImage(mask)
    box = foreground_physical_box(arr, mask)
    if box is None:
        raise GeometryError(f"the {what} is empty: it has no non-zero voxel.")
    if not points_inside(box, reference, margin_voxels=1.0):
        raise GeometryError(
            f"the {what} ({grid_description(mask)}) does not cover the same physical region "
            f"as the image ({grid_description(reference)}); check that it belongs to this scan."
        )
    before_ml = float(np.count_nonzero(arr)) * float(np.prod(mask.GetSpacing())) / 1000.0
    out = sitk.Resample(
        sitk.Cast(mask, sitk.sitkUInt8), reference, sitk.Transform(), sitk.sitkNearestNeighbor,
        0, sitk.sitkUInt8,
    )
    if same_voxels(mask, reference):
        # Every voxel lands on one of the image's: nothing changed to warn about (the
        # warning had said "2127.8 mL before, 2127.8 mL after" for a mask stored flipped).
        return out, None
    after_ml = float(np.count_nonzero(sitk.GetArrayViewFromImage(out))) * float(
        np.prod(reference.GetSpacing())) / 1000.0
    warning = (
        f"the {what} was on another grid ({grid_description(mask)}) and was resampled by "
        f"nearest neighbour onto the image grid ({grid_description(reference)}): "
        f"{before_ml:.1f} mL before, {after_ml:.1f} mL after."
    )
    return out, warning
