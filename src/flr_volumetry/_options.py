"""Options given as their dataclass, a plain dict of its fields, or None (the defaults)."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from .errors import InputError


def as_options(value, cls, what="options"):
    """``value`` as an instance of the dataclass ``cls``.

    None gives the defaults; a dict (e.g. read from a JSON or YAML file) gives
    ``cls(**value)``, an unknown key refused in a sentence naming the fields.

    Examples
    --------
    >>> @dataclasses.dataclass
    ... class Options:
    ...     k: float = 2.0
    >>> as_options({"k": 3.0}, Options)
    Options(k=3.0)
    >>> as_options({"kk": 3.0}, Options)
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: options has no field 'kk'; its fields: k.
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise InputError(f"{what} has no field {unknown[0]!r}; its fields: "
                             f"{', '.join(fields)}.")
        return cls(**value)
    raise InputError(f"{what} must be a {cls.__name__} (or a dict of its fields), not "
                     f"{type(value).__name__}.")


def check_field_types(options, what="options"):
    """Refuse, in one sentence, a field of the dataclass ``options`` whose value is not
    of its declared kind (``bool``, ``int``, ``float``, ``str``, optionally ``| None``).

    Options read from a JSON, YAML or CSV file arrive as text: ``"false"`` is a true
    value and ``"3"`` no number, so they are refused rather than used as they are.
    Numbers must be finite; ``float`` fields take whole numbers too.

    Examples
    --------
    >>> @dataclasses.dataclass
    ... class Options:
    ...     fast: bool = False
    ...     k: float = 2.0
    >>> check_field_types(Options(k=3))
    >>> check_field_types(Options(fast="false"))
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: options field fast must be True or False, not 'false'.
    >>> check_field_types(Options(k="3"))
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: options field k must be a finite number, not '3'.
    """
    import numpy as np

    for f in dataclasses.fields(options):
        kinds = {k.strip() for k in str(f.type).split("|")}
        value = getattr(options, f.name)
        if value is None and "None" in kinds:
            continue
        if "bool" in kinds:
            if not isinstance(value, (bool, np.bool_)):
                raise InputError(f"{what} field {f.name} must be True or False, not {value!r}.")
        elif "int" in kinds:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise InputError(f"{what} field {f.name} must be a whole number, not "
                                 f"{value!r}.")
        elif "float" in kinds:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value):
                raise InputError(f"{what} field {f.name} must be a finite number, not "
                                 f"{value!r}.")
        elif "str" in kinds and not isinstance(value, str):
            raise InputError(f"{what} field {f.name} must be text, not {value!r}.")


def as_flag(value, what):
    """``value`` as a bool: true/false, 1/0 or their strings ("false" is False, where
    ``bool("false")`` is True, as read from a JSON, YAML or CSV file); anything else is
    refused.

    Examples
    --------
    >>> as_flag("false", "resect_caudate"), as_flag(1, "resect_caudate")
    (False, True)
    >>> as_flag("maybe", "resect_caudate")
    Traceback (most recent call last):
    ...
    flr_volumetry.errors.InputError: resect_caudate must be true or false, got 'maybe'.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputError(f"{what} must be true or false, got {value!r}.")
