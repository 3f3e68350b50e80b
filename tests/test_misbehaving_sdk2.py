"""watch (mcp 2.x) against misbehaving servers: a proxy in front of real ones.

Each test runs ``python -m rxtasks watch`` through `tests._misbehave`'s proxy and asserts
its exit status, output, the ``tasks/get`` the proxy counted, and its CPU time against a
well-behaved baseline, once per protocol revision: against a tasks-extension server
(FastMCP + fastmcp-tasks, in a thread) and, where ``RXTASKS_MCP1_PYTHON`` names a Python
with mcp 1.x (``nox -s tests_mcp2`` sets it), a 2025-11-25 server in that Python. Every
case's run starts when the module's first test does, a few at a time in threads; each
test then waits for its own.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

from rxtasks.mcp._server_sdk2 import build_extension_server

from ._cli import TIMEOUT_S, serve_http
from ._misbehave import MisbehavingServerTests, ProxyTests, Runs, selected_cases

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

pytestmark = [pytest.mark.mcp2, pytest.mark.timeout(300)]

MCP1_PYTHON = os.environ.get("RXTASKS_MCP1_PYTHON")

# Run by RXTASKS_MCP1_PYTHON: COUNT 2025-11-25 task servers (one per watch: an mcp 1.x
# Server serves one session at a time) at /mcp/0, /mcp/1... over Streamable HTTP on an
# OS-assigned port; prints the URL of /mcp, serves until its stdin closes.
_LEGACY_SERVERS = """
import contextlib, socket, sys
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

async def main(count):
    managers = [StreamableHTTPSessionManager(app=build_core_server()) for _ in range(count)]
    routes = [Route(f"/mcp/{i}", endpoint=Endpoint(m)) for i, m in enumerate(managers)]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(Starlette(routes=routes), lifespan="off", log_level="critical")
    server = uvicorn.Server(config)
    async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
        for manager in managers:
            await stack.enter_async_context(manager.run())
        tg.start_soon(server.serve, [sock])
        while not server.started:
            await anyio.sleep(0.01)
        print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)
        server.should_exit = True

anyio.run(main, int(sys.argv[1]))
"""


@contextmanager
def serve_legacy(python: str, count: int) -> Generator[str]:
    """Serve ``count`` 2025-11-25 task servers in ``python`` (mcp 1.x); yield ``/mcp``'s URL."""
    with subprocess.Popen(
        [python, "-c", _LEGACY_SERVERS, str(count)],
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


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[Runs]:
    """Every selected case's watch, started now in the background, with their servers.

    The extension's cases share one server; each 2025-11-25 case gets a server of its own
    (none without ``RXTASKS_MCP1_PYTHON``: those cases skip).
    """
    cases = selected_cases(request)
    legacy = [case for case in cases if case.revision == "2025-11-25"]
    with ExitStack() as stack:
        urls: dict[object, str | None] = {}
        if any(case.revision == "extension" for case in cases):
            app = build_extension_server().http_app(path="/mcp")
            url = stack.enter_context(serve_http(app, lifespan="on"))  # starts the tasks backend
            urls.update((case, url) for case in cases if case.revision == "extension")
        if legacy and MCP1_PYTHON is not None:
            base = stack.enter_context(serve_legacy(MCP1_PYTHON, len(legacy)))
            urls.update((case, f"{base}/{i}") for i, case in enumerate(legacy))
        else:
            urls.update((case, None) for case in legacy)
        runs = Runs({case: urls[case] for case in cases})
        try:
            yield runs
        finally:
            runs.close()


class TestWatchExtension(MisbehavingServerTests):
    """watch against a misbehaving tasks-extension server (FastMCP + fastmcp-tasks)."""

    revisions = ("extension",)


class TestWatch20251125(MisbehavingServerTests):
    """watch from mcp 2.x against a misbehaving 2025-11-25 server (mcp 1.x, elsewhere)."""

    revisions = ("2025-11-25",)


class TestProxy(ProxyTests):
    """The misbehaving proxy itself."""
