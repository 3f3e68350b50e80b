"""Events from any thread, handled in the event loop's thread in the order they happened."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._await import Runtime

__all__ = ["Inbox"]


class Inbox:
    """Hand an observer's events over to the loop's thread, never blocking the emitter.

    reactivex operators call observers while holding their own locks (``merge`` does), so
    an emitting thread must never wait for the loop, which may be waiting for that very
    lock. Events are queued in the order they are emitted, whatever the thread, and
    handled in that order in the loop's thread: a completion emitted on the loop after
    items from another thread is handled after them, so none is lost.

    Args:
        runtime: The loop's runtime, to hand the queue over with.
        handle: Called in the loop's thread with each event (``kind``, ``value``).
    """

    __slots__ = ("_events", "_handle", "_runtime", "_thread")

    def __init__(self, runtime: Runtime, handle: Callable[[int, Any], None]) -> None:
        self._runtime = runtime
        self._handle = handle
        self._events: deque[tuple[int, Any]] = deque()
        self._thread = threading.get_ident()

    def post(self, kind: int, value: Any) -> None:
        """Queue an event from any thread; in the loop's thread, handle the queue now."""
        events = self._events
        if threading.get_ident() == self._thread:
            if not events:  # nothing from other threads waits: the common case
                self._handle(kind, value)
                return
            events.append((kind, value))
            self.drain()
        else:
            events.append((kind, value))  # deque.append is atomic
            self._runtime.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        """Handle every queued event, in order (in the loop's thread)."""
        events = self._events
        while events:
            try:
                kind, value = events.popleft()
            except IndexError:  # a nested drain took it
                return
            self._handle(kind, value)
