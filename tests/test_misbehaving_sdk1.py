"""watch (mcp 1.x) against a misbehaving 2025-11-25 server: a proxy in front of a real one.

Each test runs ``python -m rxtasks watch`` through `tests._misbehave`'s proxy and asserts
its exit status, output, the ``tasks/get`` the proxy counted, and its CPU time against a
well-behaved baseline. Every case's run starts when the module's first test does, a few
at a time in threads; each test then waits for its own.
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from importlib.util import find_spec
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("mcp", reason="needs mcp>=1.23,<2")
if find_spec("mcp_types") is not None:
    pytest.skip("needs mcp 1.x; mcp 2.x is installed", allow_module_level=True)

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route

from rxtasks.mcp._server_sdk1 import build_core_server

from ._cli import serve_http
from ._misbehave import MisbehavingServerTests, ProxyTests, Runs, selected_cases
from .test_cli_sdk1 import _Endpoint  # pyright: ignore[reportPrivateUsage]

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator, Iterator

pytestmark = [pytest.mark.mcp1, pytest.mark.timeout(300)]


@contextmanager
def serve_many(count: int) -> Generator[str]:
    """Serve ``count`` 2025-11-25 task servers at ``/mcp/0``, ``/mcp/1``...; yield ``/mcp``'s URL.

    One server per watch: an mcp 1.x ``Server`` serves one session at a time.
    """
    managers = [StreamableHTTPSessionManager(app=build_core_server()) for _ in range(count)]
    routes = [Route(f"/mcp/{i}", endpoint=_Endpoint(m)) for i, m in enumerate(managers)]

    @asynccontextmanager
    async def run_all() -> AsyncGenerator[None]:
        async with AsyncExitStack() as stack:
            for manager in managers:
                await stack.enter_async_context(manager.run())
            yield

    with serve_http(Starlette(routes=routes), lifespan="off", around=run_all) as url:
        yield url


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[Runs]:
    """Every selected case's watch, started now in the background; a server for each."""
    cases = selected_cases(request)
    with serve_many(len(cases)) as base:
        runs = Runs({case: f"{base}/{i}" for i, case in enumerate(cases)})
        try:
            yield runs
        finally:
            runs.close()


class TestWatch20251125(MisbehavingServerTests):
    """watch against a misbehaving 2025-11-25 server (mcp 1.30's low-level server)."""

    revisions = ("2025-11-25",)


class TestProxy(ProxyTests):
    """The misbehaving proxy itself."""
