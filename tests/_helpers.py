"""Helpers several test modules share: work from another thread, actions that log."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactivex import abc

T = TypeVar("T")


def in_thread(fn: Callable[[], T], *, timeout_s: float = 10.0) -> T:
    """Run ``fn`` in a new thread and join it; return what it returned, raise what it raised.

    Called from the event loop's thread, the join blocks the loop meanwhile: a virtual
    clock cannot move before the work the thread hands over is queued, and a thread that
    waits for the loop never ends, which fails the test after ``timeout_s`` instead of
    hanging it.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "the thread waited for the event loop"
    if errors:
        raise errors[0]
    return results[0]


def record(log: list[tuple[str, float]], name: str) -> abc.ScheduledAction[Any]:
    """An action that logs its name and the loop time."""

    def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        log.append((name, anyio.current_time()))

    return action
