"""The live view of tasks being polled: a rich table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.live import Live
from rich.table import Table
from rich.text import Text

from .._status import TERMINAL_STATUSES, is_terminal

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from rich.console import Console

__all__ = ["TaskRow", "TaskView"]

# How each status looks in the table; other (unknown) statuses are unstyled.
_STYLES = {
    "started": "dim",
    "working": "yellow",
    "input_required": "magenta",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "dark_orange",
}
# Summary order: the terminal statuses first, the rest (an interrupted run) after them.
_ORDER = ("completed", "failed", "cancelled", "input_required", "working", "started")
_STATUS_WIDTH = len("input_required")


@dataclass
class TaskRow:
    """What the view knows about one task.

    Attributes:
        label: The name shown for the task.
        started: When the task was added, on the view's clock (seconds).
        status: The last status seen; ``started`` before the first one.
        message: The last message seen (the status message, or the outcome at the end).
        polls: How many states came from ``tasks/get``.
        pushes: How many states the server pushed (notifications).
        ended: When the task reached a terminal status, on the view's clock.
    """

    label: str
    started: float
    status: str = "started"
    message: str | None = None
    polls: int = 0
    pushes: int = 0
    ended: float | None = None

    def elapsed(self, now: float) -> float:
        """Seconds from the task's start to its end, or to ``now`` while it runs."""
        return (self.ended if self.ended is not None else now) - self.started


class TaskView:
    """Show tasks as they change: a live table on a terminal, one line per change elsewhere.

    Rows are added with `add` and changed with `update`; use the view as a context
    manager around the polling, then print `summary`. On a terminal
    (``console.is_terminal``) a rich ``Live`` table shows one row per task (status,
    message, polls, elapsed) and refreshes itself; elsewhere every change of status or
    message prints one line::

        [ 1.23s] work-1       working         step 1/3

    Args:
        console: Where to write. Its ``is_terminal`` chooses the live table.
        clock: Current time in seconds; inject a fake one for deterministic output.
        live: Force the live table (True) or plain lines (False); default: the console's
            ``is_terminal``.
        auto_refresh: Let the live table redraw itself (elapsed times tick between
            updates) from rich's refresh thread; tests turn it off.
    """

    def __init__(
        self,
        console: Console,
        *,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console
        self._clock = clock
        self.is_live = console.is_terminal if live is None else live
        self._auto_refresh = auto_refresh
        self.started = clock()
        self.rows: dict[str, TaskRow] = {}
        self._live: Live | None = None

    # -- input ---------------------------------------------------------------------------

    def add(self, key: str, label: str, message: str | None = None) -> None:
        """Add a task's row, which starts its elapsed time.

        Args:
            key: The row's identity, used by `update`.
            label: The name shown for the task.
            message: A first message (printed as a line of its own in plain mode).
        """
        row = self.rows[key] = TaskRow(label=label, started=self._clock(), message=message)
        if message is not None and not self.is_live:
            self._print(self.line(row))
        self._refresh()

    def update(self, key: str, status: str, message: str | None, *, pushed: bool = False) -> None:
        """Record one state of a task: a poll result, or a pushed state.

        Args:
            key: The row, as given to `add`.
            status: The task's status.
            message: Its message, if any.
            pushed: Whether the server pushed this state (a notification) rather than
                answering a poll.

        Raises:
            KeyError: If no row has this key.
        """
        row = self.rows[key]
        if pushed:
            row.pushes += 1
        else:
            row.polls += 1
        if row.ended is not None:  # a late duplicate of the terminal state
            return
        changed = (status, message) != (row.status, row.message)
        row.status, row.message = status, message
        if is_terminal(status):
            row.ended = self._clock()
        if changed and not self.is_live:
            self._print(self.line(row))
        self._refresh()

    # -- output --------------------------------------------------------------------------

    def line(self, row: TaskRow) -> str:
        """Return the plain line for a row's current state: time, label, status, message."""
        width = max(len(r.label) for r in self.rows.values())
        at = self._clock() - self.started
        status = f"{row.status:<{_STATUS_WIDTH}}"
        return f"[{at:5.2f}s] {row.label:<{width}}  {status}  {row.message or ''}".rstrip()

    def table(self) -> Table:
        """Return the table of every task, as the live view shows it."""
        now = self._clock()
        rows = list(self.rows.values())  # one snapshot: rich's refresh thread reads this too
        done = sum(row.ended is not None for row in rows)
        table = Table(caption=f"{done}/{len(rows)} done · {self.elapsed(now):.1f} s")
        table.add_column("task", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("message", overflow="fold")
        table.add_column("polls", justify="right", no_wrap=True)
        table.add_column("elapsed", justify="right", no_wrap=True)
        for row in rows:
            polls = str(row.polls) + (f" +{row.pushes} pushed" if row.pushes else "")
            table.add_row(
                row.label,
                Text(row.status, style=_STYLES.get(row.status, "")),
                Text(row.message or ""),
                polls,
                f"{row.elapsed(now):.2f} s",
            )
        return table

    def elapsed(self, now: float) -> float:
        """Seconds from the view's start to ``now``, or to the last task's end once all ended."""
        ends = [row.ended for row in self.rows.values()]
        if ends and all(end is not None for end in ends):
            now = max(end for end in ends if end is not None)
        return now - self.started

    def counts(self) -> Counter[str]:
        """Return how many tasks are in each status."""
        return Counter(row.status for row in self.rows.values())

    def summary(self) -> str:
        """Return the one-line summary: tasks per final status, and the total time.

        Example: ``6 tasks in 3.42 s: 4 completed, 1 failed, 1 cancelled``.
        """
        counts = self.counts()
        order = [s for s in _ORDER if s in counts] + sorted(set(counts) - set(_ORDER))
        parts = ", ".join(f"{counts[s]} {s}" for s in order)
        total = self.elapsed(self._clock())
        noun = "task" if len(self.rows) == 1 else "tasks"
        return f"{len(self.rows)} {noun} in {total:.2f} s: {parts or 'none'}"

    def print_summary(self) -> None:
        """Print `summary`: a plain line, or styled after the live table."""
        if not self.is_live:
            self._print(f"summary: {self.summary()}")
            return
        finished = all(row.status in TERMINAL_STATUSES for row in self.rows.values())
        style = "bold" if finished else "bold yellow"
        self.console.print(Text(self.summary(), style=style))

    # -- the live table ------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self.is_live:
            self._live = Live(
                console=self.console,
                get_renderable=self.table,
                auto_refresh=self._auto_refresh,
                refresh_per_second=8,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # draws the final state, which stays on screen

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _refresh(self) -> None:
        if self._live is not None and not self._auto_refresh:
            self._live.refresh()
