"""rxtasks.cli._view: the live table and the plain lines, on a recorded console and a fake clock."""

from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("rich", reason="the commands' view needs rich (rxtasks[mcp] or [mcp1])")

from rich.console import Console

from rxtasks.cli._view import TaskView


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        """The current time, in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def plain_view(clock: Clock) -> tuple[TaskView, io.StringIO]:
    """A view writing to a file that is not a terminal, and what it writes."""
    out = io.StringIO()
    return TaskView(Console(file=out, width=100), clock=clock), out


def live_view(clock: Clock) -> tuple[TaskView, Console]:
    """A view on a recording console that says it is a terminal; redrawn on each change."""
    console = Console(record=True, width=100, force_terminal=True, color_system="standard")
    return TaskView(console, clock=clock, auto_refresh=False), console


def cells(frame: str) -> list[list[str]]:
    """The body rows of a rendered table, as lists of stripped cell texts."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in frame.splitlines()
        if line.startswith("│")
    ]


def run_batch(view: TaskView, clock: Clock) -> None:
    """Three tasks: one completes, one fails, one is cancelled; with a repeated state."""
    with view:
        view.add("w", "work-1")
        view.add("f", "fail-2")
        view.add("c", "wait_cancel-3")
        view.update("w", "working", None)
        view.update("f", "working", None)
        view.update("c", "working", "tick 1", pushed=True)
        clock.advance(0.5)
        view.update("w", "working", "step 1/2")
        view.update("f", "failed", "disk full")
        clock.advance(0.25)
        view.update("w", "working", "step 1/2")  # no change: counted, not printed
        view.update("c", "cancelled", "cancelled")
        clock.advance(0.5)
        view.update("w", "completed", "done after 2 steps")
        view.update("w", "completed", "done after 2 steps", pushed=True)  # a late duplicate


class TestPlainLines:
    def test_one_line_per_change(self) -> None:
        """Off a terminal, every change of status or message prints one aligned line."""
        clock = Clock()
        view, out = plain_view(clock)
        run_batch(view, clock)
        view.print_summary()
        assert not view.is_live
        assert out.getvalue().splitlines() == [
            "[ 0.00s] work-1         working",
            "[ 0.00s] fail-2         working",
            "[ 0.00s] wait_cancel-3  working         tick 1",
            "[ 0.50s] work-1         working         step 1/2",
            "[ 0.50s] fail-2         failed          disk full",
            "[ 0.75s] wait_cancel-3  cancelled       cancelled",
            "[ 1.25s] work-1         completed       done after 2 steps",
            "summary: 3 tasks in 1.25 s: 1 completed, 1 failed, 1 cancelled",
        ]

    def test_a_first_message_is_printed_when_added(self) -> None:
        """add() with a message prints it, so that a watched task's id shows at once."""
        clock = Clock()
        view, out = plain_view(clock)
        view.add("t1", "work", "task t1")
        assert out.getvalue() == "[ 0.00s] work  started         task t1\n"

    def test_rows_count_polls_and_pushes_and_freeze_at_the_end(self) -> None:
        """Each row counts its polls and pushes; its elapsed time stops at its end."""
        clock = Clock()
        view, _ = plain_view(clock)
        run_batch(view, clock)
        clock.advance(10)
        work, fail, cancel = view.rows.values()
        assert (work.polls, work.pushes, work.elapsed(clock())) == (4, 1, 1.25)
        assert (fail.polls, fail.pushes, fail.elapsed(clock())) == (2, 0, 0.5)
        assert (cancel.polls, cancel.pushes, cancel.elapsed(clock())) == (1, 1, 0.75)

    def test_summary_of_an_unfinished_run(self) -> None:
        """An interrupted run's summary counts the tasks still running, after the ended."""
        clock = Clock()
        view, _ = plain_view(clock)
        view.add("a", "a")
        view.add("b", "b")
        view.update("a", "failed", "x")
        clock.advance(2)
        assert view.summary() == "2 tasks in 2.00 s: 1 failed, 1 started"


class TestLiveTable:
    def test_the_final_table_shows_every_task(self) -> None:
        """On a terminal, a live table: the last frame has every task's final state."""
        clock = Clock()
        view, console = live_view(clock)
        run_batch(view, clock)
        view.print_summary()
        assert view.is_live
        text = console.export_text()
        *_, last_frame = text.split("┏")
        assert cells(last_frame) == [
            ["work-1", "completed", "done after 2 steps", "4 +1 pushed", "1.25 s"],
            ["fail-2", "failed", "disk full", "2", "0.50 s"],
            ["wait_cancel-3", "cancelled", "cancelled", "1 +1 pushed", "0.75 s"],
        ]
        assert "3/3 done · 1.2 s" in last_frame
        assert text.rstrip().endswith("3 tasks in 1.25 s: 1 completed, 1 failed, 1 cancelled")

    def test_every_change_is_redrawn(self) -> None:
        """Each change redraws the table (here without rich's refresh thread)."""
        clock = Clock()
        view, console = live_view(clock)
        run_batch(view, clock)
        frames = console.export_text().split("┏")[1:]
        statuses = [[row[1] for row in cells(frame)] for frame in frames]
        assert ["working", "failed", "working"] in statuses
        assert statuses[-1] == ["completed", "failed", "cancelled"]

    def test_statuses_are_coloured(self) -> None:
        """Statuses are styled: completed green, failed bold red."""
        clock = Clock()
        view, console = live_view(clock)
        run_batch(view, clock)
        styled = console.export_text(styles=True)
        assert re.search(r"\x1b\[32mcompleted", styled)
        assert re.search(r"\x1b\[1;31mfailed", styled)

    def test_the_table_without_live(self) -> None:
        """table() renders on any console; a long message is folded, not cut."""
        clock = Clock()
        view, _ = plain_view(clock)
        view.add("q", "quick-1")
        clock.advance(1.5)
        view.update("q", "input_required", "asks: What is six times seven?")
        console = Console(record=True, width=60, file=io.StringIO())
        console.print(view.table())
        first, *more = cells(console.export_text())
        assert first[:2] == ["quick-1", "input_required"]
        assert first[3:] == ["1", "1.50 s"]
        assert more  # a narrow console folds the message over several lines, never cuts it
        assert " ".join(row[2] for row in [first, *more]) == "asks: What is six times seven?"
