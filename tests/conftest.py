"""Run every async test on every backend, in exact virtual time where the backend allows it.

anyio's pytest plugin (``anyio_mode = "auto"`` in pyproject.toml) runs each ``async def``
test once per ``anyio_backend`` param below:

- ``asyncio``: a ``looptime`` event loop, whose clock jumps straight to the next timer
  whenever the loop is idle and counts in integer microseconds, so sums of sleeps are exact.
- ``trio``: a fresh ``MockClock(autojump_threshold=0)`` per test, which jumps the same way.
- ``asyncio+uvloop`` (where uvloop is installed): the real clock, because uvloop's C loop
  cannot be patched. A test that asserts exact times asks for the ``virtual_time`` fixture,
  which skips this param.

Both virtual clocks start at 0 and jump whenever every task is blocked, and a task waiting
on the real world (a thread, socket or subprocess) counts as blocked: under a pending
timeout the clock jumps straight to that deadline. Keep real I/O out of virtual-time tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import looptime
import pytest
from trio.testing import MockClock

if TYPE_CHECKING:
    from collections.abc import Callable

AnyioBackend = tuple[str, dict[str, Any]]


def _new_looptime_loop() -> looptime.LoopTimeEventLoop:
    # Defaults on purpose: 1 µs resolution, and 42 no-op loop cycles before each jump so that
    # callbacks scheduled "right now" run before the clock moves.
    return looptime.new_event_loop()


# Factories, not values: each test gets a new MockClock (a shared one would carry the
# previous test's time over) and, through anyio's runner, a new looptime loop.
_BACKENDS: dict[str, Callable[[], AnyioBackend]] = {
    "asyncio": lambda: ("asyncio", {"loop_factory": _new_looptime_loop}),
    "trio": lambda: ("trio", {"clock": MockClock(autojump_threshold=0)}),
}
if find_spec("uvloop") is not None:
    _BACKENDS["asyncio+uvloop"] = lambda: ("asyncio", {"use_uvloop": True})


# Function scope, not the plugin's module scope, so that every test starts at time 0. The
# price: an async fixture cannot be wider than function scope, and a @given test must not
# name this fixture or `virtual_time` in its signature (Hypothesis' function_scoped_fixture
# health check); anyio's auto mode requests it without naming it.
@pytest.fixture(params=list(_BACKENDS))
def anyio_backend(request: pytest.FixtureRequest) -> AnyioBackend:
    """Backend name and runner options for anyio, one param per backend id."""
    return _BACKENDS[request.param]()


@dataclass(frozen=True)
class VirtualClock:
    """A marker: the test asserts exact times, so it runs only on a virtual clock.

    Request the ``virtual_time`` fixture to get one. Read the time with
    ``anyio.current_time()`` (rounded to the microsecond where sums of floats meet:
    ten ``anyio.sleep(0.1)`` on a MockClock end at 0.9999999999999999).
    """

    backend: str


_REAL_CLOCK_BACKENDS = frozenset({"asyncio+uvloop"})
_REAL_CLOCK_SKIP = (
    "asyncio+uvloop runs on the real clock; exact-time tests run on asyncio (looptime) "
    "and trio (MockClock)"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip exact-time tests on real-clock backends before any of their fixtures run."""
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and "virtual_time" in item.fixturenames
            and item.callspec.params.get("anyio_backend") in _REAL_CLOCK_BACKENDS
        ):
            item.add_marker(pytest.mark.skip(reason=_REAL_CLOCK_SKIP))


@pytest.fixture
def virtual_time(anyio_backend: AnyioBackend) -> VirtualClock:
    """The running test's clock, for exact-time assertions (skipped on asyncio+uvloop)."""
    backend, options = anyio_backend
    if options.get("use_uvloop"):  # only reachable through request.getfixturevalue()
        pytest.skip(_REAL_CLOCK_SKIP)
    return VirtualClock(backend)
