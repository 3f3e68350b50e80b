"""The commands on mcp 2.x: demo on fastmcp-tasks in process, watch over real HTTP.

watch is tested against a tasks-extension server (FastMCP + fastmcp-tasks, in a thread)
and, where ``RXTASKS_MCP1_PYTHON`` names a Python with mcp 1.x (``nox -s tests_mcp2``
sets it), against a 2025-11-25 server in that Python. These tests run subprocesses and
real servers on 127.0.0.1: they assert exit codes, order and content, never times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

from fastmcp import FastMCP
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from rich.console import Console

from rxtasks.cli._run import DemoOptions
from rxtasks.cli._sdk2 import demo
from rxtasks.mcp._server_sdk2 import build_extension_server
from rxtasks.mcp.sdk2 import ExtensionTasks, session_options

from ._cli import (
    DEMO_FINAL,
    FAST,
    TIMEOUT_S,
    crash_then_resume,
    final_statuses,
    interrupt_watch,
    rxtasks,
    rxtasks_serve,
    serve_http,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.mcp2

MCP1_PYTHON = os.environ.get("RXTASKS_MCP1_PYTHON")

# Run by RXTASKS_MCP1_PYTHON: a 2025-11-25 task server over Streamable HTTP on an
# OS-assigned port; prints its URL, serves until its stdin closes.
_LEGACY_SERVER = """
import socket, sys
import anyio, uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from rxtasks.mcp._server_sdk1 import build_core_server

class Endpoint:
    def __init__(self, manager):
        self.manager = manager
    async def __call__(self, scope, receive, send):
        await self.manager.handle_request(scope, receive, send)

async def main():
    manager = StreamableHTTPSessionManager(app=build_core_server())
    app = Starlette(routes=[Route("/mcp", endpoint=Endpoint(manager))])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    async with manager.run(), anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            await anyio.sleep(0.01)
        print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)
        server.should_exit = True

anyio.run(main)
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A tasks-extension server (fastmcp-tasks) over Streamable HTTP, for this module."""
    app = build_extension_server().http_app(path="/mcp")
    with serve_http(app, lifespan="on") as address:  # the lifespan starts the task backend
        yield address


@pytest.fixture
def legacy_url() -> Iterator[str]:
    """A 2025-11-25 task server (mcp 1.x, in its own environment) over Streamable HTTP."""
    if MCP1_PYTHON is None:
        pytest.skip("set RXTASKS_MCP1_PYTHON to a Python with mcp>=1.23,<2 (nox does)")
    with subprocess.Popen(
        [MCP1_PYTHON, "-c", _LEGACY_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            yield server.stdout.readline().strip()
        finally:
            server.stdin.close()  # the server's signal to stop
            server.wait(TIMEOUT_S)


def test_demo_runs_every_task_to_its_end() -> None:
    """Off a terminal the demo prints plain lines; every task ends as it should; a summary."""
    result = rxtasks("demo", *FAST)
    assert result.returncode == 0, result.stderr
    assert final_statuses(result.stdout) == DEMO_FINAL
    assert "asks: What is six times seven?" in result.stdout
    assert "answer: 42" in result.stdout
    assert "the disk is full (on purpose)" in result.stdout
    assert result.stdout.splitlines()[-1].endswith(": 4 completed, 1 failed, 1 cancelled")
    # The task that fails on purpose is not logged with a traceback unless --verbose.
    assert "Traceback" not in result.stderr


def test_demo_on_trio_is_refused() -> None:
    """fastmcp-tasks runs on asyncio only: --backend trio exits 2 with one line saying so."""
    result = rxtasks("demo", "--backend", "trio")
    assert result.returncode == 2
    assert result.stderr == (
        "rxtasks demo: --backend trio is not supported here: the in-process"
        " tasks-extension server (fastmcp-tasks) runs on asyncio only\n"
    )


def test_demo_of_2025_11_25_needs_mcp1() -> None:
    """The 2025-11-25 demo needs mcp 1.x: exit 2 and one line saying so."""
    result = rxtasks("demo", "--protocol", "2025-11-25")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert 'pip install "rxtasks[mcp1]"' in result.stderr


def test_demo_on_a_terminal_draws_the_live_table() -> None:
    """On a (recorded) terminal the demo draws a table whose last frame has every task."""
    console = Console(record=True, width=120, force_terminal=True)
    options = DemoOptions(steps=2, step_ms=50)
    assert anyio.run(demo, options, console, backend="asyncio") == 0
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


def test_watch_on_trio(url: str) -> None:
    """The mcp 2.x client side runs on trio too."""
    args = ("--tool", "quick", "--args", '{"steps": 1}', "--backend", "trio")
    result = rxtasks("watch", url, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done after 1 steps\n"


def test_watch_a_task_that_fails(url: str) -> None:
    """Exit 1 and the task's failure message (its JSON-RPC error's)."""
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
        "rxtasks watch: the tool reported an error: Unknown tool: 'nope'",
    ]


def test_watch_a_server_without_tasks() -> None:
    """A server that declares neither kind of tasks: exit 2 and one line saying so."""
    with serve_http(FastMCP("no-tasks").http_app(path="/mcp"), lifespan="on") as address:
        result = rxtasks("watch", address, "--tool", "work")
    assert result.returncode == 2
    assert result.stderr == (
        f"rxtasks watch: {address} supports no tasks: it declares neither the tasks"
        " extension (io.modelcontextprotocol/tasks) nor 2025-11-25 tasks\n"
    )


def test_watch_an_unreachable_url() -> None:
    """Nothing listening: exit 2 and one line, no traceback."""
    result = rxtasks("watch", "http://127.0.0.1:1/mcp", "--tool", "work")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "rxtasks watch: cannot connect to http://127.0.0.1:1/mcp: All connection attempts failed\n"
    )


async def status_of(url: str, task_id: str) -> str:
    """Ask the server for a task's status, in a session of our own."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write, **session_options()) as session,
    ):
        await session.discover()
        return (await ExtensionTasks(session).get_task(task_id)).status


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT stands for Ctrl-C on POSIX only")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_watch_interrupted_cancels_the_task(url: str, backend: str) -> None:
    """Ctrl-C: exit 130, one line, and the task is cancelled on the server."""
    code, out, err = interrupt_watch(url, "--tool", "wait_cancel", "--backend", backend)
    assert code == 130, err
    assert out == ""
    task_id = err.splitlines()[0].rsplit(" ", 1)[1]  # "[ 0.01s] wait_cancel  started  task ID"
    assert err.splitlines()[-1] == f"rxtasks watch: interrupted; task {task_id} was asked to cancel"
    assert anyio.run(status_of, url, task_id, backend="asyncio") == "cancelled"


