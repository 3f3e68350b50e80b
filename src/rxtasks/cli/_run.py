"""The commands' flows for any SDK: start tasks, poll them together, show them, report.

Each SDK module (`rxtasks.cli._sdk1`, `rxtasks.cli._sdk2`) connects a session and hands
its `TaskAdapter` over with a `Reading` of its task states; everything after that is here,
once.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio

from .._bridges import open_stream
from .._core._errors import (
    ArgumentError,
    PollTimeoutError,
    TaskExpiredError,
    TaskNotCreatedError,
    TaskNotFoundError,
)
from .._core._status import is_terminal, task_id_of
from .._poll.policy import PollPolicy, Retry
from ..mcp import TaskRef, is_transient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from reactivex import Observable

    from ..mcp._common import TaskAdapter
    from ._view import TaskView

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "KINDS",
    "CommandError",
    "DemoOptions",
    "Options",
    "Outcome",
    "Reading",
    "ServeOptions",
    "State",
    "TaskSpec",
    "WatchOptions",
    "WatchProgress",
    "demo_batch",
    "explain_task_error",
    "leaves",
    "report",
    "run_demo",
    "run_watch",
    "where",
]

S = TypeVar("S")

#: The kinds of task in the demo's batch, in the order they repeat.
KINDS = ("work", "quick", "slow", "fail", "wait_cancel", "ask")

#: Exit codes: ``watch`` uses them all, ``demo`` all but `EXIT_FAILED` and `EXIT_TIMEOUT`.
EXIT_OK = 0
EXIT_FAILED = 1  # the task failed, was cancelled, or completed with a tool error
EXIT_USAGE = 2  # bad arguments, or the server could not be reached or used
EXIT_TIMEOUT = 124  # --timeout-ms passed (as timeout(1) reports it)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

#: What the demo answers when a task asks for input.
DEMO_ANSWER = "42"


class CommandError(Exception):
    """A command cannot go on; its message is the whole one-line explanation."""


def explain_task_error(leaf: BaseException, options: Options) -> str | None:
    """The one-line explanation of an error any SDK raises alike, else None."""
    if isinstance(leaf, CommandError | TaskNotFoundError | TaskExpiredError):
        return str(leaf)
    if isinstance(leaf, TaskNotCreatedError):
        tool = repr(options.tool) if isinstance(options, WatchOptions) else "a tool"
        # The server's own words, from the CallToolResult of either SDK, if any.
        content: list[object] = getattr(leaf.result, "content", None) or []
        texts = [text for c in content if isinstance(text := getattr(c, "text", None), str)]
        return f"the server did not run {tool} as a task: {' '.join(texts) or leaf}"
    return None


def where(options: Options) -> str:
    """The server a command talks to, for messages."""
    return options.url if isinstance(options, WatchOptions) else "the in-process server"


@dataclass(frozen=True)
class DemoOptions:
    """The options of ``rxtasks demo`` (see its ``--help``)."""

    tasks: int = 6  # one of each of the `KINDS`
    steps: int = 4
    step_ms: int = 400
    protocol: str = "auto"
    backend: str = "asyncio"
    plain: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class WatchOptions:
    """The options of ``rxtasks watch`` (see its ``--help``)."""

    url: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict[str, Any])
    interval_ms: float = 500
    min_interval_ms: float = 100
    max_interval_ms: float = 30_000
    timeout_ms: float | None = None
    request_timeout_ms: float = 10_000
    retries: int = 3
    backend: str = "asyncio"
    plain: bool = False
    verbose: bool = False
    #: ``--json``: one JSON object per state on stdout, the result last.
    json: bool = False
    #: ``--detach``: print the task's reference once it exists, and leave it running.
    detach: bool = False
    #: ``rxtasks resume``: the task to pick up (then ``tool`` is not called).
    ref: TaskRef | None = None

    @property
    def name(self) -> str:
        """The command, for its messages: ``rxtasks watch`` or ``rxtasks resume``."""
        return "rxtasks resume" if self.ref is not None else "rxtasks watch"

    def policy(self, transient: Callable[[Exception], bool]) -> PollPolicy:
        """The library's own `PollPolicy` for these options.

        Args:
            transient: Tells a connection's errors, worth a retry, from the task's.
        """
        retry = Retry(attempts=self.retries, retry_on=transient) if self.retries else None
        return PollPolicy(
            min_interval_ms=self.min_interval_ms,
            max_interval_ms=self.max_interval_ms,
            timeout_ms=self.timeout_ms,
            retry=retry,
        )


@dataclass(frozen=True)
class ServeOptions:
    """The options of ``rxtasks serve`` (see its ``--help``)."""

    port: int = 8000
    backend: str = "asyncio"
    verbose: bool = False


#: The options of any command.
Options = DemoOptions | WatchOptions | ServeOptions


@dataclass
class WatchProgress:
    """How far ``watch`` got, for what it says when interrupted.

    Attributes:
        task_id: The task, once the server created it.
        cancel: ``"sent"`` once ``tasks/cancel`` was answered, ``"failed"`` (with
            `cancel_error`) if it could not be, None if it was not tried.
        cancel_error: Why the cancel failed.
        interrupted: Whether Ctrl-C cancelled the command (asyncio), whatever it raised.
    """

    task_id: str | None = None
    cancel: str | None = None
    cancel_error: str | None = None
    interrupted: bool = False

    def said_on_interrupt(self) -> str:
        """What to add to "interrupted": only what actually happened to the task."""
        if self.cancel == "sent":
            return f"; task {self.task_id} was asked to cancel"
        if self.cancel == "failed":
            return f"; task {self.task_id} may still run: tasks/cancel failed ({self.cancel_error})"
        if self.task_id is not None:
            return f"; task {self.task_id} may still run"
        return ""


@dataclass(frozen=True)
class State:
    """One task state, as the view shows it.

    Attributes:
        status: The task's status.
        message: Its status message, if any.
        pushed: Whether the server pushed it (a notification) rather than a poll found it.
    """

    status: str
    message: str | None = None
    pushed: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a task ended, for people.

    Attributes:
        status: Its terminal status.
        text: The result's text, or why it failed or was cancelled.
        tool_error: Whether it completed with a tool error (``isError``).
    """

    status: str
    text: str
    tool_error: bool = False

    @property
    def ok(self) -> bool:
        """Whether the task completed with a result that is not a tool error."""
        return self.status == "completed" and not self.tool_error


