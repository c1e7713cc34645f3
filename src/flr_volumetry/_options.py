"""Options given as their dataclass, a plain dict of its fields, or None (the defaults)."""

from __future__ import annotations

import dataclasses

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