class TestWatch20251125:
    """watch from mcp 2.x against a 2025-11-25 server (mcp 1.x, another environment)."""

    def test_a_task_that_completes(self, legacy_url: str) -> None:
        """The task is created through the session's dispatcher and polled to its end."""
        args = '{"steps": 2, "step_ms": 100, "interval_ms": 100}'
        result = rxtasks("watch", legacy_url, "--tool", "work", "--args", args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "done after 2 steps\n"
        assert "work  working         step 2/2" in result.stderr

    def test_a_task_that_fails(self, legacy_url: str) -> None:
        """A failed 2025-11-25 task: exit 1 and its status message."""
        args = '{"after_ms": 100, "message": "disk full"}'
        result = rxtasks("watch", legacy_url, "--tool", "fail", "--args", args)
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] == "rxtasks watch: the task failed: disk full"


def test_serve_then_watch() -> None:
    """`rxtasks serve` prints a URL that `rxtasks watch` can use; Ctrl-C stops it."""
    with rxtasks_serve() as address:
        result = rxtasks("watch", address, "--tool", "quick", "--args", '{"steps": 2}')
        assert result.returncode == 0, result.stderr
        assert result.stdout == "done after 2 steps\n"
        result = rxtasks("watch", address, "--tool", "echo", "--args", '{"text": "hi"}')
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hi\n"
        assert result.stderr == "rxtasks watch: the server answered at once, without a task\n"


def test_a_killed_watch_is_resumed(url: str) -> None:
    """SIGKILL mid-task, then `rxtasks resume` of its last reference: the result, no early poll."""
    crash_then_resume(url, "work", '{"steps": 6, "step_ms": 500}')


def test_detach_then_resume(url: str, tmp_path: Path) -> None:
    """--detach prints the task's reference and leaves it running; resume @FILE ends it."""
    detached = rxtasks("watch", url, "--tool", "work", "--args", '{"steps": 2}', "--detach")
    assert detached.returncode == 0, detached.stderr
    ref = json.loads(detached.stdout)
    assert (ref["version"], ref["protocol"], ref["server"]) == (1, "2026-07-28", url)
    saved = tmp_path / "task.json"
    saved.write_text(detached.stdout)
    resumed = rxtasks("resume", f"@{saved}")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "done after 2 steps\n"


def test_resume_refuses_what_is_not_a_reference(tmp_path: Path) -> None:
    """Not JSON, another version, a missing file: exit 2 with argparse's one line."""
    for ref, why in [
        ("{", "must be JSON"),
        ('{"version": 9}', "version 9"),
        (f"@{tmp_path / 'missing.json'}", "cannot read"),
    ]:
        result = rxtasks("resume", ref)
        assert result.returncode == 2, result.stderr
        assert why in result.stderr.splitlines()[-1], result.stderr


def test_json_ends_with_the_timeout(url: str) -> None:
    """--json with --timeout-ms: state lines, then one timeout object; exit 124."""
    result = rxtasks("watch", url, "--tool", "wait_cancel", "--json", "--timeout-ms", "600")
    assert result.returncode == 124, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["type"] for line in lines[:-1]} == {"state"}, lines
    assert lines[-1]["type"] == "timeout", lines
    assert lines[-1]["timeout_ms"] == 600
    assert lines[-1]["cancelled"] is True
