"""open_stream's edges: a source that overflows while subscribed, errors with a context."""

from __future__ import annotations

import pytest
import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

import rxtasks
from rxtasks import BufferOverflowError


async def test_overflow_during_subscribe_ends_the_stream_and_ignores_the_rest() -> None:
    """A source emitting past the buffer as it is subscribed: the buffered item, then the error."""
    emitted: list[int] = []

    def subscribe(
        observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        for i in range(4):
            emitted.append(i)
            observer.on_next(i)
        observer.on_completed()
        return Disposable()

    got: list[int] = []
    with pytest.raises(BufferOverflowError) as info:  # noqa: PT012
        async with rxtasks.open_stream(reactivex.create(subscribe), buffer=1) as items:
            async for item in items:
                got.append(item)  # noqa: PERF401 -- kept on error
    assert got == [0]
    assert emitted == [0, 1, 2, 3]
    assert info.value.buffer == 1


async def test_a_pending_pipeline_error_keeps_the_bodys_own_context() -> None:
    """The body's error, raised while handling another, keeps that one as its context."""
    subject = Subject[int]()
    pipeline_error = ConnectionError("the pipeline broke")
    original = KeyError("handled")
    with pytest.raises(ValueError, match="the body failed") as info:  # noqa: PT012
        async with rxtasks.open_stream(subject):
            subject.on_error(pipeline_error)
            try:
                raise original
            except KeyError:
                raise ValueError("the body failed") from None
    error = info.value
    assert error.__context__ is original
    notes: list[str] = getattr(error, "__notes__", [])
    assert any("the pipeline broke" in note for note in notes), notes
