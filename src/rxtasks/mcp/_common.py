"""What the adapters of every SDK share: notifications as an observable, and `poll` wiring."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import anyio
import reactivex
from pydantic import ValidationError
from reactivex import operators as ops
from reactivex.subject import Subject

from .._core._errors import (
    ArgumentError,
    InvalidResultError,
    TaskExpiredError,
    TaskNotFoundError,
)
from .._core._status import id_and_state, task_id_of
from .._poll import parts as _parts
from .._poll.fused import poll as _poll
from .._poll.many import poll_many as _poll_many
from ._ref import TaskRef

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import BaseModel
    from reactivex import Observable, abc

    from .._poll.policy import PollPolicy

__all__ = ["PushedStatuses", "TaskAdapter", "read_task"]

logger = logging.getLogger("rxtasks.mcp")

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")

#: The wire names of a task's fields that rxtasks' own reader checks, with its documented
#: fallbacks (an unusable hint: the default interval; an unusable ttl: no backstop). They
#: reach it as the server sent them, never coerced or rejected by a model first.
_AS_SENT = ("pollInterval", "pollIntervalMs", "ttl", "ttlMs")


def read_task(model: type[M], raw: object, *, request: str, task_id: str | None = None) -> M:
    """Read a task state from a server's JSON leniently: check what must be valid only.

    The SDKs' models validate, coerce or reject every field before rxtasks sees it: mcp
    1.x rejects a hint of ``250.0``, mcp 2.x reads ``true`` as 1 ms, and one odd field
    costs the whole answer. Here only the task id and the status must be strings; the
    poll-interval hint and the ttl are kept as sent (the core reads them, with its
    documented fallbacks and one warning per problem); any other field the model
    rejects is kept as sent too.

    Args:
        model: The SDK's model of a task (or rxtasks' own, for the tasks extension).
        raw: The JSON object the server answered.
        request: The request it answered, for messages (``tasks/get``).
        task_id: The id asked for, if any, for messages.

    Returns:
        The model, holding what the server sent.

    Raises:
        InvalidResultError: If ``raw`` is not an object, or its task id or status is
            missing or not a string.
    """
    if not isinstance(raw, dict):
        raise _malformed(request, f"not a JSON object: {_short(raw)}", raw, task_id)
    fields = cast("dict[str, Any]", raw)
    for name in ("taskId", "status"):
        value = fields.get(name)
        if not isinstance(value, str):
            what = "no" if name not in fields else f"a {type(value).__name__}"
            detail = "" if name not in fields else f" ({_short(value)})"
            why = f"{what} `{name}`{detail}; it must be a string"
            raise _malformed(request, why, fields, task_id)
    as_sent = {name: fields[name] for name in _AS_SENT if name in fields}
    checked = {**fields, **dict.fromkeys(as_sent)}  # None validates everywhere
    try:
        task = model.model_validate(checked)
    except ValidationError as exc:
        rejected = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        as_sent.update({name: fields[name] for name in rejected if name in fields})
        kept = {name: value for name, value in checked.items() if name not in rejected}
        try:
            task = model.model_validate(kept)
        except ValidationError:  # a required field is missing: keep everything as sent
            task = model.model_construct(**_by_field(model, fields))
            as_sent = {}
    for name, value in _by_field(model, as_sent).items():
        setattr(task, name, value)
    return task


def _by_field(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Rename wire names (aliases) to the model's field names; keep unknown ones."""
    names = {info.alias or name: name for name, info in model.model_fields.items()}
    return {names.get(key, key): value for key, value in fields.items()}


