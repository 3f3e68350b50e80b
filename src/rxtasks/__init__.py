"""rxtasks: reactive polling for Model Context Protocol (MCP) tasks.

A map of the package, in the order it is built (each layer uses only those above it):

- ``_core``: the status model (`is_terminal`, `TERMINAL_STATUSES`; reads every result
  shape), argument checks, and the errors (`RxTasksError` and its tree). Pure.
- ``_runtime``: one await primitive, one timer queue, the schedulers: `AnyioScheduler`
  (push, on an anyio task group; asyncio and trio), the pull scheduler behind `iterate`,
  and adapters for reactivex's own.
- ``_poll``: the model of a poll (`server_timer` + `until_terminal`, and `from_async`),
  its policies (`PollPolicy`, `Retry`), `poll` (the model fused for speed) and
  `poll_many` (many tasks, one stream, bounded concurrency).
- ``_bridges``: to ``async for``: `iterate` and `poll_until_terminal` (lazy, in the
  consumer's task), `open_stream` (structured, in an ``async with`` block).
- `rxtasks.mcp` (the MCP SDKs' adapters), `rxtasks.cli` (the commands), `rxtasks.testing`.
"""

from ._bridges import ObservableIterator as ObservableIterator
from ._bridges import iterate as iterate
from ._bridges import open_stream as open_stream
from ._bridges import poll_until_terminal as poll_until_terminal
from ._core._errors import ArgumentError as ArgumentError
from ._core._errors import ArgumentTypeError as ArgumentTypeError
from ._core._errors import BufferOverflowError as BufferOverflowError
from ._core._errors import InvalidResultError as InvalidResultError
from ._core._errors import IteratorBusyError as IteratorBusyError
from ._core._errors import PollManyError as PollManyError
from ._core._errors import PollTimeoutError as PollTimeoutError
from ._core._errors import RxTasksError as RxTasksError
from ._core._errors import SchedulerError as SchedulerError
from ._core._errors import StalledError as StalledError
from ._core._errors import StreamClosedError as StreamClosedError
from ._core._errors import StreamError as StreamError
from ._core._errors import TaskCancelledError as TaskCancelledError
from ._core._errors import TaskError as TaskError
from ._core._errors import TaskExpiredError as TaskExpiredError
from ._core._errors import TaskFailedError as TaskFailedError
from ._core._errors import TaskInputError as TaskInputError
from ._core._errors import TaskNotCreatedError as TaskNotCreatedError
from ._core._errors import TaskNotFoundError as TaskNotFoundError
from ._core._errors import TaskNotTerminalError as TaskNotTerminalError
from ._core._status import TERMINAL_STATUSES as TERMINAL_STATUSES
from ._core._status import is_terminal as is_terminal
from ._poll.fused import poll as poll
from ._poll.many import poll_many as poll_many
from ._poll.model import from_async as from_async
from ._poll.model import server_timer as server_timer
from ._poll.model import until_terminal as until_terminal
from ._poll.parts import CANCEL_TIMEOUT_MS as CANCEL_TIMEOUT_MS
from ._poll.policy import PollPolicy as PollPolicy
from ._poll.policy import Retry as Retry
from ._runtime import AnyioScheduler as AnyioScheduler
from ._runtime import SchedulerStatistics as SchedulerStatistics

__all__ = [
    "CANCEL_TIMEOUT_MS",
    "TERMINAL_STATUSES",
    "AnyioScheduler",
    "ArgumentError",
    "ArgumentTypeError",
    "BufferOverflowError",
    "InvalidResultError",
    "IteratorBusyError",
    "ObservableIterator",
    "PollManyError",
    "PollPolicy",
    "PollTimeoutError",
    "Retry",
    "RxTasksError",
    "SchedulerError",
    "SchedulerStatistics",
    "StalledError",
    "StreamClosedError",
    "StreamError",
    "TaskCancelledError",
    "TaskError",
    "TaskExpiredError",
    "TaskFailedError",
    "TaskInputError",
    "TaskNotCreatedError",
    "TaskNotFoundError",
    "TaskNotTerminalError",
    "from_async",
    "is_terminal",
    "iterate",
    "open_stream",
    "poll",
    "poll_many",
    "poll_until_terminal",
    "server_timer",
    "until_terminal",
]

__version__ = "0.1.0"


def _fix_module_names() -> None:
    # Reprs, tracebacks and docs say `rxtasks.poll`, not `rxtasks._observable.poll`.
    for name in __all__:
        member = globals()[name]
        if getattr(member, "__module__", "").startswith("rxtasks._"):
            member.__module__ = __name__


_fix_module_names()
del _fix_module_names
