"""The live view of tasks being polled: a rich table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import heapq
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .._core._status import TERMINAL_STATUSES, is_terminal

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from rich.console import Console, RenderableType

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

# Whitespace, control characters (C0, DEL, C1) and invisible format characters (zero
# widths, bidirectional overrides, BOM): in a server's text they would break a line, move
# the cursor or reorder what is around them, so each run of them becomes one space.
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]+")
# The most of a text (a message, a label) that the view reads and keeps: more than
# any terminal line shows, and so little that a 5 MB message costs what a short one does.
_TEXT_LIMIT = 1000
# Statuses come from the server too; the protocol's longest is 14 characters.
_STATUS_LIMIT = 24

# The table's layout at narrow widths (in terminal cells): the message column should get
# at least _MESSAGE_WANT; labels are never cut below _LABEL_MIN.
_MESSAGE_WANT = 16
_LABEL_MIN = 7


def _one_line(text: str, limit: int = _TEXT_LIMIT) -> str:
    """Return a server's text as one line, read from its first ``limit`` characters only.

    Runs of whitespace and control characters become single spaces; a text longer than
    ``limit`` ends with an ellipsis. Cutting first bounds the work, however long the text.
    """
    line = _BLANKS.sub(" ", text[:limit]).strip()
    return f"{line}…" if len(text) > limit else line


def _count_parts(counts: Counter[str]) -> str:
    """Say how many tasks are in each status, in the summary order: ``4 completed, 1 failed``."""
    order = [s for s in _ORDER if s in counts] + sorted(set(counts) - set(_ORDER))
    return ", ".join(f"{counts[s]} {s}" for s in order)


@dataclass
class TaskRow:
    """What the view knows about one task.

    Attributes:
        label: The name shown for the task.
        started: When the task was added, on the view's clock (seconds).
        status: The last status seen; ``started`` before the first one.
        message: The last message seen (the status message, or the outcome at the end),
            as one line of bounded length.
        polls: How many states came from ``tasks/get``.
        pushes: How many states the server pushed (notifications).
        ended: When the task reached a terminal status, on the view's clock.
        changed: The view's count of changes at this row's last change of status or
            message (higher is more recent); a tall table shows the recent rows first.
    """

    label: str
    started: float
    status: str = "started"
    message: str | None = None
    polls: int = 0
    pushes: int = 0
    ended: float | None = None
    changed: int = 0

    def elapsed(self, now: float) -> float:
        """Seconds from the task's start to its end, or to ``now`` while it runs."""
        return (self.ended if self.ended is not None else now) - self.started

    def rank(self) -> int:
        """How much the row matters in a table too tall to show whole; lower is more.

        Unfinished tasks first, then the ones that ended other than completed (failed,
        cancelled), then the completed ones.
        """
        if self.ended is None:
            return 0
        return 2 if self.status == "completed" else 1


@dataclass(frozen=True)
class _Layout:
    """The table's shape for a width: the columns it shows, and how wide labels may be.

    Attributes:
        polls: Whether the polls column is shown.
        elapsed: Whether the elapsed column is shown.
        edge: Whether the table has its outer borders and their padding.
        label: The most cells a label may take (cut with an ellipsis beyond).
    """

    polls: bool = True
    elapsed: bool = True
    edge: bool = True
    label: int = 0

    @property
    def frame_cells(self) -> int:
        """Cells a row spends on borders and padding: 3 a column, one more with edges."""
        columns = 3 + self.polls + self.elapsed
        return 3 * columns + 1 if self.edge else 3 * columns - 3

    @property
    def frame_lines(self) -> int:
        """Lines the table spends beside its rows: header, its rule, caption, edges."""
        return 5 if self.edge else 3

    @classmethod
    def fit(cls, width: int, *, label: int, status: int, polls: int, elapsed: int) -> _Layout:
        """Return the layout that leaves the message enough cells, giving up the least.

        What gives way, in order, while the message would get fewer than ``_MESSAGE_WANT``
        cells: the polls column, the elapsed column, the table's outer edges, and last the
        label's width (down to ``_LABEL_MIN``). Status is never cut, so that a narrow
        terminal still tells each task's state.

        Args:
            width: The console's width.
            label: The widest label (or header), in cells.
            status: The widest status (or header), in cells.
            polls: The widest polls cell (or header), in cells.
            elapsed: The widest elapsed cell (or header), in cells.
        """
        candidates = (
            cls(label=label),
            cls(label=label, polls=False),
            cls(label=label, polls=False, elapsed=False),
            cls(label=label, polls=False, elapsed=False, edge=False),
        )
        for layout in candidates:
            if width - layout._cells_but_message(status, polls, elapsed) >= _MESSAGE_WANT:
                return layout
        layout = candidates[-1]
        room = width - layout._cells_but_message(status, polls, elapsed) + label
        return replace(layout, label=max(room - _MESSAGE_WANT, min(label, _LABEL_MIN)))

    def _cells_but_message(self, status: int, polls: int, elapsed: int) -> int:
        """Cells that every column but the message's takes, borders and padding included."""
        return (
            self.frame_cells
            + self.label
            + status
            + (polls if self.polls else 0)
            + (elapsed if self.elapsed else 0)
        )