@dataclass(frozen=True)
class TaskSpec:
    """One task of the demo's batch.

    Attributes:
        label: The name shown for it (unique in the batch).
        tool: The tool to call.
        arguments: Its arguments.
        cancel_after_s: Cancel the task this many seconds after it starts, if set.
    """

    label: str
    tool: str
    arguments: dict[str, Any]
    cancel_after_s: float | None = None


@dataclass(frozen=True)
class Reading(Generic[S]):
    """How one SDK's task states read, for the commands; the task adapter does the rest.

    The commands drive `rxtasks.mcp`'s `TaskAdapter` directly (``start``, ``poll``,
    ``poll_many``, ``cancel_task``); only these four differ per SDK and protocol revision.

    Attributes:
        state: What a state shows (status, message, whether it was pushed).
        outcome: How a task ended, from its terminal state (may ask the server).
        respond: Answer what an ``input_required`` state asks for (with `DEMO_ANSWER`).
        immediate: What a tool answered at once, without a task (`TaskNotCreatedError`).
    """

    state: Callable[[S], State]
    outcome: Callable[[str, S], Awaitable[Outcome]]
    respond: Callable[[str, S], Awaitable[None]]
    immediate: Callable[[object], Outcome]


def demo_batch(
    options: DemoOptions, tool_for: dict[str, tuple[str, dict[str, Any]]] | None = None
) -> list[TaskSpec]:
    """Return the demo's batch: ``options.tasks`` tasks, cycling through `KINDS`.

    Durations derive from ``options.step_ms``: ``quick`` steps take half of it, ``slow``
    steps twice it; ``fail`` fails halfway through a ``work``; ``wait_cancel`` is
    cancelled at the same point.

    Args:
        options: The demo's options.
        tool_for: Per kind, the tool that runs it and extra arguments, where the tool is
            not the kind itself (an SDK whose server has no ``quick`` tool).

    Returns:
        The tasks to start, labelled ``kind-number``.
    """
    step, steps = options.step_ms, options.steps
    halfway_ms = steps * step // 2
    arguments: dict[str, dict[str, Any]] = {
        "work": {"steps": steps, "step_ms": step},
        "quick": {"steps": steps, "step_ms": step // 2},
        "slow": {"steps": steps, "step_ms": step * 2},
        "fail": {"after_ms": halfway_ms, "message": "the disk is full (on purpose)"},
        "wait_cancel": {"tick_ms": max(step // 2, 1)},
        "ask": {"question": "What is six times seven?"},
    }
    batch: list[TaskSpec] = []
    for number in range(1, options.tasks + 1):
        kind = KINDS[(number - 1) % len(KINDS)]
        tool, extra = (tool_for or {}).get(kind, (kind, {}))
        batch.append(
            TaskSpec(
                label=f"{kind}-{number}",
                tool=tool,
                arguments={**arguments[kind], **extra},
                cancel_after_s=halfway_ms / 1000 if kind == "wait_cancel" else None,
            )
        )
    return batch


async def run_demo(
    tasks: TaskAdapter[Any], reading: Reading[Any], batch: list[TaskSpec], view: TaskView
) -> None:
    """Start a batch of tasks, poll them all at once (`poll_many`) and show them to their end.

    Every task is polled at its own server-suggested pace, in one stream. Tasks that ask
    for input are answered, and tasks with ``cancel_after_s`` are cancelled then.
    """
    labels: dict[str, str] = {}  # task id -> row
    created: list[Any] = []  # each first tasks/get waits its created task's hint
    with view:
        async with anyio.create_task_group() as tg:
            for spec in batch:
                task = await tasks.create(spec.tool, spec.arguments)
                task_id = str(task_id_of(task))
                created.append(task)
                labels[task_id] = spec.label
                view.add(spec.label, spec.label)
                if spec.cancel_after_s is not None:
                    tg.start_soon(_cancel_later, tasks, task_id, spec.cancel_after_s)
            async with open_stream(tasks.poll_many(created)) as updates:
                async for state in updates:
                    task_id = str(task_id_of(state))
                    await _show(reading, view, labels[task_id], task_id, state)
    view.print_summary()


async def run_watch(
    tasks: TaskAdapter[Any],
    reading: Reading[Any],
    options: WatchOptions,
    view: TaskView,
    progress: WatchProgress,
) -> int:
    """Call the tool as a task (or pick one up: ``resume``), show its states, say how it ended.

    The poll follows `WatchOptions.policy` (floor, cap, deadline, retries of transient
    errors, each announced on stderr); the first ``tasks/get`` waits the created task's
    hint, or a resumed task's next poll time. With ``--detach`` the task's `TaskRef` is
    printed once it exists and the task is left running. Leaving early (Ctrl-C, or any
    error) cancels the task on the server, best effort, and records in ``progress``
    whether that was sent.

    Returns:
        The exit code (see `report`; `EXIT_TIMEOUT` when ``--timeout-ms`` passed).
    """

    def transient(error: Exception) -> bool:
        if not is_transient(error):
            return False
        view.note(f"{options.name}: {_request_failed(error, options)}; retrying")
        return True

    policy = options.policy(transient)
    begun = await _begin(tasks, reading, options, view, policy)
    if isinstance(begun, int):
        return begun
    task_id, label, source = begun
    progress.task_id = task_id
    outcome: Outcome | None = None
    try:
        with view:
            view.add(task_id, label, f"task {task_id}")
            async with open_stream(source) as states:
                async for state in states:
                    if options.json:
                        _print_state(tasks, reading, state, options, policy)
                    outcome = await _show(reading, view, task_id, task_id, state, answer=False)
        view.print_summary()  # after the live table's last frame
    except PollTimeoutError:
        await _cancel(tasks, task_id, progress)
        done = " and was asked to cancel" if progress.cancel == "sent" else ""
        if options.json:
            _print_json(
                {
                    "type": "timeout",
                    "task_id": task_id,
                    "timeout_ms": options.timeout_ms,
                    "cancelled": progress.cancel == "sent",
                }
            )
        print(  # noqa: T201 -- the command's verdict
            f"{options.name}: task {task_id} had not ended after {options.timeout_ms:g} ms{done}",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    except BaseException:
        # Interrupted (Ctrl-C arrives as a cancellation on asyncio, as itself on trio) or
        # failed: the task may still run; ask the server to cancel it, then go on leaving.
        if outcome is None:
            await _cancel(tasks, task_id, progress)
        raise
    assert outcome is not None  # poll() completes only after a terminal state
    return report(outcome, as_json=options.json, task_id=task_id, command=options.name)


async def _begin(
    tasks: TaskAdapter[Any],
    reading: Reading[Any],
    options: WatchOptions,
    view: TaskView,
    policy: PollPolicy,
) -> tuple[str, str, Observable[Any]] | int:
    """The task (created, or resumed), its label and its states; or the exit code now."""
    if options.ref is not None:
        ref = options.ref
        try:
            source = tasks.resume(ref, options.interval_ms, policy=policy)
        except ArgumentError as exc:  # a reference of the other protocol revision
            raise CommandError(f"{exc}; resume it with the SDK of that revision") from None
        return ref.task_id, f"task {ref.task_id} (resumed)", source
    try:
        created = await tasks.create(options.tool, options.arguments)
    except TaskNotCreatedError as exc:
        view.note(f"{options.name}: the server answered at once, without a task")
        return report(reading.immediate(exc.result), as_json=options.json, command=options.name)
    if options.detach:
        _print_json(_ref_of(tasks, created, options, policy))
        return EXIT_OK
    # From the created task: the first tasks/get waits its interval hint.
    source = tasks.poll(created, options.interval_ms, policy=policy)
    return str(task_id_of(created)), options.tool, source


def _ref_of(
    tasks: TaskAdapter[Any], state: object, options: WatchOptions, policy: PollPolicy
) -> dict[str, Any]:
    ref = tasks.ref(
        state, server=options.url, default_interval_ms=options.interval_ms, policy=policy
    )
    return ref.to_dict()


def _print_state(
    tasks: TaskAdapter[Any],
    reading: Reading[Any],
    state: object,
    options: WatchOptions,
    policy: PollPolicy,
) -> None:
    """``--json``: the state as one line, with the reference to resume from it."""
    shown = reading.state(state)
    _print_json(
        {
            "type": "state",
            "task_id": str(task_id_of(state)),
            "status": shown.status,
            "message": shown.message,
            "pushed": shown.pushed,
            "ref": _ref_of(tasks, state, options, policy),
        }
    )


def _print_json(value: dict[str, Any]) -> None:
    # Flushed at once: a script (or whoever resumes after a crash) reads it line by line.
    print(json.dumps(value, separators=(",", ":")), flush=True)  # noqa: T201 -- the output


async def _cancel(tasks: TaskAdapter[Any], task_id: str, progress: WatchProgress) -> None:
    """Send tasks/cancel, shielded and bounded, and record what came of it."""
    why = await tasks.try_cancel(task_id)
    progress.cancel, progress.cancel_error = ("sent", None) if why is None else ("failed", why)


def _request_failed(error: Exception, options: WatchOptions) -> str:
    """Say why a request failed, in a few words."""
    code = getattr(error, "code", None) or getattr(getattr(error, "error", None), "code", None)
    if isinstance(error, TimeoutError) or code in (408, -32001):
        return f"tasks/get had no answer within {options.request_timeout_ms:g} ms"
    text = str(error) or type(error).__name__
    return f"tasks/get failed: {text}" + (f" (code {code})" if isinstance(code, int) else "")


async def _show(
    reading: Reading[Any],
    view: TaskView,
    key: str,
    task_id: str,
    state: Any,
    *,
    answer: bool = True,
) -> Outcome | None:
    """Show one state; at the end, with the outcome as its message (returned too)."""
    shown = reading.state(state)
    outcome = await reading.outcome(task_id, state) if is_terminal(shown.status) else None
    view.update(key, shown.status, outcome.text if outcome else shown.message, pushed=shown.pushed)
    if answer and shown.status == "input_required":
        await reading.respond(task_id, state)
    return outcome


async def _cancel_later(tasks: TaskAdapter[Any], task_id: str, delay_s: float) -> None:
    await anyio.sleep(delay_s)
    await tasks.cancel_task(task_id)


def report(
    outcome: Outcome,
    *,
    as_json: bool = False,
    task_id: str | None = None,
    command: str = "rxtasks watch",
) -> int:
    """Print how a watched task ended and return the exit code.

    The result's text goes to stdout (for pipes); a failure to stderr, as one line.
    With ``as_json`` stdout gets one JSON object instead, whatever the outcome:
    ``{"type": "result", "task_id", "status", "ok", "tool_error", "text"}``.

    Returns:
        0 if the task completed with a result, 1 if it failed, was cancelled, or
        completed with a tool error (``isError``).
    """
    if as_json:
        _print_json(
            {
                "type": "result",
                "task_id": task_id,
                "status": outcome.status,
                "ok": outcome.ok,
                "tool_error": outcome.tool_error,
                "text": outcome.text,
            }
        )
    if outcome.ok:
        if as_json:
            return EXIT_OK
        print(outcome.text)  # noqa: T201 -- the command's output
        return EXIT_OK
    if outcome.tool_error:
        why = f"the tool reported an error: {outcome.text}"
    elif outcome.status == "cancelled":
        why = "the task was cancelled"
    else:
        why = f"the task {outcome.status}: {outcome.text}"
    print(f"{command}: {why}", file=sys.stderr)  # noqa: T201
    return EXIT_FAILED


def leaves(error: BaseException) -> Iterator[BaseException]:
    """Yield the exceptions inside (nested) exception groups, or the exception itself."""
    if isinstance(error, BaseExceptionGroup):
        for inner in cast("BaseExceptionGroup[BaseException]", error).exceptions:
            yield from leaves(inner)
    else:
        yield error
