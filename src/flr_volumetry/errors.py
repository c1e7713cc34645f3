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


def itk_reason(exc):
    """The gist of an ITK exception, for the end of a one-sentence message.

    ITK's messages run over several lines (source file, line, class); the
    'ITK ERROR: ...' line, else the last, says what went wrong.

    Examples
    --------
    >>> itk_reason(RuntimeError("Exception thrown in SimpleITK ReadImage: /src/x.cxx:9:\\n"
    ...                         "ITK ERROR: NiftiImageIO(0x1): Negative spacing."))
    'Negative spacing'
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "ITK ERROR" in ln:
            return ln.split(":", 2)[-1].strip().rstrip(".")
    return lines[-1].rstrip(".") if lines else "no reason given"


def json_object(pairs):
    """``object_pairs_hook`` for ``json.load``: a JSON object as a dict, refusing a key
    given twice (``json`` would keep the last silently: a height typed twice, 170 then
    100, must not pass as 100).

    Examples
    --------
    >>> import json
    >>> json.loads('{"height_cm": 170, "height_cm": 100}', object_pairs_hook=json_object)
    Traceback (most recent call last):
    ...
    ValueError: the key 'height_cm' is given twice
    """
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"the key {key!r} is given twice")
        obj[key] = value
    return obj


def check_exists(path, what=None):
    """Raise :class:`InputError` when ``path`` does not exist, saying so of a broken
    or looping symbolic link too (which ``os.path.exists`` calls missing, although
    the user can see it in the folder).

    Examples
    --------
    >>> check_exists("/no/such/scan.nii.gz", "mask")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: the mask /no/such/scan.nii.gz does not exist.
    """
    import os

    path = os.fspath(path)
    if os.path.exists(path):
        return
    if not path:
        # An argument given as "" had been said to be " does not exist."
        raise InputError(f"the {what or 'file'} path given is empty; name a file.")
    name = f"the {what} {path}" if what else path
    if os.path.islink(path):
        raise InputError(f"{name} is a symbolic link whose target {os.readlink(path)} cannot be "
                         f"reached (missing, or a loop of links).")
    raise InputError(f"{name} does not exist.")


def as_path(value, what, hint=""):
    """``value`` (str or os.PathLike) as a path string; anything else refused in one sentence
    that begins with ``what`` (which function reads or writes which file) and ends with
    ``hint`` (what to do instead), if any.

    A SimpleITK image, a numpy array or None passed where a file is named had raised
    ``os.fspath``'s bare TypeError from inside the reader.

    Examples
    --------
    >>> as_path(None, "read_seg_nrrd reads a .seg.nrrd file")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: read_seg_nrrd reads a .seg.nrrd file given by its path (str or pathlib.Path), not NoneType.
    """
    import os

    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"{what} given by its path (str or pathlib.Path), not "
                         f"{type(value).__name__}{'; ' + hint if hint else ''}.")
    return os.fspath(value)
