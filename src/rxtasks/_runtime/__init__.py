"""The runtime under every poll: one await primitive, one timer queue, the schedulers.

In import order: `_loop` (the event loop's clock, sleeps and thread hand-over),
`_timers` (the timer queue), `_await` (the await primitive and the `Runtime` contract),
`_base` (what rxtasks' schedulers share), `_anyio` (`AnyioScheduler`, push), `_pull`
(`PullScheduler`, pull), `_adapters` (reactivex's own schedulers).
"""

from ._adapters import resolve_scheduler
from ._anyio import AnyioScheduler, SchedulerStatistics
from ._await import AwaitCall, AwaitState, Runtime, as_exception, is_foreign_cancellation
from ._pull import PullScheduler

__all__ = [
    "AnyioScheduler",
    "AwaitCall",
    "AwaitState",
    "PullScheduler",
    "Runtime",
    "SchedulerStatistics",
    "as_exception",
    "is_foreign_cancellation",
    "resolve_scheduler",
]
