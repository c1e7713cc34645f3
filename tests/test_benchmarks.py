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
