"""Checking what callers pass: numbers of milliseconds, counts, fractions.

Every public function and class checks its arguments here, so that a bad one gets the
same errors everywhere: `ArgumentTypeError` (also a ``TypeError``) for the wrong type,
`ArgumentError` (also a ``ValueError``) for a value out of range, each naming the
argument and what it must be.
"""

from __future__ import annotations

import math
from typing import TypeVar

from ._errors import ArgumentError, ArgumentTypeError

__all__ = ["check_count", "check_fraction", "check_ms"]

_N = TypeVar("_N", int, float)


def _number(value: object, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(f"`{name}` must be a number of {unit}, got {value!r}")
    return value


def check_ms(value: _N, *, name: str, positive: bool = False) -> _N:
    """Return ``value``, a finite number of milliseconds >= 0 (> 0 if ``positive``).

    Raises:
        ArgumentTypeError: If it is not an ``int`` or ``float`` (``bool`` is not).
        ArgumentError: If it is negative, NaN, infinite, or 0 where it must be positive.
    """
    number = _number(value, name, "milliseconds")
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise ArgumentError(
            f"`{name}` must be a finite number of milliseconds {bound}, got {value!r}"
        )
    return value


def check_count(value: object, *, name: str, least: int) -> int:
    """Return ``value``, an ``int`` >= ``least``.

    Raises:
        ArgumentTypeError: If it is not an ``int`` (``bool`` is not).
        ArgumentError: If it is less than ``least``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"`{name}` must be an int, got {value!r}")
    if value < least:
        raise ArgumentError(f"`{name}` must be an int >= {least}, got {value}")
    return value


def check_fraction(value: float, *, name: str) -> float:
    """Return ``value``, a number from 0 to 1.

    Raises:
        ArgumentTypeError: If it is not an ``int`` or ``float``.
        ArgumentError: If it is not between 0 and 1.
    """
    number = _number(value, name, "a fraction")
    if not 0 <= number <= 1:
        raise ArgumentError(f"`{name}` must be a number between 0 and 1, got {value!r}")
    return value
