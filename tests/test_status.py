"""The status model: terminal statuses, result shapes, interval hints."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxtasks import TERMINAL_STATUSES, InvalidResultError, is_terminal
from rxtasks._core._status import ResultReader
from rxtasks.testing import FakeTaskServer, Shape, Step

SHAPES: list[Shape] = ["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]


def result(shape: Shape, status: object = "working", hint: object = None) -> Any:
    """Build a result of the given shape, as a fake server would."""
    return FakeTaskServer({"t": [Step(status, hint)]}, shape=shape).result("t", Step(status, hint))


def test_terminal_statuses() -> None:
    """Completed, failed and cancelled are terminal; working and input_required are not."""
    assert frozenset({"completed", "failed", "cancelled"}) == TERMINAL_STATUSES
    assert all(is_terminal(status) for status in TERMINAL_STATUSES)
    assert not is_terminal("working")
    assert not is_terminal("input_required")
    assert not is_terminal("Completed")


@pytest.mark.parametrize("shape", SHAPES)
def test_reads_every_shape(shape: Shape) -> None:
    """Status and hint are read from every result shape of both protocol revisions."""
    reader = ResultReader("t", 500)
    assert reader.status(result(shape, "input_required", 250)) == "input_required"
    assert reader.delay_seconds(result(shape, "working", 250)) == 0.25
    assert reader.delay_seconds(result(shape, "working", None)) == 0.5


def test_reads_snake_case_dicts() -> None:
    """A dict dumped from an SDK model with python names is read too."""
    reader = ResultReader("t", 500)
    assert reader.delay_seconds({"status": "working", "poll_interval": 100}) == 0.1
    assert reader.delay_seconds({"status": "working", "poll_interval_ms": 200}) == 0.2


def test_hint_is_read_afresh_from_every_result() -> None:
    """The interval may change during a task (both revisions allow it)."""
    reader = ResultReader("t", 500)
    delays = [reader.delay_seconds(result("mcp1", "working", ms)) for ms in (100, None, 0, 3000)]
    assert delays == [0.1, 0.5, 0.0, 3.0]


def test_missing_status_is_a_clear_error() -> None:
    """A result without a status names the likely mistake and keeps the result."""
    reader = ResultReader("t1", 500)
    bad = {"task": {"taskId": "t1", "status": "working"}}
    with pytest.raises(InvalidResultError, match="no `status`") as info:
        reader.status(bad)
    assert info.value.result is bad
    assert info.value.task_id == "t1"
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "hint", [-1, -0.5, math.nan, math.inf, -math.inf, True, False, "500", [500], 10**400]
)
def test_invalid_hint_falls_back_to_default(hint: object, caplog: pytest.LogCaptureFixture) -> None:
    """An unusable hint gives the default, with one warning however often it comes."""
    reader = ResultReader("t1", 250)
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        delays = [reader.delay_seconds(result("mcp1", "working", hint)) for _ in range(3)]
    assert delays == [0.25, 0.25, 0.25]
    assert len(caplog.records) == 1
    assert "t1" in caplog.records[0].getMessage()
    assert "invalid poll interval hint" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("hint", "seconds"), [(Decimal(1500), 1.5), (Fraction(1, 2), 0.0005)])
def test_other_real_numbers_are_valid_hints(hint: object, seconds: float) -> None:
    """Any finite real number of milliseconds >= 0 is a hint."""
    assert ResultReader("t", 500).delay_seconds({"status": "working", "pollInterval": hint}) == (
        seconds
    )


@given(st.integers(min_value=0, max_value=10**12) | st.floats(min_value=0, max_value=1e12))
def test_valid_hints_are_used_as_the_sdk_uses_them(hint: float) -> None:
    """A valid hint gives exactly the seconds the SDK's loop sleeps: ``hint / 1000``."""
    assert ResultReader("t", 500).delay_seconds(result("mcp1", "working", hint)) == hint / 1000


@given(
    st.one_of(
        st.integers(max_value=-1),
        st.floats(max_value=-1e-300) | st.just(math.nan) | st.just(math.inf),
        st.booleans(),
        st.text(),
        st.lists(st.integers()),
    )
)
def test_any_invalid_hint_gives_the_default(hint: object) -> None:
    """No invalid hint crashes the reader or leaks through."""
    assert ResultReader("t", 500).delay_seconds(result("json-extension", "working", hint)) == 0.5


@pytest.mark.parametrize("status", ["unknown", "COMPLETED", None, 3, ["completed"]])
def test_unknown_status_is_not_terminal(status: object, caplog: pytest.LogCaptureFixture) -> None:
    """An unknown status is not terminal, and is warned about once."""
    reader = ResultReader("t1", 500)
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        assert not reader.is_terminal(status)
        assert not reader.is_terminal(status)
    assert len(caplog.records) == 1
    assert "unknown status" in caplog.records[0].getMessage()


def test_known_statuses_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """The five statuses of the protocol log nothing."""
    reader = ResultReader("t1", 500)
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        terminal = [
            reader.is_terminal(s)
            for s in ("working", "input_required", "completed", "failed", "cancelled")
        ]
    assert terminal == [False, False, True, True, True]
    assert caplog.records == []