class TaskView:
    """Show tasks as they change: a live table on a terminal, one line per change elsewhere.

    Rows are added with `add` and changed with `update`; use the view as a context
    manager around the polling, then print `summary`. On a terminal
    (``console.is_terminal``) a rich ``Live`` table shows one row per task (status,
    message, polls, elapsed) and refreshes itself; elsewhere every change of status or
    message prints one line::

        [ 1.23s] work-1       working         step 1/3

    Whatever a server sends, every row and line stays one line within the console's width:
    messages are cut (with an ellipsis) and their line breaks, tabs and control characters
    become spaces. See `table` for how the table fits narrow and short terminals.

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
        self._changes = 0  # the count that TaskRow.changed takes
        self._label_width = 0  # the widest label so far, kept rather than found per line

    # -- input ---------------------------------------------------------------------------

    def add(self, key: str, label: str, message: str | None = None) -> None:
        """Add a task's row, which starts its elapsed time.

        Args:
            key: The row's identity, used by `update`.
            label: The name shown for the task.
            message: A first message (printed as a line of its own in plain mode).
        """
        self._changes += 1
        row = self.rows[key] = TaskRow(
            label=_one_line(label),
            started=self._clock(),
            message=None if message is None else _one_line(message),
            changed=self._changes,
        )
        self._label_width = max(self._label_width, cell_len(row.label))
        if message is not None and not self.is_live:
            self._print(self.line(row))
        self._refresh()

    def update(self, key: str, status: str, message: str | None, *, pushed: bool = False) -> None:
        """Record one state of a task: a poll result, or a pushed state.

        Args:
            key: The row, as given to `add`.
            status: The task's status.
            message: Its message, if any; only its first ``_TEXT_LIMIT`` characters are
                read, so a huge one costs no more than a short one.
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
        ended = is_terminal(status)
        status = _one_line(status, _STATUS_LIMIT)
        message = None if message is None else _one_line(message)
        changed = (status, message) != (row.status, row.message)
        row.status, row.message = status, message
        if ended:
            row.ended = self._clock()
        if changed:
            self._changes += 1
            row.changed = self._changes
            if not self.is_live:
                self._print(self.line(row))
        self._refresh()

    # -- output --------------------------------------------------------------------------

    def line(self, row: TaskRow) -> str:
        """Return the plain line for a row's current state: time, label, status, message.

        The line is not cut to the console's width; printing it (in plain mode) does that.
        """
        at = self._clock() - self.started
        label = row.label + " " * (self._label_width - cell_len(row.label))
        status = f"{row.status:<{_STATUS_WIDTH}}"
        return f"[{at:5.2f}s] {label}  {status}  {row.message or ''}".rstrip()

    def table(self, width: int | None = None, height: int | None = None) -> Table:
        """Return the table of the tasks, as the live view shows it, to fit a screen.

        Columns: task, status, message, polls, elapsed; then a caption, ``4/6 done · 3.2 s``.
        Every cell is one line, cut with an ellipsis. At narrow widths the polls column
        goes first, then elapsed, then the outer edges, then labels are cut, so that the
        message keeps about 16 cells (see `_Layout.fit`); it gets every cell left. Polls
        read ``7``, or ``7+5`` under the header ``polls+push`` once the server pushes
        states: 7 states polled, 5 pushed.

        When the rows don't fit the height, it shows those that matter most (unfinished
        first, then failed or cancelled, then completed; most recently changed first
        within each), in the order they were added, and one row for the rest, which
        reads ``…``, ``37 more``, ``30 completed, 5 failed, 2 working`` in the task,
        status and message columns.

        Args:
            width: The width to fit, in cells; default: the view's console's.
            height: The lines to fit, caption included; default: the view's console's.
        """
        width = self.console.width if width is None else width
        height = self.console.height if height is None else height
        now = self._clock()
        rows = list(self.rows.values())  # one snapshot: rich's refresh thread reads this too
        done = sum(row.ended is not None for row in rows)
        polls_header = "polls+push" if any(row.pushes for row in rows) else "polls"

        # The layout is decided on every row, not only the shown ones, so that columns do
        # not come and go as the rows that fit change.
        def fit(status_width: int) -> _Layout:
            return _Layout.fit(
                width,
                label=max(self._label_width, len("task")),
                status=max(status_width, len("status")),
                polls=max([len(polls_header)] + [len(_polls(r.polls, r.pushes)) for r in rows]),
                elapsed=max([len("elapsed")] + [len(_seconds(r.elapsed(now))) for r in rows]),
            )

        status_width = max((cell_len(row.status) for row in rows), default=0)
        layout = fit(status_width)
        room = max(height - layout.frame_lines, 1)
        if len(rows) > room:  # one row sums up the rest: "… | 37 more | 30 completed, ..."
            # Its "37 more" goes in the status column, which is never cut, unlike labels.
            layout = fit(max(status_width, len(f"{len(rows)} more")))
            room = max(height - layout.frame_lines, 1)
        shown = rows if len(rows) <= room else _most_important(rows, room - 1)

        headers = ["task", "status", "message"]
        headers += [polls_header] if layout.polls else []
        headers += ["elapsed"] if layout.elapsed else []
        body: list[list[Text]] = []
        for row in shown:
            cells = [
                Text(row.label),
                Text(row.status, style=_STYLES.get(row.status, "")),
                Text(row.message or ""),
            ]
            cells += [Text(_polls(row.polls, row.pushes))] if layout.polls else []
            cells += [Text(_seconds(row.elapsed(now)))] if layout.elapsed else []
            body.append(cells)
        styles: list[str | None] = [None] * len(body)
        if len(shown) < len(rows):
            rest = Counter(row.status for row in rows) - Counter(row.status for row in shown)
            more = [Text("…"), Text(f"{rest.total()} more"), Text(_count_parts(rest))]
            body.append(more + [Text("") for _ in headers[3:]])
            styles.append("dim")
        # The message gets every cell that the other columns, as shown, leave.
        widths = [
            max([cell_len(header)] + [cell_len(cells[i].plain) for cells in body])
            for i, header in enumerate(headers)
        ]
        widths[0] = min(widths[0], layout.label)
        message_width = max(width - layout.frame_cells - sum(widths) + widths[2], 1)

        table = Table(
            caption=f"{done}/{len(rows)} done · {self.elapsed(now):.1f} s",
            show_edge=layout.edge,
            pad_edge=layout.edge,
        )
        table.add_column("task", no_wrap=True, overflow="ellipsis", max_width=layout.label)
        table.add_column("status", no_wrap=True, overflow="ellipsis")
        table.add_column("message", no_wrap=True, overflow="ellipsis", max_width=message_width)
        for header in headers[3:]:
            table.add_column(header, justify="right", no_wrap=True)
        for cells, style in zip(body, styles, strict=True):
            table.add_row(*cells, style=style)
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
        parts = _count_parts(self.counts())
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

    def note(self, text: str) -> None:
        """Print one line about the run (a retry, a warning): above the live table if any."""
        self._print(_one_line(text))

    # -- the live table ------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self.is_live:
            self._live = Live(
                console=self.console,
                get_renderable=self._frame,
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

    def _frame(self) -> RenderableType:
        """What the live display shows: the table, or what happens until it has a row."""
        if not self.rows:
            # An empty "0/0 done" table would look stuck while the tasks are created.
            at = self._clock() - self.started
            return Text(f"starting tasks… {at:.1f} s", style="dim", no_wrap=True)
        return self.table()

    def _print(self, line: str) -> None:
        # On a terminal, cut to the width rather than let the console wrap: one line per
        # change. Into a pipe or a file the width means nothing (task ids must survive
        # whole): the server's text is already cut to _TEXT_LIMIT.
        text = Text(line)
        if self.console.is_terminal:
            text.truncate(self.console.width, overflow="ellipsis")
        self.console.print(text, highlight=False, soft_wrap=True)

    def _refresh(self) -> None:
        if self._live is not None and not self._auto_refresh:
            self._live.refresh()


def _polls(polls: int, pushes: int) -> str:
    """The polls cell: ``7``, or ``7+5`` when 5 states were pushed (header ``polls+push``)."""
    return f"{polls}+{pushes}" if pushes else str(polls)


def _seconds(seconds: float) -> str:
    """The elapsed cell: ``1.25 s``."""
    return f"{seconds:.2f} s"


def _most_important(rows: list[TaskRow], count: int) -> list[TaskRow]:
    """Return the ``count`` rows that matter most, in the order they were added.

    The most important: by `TaskRow.rank`, then the most recently changed. Keeping the
    order they were added in, rather than this one, keeps the rows in their places.
    """
    best = heapq.nsmallest(
        count, enumerate(rows), key=lambda item: (item[1].rank(), -item[1].changed)
    )
    return [row for _, row in sorted(best, key=lambda item: item[0])]
