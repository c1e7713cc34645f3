"""Root pytest configuration shared by the library, its tests and the napari plugin."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s (still runs in CI)")
