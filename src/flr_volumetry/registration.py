"""Carrying a remnant plan from the baseline scan to a follow-up scan.

Two methods (:class:`RegistrationOptions`):

``rigid`` (default)
    Rigid registration of the *scans* (Mattes mutual information inside the
    follow-up liver dilated by 15 mm: hilum, vena cava, hepatic and portal
    veins, the liver's edges), started from the scanners' coordinates and
    from the livers' centres of mass, keeping the better fit. It follows
    the patient's position and the vessels that define a plan (Couinaud
    landmarks, a cut along the middle hepatic vein), and not the change of
    the liver's shape.
``deformable``
    Mask-driven: the two liver masks as signed distance maps (mm, clipped)
    on an isotropic working grid, registered by a similarity transform, an
    affine one and symmetric-forces demons. It brings the baseline outline
    onto the follow-up outline (Dice about 0.98), but that is the wrong
    correspondence for a plan: after PVE/ALPPS the remnant grows and the
    resected liver shrinks *around* the fixed vessels, so warping the
    outline drags the cut into the grown remnant. On the synthetic PVE and
    ALPPS phantoms the follow-up FLR from a carried baseline plan was off
    by 7-28 % with it (``benchmarks/registration_accuracy.py``), and an
    audit found a landmark plan of the ALPPS phantom 2.5 times too large at
    Dice 0.979; within 2.3 % with ``rigid``. It is kept for scans without
    usable intensities (masks only) and for comparison. (A cubic B-spline
    stage, tried first for it, reached a lower Dice, 0.979 vs 0.985 on the
    first PVE phantom, about 20 times slower than the demons.)

Quality is the Dice of the warped baseline liver against the follow-up liver
(on the follow-up grid); below ``min_dice`` the plan is not carried and an
:class:`~flr_volumetry.errors.InputError` says so. With ``rigid`` this Dice
also drops with real hypertrophy (0.89-0.95 on the phantoms), so the
default threshold, 0.80, only refuses clear misregistrations.

A registration transform maps *follow-up* (fixed) points to *baseline*
(moving) points, the direction images are resampled in. Plan points live
at baseline, so they are mapped by inverting it: rigid and affine parts
exactly, a deformable part by fixed-point iteration (the residual is
reported).

Segment plans without landmarks need no registration: every timepoint uses
its own segment map. Cut planes are carried as surfaces: points sampled on
the plane where it crosses the baseline liver are mapped one by one (a
thin-plate spline at follow-up), so a deformable transform can bend it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

from ._options import as_options, check_field_types
from .errors import InputError, itk_reason
from .io._geometry import same_grid
from .io._images import as_image, reference_image
from .remnant import RemnantPlan, cut_surface
from .remnant._surface import physical_points, point_in_mask

__all__ = ["RegistrationOptions", "RegistrationReport", "register_livers", "register_scans",
           "carry_plan",
           "map_points", "dice"]


@dataclass(frozen=True)
class RegistrationOptions:
    """Settings of the mask-driven registration.

    Attributes
    ----------
    method : {'rigid', 'deformable'}
        'rigid': the scans themselves (mutual information, a box around the
        follow-up liver), which follows the vessels that define the plan.
        'deformable': the liver masks (distance maps: similarity, affine,
        demons), which follows the liver's outline.
    min_dice : float
        Refuse to carry a plan when the warped baseline liver overlaps the
        follow-up liver less than this (Dice).
    working_spacing_mm : float
        Isotropic spacing of the distance maps that are registered.
    clip_mm : float
        Distances are clipped to +- this, so the surfaces drive the fit.
    demons_iterations : int
        Iterations of the deformable (demons) step; 0 stops after the affine.
    demons_smoothing : float
        Gaussian smoothing of the demons displacement field, in working
        voxels (larger: stiffer).
    iterations : int
        Optimiser iterations per stage and level.
    sampling : float
        Fraction of working voxels (random, fixed seed) the metric uses.
    """

    method: str = "rigid"
    min_dice: float = 0.80
    working_spacing_mm: float = 3.0
    clip_mm: float = 20.0
    demons_iterations: int = 80
    demons_smoothing: float = 1.5
    iterations: int = 100
    sampling: float = 0.15

    def __post_init__(self):
        check_field_types(self, "registration options")
        if self.method not in ("rigid", "deformable"):
            raise InputError(f"registration method must be 'rigid' or 'deformable', not "
                             f"{self.method!r}.")
        if not 0 < self.min_dice <= 1:
            raise InputError(f"the minimum registration Dice (min_dice, --min-registration-dice) must be in "
                             f"(0, 1], got {self.min_dice}.")
        if self.working_spacing_mm <= 0 or self.clip_mm <= 0 or self.iterations < 1:
            raise InputError("working spacing, clip distance and iterations must be positive.")
        if not 0 < self.sampling <= 1:
            raise InputError(f"sampling must be in (0, 1], got {self.sampling}.")
        if self.demons_iterations < 0 or self.demons_smoothing <= 0:
            raise InputError("demons iterations must be 0 (affine only) or more, and the "
                             "smoothing positive.")


@dataclass(frozen=True)
class RegistrationReport:
    """How well the baseline liver was brought onto the follow-up liver.

    The Dice figures compare the baseline liver mask, moved by a transform,
    with the follow-up liver mask (NaN when no registration ran: a segment
    plan needs none).

    Attributes
    ----------
    dice : float
        With the transform used (the deformable one when it did better).
    dice_affine : float
        With the affine step alone.
    dice_before : float
        Without any transform (the scans' own alignment).
    min_dice : float
        The lowest ``dice`` accepted (``accepted`` is False below it).
    method : str
        The steps run ("none" when not registered).
    point_residual_mm : float or None
        Largest error of inverting the transform at the plan's points.
    n_points : int
        How many plan points were carried.
    warnings : tuple of str
    """

    dice: float
    dice_affine: float
    dice_before: float
    min_dice: float
    method: str
    point_residual_mm: float | None = None
    n_points: int = 0
    warnings: tuple = field(default_factory=tuple)

    @property
    def registered(self):
        """False for a plan carried without registration (segment plans)."""
        return not self.method.startswith("none")

    @property
    def accepted(self):
        return not self.registered or self.dice >= self.min_dice

    def to_dict(self):
        """JSON-ready (no NaN: a figure that was not computed is None)."""
        def num(v):
            return None if v is None or v != v else float(v)

        return {"dice": num(self.dice), "dice_affine": num(self.dice_affine),
                "dice_before": num(self.dice_before), "min_dice": self.min_dice,
                "method": self.method, "point_residual_mm": self.point_residual_mm,
                "n_points": self.n_points, "warnings": list(self.warnings)}


def dice(a, b):
    """Dice overlap of two masks on the same grid.

    Examples
    --------
    >>> import numpy as np, SimpleITK as sitk
    >>> a = sitk.GetImageFromArray(np.array([[[1, 1, 0, 0]]], np.uint8))
    >>> b = sitk.GetImageFromArray(np.array([[[0, 1, 1, 0]]], np.uint8))
    >>> dice(a, b)
    0.5
    """
    x = sitk.GetArrayViewFromImage(a) != 0
    y = sitk.GetArrayViewFromImage(b) != 0
    s = int(x.sum()) + int(y.sum())
    return 2.0 * int(np.count_nonzero(x & y)) / s if s else 1.0


# A Dice this close above min_dice is accepted with a warning.
NEAR_THRESHOLD_DICE = 0.03

# Smaller than this (mL), a liver mask gives the registration nothing to align (ITK then
# fails on grids of no extent).
MIN_LIVER_ML = 1.0


def _binary(mask, what):
    arr = sitk.GetArrayViewFromImage(mask)
    if not np.any(arr):
        raise InputError(f"the {what} liver mask is empty: it has no non-zero voxel.")
    ml = int(np.count_nonzero(arr)) * float(np.prod(mask.GetSpacing())) / 1000.0
    if ml < MIN_LIVER_ML:
        raise InputError(f"the {what} liver mask holds {ml:.3g} mL, too little to register "
                         f"(a liver is hundreds of mL).")
    return sitk.Cast(mask != 0, sitk.sitkUInt8)


def _grid_around(mask, spacing_mm, margin_mm):
    """An isotropic, axis-aligned grid covering the mask plus a margin; and its centroid."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(mask)
    x0, y0, z0, sx, sy, sz = stats.GetBoundingBox(1)
    corners = [mask.TransformIndexToPhysicalPoint((x, y, z))
               for x in (x0, x0 + sx - 1) for y in (y0, y0 + sy - 1) for z in (z0, z0 + sz - 1)]
    lo = np.min(corners, axis=0) - margin_mm
    hi = np.max(corners, axis=0) + margin_mm
    size = [int(np.ceil((h - l) / spacing_mm)) + 1 for l, h in zip(lo, hi)]
    ref = sitk.Image(size, sitk.sitkUInt8)
    ref.SetSpacing([spacing_mm] * 3)
    ref.SetOrigin(tuple(float(v) for v in lo))
    return ref, np.asarray(stats.GetCentroid(1))


def _distance_map(mask, spacing_mm, clip_mm, margin_mm):
    """Clipped signed distance (mm, negative inside) on an isotropic grid around the mask."""
    ref, _ = _grid_around(mask, spacing_mm, margin_mm)
    # Area-weighted downsampling: the fraction of liver in each working voxel.
    frac = sitk.Resample(sitk.Cast(mask, sitk.sitkFloat32), ref, sitk.Transform(),
                         sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    binary = sitk.Cast(frac > 0.5, sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(binary)):
        binary = sitk.Cast(frac > 0, sitk.sitkUInt8)
    sdm = sitk.SignedMaurerDistanceMap(binary, insideIsPositive=False, squaredDistance=False,
                                       useImageSpacing=True)
    return sitk.Clamp(sdm, sitk.sitkFloat32, -clip_mm, clip_mm)


def _method(sampling, shrink):
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMeanSquares()
    reg.SetInterpolator(sitk.sitkLinear)
    # A fixed seed keeps runs reproducible; the distance maps are smooth, so
    # a fraction of the voxels estimates the metric well.
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed=20240601)
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel([max(s - 1, 0) for s in shrink])
    return reg


def _register(fixed, moving, transform, iterations, shrink, sampling):
    reg = _method(sampling, shrink)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=iterations,
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving)
    return transform


