"""``rxtasks serve``: the demo's task server over Streamable HTTP on 127.0.0.1, for trying watch.

The SDK modules build the app (the installed SDK's protocol revision); serving it is the
same for both: uvicorn on a socket bound here, the URL and the tools printed once it
listens, until Ctrl-C.
"""

from __future__ import annotations

import socket
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._run import CommandError, ServeOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console

__all__ = ["serve_app"]


async def serve_app(
    app: Any,
    *,
    options: ServeOptions,
    console: Console,
    what: str,
    tools: Sequence[str],
    example: str,
    around: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    lifespan: Literal["on", "off"] = "off",
) -> int:
    """Serve an ASGI app on 127.0.0.1 until interrupted; say where and what it serves.

    Args:
        app: The MCP server's ASGI app, its endpoint at ``/mcp``.
        options: The command's options.
        console: Where to say it (stdout).
        what: The server, in a few words.
        tools: Its tools' names.
        example: The arguments of one ``rxtasks watch`` to try (after the URL).
        around: An async context the server runs in (mcp 1.x's session manager).
        lifespan: uvicorn's lifespan setting (``on`` runs the app's own startup).

    Raises:
        CommandError: If the port cannot be bound.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", options.port))
    except OSError as exc:
        sock.close()
        raise CommandError(
            f"cannot listen on 127.0.0.1:{options.port} ({exc.strerror}); try --port 0"
            " for any free port"
        ) from None
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    level = "info" if options.verbose else "warning"
    config = uvicorn.Config(app, lifespan=lifespan, log_level=level, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    async with around() if around is not None else nullcontext(), anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            if server.should_exit:
                raise CommandError("the server did not start")
            await anyio.sleep(0.01)
        console.print(f"{what} on {url}", highlight=False, markup=False, soft_wrap=True)
        console.print(f"tools: {', '.join(tools)}", highlight=False, markup=False, soft_wrap=True)
        console.print(
            f"try:   rxtasks watch {url} {example}", highlight=False, markup=False, soft_wrap=True
        )
        console.print("Ctrl-C stops it.", highlight=False, markup=False, soft_wrap=True)
        console.file.flush()  # into a pipe too: a script waits for the URL
    return 0
