"""Root pytest configuration shared by the library, its tests and the napari plugin.

The real scans of ``../shared/data`` (relative to the repository root) are
used when present; set ``FLR_SHARED_DATA`` to point elsewhere. Tests that
need them take the ``shared_data`` fixture and are skipped, with the
reason, when they are absent.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s (still runs in CI)")


def shared_data_dir():
    env = os.environ.get("FLR_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path of the real-scan folder; skips the test when it is absent."""
    d = shared_data_dir()
    if not (d / "README.md").exists():
        pytest.skip(f"real scans not found at {d} (set FLR_SHARED_DATA to their folder)")
    return d
