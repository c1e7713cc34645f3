"""Sample data: the synthetic study of ``flr_volumetry.phantoms`` (no real patient).

Each sample opens one synthetic patient, baseline and follow-up, with its
liver, tumour and segment masks, exactly as the reader opens a patient's
folder of a study.
"""

from __future__ import annotations

from pathlib import Path

from flr_volumetry import InputError

from ._reader import read_patient

__all__ = ["sample_study_folder", "sample_p001", "sample_p002", "sample_p003"]

_CACHE = None


def sample_study_folder():
    """Folder of the synthetic study (written once per session by the core package)."""
    global _CACHE
    try:
        from flr_volumetry import phantoms
    except ImportError as exc:
        raise InputError(
            "the sample study needs flr_volumetry.phantoms, which this installation of "
            "flr-volumetry does not have yet; update flr-volumetry."
        ) from exc
    if _CACHE is None or not Path(_CACHE).is_dir():
        _CACHE = Path(phantoms.sample_study())  # generated once, then cached by the core
    return Path(_CACHE)


def _patient(index):
    study = sample_study_folder()
    patients = sorted(p for p in study.iterdir() if (p / "patient.json").exists())
    if len(patients) <= index:
        raise InputError(f"the sample study in {study} has only {len(patients)} patients.")
    return read_patient(patients[index])


def sample_p001():
    """Synthetic patient 1: adequate hypertrophy after PVE."""
    return _patient(0)


def sample_p002():
    """Synthetic patient 2: inadequate hypertrophy after PVE."""
    return _patient(1)


def sample_p003():
    """Synthetic patient 3: ALPPS."""
    return _patient(2)
