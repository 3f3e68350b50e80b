"""Argument checks: the same errors, in rxtasks' tree, for every public entry point."""

from __future__ import annotations

import math
from typing import Any

import pytest

import rxtasks
from rxtasks import ArgumentError, ArgumentTypeError, RxTasksError
from rxtasks._core._validate import check_count, check_fraction, check_ms


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ArgumentError),
        (math.nan, ArgumentError),
        (math.inf, ArgumentError),
        (True, ArgumentTypeError),
        ("1", ArgumentTypeError),
        (None, ArgumentTypeError),
    ],
)
def test_milliseconds(value: Any, error: type[Exception]) -> None:
    """A number of milliseconds is finite and >= 0; the error names the argument."""
    with pytest.raises(error, match="`default_interval_ms` must be a"):
        check_ms(value, name="default_interval_ms")
    assert check_ms(0, name="x") == 0
    assert check_ms(2.5, name="x") == 2.5
    with pytest.raises(ArgumentError, match="> 0"):
        check_ms(0, name="x", positive=True)


def test_the_errors_are_rxtasks_and_builtin_ones() -> None:
    """Callers may catch ValueError/TypeError, or rxtasks' own base class."""
    assert issubclass(ArgumentError, ValueError)
    assert issubclass(ArgumentError, RxTasksError)
    assert issubclass(ArgumentTypeError, TypeError)
    assert issubclass(ArgumentTypeError, ArgumentError)


def test_counts_and_fractions() -> None:
    """Counts are whole and at least their bound, fractions from 0 to 1."""
    assert check_count(3, name="n", least=1) == 3
    with pytest.raises(ArgumentError, match="`n` must be an int >= 1, got 0"):
        check_count(0, name="n", least=1)
    with pytest.raises(ArgumentTypeError, match="`n` must be an int, got True"):
        check_count(True, name="n", least=0)
    assert check_fraction(1, name="f") == 1
    with pytest.raises(ArgumentError, match="`f` must be a number between 0 and 1"):
        check_fraction(1.5, name="f")


@pytest.mark.parametrize(
    "call",
    [
        lambda: rxtasks.poll(lambda _: None, "t", -1),  # type: ignore[arg-type,return-value]
        lambda: rxtasks.poll_many(lambda _: None, [], max_in_flight=0),  # type: ignore[arg-type,return-value]
        lambda: rxtasks.PollPolicy(min_interval_ms=-5),
        lambda: rxtasks.PollPolicy(min_interval_ms=10, max_interval_ms=5),
        lambda: rxtasks.Retry(jitter=2),
        lambda: rxtasks.Retry(attempts=-1),
        lambda: rxtasks.server_timer(lambda _: None, "t", math.nan),  # type: ignore[arg-type,return-value]
    ],
)
def test_every_entry_point_raises_argument_error(call: Any) -> None:
    """Each public entry point checks its arguments the same way."""
    with pytest.raises(ArgumentError):
        call()
