"""rxtasks.cli._view: the live table and the plain lines, on a recorded console and a fake clock."""

from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("rich", reason="the commands' view needs rich (rxtasks[mcp] or [mcp1])")

from rich.console import Console
from rich.text import Text

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


def live_view(clock: Clock, width: int = 100, height: int = 30) -> tuple[TaskView, Console]:
    """A view on a recording terminal of a fixed size; redrawn on each change."""
    console = Console(
        record=True, width=width, height=height, force_terminal=True, color_system="standard"
    )
    return TaskView(console, clock=clock, auto_refresh=False), console


def cells(frame: str) -> list[list[str]]:
    """The body rows of a rendered table (with or without edges), as stripped cell texts."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in frame.splitlines()
        if "│" in line
    ]


# The end of a frame of the live display: the table's caption, or the starting line. The
# recording has no line break between frames (the cursor moves back up instead).
_FRAME_END = re.compile(r"((?:done · |starting tasks… )\d+\.\d s) *\n?")


def frames(text: str) -> list[str]:
    """The frames of a recorded live display, in order (and any line printed after them)."""
    return [frame for frame in _FRAME_END.sub("\\1\n\0", text).split("\0") if frame.strip()]


def last_frame(text: str) -> str:
    """The live display's last frame (the recording must end with it)."""
    return frames(text)[-1]


def headers(frame: str) -> list[str]:
    """The column headers of a frame."""
    line = next(line for line in frame.splitlines() if "┃" in line and "task" in line)
    return [cell.strip() for cell in line.strip().strip("┃").split("┃")]


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
            ["work-1", "completed", "done after 2 steps", "4+1", "1.25 s"],
            ["fail-2", "failed", "disk full", "2", "0.50 s"],
            ["wait_cancel-3", "cancelled", "cancelled", "1+1", "0.75 s"],
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

    def test_polls_and_pushes_share_a_column(self) -> None:
        """Polls read "7", or "7+5" (polled+pushed) under "polls+push" once a state is pushed."""
        clock = Clock()
        view, _ = plain_view(clock)
        view.add("a", "a")
        for _ in range(7):
            view.update("a", "working", None)
        console = Console(record=True, width=100, file=io.StringIO())
        console.print(view.table(width=100))
        for _ in range(5):
            view.update("a", "working", None, pushed=True)
        console.print(view.table(width=100))
        before, after = console.export_text().split("┏")[1:]
        assert (headers(before)[3], cells(before)[0][3]) == ("polls", "7")
        assert (headers(after)[3], cells(after)[0][3]) == ("polls+push", "7+5")

    def test_the_table_without_live(self) -> None:
        """table() fits any width: a long message is cut to one line, with an ellipsis."""
        clock = Clock()
        view, _ = plain_view(clock)
        view.add("q", "quick-1")
        clock.advance(1.5)
        view.update("q", "input_required", "asks: What is six times seven? " * 3)
        console = Console(record=True, width=60, file=io.StringIO())
        console.print(view.table(width=60))
        text = console.export_text()
        [row] = cells(text)
        assert row[:2] == ["quick-1", "input_required"]
        assert row[2].startswith("asks: What is six")
        assert row[2].endswith("…")
        assert max(len(line) for line in text.splitlines()) <= 60


class TestStarting:
    def test_no_empty_table_while_tasks_are_created(self) -> None:
        """Until the first row exists, the live display says it is starting, not "0/0 done"."""
        clock = Clock()
        view, console = live_view(clock)
        clock.advance(0.4)  # the first task takes a while to create
        with view:
            starting = console.export_text()
            view.add("w", "work-1")
        assert "starting tasks… 0.4 s" in starting
        assert "done" not in starting
        assert "┃" not in starting  # no table at all
        assert cells(last_frame(console.export_text())) == [
            ["work-1", "started", "", "0", "0.00 s"]  # the row's own time starts when added
        ]

    def test_the_first_row_replaces_it(self) -> None:
        """The table appears with the first row, and counts it."""
        clock = Clock()
        view, console = live_view(clock)
        with view:
            view.add("w", "work-1")
        assert last_frame(console.export_text()).strip().endswith("0/1 done · 0.0 s")


