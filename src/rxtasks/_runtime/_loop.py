"""The event loop a scheduler belongs to: its clock, its sleeps, and calls from other threads."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

__all__ = ["Alarm", "LoopBinding"]

logger = logging.getLogger("rxtasks")


class LoopBinding:
    """The running event loop, bound once: its clock, sleep, thread and a way back into it.

    Looking the backend up on every call (what ``anyio.current_time()`` does) costs a
    large share of a poll, so the clock, the sleep and the checkpoint are bound here once.
    The binding also hands work over from other threads without ever blocking them on the
    loop.
    """

    __slots__ = ("_native", "checkpoint", "clock", "sleep", "thread")

    def __init__(self) -> None:
        token = anyio.lowlevel.current_token()
        native = token.native_token
        self._native: Any = native
        self.thread = threading.get_ident()
        #: The loop's clock: what ``anyio.current_time()`` returns.
        self.clock: Callable[[], float]
        #: The backend's ``sleep``.
        self.sleep: Callable[[float], Awaitable[None]]
        #: What ``sleep(0)`` does: let every other ready task run, then resume.
        self.checkpoint: Callable[[], Awaitable[None]]
        if isinstance(native, asyncio.AbstractEventLoop):
            self.clock = _asyncio_clock(native)
            self.sleep = asyncio.sleep
            self.checkpoint = _AsyncioCheckpoint
        else:
            import trio

            # trio's own functions: what anyio's trio backend calls, one call fewer.
            self.clock = trio.current_time
            self.sleep = trio.sleep
            self.checkpoint = trio.lowlevel.checkpoint

    @property
    def is_asyncio(self) -> bool:
        """Whether the loop is asyncio's (else trio's)."""
        return isinstance(self._native, asyncio.AbstractEventLoop)

    def in_loop_thread(self) -> bool:
        """Whether the caller runs in the event loop's thread."""
        return threading.get_ident() == self.thread

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` soon in the loop's thread; never blocks, keeps each thread's order.

        Returns:
            False if the loop has ended, so ``fn`` will never run.
        """
        native = self._native
        try:
            if isinstance(native, asyncio.AbstractEventLoop):
                native.call_soon_threadsafe(_start_task, native, fn)
            else:
                native.run_sync_soon(_guarded, fn)
        except RuntimeError:  # asyncio: the loop is closed; trio: RunFinishedError
            return False
        return True

    def running_native(self) -> Any:
        """The native loop (asyncio) or token (trio) if it is the one running here, else None."""
        try:
            native = anyio.lowlevel.current_token().native_token
        except RuntimeError:  # no event loop runs in this thread
            return None
        return native if native is self._native else None

    def alarm(self) -> Alarm:
        """Make an `Alarm` for this loop."""
        return _AsyncioAlarm(self._native) if self.is_asyncio else _TrioAlarm()


def _asyncio_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's ``time``: ``time.monotonic`` itself unless the loop's class replaces it.

    Event loops that keep their own time (uvloop, looptime's virtual clock) override
    ``time``; asyncio's own loops read ``time.monotonic()``, and calling it directly saves
    a Python call on every read.
    """
    method = loop.time
    if getattr(method, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return method


class _AsyncioCheckpoint:
    """What ``asyncio.sleep(0)`` awaits, without its argument checks: one bare yield.

    A task that yields nothing to the event loop is scheduled again after the callbacks
    and tasks already ready, exactly as after ``asyncio.sleep(0)``.
    """

    __slots__ = ()

    def __await__(self) -> Generator[None]:
        yield


# Tasks started by _start_task: asyncio keeps only weak references to tasks.
_hand_overs: set[asyncio.Task[None]] = set()


def _start_task(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    # A callback has no current task, and anyio (starting workers, events) needs one;
    # trio runs run_sync_soon callbacks in a task of its own already.
    task = loop.create_task(_in_task(fn))
    _hand_overs.add(task)
    task.add_done_callback(_hand_overs.discard)


async def _in_task(fn: Callable[[], None]) -> None:
    _guarded(fn)


def _guarded(fn: Callable[[], None]) -> None:
    # An exception escaping a callback from run_sync_soon crashes the whole trio run, and
    # asyncio only logs it in the loop's handler: report it as rxtasks' own bug, once.
    try:
        fn()
    except Exception:
        logger.exception("rxtasks: a callback handed over from another thread failed")


class Alarm:
    """A sleep that another task (or a callback on the loop) can end early with `wake`.

    It sleeps exactly as the backend's ``sleep`` does (``sleep(delay)`` ends when the
    SDK's loop would, in virtual time too), at the same cost.
    """

    __slots__ = ()

    async def sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds (> 0) or until `wake`; return True if woken."""
        raise NotImplementedError

    def wake(self) -> None:
        """End the current sleep now, if there is one."""
        raise NotImplementedError


class _AsyncioAlarm(Alarm):
    __slots__ = ("_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[bool] | None = None

    async def sleep(self, delay: float) -> bool:
        # What asyncio.sleep does (a future and call_later), with the future kept.
        future: asyncio.Future[bool] = self._loop.create_future()
        self._future = future
        handle = (
            None if delay == math.inf else self._loop.call_later(delay, _resolve, future, False)
        )
        try:
            return await future
        finally:
            self._future = None
            if handle is not None:
                handle.cancel()

    def wake(self) -> None:
        future = self._future
        if future is not None:
            _resolve(future, True)


def _resolve(future: asyncio.Future[bool], woken: bool) -> None:
    if not future.done():
        future.set_result(woken)


class _TrioAlarm(Alarm):
    __slots__ = ("_scope", "_woken")

    def __init__(self) -> None:
        self._scope: Any = None
        self._woken = False

    async def sleep(self, delay: float) -> bool:
        import trio

        # What trio.sleep does: a deadline on a scope around sleep_forever.
        with trio.CancelScope(deadline=trio.current_time() + delay) as scope:
            self._scope = scope
            self._woken = False
            try:
                await trio.sleep_forever()
            finally:
                self._scope = None
        return self._woken

    def wake(self) -> None:
        scope = self._scope
        if scope is not None:
            self._woken = True
            scope.cancel()
