"""The commands on mcp 1.23-1.30 (2025-11-25 tasks): demo in process, watch over real HTTP.

These tests run subprocesses and a real server on 127.0.0.1 in a thread: they assert
exit codes, order and content, never times.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import anyio
import pytest

pytest.importorskip("mcp", reason="needs mcp>=1.23,<2")
if find_spec("mcp_types") is not None:
    pytest.skip("needs mcp 1.x; mcp 2.x is installed", allow_module_level=True)

from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from rich.console import Console
from starlette.applications import Starlette
from starlette.routing import Route

from rxtasks.cli._run import DemoOptions
from rxtasks.cli._sdk1 import demo
from rxtasks.mcp._server_sdk1 import build_core_server

from ._cli import (
    DEMO_FINAL,
    FAST,
    crash_then_resume,
    final_statuses,
    interrupt_watch,
    rxtasks,
    rxtasks_serve,
    serve_http,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from starlette.types import Receive, Scope, Send

pytestmark = pytest.mark.mcp1


class _Endpoint:
    """The session manager as a raw ASGI endpoint (Starlette's Route calls it as one)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


@contextmanager
def serve(server: Server[Any, Any]) -> Generator[str]:
    """Serve a low-level mcp 1.x server over Streamable HTTP; yield its URL."""
    manager = StreamableHTTPSessionManager(app=server)
    app = Starlette(routes=[Route("/mcp", endpoint=_Endpoint(manager))])
    with serve_http(app, lifespan="off", around=manager.run) as address:
        yield address


@pytest.fixture
def url() -> Iterator[str]:
    """A 2025-11-25 task server over Streamable HTTP, one per test.

    One per test: an mcp 1.x ``Server`` serves one session at a time (its task runtime
    has one task group), and each watch is a session.
    """
    with serve(build_core_server()) as address:
        yield address


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_every_task_to_its_end(backend: str) -> None:
    """Off a terminal the demo prints plain lines; every task ends as it should; a summary."""
    result = rxtasks("demo", *FAST, "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert final_statuses(result.stdout) == DEMO_FINAL
    assert "ask-6          input_required  asking" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("summary: 6 tasks in ")
    assert result.stdout.splitlines()[-1].endswith(": 4 completed, 1 failed, 1 cancelled")


def test_demo_of_more_tasks() -> None:
    """More tasks than kinds repeat the kinds."""
    result = rxtasks("demo", *FAST, "--tasks", "8")
    assert result.returncode == 0, result.stderr
    assert final_statuses(result.stdout) == {
        **DEMO_FINAL,
        "work-7": "completed",
        "quick-8": "completed",
    }


def test_demo_of_the_extension_needs_mcp2() -> None:
    """The tasks extension's demo needs mcp 2.x: exit 2 and one line saying so."""
    result = rxtasks("demo", "--protocol", "extension")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert 'pip install "rxtasks[mcp]"' in result.stderr


def test_demo_on_a_terminal_draws_the_live_table() -> None:
    """On a (recorded) terminal the demo draws a table whose last frame has every task."""
    console = Console(record=True, width=120, force_terminal=True)
    options = DemoOptions(steps=2, step_ms=50)
    assert anyio.run(demo, options, console) == 0
    text = console.export_text()
    *_, last_frame = text.split("┏")
    for label, status in DEMO_FINAL.items():
        assert any(
            f"│ {label} " in line and f"│ {status} " in line for line in last_frame.splitlines()
        )
    assert "6/6 done" in last_frame
    assert text.rstrip().endswith("4 completed, 1 failed, 1 cancelled")


def test_watch_a_task_that_completes(url: str) -> None:
    """Exit 0, the result's text on stdout, the progress on stderr."""
    result = rxtasks("watch", url, "--tool", "work", "--args", '{"steps": 2, "step_ms": 100}')
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done after 2 steps\n"
    assert final_statuses(result.stderr) == {"work": "completed"}
    assert "work  working         step 2/2" in result.stderr


def test_watch_a_task_that_fails(url: str) -> None:
    """Exit 1 and the task's failure message."""
    args = '{"after_ms": 100, "message": "disk full"}'
    result = rxtasks("watch", url, "--tool", "fail", "--args", args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "rxtasks watch: the task failed: disk full"


def test_watch_a_tool_that_does_not_exist(url: str) -> None:
    """The server answers at once with a tool error: a note, the error, exit 1."""
    result = rxtasks("watch", url, "--tool", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "rxtasks watch: the server answered at once, without a task",
        "rxtasks watch: the tool reported an error: unknown tool 'nope'",
    ]


def test_watch_a_server_without_tasks() -> None:
    """A server that declares no tasks: exit 2 and one line saying so."""
    with serve(Server("no-tasks")) as address:
        result = rxtasks("watch", address, "--tool", "work")
    assert result.returncode == 2
    assert result.stderr.startswith(f"rxtasks watch: {address} declares no 2025-11-25 tasks")
    assert result.stderr.count("\n") == 1


def test_watch_an_unreachable_url() -> None:
    """Nothing listening: exit 2 and one line, no traceback."""
    result = rxtasks("watch", "http://127.0.0.1:1/mcp", "--tool", "work")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("rxtasks watch: cannot connect to http://127.0.0.1:1/mcp: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT stands for Ctrl-C on POSIX only")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_watch_interrupted(url: str, backend: str) -> None:
    """Ctrl-C: exit 130 and one line saying the task was asked to cancel."""
    code, out, err = interrupt_watch(url, "--tool", "wait_cancel", "--backend", backend)
    assert code == 130, err
    assert out == ""
    task_id = err.splitlines()[0].rsplit(" ", 1)[1]  # "[ 0.01s] wait_cancel  started  task ID"
    assert err.splitlines()[-1] == f"rxtasks watch: interrupted; task {task_id} was asked to cancel"


def test_serve_then_watch() -> None:
    """`rxtasks serve` prints a URL that watch can use, twice in a row; Ctrl-C stops it."""
    with rxtasks_serve() as address:
        for _ in range(2):
            result = rxtasks("watch", address, "--tool", "work", "--args", '{"steps": 2}')
            assert result.returncode == 0, result.stderr
            assert result.stdout == "done after 2 steps\n"


def test_a_killed_watch_is_resumed() -> None:
    """SIGKILL mid-task, then `rxtasks resume` of its last reference: the result, no early poll.

    `rxtasks serve` names its tasks itself, so that a new session may pick them up (mcp
    1.30 scopes the ids it generates to the session that created them).
    """
    with rxtasks_serve() as address:
        crash_then_resume(address, "work", '{"steps": 6, "step_ms": 500}')