def _warp_dice(transform, baseline_liver, followup_liver):
    warped = sitk.Resample(baseline_liver, followup_liver, transform, sitk.sitkNearestNeighbor,
                           0, sitk.sitkUInt8)
    return dice(warped, followup_liver)


def register_livers(baseline_liver, followup_liver, options=None):
    """Register the baseline liver mask to the follow-up liver mask.

    Returns
    -------
    transform : SimpleITK.Transform
        Maps follow-up (fixed) points to baseline (moving) points.
    report : RegistrationReport
        Without point figures (see :func:`carry_plan`).
    """
    options = as_options(options, RegistrationOptions, "registration options")
    base = _binary(baseline_liver, "baseline")
    follow = _binary(followup_liver, "follow-up")
    sp, clip = options.working_spacing_mm, options.clip_mm
    fixed = _distance_map(follow, sp, clip, margin_mm=clip + 2 * sp)
    moving = _distance_map(base, sp, clip, margin_mm=clip + 2 * sp)
    dice_before = _warp_dice(sitk.Transform(3, sitk.sitkIdentity), base, follow)

    similarity = sitk.Similarity3DTransform()
    init = sitk.CenteredTransformInitializer(sitk.Cast(follow, sitk.sitkFloat32),
                                             sitk.Cast(base, sitk.sitkFloat32),
                                             sitk.Euler3DTransform(),
                                             sitk.CenteredTransformInitializerFilter.MOMENTS)
    similarity.SetCenter(init.GetCenter())
    similarity.SetTranslation(init.GetTranslation())
    _register(fixed, moving, similarity, options.iterations, [4, 2, 1], options.sampling)
    affine = sitk.AffineTransform(3)
    affine.SetCenter(similarity.GetCenter())
    affine.SetMatrix(similarity.GetMatrix())
    affine.SetTranslation(similarity.GetTranslation())
    _register(fixed, moving, affine, options.iterations, [2, 1], options.sampling)
    dice_affine = _warp_dice(affine, base, follow)
    transform, method = affine, "mask distance maps: similarity, affine"
    if options.demons_iterations:
        # Deformable step: symmetric-forces demons between the affinely
        # aligned distance maps (seconds, where a B-spline optimisation took
        # minutes for the same Dice).
        aligned = sitk.Resample(moving, fixed, affine, sitk.sitkLinear, clip, sitk.sitkFloat32)
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(options.demons_iterations)
        demons.SetStandardDeviations(options.demons_smoothing)
        demons.SetMaximumUpdateStepLength(1.0)
        field = demons.Execute(fixed, aligned)
        deformable = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
        # Applied right to left: follow-up point -> demons -> affine -> baseline.
        composite = sitk.CompositeTransform([affine, deformable])
        if _warp_dice(composite, base, follow) >= dice_affine:
            transform = composite
            method += f", demons ({options.demons_iterations} iterations)"
    d = _warp_dice(transform, base, follow)
    return transform, RegistrationReport(dice=d, dice_affine=dice_affine,
                                         dice_before=dice_before, min_dice=options.min_dice,
                                         method=method)


