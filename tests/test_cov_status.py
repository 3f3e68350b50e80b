"""The status model's rarer inputs: unreadable times, huge ttls, hints that come and go."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import rxtasks
from rxtasks import PollPolicy, TaskExpiredError
from rxtasks._core._status import ResultReader, expiry_of, remaining_ttl_s
from rxtasks.testing import Task, TaskNotFound

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .conftest import VirtualClock


def scripted(results: list[Any], calls: list[float]) -> Callable[[str], Awaitable[Any]]:
    """A get_task answering ``results`` in order, then "not found"; logs its call times."""
    pending = list(results)

    async def get_task(task_id: str) -> Any:
        calls.append(anyio.current_time())
        if not pending:
            raise TaskNotFound(f"Task not found: {task_id}")
        return pending.pop(0)

    return get_task


async def test_ttl_with_unreadable_creation_time_expires_without_a_date(
    virtual_time: VirtualClock,
) -> None:
    """An unreadable ``createdAt`` leaves the whole ttl; the expiry error then names no date."""
    first = {"taskId": "t", "status": "working", "ttl": 1000, "createdAt": "yesterday"}
    calls: list[float] = []
    poll = rxtasks.poll(scripted([first], calls), "t", 2000, policy=PollPolicy())
    with pytest.raises(TaskExpiredError) as info:
        async for _ in rxtasks.iterate(poll):
            pass
    assert calls == [0.0, 2.0]
    error = info.value
    assert (error.task_id, error.last_result, error.expired_at) == ("t", first, None)
    assert "expired at" not in str(error)
    assert isinstance(error.__cause__, TaskNotFound)


async def test_not_found_before_the_ttl_passed_is_not_expiry(virtual_time: VirtualClock) -> None:
    """With no creation time the ttl counts from the response: "not found" before is bare."""
    first = {"taskId": "t", "status": "working", "ttl": 5000, "lastUpdatedAt": "2025-01-01"}
    calls: list[float] = []
    poll = rxtasks.poll(scripted([first], calls), "t", 2000, policy=PollPolicy())
    with pytest.raises(TaskNotFound):
        async for _ in rxtasks.iterate(poll):
            pass
    assert calls == [0.0, 2.0]


async def test_a_hint_that_disappears_falls_back_to_the_default(virtual_time: VirtualClock) -> None:
    """Objects of one type that stop carrying a hint are polled at the default interval."""
    calls: list[float] = []
    results = [
        SimpleNamespace(status="working", pollInterval=100),
        SimpleNamespace(status="working"),
        SimpleNamespace(status="completed"),
    ]
    seen = [r async for r in rxtasks.iterate(rxtasks.poll(scripted(results, calls), "t", 500))]
    assert seen == results
    assert calls == [0.0, 0.1, 0.6]


def test_expiry_of_needs_a_creation_time_and_a_ttl() -> None:
    """Without a readable ``createdAt`` or a ttl, there is no expiry."""
    assert expiry_of({"ttl": 1000}) is None
    assert expiry_of({"ttl": 1000, "createdAt": "not a date"}) is None
    assert expiry_of({"createdAt": "2025-01-01T00:00:00+00:00"}) is None
    assert expiry_of({"createdAt": "2025-01-01T00:00:00", "ttl": 1000}) == datetime(
        2025, 1, 1, 0, 0, 1, tzinfo=UTC
    )


def test_expiry_beyond_the_calendar_is_no_expiry() -> None:
    """A ttl of millennia (past year 9999) gives no backstop rather than an OverflowError."""
    assert expiry_of({"createdAt": "2025-01-01T00:00:00+00:00", "ttl": 10**15}) is None


def test_remaining_ttl_counts_only_the_servers_times() -> None:
    """Only ``lastUpdatedAt - createdAt`` is taken off the ttl; one time alone takes nothing."""
    created = "2025-01-01T00:00:00+00:00"
    updated = "2025-01-01T00:00:00.250000+00:00"
    assert remaining_ttl_s({"ttl": 1000, "createdAt": created, "lastUpdatedAt": updated}) == 0.75
    assert remaining_ttl_s({"ttl": 1000, "lastUpdatedAt": updated}) == 1.0
    assert remaining_ttl_s({"ttl": 1000, "createdAt": created}) == 1.0
    assert remaining_ttl_s({"ttl": None}) is None


@pytest.mark.parametrize("hint", [Fraction(10**400), Decimal("sNaN")])
def test_hints_that_cannot_become_floats_are_unusable(
    hint: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A number float() refuses (too big a fraction, a signaling NaN) means the default."""
    reader = ResultReader("t", 250)
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        assert reader.delay_seconds({"status": "working", "pollInterval": hint}) == 0.25
    assert "invalid poll interval hint" in caplog.text


def test_a_non_string_status_of_a_known_type_is_read_slowly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fast path for a result type seen before still warns about a status not a string."""
    reader = ResultReader("t", 500)
    assert not reader.terminal(Task("t", "working"))
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        assert not reader.terminal(Task("t", 3))
        assert reader.terminal(Task("t", "completed"))
    assert "unknown status 3" in caplog.text
