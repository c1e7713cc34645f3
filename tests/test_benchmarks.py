"""The benchmark scripts still fit the package: every name they import from it exists.

They run only under ``make benchmarks``; without this check a renamed
function breaks them silently until someone runs them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py")) + sorted(
    (REPO / "plugins" / "napari" / "benchmarks").glob("*.py"))


def _package_imports(path):
    """(module, name) for every ``from flr_volumetry... import name`` in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flr_volumetry"):
            for alias in node.names:
                yield node.module, alias.name


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_imports_exist(path):
    modules = {}  # names bound to package modules, e.g. `from flr_volumetry import phantoms`
    for module, name in _package_imports(path):
        mod = importlib.import_module(module)
        submodule = hasattr(mod, "__path__") and importlib.util.find_spec(f"{module}.{name}")
        assert hasattr(mod, name) or submodule, (
            f"{path.name} imports {name} from {module}, which has no such name")
        if submodule:
            modules[name] = importlib.import_module(f"{module}.{name}")
    # ... and every attribute used on them, e.g. `phantoms.to_image(...)`.
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            assert hasattr(modules[node.value.id], node.attr), (
                f"{path.name} uses {node.value.id}.{node.attr}, which does not exist")


def test_segmentation_benchmark_finds_every_case_laid_out_like_the_shared_ones(tmp_path):
    # Only ct-whole-liver and CHAOS cases 1 and 2 were read: a reader's own cases (or more
    # CHAOS cases) in the same layout were silently left out of the table.
    import sys

    import numpy as np
    import SimpleITK as sitk

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from segmentation_accuracy import shared_cases, tumour_cases
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    def write(path, arr):
        path.parent.mkdir(parents=True, exist_ok=True)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((2.0, 2.0, 3.0))
        sitk.WriteImage(img, str(path))

    labels = np.zeros((20, 8, 8), np.uint8)
    labels[5:15, 2:6, 2:6] = 1
    write(tmp_path / "my-ct" / "ct.nii.gz", np.full((20, 8, 8), 50, np.int16))
    write(tmp_path / "my-ct" / "labels.nii.gz", labels)
    with_lesion = labels.copy()
    with_lesion[8:10, 3:5, 3:5] = 2
    write(tmp_path / "other-ct" / "ct.nii.gz", np.full((20, 8, 8), 50, np.int16))
    write(tmp_path / "other-ct" / "labels.nii.gz", with_lesion)
    for n in (3, 11):
        write(tmp_path / "mr-chaos-t2" / f"image_{n}.nii.gz", np.ones((20, 8, 8), np.float32))
        write(tmp_path / "mr-chaos-t2" / f"label_{n}.nii.gz", labels.astype(np.float32))
    write(tmp_path / "mr-chaos-t2" / "image_4.nii.gz", np.ones((20, 8, 8), np.float32))

    found = [(name, mode) for name, mode, *_ in shared_cases(tmp_path)]
    assert ("my-ct", "auto CT") in found and ("my-ct", "1 seed CT") in found
    assert ("other-ct", "1 seed CT") in found
    mr = [name for name, mode in found if mode == "1 seed MR"]
    assert mr == ["mr-chaos-t2/3", "mr-chaos-t2/11"]  # numeric order; image_4 has no label
    assert [c[0] for c in tumour_cases(tmp_path)][:1] == ["other-ct (lesions)"]


def test_scanner_variants_keep_the_reference_with_its_scan():
    # The variants table compares Dice across perturbed copies: a reference shifted or
    # rescaled against its copy of the scan would read as the method's failure.
    import sys

    import numpy as np
    import SimpleITK as sitk

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from segmentation_accuracy import VARIANT_MR_RAMP, scanner_variants
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    arr = np.full((12, 30, 30), 100.0, np.float32)
    lab = np.zeros(arr.shape, np.uint8)
    lab[2:10, 6:24, 6:24] = 1
    arr[lab > 0] = 300.0
    img, ref = sitk.GetImageFromArray(arr), sitk.GetImageFromArray(lab)
    for x in (img, ref):
        x.SetSpacing((1.0, 1.0, 2.5))
        x.SetOrigin((-10.0, 5.0, 30.0))
    mm3 = float(lab.sum()) * 2.5

    variants = {name: rest for name, *rest in scanner_variants(img, ref, ref, "mr")}
    assert sorted(variants) == ["noise +5 %", "pixels x1.5", "ramp +-20 % along i",
                                "ramp +-20 % along j", "slices x2"]
    for name, (image, reference, seed_region) in variants.items():
        assert image.GetSize() == reference.GetSize() == seed_region.GetSize(), name
        assert image.GetOrigin() == reference.GetOrigin(), name
        a = sitk.GetArrayFromImage(image)
        r = sitk.GetArrayFromImage(reference) > 0
        volume = r.sum() * float(np.prod(reference.GetSpacing()))
        assert abs(volume - mm3) <= 0.15 * mm3, (name, volume, mm3)
        # The liver of each copy is where its reference says: brighter than around it.
        assert np.median(a[r]) > 2 * np.median(a[~r]), name
    ramp = sitk.GetArrayFromImage(variants["ramp +-20 % along i"][0])
    # A coil's fall-off: the same tissue -+ the ramp at the two ends of the i axis.
    assert np.isclose(ramp[5, 15, 0] / ramp[5, 15, 29],
                      (1 - VARIANT_MR_RAMP) / (1 + VARIANT_MR_RAMP))
    # Slices are doubled only while they stay thin (CHAOS's 7.7 mm would become 15 mm).
    for x in (img, ref):
        x.SetSpacing((1.0, 1.0, 4.0))
    assert "slices x2" not in [name for name, *_ in scanner_variants(img, ref, ref, "mr")]
