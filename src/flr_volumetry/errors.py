"""Errors the user can act on.

Every problem with the user's input is raised as :class:`InputError` (or a
subclass) whose message is one plain sentence saying what is wrong and how to
fix it. The command line prints that sentence and exits non-zero; it never
shows a traceback for these (``--debug`` shows one).
"""


class InputError(ValueError):
    """A problem with the user's input, described in one plain sentence."""


class GeometryError(InputError):
    """A mask or image whose grid does not match what it must match."""


class ClinicalInputError(InputError):
    """Implausible or inconsistent clinical data (height, weight, dates)."""