def _malformed(request: str, why: str, raw: object, task_id: str | None) -> InvalidResultError:
    return InvalidResultError(
        f"the server answered {request} with a malformed task: {why}",
        result=raw,
        task_id=task_id or "",
    )


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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

    #: The protocol revision of its tasks, as `TaskRef` names it.
    PROTOCOL: ClassVar[str] = "2025-11-25"
    #: Whether a ``tasks/get`` made moot by a push may be cancelled (`rxtasks.poll`'s
    #: ``cancel_moot_calls``); False where the SDK's session breaks on that.
    CANCEL_MOOT_CALLS: ClassVar[bool] = True

    def __init__(self, notifications: PushedStatuses[Any] | None) -> None:
        self.notifications = notifications

    @abstractmethod
    async def create(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = 60_000
    ) -> T:
        """Call a tool so that the server runs it as a task; return the created task."""

    async def start(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = 60_000
    ) -> str:
        """Call a tool so that the server runs it as a task; return the task id.

        `create` returns the created task itself, which `poll` can start from so that
        the first ``tasks/get`` waits the server's interval hint.

        Args:
            name: The tool.
            arguments: Its arguments.
            ttl_ms: How long the server should keep the task, in milliseconds (2025-11-25;
                in the tasks extension the server chooses).
        """
        created = await self.create(name, arguments, ttl_ms=ttl_ms)
        return str(task_id_of(created))

    @abstractmethod
    async def get_task(self, task_id: str) -> T:
        """Return the task's current state (``tasks/get``)."""

    @abstractmethod
    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``)."""

    async def try_cancel(self, task_id: str) -> str | None:
        """Ask the server to cancel the task, as a best effort on the way out.

        `cancel_task`, shielded from the caller's own cancellation and abandoned after
        `rxtasks.CANCEL_TIMEOUT_MS`: leaving (Ctrl-C, a deadline, an error) never hangs on
        a server that does not answer, and never raises for it.

        Returns:
            None if the server answered; else why not, in a few words.
        """
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + _parts.CANCEL_TIMEOUT_MS / 1000
            try:
                await self.cancel_task(task_id)
            except Exception as exc:  # noqa: BLE001 -- best effort: reported, never raised
                return str(exc) or type(exc).__name__
        if scope.cancelled_caught:
            return f"no answer in {_parts.CANCEL_TIMEOUT_MS:g} ms"
        return None

    def poll(
        self,
        task: str | T,
        default_interval_ms: float = 500,
        *,
        cancel_on_dispose: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        policy: PollPolicy | None = None,
    ) -> Observable[T]:
        """Poll the task at the server's pace, racing its pushed statuses, if any.

        Args:
            task: The task's id (as `start` returns it), or a known state of it (as
                `create` returns it): that state is then emitted first and the first
                ``tasks/get`` is due its interval later (``rxtasks.poll(initial=)``).
            default_interval_ms: Interval when the server suggests none, in milliseconds.
            cancel_on_dispose: Send ``tasks/cancel`` (best effort) when the subscription
                is disposed before the task is terminal.
            scheduler: As for `rxtasks.poll`.
            policy: As for `rxtasks.poll`.

        Returns:
            The cold observable of `rxtasks.poll`.
        """
        task_id, initial = id_and_state(task, "poll()")
        return _poll(
            self.get_task,
            task_id,
            default_interval_ms,
            scheduler=scheduler,
            notifications=self.notifications.observable if self.notifications else None,
            cancel_task=self.cancel_task if cancel_on_dispose else None,
            policy=policy,
            initial=initial,
            cancel_moot_calls=self.CANCEL_MOOT_CALLS,
        )

    def ref(
        self,
        state: T,
        *,
        server: str,
        default_interval_ms: float = 500,
        policy: PollPolicy | None = None,
    ) -> TaskRef:
        """The `TaskRef` of a state just received: keep it to `resume` the task later.

        Args:
            state: The task's state (created, polled or pushed).
            server: The server, as you name it (for example its URL).
            default_interval_ms: As for `poll`.
            policy: As for `poll`: its floor and cap apply to the next poll's time.
        """
        return TaskRef.of(
            state,
            server=server,
            protocol=self.PROTOCOL,
            default_interval_ms=default_interval_ms,
            policy=policy,
        )

    def resume(
        self,
        ref: TaskRef,
        default_interval_ms: float = 500,
        *,
        cancel_on_dispose: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        policy: PollPolicy | None = None,
    ) -> Observable[T]:
        """Pick a task up again from its `TaskRef`: `poll`, from its next poll's time.

        No ``tasks/get`` goes out before ``ref.next_poll_at`` (at once if that has
        passed), though with a policy at most its ``max_interval_ms`` from now (a
        reference written by a wrong clock does not hang); from then on it is `poll`.
        A task the server no longer knows ends the stream with `TaskExpiredError` if
        the reference says its ttl has passed, else `TaskNotFoundError`, naming the id
        (the server's answer chained as the cause).

        Args:
            ref: The reference, for example from `TaskRef.from_json`.
            default_interval_ms: As for `poll`.
            cancel_on_dispose: As for `poll` (from the first ``tasks/get`` on).
            scheduler: As for `poll`.
            policy: As for `poll`.

        Raises:
            ArgumentError: If the reference is of another protocol revision.

        Example:
            >>> ref = TaskRef.from_json(saved)
            >>> async for state in rxtasks.iterate(tasks.resume(ref)):
            ...     print(state.status)
        """
        if ref.protocol != self.PROTOCOL:
            raise ArgumentError(
                f"task {ref.task_id} is a {ref.protocol} task; {type(self).__name__} speaks"
                f" {self.PROTOCOL}"
            )

        def lost(error: Exception, _: Observable[T]) -> Observable[T]:
            return reactivex.throw(_lost(error, ref))

        def subscribe(chosen: abc.SchedulerBase | None) -> Observable[T]:
            polled = self.poll(
                ref.task_id,
                default_interval_ms,
                cancel_on_dispose=cancel_on_dispose,
                scheduler=scheduler,
                policy=policy,
            )
            due_s = ref.due_in_ms() / 1000
            if policy is not None and policy.max_interval_ms is not None:
                # A reference far in the future (a wrong clock) waits the cap at most.
                due_s = min(due_s, policy.max_interval_ms / 1000)
            if due_s > 0:
                wait = reactivex.timer(due_s, scheduler=scheduler or chosen)
                return wait.pipe(ops.flat_map(lambda _: polled), ops.catch(lost))
            return polled.pipe(ops.catch(lost))

        return reactivex.defer(subscribe)

    def poll_many(
        self,
        task_ids: Iterable[str | T] | Observable[str | T],
        default_interval_ms: float = 500,
        *,
        max_in_flight: int | None = None,
        cancel_on_dispose: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        policy: PollPolicy | None = None,
    ) -> Observable[T]:
        """Poll many tasks as one stream (`rxtasks.poll_many`), with the pushed statuses.

        Args:
            task_ids: The tasks, as `start` or `create` returned them: an iterable or an
                observable.
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
            cancel_moot_calls=self.CANCEL_MOOT_CALLS,
        )

    def __repr__(self) -> str:
        pushes = "with pushed statuses" if self.notifications else "polling only"
        return f"<{type(self).__qualname__} {pushes}>"


