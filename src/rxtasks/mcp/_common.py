"""What the adapters of every SDK share: notifications as an observable, and `poll` wiring."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex.subject import Subject

from .._many import poll_many as _poll_many
from .._observable import poll as _poll

if TYPE_CHECKING:
    from collections.abc import Iterable

    from reactivex import Observable, abc

    from .._policy import PollPolicy

__all__ = ["PushedStatuses", "TaskAdapter"]

logger = logging.getLogger("rxtasks.mcp")

T = TypeVar("T")


class PushedStatuses(Generic[T]):
    """A hot observable of the task states a server pushes, fed by the SDK's session.

    One per session: every `poll` subscribes and picks out its own task by id. The
    notifications come from the session's receive loop, on the event loop's thread.
    """

    def __init__(self) -> None:
        self._subject: Subject[T] = Subject()

    @property
    def observable(self) -> Observable[T]:
        """The pushed task states, for every task of the session."""
        return self._subject

    def push(self, task: T) -> None:
        """Hand one pushed task state to the subscribers."""
        self._subject.on_next(task)


class TaskAdapter(ABC, Generic[T]):
    """The operations `rxtasks.poll` needs from a task server, for one session.

    Subclasses implement `get_task`, `cancel_task` and `start` for one SDK and protocol
    revision; `poll` wires them together with the pushed statuses.
    """

    def __init__(self, notifications: PushedStatuses[Any] | None) -> None:
        self.notifications = notifications

    @abstractmethod
    async def start(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = None
    ) -> str:
        """Call a tool so that the server runs it as a task; return the task id."""

    @abstractmethod
    async def get_task(self, task_id: str) -> T:
        """Return the task's current state (``tasks/get``)."""

    @abstractmethod
    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``)."""

    def poll(
        self,
        task_id: str,
        default_interval_ms: float = 500,
        *,
        cancel_on_dispose: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        policy: PollPolicy | None = None,
    ) -> Observable[T]:
        """Poll the task at the server's pace, racing its pushed statuses, if any.

        Args:
            task_id: The task, as `start` returned it.
            default_interval_ms: Interval when the server suggests none, in milliseconds.
            cancel_on_dispose: Send ``tasks/cancel`` (best effort) when the subscription
                is disposed before the task is terminal.
            scheduler: As for `rxtasks.poll`.
            policy: As for `rxtasks.poll`.

        Returns:
            The cold observable of `rxtasks.poll`.
        """
        return _poll(
            self.get_task,
            task_id,
            default_interval_ms,
            scheduler=scheduler,
            notifications=self.notifications.observable if self.notifications else None,
            cancel_task=self.cancel_task if cancel_on_dispose else None,
            policy=policy,
        )

    def poll_many(
        self,
        task_ids: Iterable[str] | Observable[str],
        default_interval_ms: float = 500,
        *,
        max_in_flight: int | None = None,
        cancel_on_dispose: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        policy: PollPolicy | None = None,
    ) -> Observable[T]:
        """Poll many tasks as one stream (`rxtasks.poll_many`), with the pushed statuses.

        Args:
            task_ids: The tasks, as `start` returned them: an iterable or an observable.
            default_interval_ms: Interval when the server suggests none, in milliseconds.
            max_in_flight: At most this many ``tasks/get`` in flight at once.
            cancel_on_dispose: Send ``tasks/cancel`` for each task not terminal when the
                subscription is disposed.
            scheduler: As for `rxtasks.poll`.
            policy: As for `rxtasks.poll`, for each task.

        Returns:
            The cold observable of `rxtasks.poll_many`.
        """
        return _poll_many(
            self.get_task,
            task_ids,
            default_interval_ms,
            policy=policy,
            max_in_flight=max_in_flight,
            scheduler=scheduler,
            notifications=self.notifications.observable if self.notifications else None,
            cancel_task=self.cancel_task if cancel_on_dispose else None,
        )

    def __repr__(self) -> str:
        pushes = "with pushed statuses" if self.notifications else "polling only"
        return f"<{type(self).__qualname__} {pushes}>"
