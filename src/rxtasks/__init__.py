"""rxtasks: reactive polling for Model Context Protocol (MCP) tasks.

A map of the package, in the order it is built (each layer uses only those above it):

- status model (`is_terminal`, `TERMINAL_STATUSES`): pure; reads every result shape.
- observables: `poll` (one task, paced by the server), `poll_many` (many tasks, one
  stream, bounded concurrency) and `from_async` (one await).
- schedulers: `AnyioScheduler` (push, on an anyio task group; asyncio and trio); the
  pull scheduler behind `iterate`; reactivex's ``AsyncIOScheduler`` is accepted too.
- bridges to ``async for``: `iterate` and `poll_until_terminal` (lazy, in the consumer's
  task), `open_stream` (structured, in an ``async with`` block).
- policies (`PollPolicy`, `Retry`): for servers you do not control.
- errors: `RxTasksError` and its subclasses.
"""

from ._bridge import ObservableIterator as ObservableIterator
from ._bridge import iterate as iterate
from ._bridge import open_stream as open_stream
from ._bridge import poll_until_terminal as poll_until_terminal
from ._errors import BufferOverflowError as BufferOverflowError
from ._errors import InvalidResultError as InvalidResultError
from ._errors import PollManyError as PollManyError
from ._errors import PollTimeoutError as PollTimeoutError
from ._errors import RxTasksError as RxTasksError
from ._errors import SchedulerError as SchedulerError
from ._errors import StalledError as StalledError
from ._errors import StreamClosedError as StreamClosedError
from ._errors import StreamError as StreamError
from ._errors import TaskCancelledError as TaskCancelledError
from ._errors import TaskError as TaskError
from ._errors import TaskExpiredError as TaskExpiredError
from ._errors import TaskFailedError as TaskFailedError
from ._errors import TaskNotCreatedError as TaskNotCreatedError
from ._many import poll_many as poll_many
from ._observable import CANCEL_TIMEOUT_S as CANCEL_TIMEOUT_S
from ._observable import from_async as from_async
from ._observable import poll as poll
from ._policy import PollPolicy as PollPolicy
from ._policy import Retry as Retry
from ._runtime import AnyioScheduler as AnyioScheduler
from ._runtime import SchedulerStatistics as SchedulerStatistics
from ._status import TERMINAL_STATUSES as TERMINAL_STATUSES
from ._status import is_terminal as is_terminal

__all__ = [
    "CANCEL_TIMEOUT_S",
    "TERMINAL_STATUSES",
    "AnyioScheduler",
    "BufferOverflowError",
    "InvalidResultError",
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
    "TaskNotCreatedError",
    "from_async",
    "is_terminal",
    "iterate",
    "open_stream",
    "poll",
    "poll_many",
    "poll_until_terminal",
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
