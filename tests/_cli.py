"""Helpers of the command tests: run ``python -m rxtasks``, serve MCP over HTTP in a thread."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

#: The demo's tasks with the default batch, and the status each one must end with.
DEMO_FINAL = {
    "work-1": "completed",
    "quick-2": "completed",
    "slow-3": "completed",
    "fail-4": "failed",
    "wait_cancel-5": "cancelled",
    "ask-6": "completed",
}
#: Short durations for tests (about a second with the default batch).
FAST = ("--steps", "2", "--step-ms", "50")
#: Generous: a subprocess imports an SDK (seconds) on a busy CI machine.
TIMEOUT_S = 120


def rxtasks(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rxtasks ARGS`` with its output captured (not a terminal)."""
    clean = {**os.environ, **(env or {})}
    # rich would draw its live table into the pipe if told the output is a terminal.
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "rxtasks", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=clean,
        check=False,
    )


def final_statuses(output: str) -> dict[str, str]:
    """Map each task label to the status on its last plain line."""
    final: dict[str, str] = {}
    for match in re.finditer(r"^\[\s*[\d.]+s\] (\S+)\s+(\w+)", output, re.MULTILINE):
        final[match[1]] = match[2]
    return final


@contextmanager
def serve_http(
    app: Any,
    *,
    lifespan: Literal["on", "off"],
    around: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    path: str = "/mcp",
) -> Generator[str]:
    """Serve an ASGI app on 127.0.0.1 (OS-assigned port) in a thread; yield its URL.

    Args:
        app: The ASGI app.
        lifespan: uvicorn's lifespan setting (``on`` runs the app's own startup).
        around: An async context to run the server in (mcp 1.x's session manager).
        path: The MCP endpoint's path in the app.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan=lifespan, log_level="warning", timeout_graceful_shutdown=2)
    )

    async def serve() -> None:
        async with around() if around is not None else nullcontext():
            await server.serve(sockets=[sock])

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="mcp-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test's MCP server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT_S)
        sock.close()


def _read_line(stream: IO[str]) -> str:
    """One line from a child's pipe, read byte by byte; "" at its end.

    Iterating or ``readline`` on the pipe's text wrapper reads ahead into its buffer,
    and ``communicate()`` later reads the file descriptor itself: what was read ahead
    would be lost. Byte by byte, nothing is taken beyond the line.
    """
    line = bytearray()
    while (byte := os.read(stream.fileno(), 1)) and byte != b"\n":
        line += byte
    return line.decode() + ("\n" if byte else "")


def interrupt_watch(url: str, *args: str) -> tuple[int, str, str]:
    """Run ``rxtasks watch URL ARGS``, press Ctrl-C once the task works; return its end.

    Returns:
        The exit code, stdout and stderr.
    """
    import signal

    # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it
    # started, and a child inherits "ignored" (as when these tests run as a background
    # job of a non-interactive shell): so the child restores Ctrl-C itself.
    ctrl_c = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
        " runpy.run_module('rxtasks', run_name='__main__', alter_sys=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", ctrl_c, "watch", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    while line := _read_line(process.stderr):  # the progress: wait until the task has ticked
        seen.append(line)
        if " working " in line and "tick" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, out, "".join(seen) + err


@contextmanager
def rxtasks_serve(*args: str) -> Generator[str]:
    """Run ``rxtasks serve --port 0 ARGS`` until the block ends; yield the URL it prints.

    Leaving stops it with Ctrl-C and checks that it said so and exited 130.
    """
    import signal

    ctrl_c = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
        " runpy.run_module('rxtasks', run_name='__main__', alter_sys=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", ctrl_c, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = _read_line(process.stdout)
    match = re.search(r" on (http://127\.0\.0\.1:\d+/mcp)$", first.strip())
    assert match is not None, first + process.communicate(timeout=TIMEOUT_S)[1]
    try:
        yield match[1]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT_S)
    out = first + out
    assert process.returncode == 130, err
    assert err.endswith("rxtasks serve: stopped\n"), err
    assert "tools: " in out


def crash_then_resume(upstream: str, tool: str, arguments: str) -> None:
    """Kill a ``watch --json`` with SIGKILL mid-task; ``resume`` its last reference.

    Through a recording proxy in front of ``upstream``: the resumed watch gets the
    task's result, exit 0, and its first ``tasks/get`` is not sent before the time the
    reference said (a floor of 2.5 s between polls makes that time lie ahead when the
    second process starts); the killed watch sent no ``tasks/cancel``.
    """
    import json
    import signal

    from ._misbehave import misbehaving_proxy

    floor = ("--min-interval-ms", "2500")
    with misbehaving_proxy(upstream) as (url, record):
        watch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rxtasks",
                "watch",
                url,
                "--tool",
                tool,
                "--args",
                arguments,
                "--json",
                "--plain",
                *floor,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert watch.stdout is not None
        states: list[dict[str, Any]] = []
        while len(states) < 2 and (line := _read_line(watch.stdout)):
            states.append(json.loads(line))
        watch.send_signal(signal.SIGKILL)
        watch.wait(TIMEOUT_S)
        watch.stdout.close()
        # The reference's wall-clock time, on the proxy's monotonic clock.
        ref = states[-1]["ref"]
        due = (
            time.monotonic()
            + (datetime.fromisoformat(ref["next_poll_at"]) - datetime.now(UTC)).total_seconds()
        )
        gets_before = record.count("tasks/get")
        assert [state["type"] for state in states] == ["state", "state"], states
        assert ref["server"] == url
        assert due > time.monotonic(), "the next poll should lie ahead"

        resumed = rxtasks("resume", json.dumps(ref), "--json", "--plain", *floor)
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout.splitlines()[-1])
        assert result["type"] == "result", resumed.stdout
        assert result["ok"], result
        after = record.times("tasks/get")[gets_before:]
        assert after, record.methods()
        # Not early: the proxy read it after the due time (1 ms for the two clocks' reads).
        assert after[0] >= due - 0.001, (after[0], due)
        assert record.count("tasks/cancel") == 0, record.methods()