#: JSON-RPC "invalid params": what both revisions answer for a task they do not know.
_NOT_FOUND = -32602


def _lost(error: Exception, ref: TaskRef) -> Exception:
    """A "not found" answer for a resumed task, as rxtasks' error; anything else as is."""
    code = getattr(error, "code", None)
    if code is None:
        code = getattr(getattr(error, "error", None), "code", None)
    if code != _NOT_FOUND:
        return error
    lost: Exception
    if ref.expired():
        expired_at = None
        if ref.created_at is not None and ref.ttl_ms is not None:
            expired_at = ref.created_at + timedelta(milliseconds=ref.ttl_ms)
        lost = TaskExpiredError(
            f"task {ref.task_id} is gone: its ttl ran out at {expired_at} ({error})",
            task_id=ref.task_id,
            last_result=None,
            expired_at=expired_at,
        )
    else:
        lost = TaskNotFoundError(
            f"{ref.server} does not know task {ref.task_id} ({error})", task_id=ref.task_id
        )
    lost.__cause__ = error
    return lost


async def cancel_logged(tasks: TaskAdapter[Any], task_id: str) -> None:
    """`TaskAdapter.try_cancel` for library code: a failure is logged (WARNING)."""
    why = await tasks.try_cancel(task_id)
    if why is not None:
        logger.warning("task %s: tasks/cancel failed: %s", task_id, why)