class TestServerText:
    """Whatever a server puts in a message, each row and each line stays one line."""

    MESSAGE = "step 1\n\tstep 2\r\n\x1b[31mred\x1b[0m \u202eevil\x00 \u200b end"
    ONE_LINE = "step 1 step 2 [31mred [0m evil end"

    def test_control_characters_become_single_spaces_in_lines(self) -> None:
        """Newlines, tabs, escapes and bidi controls collapse into single spaces."""
        clock = Clock()
        view, out = plain_view(clock)
        view.add("a", "a")
        view.update("a", "working", self.MESSAGE)
        assert out.getvalue() == f"[ 0.00s] a  working         {self.ONE_LINE}\n"

    def test_control_characters_become_single_spaces_in_the_table(self) -> None:
        """The table's row is one line, with the same text."""
        clock = Clock()
        view, console = live_view(clock)
        with view:
            view.add("a", "a")
            view.update("a", "working", self.MESSAGE)
        assert cells(last_frame(console.export_text()))[0][2] == self.ONE_LINE

    def test_plain_lines_are_cut_to_the_width_of_a_terminal(self) -> None:
        """On a terminal (--plain), a long message is cut to the console's width, with "…"."""
        out = io.StringIO()
        view = TaskView(
            Console(file=out, width=100, force_terminal=True), clock=Clock(), live=False
        )
        view.add("a", "a")
        view.update("a", "working", "word " * 50)
        [line] = Text.from_ansi(out.getvalue()).plain.splitlines()
        assert len(line) == 100
        assert line.startswith("[ 0.00s] a  working         word word")
        assert line.endswith("…")

    def test_plain_lines_into_a_pipe_keep_a_bounded_message(self) -> None:
        """Into a pipe, lines are not cut to a width (ids survive) but stay bounded."""
        clock = Clock()
        view, out = plain_view(clock)
        view.add("a", "a", "task " + "x" * 120)
        view.update("a", "working", "word " * 500)
        first, second = out.getvalue().splitlines()
        assert first.endswith("x" * 120)
        assert len(second) < 1100
        assert second.endswith("…")

    @staticmethod
    def plain_output(message: str) -> str:
        """What plain lines show of a task that works and completes with this message."""
        clock = Clock()
        view, out = plain_view(clock)
        view.add("a", "a")
        view.update("a", "working", message)
        view.update("a", "completed", message)
        view.print_summary()
        assert len(view.rows["a"].message or "") <= 1001  # kept: a bounded prefix
        return out.getvalue()

    @staticmethod
    def live_output(message: str) -> str:
        """What the live table shows of a task that works and completes with this message."""
        clock = Clock()
        view, console = live_view(clock, width=80, height=20)
        with view:
            view.add("a", "a")
            view.update("a", "working", message)
            view.update("a", "completed", message)
        view.print_summary()
        assert len(view.rows["a"].message or "") <= 1001
        return console.export_text()

    HUGE = "a line of the server's log\n" * 200_000  # 5.4 MB

    def test_a_huge_message_in_plain_lines(self) -> None:
        """A 5 MB message prints no more, and costs no more, than its first 2000 characters."""
        output = self.plain_output(self.HUGE)
        assert len(self.HUGE) > 5_000_000
        assert output == self.plain_output(self.HUGE[:2000])  # only a prefix is ever read
        assert len(output.splitlines()) == 3
        assert max(len(line) for line in output.splitlines()) <= 1100

    def test_a_huge_message_in_the_table(self) -> None:
        """In the live table as well: bounded frames, none wider than the terminal."""
        output = self.live_output(self.HUGE)
        assert output == self.live_output(self.HUGE[:2000])
        assert len(frames(output)) == 6  # starting, 3 changes, the final one; the summary
        for frame in frames(output):
            assert len(frame.splitlines()) <= 20
            assert max(len(line) for line in frame.splitlines()) <= 80
        assert "│ a line of the server's log a line of" in output