def register_scans(baseline_image, baseline_liver, followup_image, followup_liver,
                   options=None):
    """Rigid registration of the baseline scan to the follow-up scan around the liver.

    Mattes mutual information on the scans (resampled to about 2 mm),
    inside the follow-up liver dilated by 15 mm (vessels, hilum, vena cava
    and the liver's edges), multi-resolution; started both from the
    scanners' own coordinates and from the livers' centres of mass, keeping
    the better fit.

    Returns
    -------
    transform : SimpleITK.Euler3DTransform
        Maps follow-up (fixed) points to baseline (moving) points.
    report : RegistrationReport
    """
    options = as_options(options, RegistrationOptions, "registration options")
    base = _binary(baseline_liver, "baseline")
    follow = _binary(followup_liver, "follow-up")
    # Work on ~2 mm isotropic grids in boxes around the livers: the metric
    # looks nowhere else, the vessels and edges that drive it are wider than
    # 2 mm, and it keeps a 512x512x300 CT fast. The moving box has room for
    # the patient to have moved.
    step = max(2.0, min(follow.GetSpacing()))
    grid_f, centre_f = _grid_around(follow, step, 15.0 + step)
    grid_m, centre_b = _grid_around(base, step, 60.0)
    fixed = sitk.Resample(followup_image, grid_f, sitk.Transform(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    region = sitk.BinaryDilate(
        sitk.Resample(follow, grid_f, sitk.Transform(), sitk.sitkNearestNeighbor, 0),
        [max(1, int(round(15.0 / step)))] * 3)
    moving = sitk.Resample(baseline_image, grid_m, sitk.Transform(), sitk.sitkLinear, 0.0,
                           sitk.sitkFloat32)
    dice_before = _warp_dice(sitk.Transform(3, sitk.sitkIdentity), base, follow)
    best, failures = None, []
    for start in ("scanner", "centres"):
        t = sitk.Euler3DTransform()
        t.SetCenter(tuple(float(c) for c in centre_f))
        if start == "centres":
            t.SetTranslation(tuple(float(c) for c in centre_b - centre_f))
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
        reg.SetMetricFixedMask(region)
        # Every voxel of the box: it is small, and random subsets of it made
        # the coarse levels too noisy to converge.
        reg.SetMetricSamplingStrategy(reg.NONE)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=2.0, minStep=1e-3, numberOfIterations=options.iterations,
            relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel([4, 2, 1])
        reg.SetSmoothingSigmasPerLevel([2, 1, 0])
        reg.SetInitialTransform(t, inPlace=True)
        try:
            reg.Execute(fixed, moving)
            value = reg.MetricEvaluate(fixed, moving)
        except RuntimeError as exc:
            # E.g. scanner origins hundreds of mm apart: from there the scans do not
            # overlap at all ('all samples map outside'); the other start may still work.
            failures.append(f"{start}: {itk_reason(exc)}")
            continue
        if best is None or value < best[0]:
            best = (value, t, start)
    if best is None:
        raise InputError(
            f"the baseline scan could not be registered to the follow-up scan from either "
            f"start ({'; '.join(failures)}); check that both liver masks hold the liver.")
    _, transform, start = best
    d = _warp_dice(transform, base, follow)
    return transform, RegistrationReport(
        dice=d, dice_affine=d, dice_before=dice_before, min_dice=options.min_dice,
        method=f"rigid, mutual information of the scans around the liver (start: {start})")


def _affine_part(transform):
    if isinstance(transform, sitk.CompositeTransform):
        return sitk.AffineTransform(transform.GetNthTransform(0))
    return sitk.AffineTransform(transform)


def map_points(transform, points_mm, *, iterations=50, tol_mm=0.01):
    """Map baseline points to follow-up points through a follow-up->baseline transform.

    Solves ``transform(q) = p`` for each baseline point ``p``: exactly for
    an affine transform, by fixed-point iteration for a composite one.

    Returns
    -------
    mapped : (N, 3) ndarray
    residual_mm : float
        The largest ``|transform(q) - p|`` left.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> t = sitk.TranslationTransform(3, (5.0, 0.0, 0.0))   # follow-up x -> baseline x + 5
    >>> q, r = map_points(t, [(15.0, 0.0, 0.0)])
    >>> q.round(6).tolist(), r
    ([[10.0, 0.0, 0.0]], 0.0)
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    try:
        inverse = _affine_part(transform).GetInverse()
    except RuntimeError:
        inverse = transform.GetInverse()
    out = np.array([inverse.TransformPoint(tuple(p)) for p in pts])
    for _ in range(iterations):
        fwd = np.array([transform.TransformPoint(tuple(q)) for q in out])
        err = pts - fwd
        if np.abs(err).max(initial=0) < tol_mm:
            break
        out = out + err
    fwd = np.array([transform.TransformPoint(tuple(q)) for q in out])
    residual = float(np.linalg.norm(pts - fwd, axis=1).max(initial=0.0))
    return out, residual


def _surface_samples(plan, liver, n_per_axis=7):
    """Points on the plan's cut surface where it crosses the liver, spread evenly."""
    surface = cut_surface(plan.surface_points)
    arr = sitk.GetArrayViewFromImage(liver) != 0
    zyx = np.argwhere(arr)
    p = physical_points(liver, zyx)
    d = surface.signed_distance(p)
    near = p[np.abs(d) < 0.75 * max(liver.GetSpacing())]
    if len(near) < 3:
        # The cut misses the liver: carry its own points.
        return np.asarray(plan.surface_points)
    # Project onto the surface along its frame normal, then bin in (u, v).
    uvw = (near - surface.origin) @ surface.axes.T
    off = surface.signed_distance(near)
    on = near - off[:, None] * surface.axes[2][None]
    uv = uvw[:, :2]
    edges = [np.linspace(uv[:, i].min(), uv[:, i].max() + 1e-6, n_per_axis + 1) for i in (0, 1)]
    iu = np.digitize(uv[:, 0], edges[0]) - 1
    iv = np.digitize(uv[:, 1], edges[1]) - 1
    samples = [on[(iu == i) & (iv == j)].mean(axis=0)
               for i in range(n_per_axis) for j in range(n_per_axis)
               if np.any((iu == i) & (iv == j))]
    points = np.vstack([np.asarray(samples), np.asarray(plan.surface_points)])
    # Symmetric bins can give the same centroid twice; a spline needs distinct points.
    keep = [0]
    for i in range(1, len(points)):
        if np.linalg.norm(points[keep] - points[i], axis=1).min() > 1.0:
            keep.append(i)
    return points[keep]


def _keep_point_at_followup(points, keep, liver):
    """The mapped keep point, moved into the follow-up liver on its own side if needed."""
    surface = cut_surface(points)
    side = float(surface.signed_distance(keep[None])[0])
    tol = float(np.linalg.norm(liver.GetSpacing()))
    if point_in_mask(liver, keep) and abs(side) > tol:
        return keep, None
    arr = sitk.GetArrayViewFromImage(liver) != 0
    p = physical_points(liver, np.argwhere(arr))
    d = surface.signed_distance(p)
    ok = (np.sign(d) == np.sign(side)) & (np.abs(d) > tol)
    if not ok.any():
        raise InputError("after registration no follow-up liver remains on the keep side of "
                         "the cut; check the plan and the follow-up liver mask.")
    best = p[ok][np.argmin(np.linalg.norm(p[ok] - keep, axis=1))]
    return best, ("the mapped keep point fell outside the follow-up liver (or on the cut); "
                  "the nearest follow-up liver point on the same side was used instead.")


def carry_plan(plan, baseline_image, baseline_liver, followup_image, followup_liver, *,
               options=None):
    """The baseline plan in follow-up coordinates, with the registration's quality.

    Parameters
    ----------
    plan : RemnantPlan
        Placed on the baseline scan.
    baseline_image, followup_image : Scan, SimpleITK.Image or None
        The scans, on their masks' grids. Without them the mask-driven
        method is used instead of the rigid one, with a warning.
    baseline_liver, followup_liver : SimpleITK.Image or Mask
        Liver masks of the two scans.
    options : RegistrationOptions, optional

    Returns
    -------
    plan : RemnantPlan
        Landmarks or cut surface in the follow-up scan's physical space
        (segment plans without landmarks are returned unchanged).
    report : RegistrationReport

    Raises
    ------
    InputError
        When the registration's Dice is below ``options.min_dice``.
    """
    options = as_options(options, RegistrationOptions, "registration options")
    if not isinstance(plan, RemnantPlan):
        raise InputError("carry_plan needs a RemnantPlan.")
    baseline_image = reference_image(baseline_image, "baseline image")
    followup_image = reference_image(followup_image, "follow-up image")
    baseline_liver = as_image(baseline_liver, "baseline liver mask")
    followup_liver = as_image(followup_liver, "follow-up liver mask")
    from .volumetry import check_mask  # (volumetry is above registration)

    # A scan in a mask's place (the images first, then the masks) had been registered for
    # half a minute before "Dice 0.095".
    check_mask(baseline_liver, "baseline liver mask")
    check_mask(followup_liver, "follow-up liver mask")
    for img, liver, when in ((baseline_image, baseline_liver, "baseline"),
                             (followup_image, followup_liver, "follow-up")):
        if img is not None and not same_grid(img, liver):
            # The whole grid, not only the size: a mask of the right size at another origin
            # had failed later as 'could not be registered well (Dice 0.734)'.
            raise InputError(f"the {when} liver mask is not on the {when} scan's grid; load it "
                             f"with load_mask(..., reference=scan).")
    if not plan.in_scan_coordinates:
        # Nothing registered, so no Dice (1.0 had been reported, as if measured).
        return plan, RegistrationReport(dice=float("nan"), dice_affine=float("nan"),
                                        dice_before=float("nan"),
                                        min_dice=options.min_dice,
                                        method="none: segment plans use each scan's own map")
    warnings = []
    if options.method == "rigid" and (baseline_image is None or followup_image is None):
        # Without the scans only the outlines are left to register.
        warnings.append("the scans were not given, so the plan was carried by registering the "
                        "liver outlines, which drags a vessel-defined plan along with the "
                        "changing outline (on the synthetic phantoms the FLR came out from 20 % "
                        "too small to 2.5 times too large); give both scans for the rigid "
                        "registration.")
        options = replace(options, method="deformable")
    if options.method == "rigid":
        transform, report = register_scans(baseline_image, baseline_liver, followup_image,
                                           followup_liver, options)
    else:
        transform, report = register_livers(baseline_liver, followup_liver, options)
    if not report.accepted:
        raise InputError(
            f"the baseline liver could not be registered well to the follow-up liver (Dice "
            f"{report.dice:.3f} < {options.min_dice:g}); check both liver masks, or place the "
            f"plan on the follow-up scan directly."
        )
    if report.dice < options.min_dice + NEAR_THRESHOLD_DICE:
        # Accepted, but barely: an audit carried a plan onto a liver grown 40 % at Dice 0.805
        # and the FLR came out 8.6 % small.
        warnings.append(f"the registration only just passed (Dice {report.dice:.3f}, threshold "
                        f"{options.min_dice:g}): check the carried plan on the follow-up scan.")
    if plan.kind == "segments":
        lm = plan.landmark_dict
        names = [n for n in lm for _ in lm[n]]
        mapped, residual = map_points(transform, np.vstack([lm[n] for n in lm]))
        new = {}
        for name, q in zip(names, mapped):
            new.setdefault(name, []).append(q.tolist())
        carried = replace(plan, landmarks=new, placed_on=followup_liver)
        n_points = len(mapped)
    else:
        samples = _surface_samples(plan, _binary(baseline_liver, "baseline"))
        mapped, residual = map_points(transform, np.vstack([samples, [plan.keep_point]]))
        surface, keep = mapped[:-1], mapped[-1]
        keep, warning = _keep_point_at_followup(surface, keep, _binary(followup_liver,
                                                                        "follow-up"))
        if warning:
            warnings.append(warning)
        carried = replace(plan, surface_points=[tuple(p) for p in surface],
                          keep_point=tuple(keep), placed_on=followup_liver)
        n_points = len(mapped)
    if residual > 1.0:
        warnings.append(f"mapping the plan's points left up to {residual:.1f} mm of residual "
                        f"(the deformation is hard to invert there).")
    report = replace(report, point_residual_mm=residual, n_points=n_points,
                     warnings=tuple(warnings))
    return carried, report
