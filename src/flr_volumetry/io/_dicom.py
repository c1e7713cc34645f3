"""DICOM series folders as scanners and PACS really export them.

Placeholder interface, filled in by the DICOM reader work: see
``read_dicom_series``.
"""

from __future__ import annotations

from ..errors import InputError


def read_dicom_series(folder, series_uid=None):
    """Read one DICOM series from ``folder`` into a :class:`~flr_volumetry.io.Scan`."""
    raise InputError(f"reading DICOM folders such as {folder} is not available yet.")