class TestTallBatch:
    """A batch taller than the terminal: the rows that matter most, and one for the rest."""

    def test_rows_that_matter_most_and_one_for_the_rest(self) -> None:
        """Unfinished first, then failed, then the most recently changed; in added order."""
        clock = Clock()
        view, console = live_view(clock, width=80, height=10)  # room for 5 rows
        with view:
            for i in range(10):
                view.add(str(i), f"t{i}")
            view.update("3", "working", "busy")
            view.update("6", "failed", "broke")
            for i in (0, 1, 2, 4, 5, 7, 8, 9):
                clock.advance(0.1)
                view.update(str(i), "completed", "done")
        frame = last_frame(console.export_text())
        assert len(frame.splitlines()) <= 10
        assert [row[:3] for row in cells(frame)] == [
            ["t3", "working", "busy"],
            ["t6", "failed", "broke"],
            ["t8", "completed", "done"],
            ["t9", "completed", "done"],
            ["…", "6 more", "6 completed"],
        ]
        assert frame.splitlines()[-1].strip() == "9/10 done · 0.8 s"  # the footer shows

    def test_the_summary_row_counts_the_rest_by_status(self) -> None:
        """The rest are counted by status, in the summary's order."""
        clock = Clock()
        view, console = live_view(clock, width=120, height=13)  # room for 8 rows
        with view:
            for i in range(44):
                view.add(str(i), f"t{i}")
            for i in range(44):
                clock.advance(0.01)
                status = "working" if i < 9 else "failed" if i < 14 else "completed"
                view.update(str(i), status, f"message {i}")
        frame = last_frame(console.export_text())
        rows = cells(frame)
        assert len(frame.splitlines()) == 13
        assert [row[1] for row in rows] == ["working"] * 7 + ["37 more"]
        assert rows[-1][:3] == ["…", "37 more", "30 completed, 5 failed, 2 working"]
        assert frame.splitlines()[-1].strip().startswith("35/44 done")

    def test_every_frame_fits_the_height(self) -> None:
        """No frame, while the batch grows and changes, is taller than the terminal."""
        clock = Clock()
        view, console = live_view(clock, width=60, height=8)
        with view:
            for i in range(20):
                view.add(str(i), f"task-{i}")
                view.update(str(i), "working", "x" * i)
        tables = frames(console.export_text())[1:]  # after the starting line
        assert len(tables) == 41  # 40 changes, the final frame
        for frame in tables:
            assert len(frame.splitlines()) <= 8
            assert " done · " in frame.splitlines()[-1]


class TestNarrow:
    """At narrow widths, the polls and elapsed columns give way to the message."""

    @staticmethod
    def render(width: int) -> str:
        """The last frame of two tasks, one cancelled and one asking, on this width."""
        clock = Clock()
        view, console = live_view(clock, width=width)
        with view:
            view.add("w", "wait_cancel-5")
            view.add("a", "ask-6")
            clock.advance(1.5)
            view.update("w", "cancelled", "cancelled by the demo, halfway through")
            view.update("a", "input_required", "asks: What is six times seven?")
        return last_frame(console.export_text())

    def test_at_40_columns_the_message_stays_readable(self) -> None:
        """Status whole, at least 12 characters of the message; no polls or elapsed."""
        frame = self.render(40)
        assert max(len(line) for line in frame.splitlines()) <= 40
        assert headers(frame) == ["task", "status", "message"]
        rows = cells(frame)
        assert [row[1] for row in rows] == ["cancelled", "input_required"]
        assert rows[1][2].startswith("asks: What i")  # 12 characters, then cut
        assert all(row[2].endswith("…") for row in rows)

    @pytest.mark.parametrize(
        ("width", "message"),
        [(80, "asks: What is six times …"), (120, "asks: What is six times seven?")],
    )
    def test_wider_terminals_show_every_column(self, width: int, message: str) -> None:
        """A usual terminal shows every column; the message gets every cell left."""
        frame = self.render(width)
        assert max(len(line) for line in frame.splitlines()) <= width
        assert headers(frame) == ["task", "status", "message", "polls", "elapsed"]
        assert cells(frame)[1][1:] == ["input_required", message, "1", "1.50 s"]
