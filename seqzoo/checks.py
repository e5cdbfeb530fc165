"""Argument checks shared by seqzoo's layers, losses and models.

Each raises `ValueError` naming the argument and the value received, as in
`Expected a positive integer. Received: units=0`.
"""

import numpy as np

from seqzoo.errors import ArgumentError


def check_positive_int(name, value, allow_none=False):
    """Returns `value` as an int; raises unless it is an integer >= 1 (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"Expected a positive integer. Received: {name}={value!r}")
    return int(value)


def check_choice(name, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ArgumentError(f"Expected {name} to be one of {list(choices)}. "
                            f"Received: {name}={value!r}")
    return value


def check_rate(name, value):
    """Raises unless `0 <= value < 1` (a dropout rate)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ArgumentError(f"Expected 0 <= {name} < 1. Received: {name}={value!r}")
    return value
