"""PollPolicy: the interval clamp, the timeout, retries, the ttl backstop."""

from __future__ import annotations

import logging
import math
import random
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxtasks
from rxtasks import PollPolicy, PollTimeoutError, Retry, TaskExpiredError
from rxtasks.testing import FakeTaskServer, Step, TaskNotFound, steps

if TYPE_CHECKING:
    from .conftest import VirtualClock


async def run(server: FakeTaskServer, policy: PollPolicy | None, task_id: str = "t") -> list[Any]:
    """Poll a task to its end with a policy; return the results."""
    source = rxtasks.poll(server.get_task, task_id, policy=policy)
    return [result async for result in rxtasks.iterate(source)]


def starts(server: FakeTaskServer) -> list[float]:
    """The call times, to the microsecond."""
    return [round(call.started, 6) for call in server.calls]


# -- clamp -----------------------------------------------------------------------------------


async def test_floor_lifts_a_zero_hint(virtual_time: VirtualClock) -> None:
    """min_interval_ms protects both sides from back-to-back polling."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=0)})
    await run(server, PollPolicy(min_interval_ms=100))
    assert starts(server) == [0.0, 0.1, 0.2]


async def test_floor_below_the_hint_changes_nothing(virtual_time: VirtualClock) -> None:
    """Never faster than the server asked: a floor under its hint has no effect."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=500)})
    await run(server, PollPolicy(min_interval_ms=100))
    assert starts(server) == [0.0, 0.5, 1.0]


async def test_cap_limits_a_hint_of_hours(virtual_time: VirtualClock) -> None:
    """max_interval_ms protects against a hint that would never poll again."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=3_600_000)})
    await run(server, PollPolicy(max_interval_ms=30_000))
    assert starts(server) == [0.0, 30.0]


async def test_clamp_applies_to_the_default_too(virtual_time: VirtualClock) -> None:
    """Without a hint the default interval is clamped the same way."""
    server = FakeTaskServer({"t": steps("working", "completed")})
    await run(server, PollPolicy(max_interval_ms=200))
    assert starts(server) == [0.0, 0.2]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"min_interval_ms": -1}, ValueError),
        ({"max_interval_ms": 0}, ValueError),
        ({"timeout_ms": math.nan}, ValueError),
        ({"min_interval_ms": "1"}, TypeError),
        ({"min_interval_ms": 500, "max_interval_ms": 100}, ValueError),
    ],
)
def test_policy_refuses_bad_fields(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad fields are refused at construction, naming the field."""
    with pytest.raises(error, match="`"):
        PollPolicy(**kwargs)


# -- timeout ---------------------------------------------------------------------------------


async def test_timeout_cancels_the_hanging_call(virtual_time: VirtualClock) -> None:
    """The deadline ends the poll with PollTimeoutError; the call in flight is cancelled."""
    server = FakeTaskServer({"t": [Step("working", 1000), Step("working", latency_ms=math.inf)]})
    with pytest.raises(PollTimeoutError) as info:
        await run(server, PollPolicy(timeout_ms=5000))
    assert anyio.current_time() == 5.0
    assert info.value.task_id == "t"
    assert info.value.last_result is server.calls[0].result
    assert isinstance(info.value, TimeoutError)
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (1.0, True)]
    await anyio.sleep(100)
    assert len(server.calls) == 2


async def test_no_timeout_when_the_task_ends_in_time(virtual_time: VirtualClock) -> None:
    """A task that ends before the deadline leaves no timer behind."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=100)})
    async with rxtasks.AnyioScheduler() as scheduler:
        seen: list[Any] = []
        rxtasks.poll(server.get_task, "t", policy=PollPolicy(timeout_ms=60_000)).subscribe(
            seen.append, scheduler=scheduler
        )
    assert anyio.current_time() == 0.1  # the block did not wait for the deadline
    assert len(seen) == 2


# -- retry -----------------------------------------------------------------------------------

NO_JITTER = Retry(attempts=3, backoff_ms=100, jitter=0)


async def test_transient_errors_are_retried_with_backoff(virtual_time: VirtualClock) -> None:
    """Retries wait 100, 200, 400 ms; the results after them are emitted as usual."""
    blip = ConnectionError("blip")
    server = FakeTaskServer(
        {"t": [Step("working", 1000), Step(error=blip), Step(error=blip), Step("completed")]}
    )
    results = await run(server, PollPolicy(retry=NO_JITTER))
    assert [r.status for r in results] == ["working", "completed"]
    assert starts(server) == [0.0, 1.0, 1.1, 1.3]


async def test_retry_count_resets_after_a_success(virtual_time: VirtualClock) -> None:
    """Two failures, a success, two failures: never more than `attempts` in a row."""
    blip = ConnectionError("blip")
    script = [Step(error=blip), Step(error=blip), Step("working", 0)] * 2 + [Step("completed")]
    server = FakeTaskServer({"t": script})
    results = await run(server, PollPolicy(retry=Retry(attempts=2, backoff_ms=100, jitter=0)))
    assert [r.status for r in results] == ["working", "working", "completed"]
    assert starts(server) == [0.0, 0.1, 0.3, 0.3, 0.4, 0.6, 0.6]


async def test_exhausted_retries_raise_the_error_unchanged(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After `attempts` retries the last error ends the poll, as it was."""
    blip = ConnectionError("down")
    server = FakeTaskServer({"t": [Step(error=blip)]})
    with caplog.at_level(logging.INFO, logger="rxtasks"), pytest.raises(ConnectionError) as info:
        await run(server, PollPolicy(retry=NO_JITTER))
    assert info.value is blip
    assert starts(server) == [0.0, 0.1, 0.3, 0.7]
    assert "retry 3 of 3" in caplog.text


async def test_not_found_is_never_retried(virtual_time: VirtualClock) -> None:
    """An unknown task is permanent, even when the predicate says everything is transient."""
    server = FakeTaskServer({})
    retry = Retry(attempts=5, retry_on=lambda _: True)
    with pytest.raises(TaskNotFound):
        await run(server, PollPolicy(retry=retry), task_id="nope")
    assert len(server.calls) == 1


async def test_only_transient_types_are_retried(virtual_time: VirtualClock) -> None:
    """An error outside retry_on ends the poll at once."""
    server = FakeTaskServer({"t": [Step(error=ValueError("bug"))]})
    with pytest.raises(ValueError, match="bug"):
        await run(server, PollPolicy(retry=NO_JITTER))
    assert len(server.calls) == 1


@given(
    retry=st.integers(min_value=0, max_value=80),
    backoff=st.floats(min_value=1, max_value=1000),
    spread=st.floats(min_value=1, max_value=100),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(),
)
def test_jittered_delay_stays_in_bounds(
    retry: int, backoff: float, spread: float, jitter: float, seed: int
) -> None:
    """Every delay is within [backoff, max_backoff] and within jitter of its base."""
    policy = Retry(
        backoff_ms=backoff, max_backoff_ms=backoff * spread, jitter=jitter, rng=random.Random(seed)
    )
    base = min(backoff * 2.0 ** min(retry, 64), backoff * spread)
    delay = policy.delay_ms(retry)
    assert backoff <= delay * (1 + 1e-9)
    assert delay <= backoff * spread * (1 + 1e-9)
    # Relative bounds, and an absolute one for the rounding of a tiny jitter (a few ulps).
    assert abs(delay - base) <= base * jitter * (1 + 1e-9) + base * 1e-12


def test_retry_refuses_bad_fields() -> None:
    """Bad retry settings are refused at construction."""
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=-1)
    with pytest.raises(ValueError, match="max_backoff_ms"):
        Retry(backoff_ms=500, max_backoff_ms=100)
    with pytest.raises(ValueError, match="jitter"):
        Retry(jitter=1.5)


# -- ttl backstop ----------------------------------------------------------------------------


async def test_ttl_backstop_ends_an_expired_task(virtual_time: VirtualClock) -> None:
    """Past the ttl, the server's "not found" becomes TaskExpiredError with the last state."""
    server = FakeTaskServer({"t": steps("working", interval_ms=300)}, ttl_ms=1000)
    with pytest.raises(TaskExpiredError) as info:
        await run(server, PollPolicy())
    assert anyio.current_time() == 1.2  # the first poll after the ttl: not found
    assert starts(server) == [0.0, 0.3, 0.6, 0.9, 1.2]
    assert info.value.last_result is server.calls[-2].result
    assert isinstance(info.value.__cause__, TaskNotFound)


async def test_not_found_after_the_ttl_is_expiry(virtual_time: VirtualClock) -> None:
    """A call answered "not found" after the ttl ends with TaskExpiredError from it."""
    script = [*steps("working", "working", "working", interval_ms=300), Step(latency_ms=200)]
    server = FakeTaskServer({"t": script}, ttl_ms=1000)
    with pytest.raises(TaskExpiredError) as info:
        await run(server, PollPolicy())
    assert isinstance(info.value.__cause__, TaskNotFound)
    assert anyio.current_time() == pytest.approx(1.1, abs=1e-9)


async def test_without_policy_the_ttl_is_not_watched(virtual_time: VirtualClock) -> None:
    """The seed's behaviour: without a policy the server's not-found error ends it."""
    server = FakeTaskServer({"t": steps("working", interval_ms=300)}, ttl_ms=1000)
    with pytest.raises(TaskNotFound):
        await run(server, None)
    assert starts(server) == [0.0, 0.3, 0.6, 0.9, 1.2]


async def test_ttl_backstop_can_be_switched_off(virtual_time: VirtualClock) -> None:
    """ttl_backstop=False: the server's own answer decides."""
    server = FakeTaskServer({"t": steps("working", interval_ms=300)}, ttl_ms=1000)
    with pytest.raises(TaskNotFound):
        await run(server, PollPolicy(ttl_backstop=False))


@pytest.mark.parametrize(
    "shape", ["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]
)
async def test_ttl_is_read_from_every_shape(shape: Any, virtual_time: VirtualClock) -> None:
    """The ttl is read as ttl, ttlMs or ttl_ms, with createdAt, in models and JSON."""
    server = FakeTaskServer({"t": steps("working", interval_ms=300)}, ttl_ms=500, shape=shape)
    with pytest.raises(TaskExpiredError):
        await run(server, PollPolicy())
    assert anyio.current_time() == 0.6


def test_recommended_policy() -> None:
    """The recommended starting point has a floor, a cap and retries."""
    policy = PollPolicy.recommended()
    assert (policy.min_interval_ms, policy.max_interval_ms) == (100, 30_000)
    assert policy.retry is not None


async def test_a_hint_beyond_the_cap_is_warned_about_once(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A hint of 10**30 ms polls at the cap, with one warning for the whole poll."""
    script = [*steps("working", "working", "working", interval_ms=10**30), Step("completed")]
    server = FakeTaskServer({"t": script})
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        await run(server, PollPolicy(max_interval_ms=300))
    assert starts(server) == [0.0, 0.3, 0.6, 0.9]
    [record] = [r for r in caplog.records if "max_interval_ms" in r.getMessage()]
    assert "polling every 300 ms" in record.getMessage()
