"""A misbehaving reverse proxy for MCP over Streamable HTTP, for end-to-end tests.

`misbehaving_proxy` serves on 127.0.0.1 (an OS-assigned port) in front of a real MCP
server and forwards every request (POST, GET, DELETE) with its headers, ``Mcp-Session-Id``
included both ways. Answers are passed on as they come: an ``application/json`` body
whole, a ``text/event-stream`` event by event as each arrives (never buffered), anything
else byte for byte. On the way it lets a `Fault` misbehave in the server's name:

- before a request is forwarded, `Fault.on_request` may answer it instead: `Raw` (any
  status, type and body) or `HOLD` (never answer);
- each JSON-RPC response, recognised by the id of the request it answers (the proxy
  tracks the method of every request id it saw), goes through `Fault.on_response`, which
  may rewrite it or return `DROP` (close the connection halfway through it);
- each server notification goes through `Fault.on_notification`, which may rewrite or
  drop it.

The `Record` the proxy yields holds every client request it saw (method, params, when,
and the server's real answer), the task the server created, and the requests a fault
injected itself (`Link.inject`, e.g. a ``tasks/cancel`` in the server's name).

Faults work on both tasks protocols: 2025-11-25 (``pollInterval``, the created task
nested as ``result.task``, ``tasks/result``) and the tasks extension of 2026-07-28
(``pollIntervalMs``, a flat created task with ``resultType: "task"``).

After a run the proxy cancels a task the client left running (so that servers stop
promptly), and on exit it ends held requests and cuts open streams.

The second half of this module runs ``python -m rxtasks watch`` through the proxy
(`watch_through`: exit status, output, CPU time from ``os.wait4``, wall time), names the
server behaviours to run it against (`ROWS`, per protocol revision), runs a test
module's cases in parallel (`Runs`), and holds the tests both SDKs' modules share
(`MisbehavingServerTests`, `ProxyTests`). Standard library and pytest only, so that the
mcp 1.x and mcp 2.x environments share it.
"""

from __future__ import annotations

import copy
import http.client
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

__all__ = [
    "DROP",
    "HOLD",
    "MISSING",
    "AtOnce",
    "Call",
    "Case",
    "CreatedTaskId",
    "DropAnswers",
    "ErrorEvery",
    "Fault",
    "Faults",
    "FinalStatus",
    "Hint",
    "HoldRequests",
    "Link",
    "MisbehavingServerTests",
    "NoPushes",
    "NonJson",
    "ProxyTests",
    "Record",
    "ResultError",
    "Row",
    "Run",
    "Runs",
    "ServerCancel",
    "Status",
    "StatusMessage",
    "misbehaving_proxy",
    "run_case",
    "selected_cases",
    "watch_through",
]

JSON = dict[str, Any]
Revision = Literal["2025-11-25", "extension"]

#: Headers that belong to one hop: never forwarded (the proxy frames its own answers).
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",  # the proxy reads bodies: no compression
        "server",
        "date",
    }
)

#: Where each revision keeps the poll interval hint.
HINT_FIELD: Final[dict[Revision, str]] = {
    "2025-11-25": "pollInterval",
    "extension": "pollIntervalMs",
}


class _Missing:
    """The type of `MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"


#: A field value that means "remove the field".
MISSING: Final = _Missing()


@dataclass(frozen=True)
class Raw:
    """An answer of the proxy's own instead of the server's.

    Attributes:
        status: The HTTP status.
        content_type: Its ``Content-Type``.
        body: The body.
    """

    status: int
    content_type: str
    body: bytes


class _Hold:
    """The type of `HOLD`."""

    def __repr__(self) -> str:
        return "HOLD"


class _Drop:
    """The type of `DROP`."""

    def __repr__(self) -> str:
        return "DROP"


#: Never answer the request: hold it open until the client goes away or the proxy stops.
HOLD: Final = _Hold()
#: Close the connection in the middle of the answer.
DROP: Final = _Drop()


@dataclass
class Call:
    """One JSON-RPC message the client sent through the proxy (a request or notification).

    Attributes:
        method: Its method.
        id: Its id; None for a notification.
        params: Its params.
        at: When the proxy read it (``time.monotonic()``).
        nth: Its number among the messages of this method, from 1.
        answered_at: When the server's answer to it passed the proxy, if it did.
        result: The server's real ``result`` (before any fault), if any.
        error: The server's real ``error``, if any.
    """

    method: str
    id: int | str | None
    params: JSON
    at: float
    nth: int
    answered_at: float | None = None
    result: JSON | None = None
    error: JSON | None = None


@dataclass
class Injected:
    """A request a fault sent to the server in the client's session (`Link.inject`).

    Attributes:
        method: Its method.
        params: Its params.
        answer: The server's JSON-RPC answer, if it gave one.
    """

    method: str
    params: JSON
    answer: JSON | None = None


class Record:
    """What the proxy saw; safe to read from any thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.calls: list[Call] = []
        self.injected: list[Injected] = []
        self.task_id: str | None = None
        self.revision: Revision | None = None
        self.errors: list[str] = []  # the proxy's own failures (a client that left, ...)

    def add(self, method: str, message_id: int | str | None, params: JSON) -> Call:
        """Note a message of the client's, as the proxy reads it."""
        with self._changed:
            nth = 1 + sum(call.method == method for call in self.calls)
            call = Call(method, message_id, params, time.monotonic(), nth)
            self.calls.append(call)
            self._changed.notify_all()
            return call

    def update(self, change: Callable[[], object]) -> None:
        """Make a change to the record (under its lock) and wake its waiters."""
        with self._changed:
            change()
            self._changed.notify_all()

    def calls_of(self, method: str) -> list[Call]:
        """The messages of one method, in the order the proxy read them."""
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def count(self, method: str) -> int:
        """How many messages of one method the proxy saw."""
        return len(self.calls_of(method))

    def times(self, method: str) -> list[float]:
        """When the proxy read each message of one method (``time.monotonic()``)."""
        return [call.at for call in self.calls_of(method)]

    def methods(self) -> list[str]:
        """The method of every message, in order (for failure messages)."""
        with self._changed:
            return [call.method for call in self.calls]

    def wait_for(self, predicate: Callable[[Record], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked at each change); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


class Link:
    """A fault's handle on the exchange it misbehaves in.

    Attributes:
        record: The proxy's record.
    """

    def __init__(self, proxy: _Proxy, headers: dict[str, str]) -> None:
        self._proxy = proxy
        self._headers = headers
        self.record = proxy.record

    def inject(self, method: str, params: JSON) -> None:
        """Send a request of our own to the server, in the client's session, in the background.

        It carries the headers of the client's request being handled (session id,
        protocol version, ...) and an id the client never uses; its answer goes to
        `Record.injected`, never to the client.
        """
        injected = Injected(method, params)
        self.record.update(lambda: self.record.injected.append(injected))
        thread = threading.Thread(
            target=self._proxy.inject, args=(self._headers, injected), daemon=True
        )
        self._proxy.track(thread)
        thread.start()


class Fault:
    """A well-behaved server: forwards everything unchanged. Subclasses misbehave."""

    def on_request(self, call: Call, link: Link) -> Raw | _Hold | None:
        """Answer a request instead of the server (`Raw`, `HOLD`), or None to forward it."""
        return None

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        """Rewrite the server's answer to ``call`` (a JSON-RPC response), or `DROP` it."""
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        """Rewrite a notification of the server's, or None to drop it."""
        return message


class Faults(Fault):
    """Several faults at once, applied in order."""

    def __init__(self, *faults: Fault) -> None:
        self.faults = faults

    def on_request(self, call: Call, link: Link) -> Raw | _Hold | None:
        for fault in self.faults:
            reply = fault.on_request(call, link)
            if reply is not None:
                return reply
        return None

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        for fault in self.faults:
            changed = fault.on_response(call, message, link)
            if isinstance(changed, _Drop):
                return changed
            message = changed
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        for fault in self.faults:
            changed = fault.on_notification(message, link)
            if changed is None:
                return None
            message = changed
        return message


# -- the shapes of task states -----------------------------------------------------------------


def _set(container: JSON, name: str, value: object) -> None:
    if isinstance(value, _Missing):
        container.pop(name, None)
    else:
        container[name] = value


def _result(message: JSON) -> JSON | None:
    result = message.get("result")
    return result if isinstance(result, dict) else None  # pyright: ignore[reportUnknownVariableType]


def _created_task(message: JSON) -> JSON | None:
    """The task a ``tools/call`` answer created, in either revision's shape, else None."""
    result = _result(message)
    if result is None:
        return None
    nested = result.get("task")
    if isinstance(nested, dict):  # 2025-11-25: {"task": {...}}
        return nested  # pyright: ignore[reportUnknownVariableType]
    return result if result.get("resultType") == "task" else None  # the extension: flat


def _task_states(call: Call, message: JSON) -> list[JSON]:
    """The task states in an answer: a created task, or a ``tasks/get`` result."""
    if call.method == "tools/call":
        created = _created_task(message)
        return [] if created is None else [created]
    if call.method == "tasks/get":
        result = _result(message)
        return [] if result is None else [result]
    return []


def _pushed_state(message: JSON) -> JSON | None:
    """The task state a notification pushes (either revision), else None."""
    if message.get("method") in ("notifications/tasks/status", "notifications/tasks"):
        params = message.get("params")
        return params if isinstance(params, dict) else None  # pyright: ignore[reportUnknownVariableType]
    return None


def _error(message: JSON, code: int, text: str) -> JSON:
    return {"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": code, "message": text}}


# -- the faults --------------------------------------------------------------------------------


class NoPushes(Fault):
    """Drop the task states the server pushes (optional in both revisions): watch must poll."""

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        return None if _pushed_state(message) is not None else message


class Hint(Fault):
    """Set the poll interval hint of every task state (created, polled, pushed) to ``value``.

    Args:
        value: Any JSON value (`MISSING` removes the hint).
    """

    def __init__(self, value: object) -> None:
        self.value = value

    def _rewrite(self, state: JSON, link: Link) -> None:
        _set(state, HINT_FIELD[link.record.revision or "2025-11-25"], self.value)

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        for state in _task_states(call, message):
            self._rewrite(state, link)
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        state = _pushed_state(message)
        if state is not None:
            self._rewrite(state, link)
        return message


class Status(Fault):
    """Set the status of the task states ``tasks/get`` answers (and pushes) to ``value``.

    Args:
        value: Any JSON value; `MISSING` removes the field.
        polls: Only the first this many ``tasks/get`` (and the pushes meanwhile); None:
            all of them.
    """

    def __init__(self, value: object, *, polls: int | None = None) -> None:
        self.value = value
        self.polls = polls

    def _active(self, link: Link) -> bool:
        return self.polls is None or link.record.count("tasks/get") <= self.polls

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        if call.method == "tasks/get" and (self.polls is None or call.nth <= self.polls):
            for state in _task_states(call, message):
                _set(state, "status", self.value)
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        state = _pushed_state(message)
        if state is not None and self._active(link):
            _set(state, "status", self.value)
        return message


class StatusMessage(Fault):
    """Set the status message of every polled or pushed task state to ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        if call.method == "tasks/get":
            for state in _task_states(call, message):
                state["statusMessage"] = self.text
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        state = _pushed_state(message)
        if state is not None:
            state["statusMessage"] = self.text
        return message


class FinalStatus(Fault):
    """Turn a terminal status (in polls and pushes) into ``status``, e.g. completed -> failed.

    Args:
        status: The status to report instead.
        message: The status message to report with it.
        of: The terminal statuses to rewrite.
    """

    def __init__(
        self, status: str, message: str, *, of: Iterable[str] = ("completed", "failed")
    ) -> None:
        self.status = status
        self.message = message
        self.of = frozenset(of)

    def _rewrite(self, state: JSON, link: Link) -> None:
        if state.get("status") in self.of:
            state["status"] = self.status
            state["statusMessage"] = self.message
            if link.record.revision == "extension":  # it inlines the outcome
                state.pop("result", None)
                state.pop("error", None)
                if self.status == "failed":
                    state["error"] = {"code": -32603, "message": self.message}

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        for state in _task_states(call, message):
            self._rewrite(state, link)
        return message

    def on_notification(self, message: JSON, link: Link) -> JSON | None:
        state = _pushed_state(message)
        if state is not None:
            self._rewrite(state, link)
        return message


class ErrorEvery(Fault):
    """Replace the server's answer to every ``nth`` request of ``method`` with an error.

    Args:
        nth: 2 answers the 2nd, 4th, 6th... with the error; 1 answers all of them.
        method: The method.
        code: The error's code.
        text: The error's message.
    """

    def __init__(
        self, nth: int, method: str = "tasks/get", code: int = -32603, text: str = "internal error"
    ) -> None:
        self.nth = nth
        self.method = method
        self.code = code
        self.text = text

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        if call.method == self.method and call.nth % self.nth == 0:
            return _error(message, self.code, self.text)
        return message


class ResultError(ErrorEvery):
    """Answer every ``tasks/result`` with a JSON-RPC error."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(1, "tasks/result", code, text)


class DropAnswers(Fault):
    """Close the connection in the middle of every answer to ``method``."""

    def __init__(self, method: str = "tasks/get") -> None:
        self.method = method

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        return DROP if call.method == self.method else message


class NonJson(Fault):
    """Answer every ``method`` request with HTTP 200 and a body that is not JSON."""

    def __init__(self, method: str = "tasks/get", body: bytes = b"<html>oops</html>") -> None:
        self.method = method
        self.body = body

    def on_request(self, call: Call, link: Link) -> Raw | _Hold | None:
        return Raw(200, "text/html", self.body) if call.method == self.method else None


class HoldRequests(Fault):
    """Never answer ``method`` requests: hold each open until the client gives up."""

    def __init__(self, method: str = "tasks/get") -> None:
        self.method = method

    def on_request(self, call: Call, link: Link) -> Raw | _Hold | None:
        return HOLD if call.method == self.method else None


class ServerCancel(Fault):
    """Cancel the task in the server's name after ``polls`` polls (an injected tasks/cancel)."""

    def __init__(self, polls: int = 2) -> None:
        self.polls = polls

    def on_request(self, call: Call, link: Link) -> Raw | _Hold | None:
        if call.method == "tasks/get" and call.nth == self.polls:
            link.inject("tasks/cancel", dict(call.params))  # the same taskId (and _meta)
        return None


class CreatedTaskId(Fault):
    """Give the created task a malformed id (any JSON value)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        created = _created_task(message) if call.method == "tools/call" else None
        if created is not None:
            _set(created, "taskId", self.value)
        return message


class AtOnce(Fault):
    """Answer ``tools/call`` with a plain tool result, as a tool that runs at once does."""

    def __init__(self, text: str, *, is_error: bool = False) -> None:
        self.text = text
        self.is_error = is_error

    def on_response(self, call: Call, message: JSON, link: Link) -> JSON | _Drop:
        if call.method != "tools/call":
            return message
        result: JSON = {"content": [{"type": "text", "text": self.text}], "isError": self.is_error}
        if link.record.revision == "extension":
            result["resultType"] = "complete"
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": result}


# -- the proxy ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: _Proxy

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        self.proxy.track(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = repr(sys.exc_info()[1])
        self.proxy.record.update(lambda: self.proxy.record.errors.append(error))


class _ClientLeft(Exception):
    """The client closed its connection, or the proxy is stopping."""


class _Handler(BaseHTTPRequestHandler):
    """Forwards one request to the server and its answer back, misbehaving on the way."""

    # HTTP/1.0: one request per connection, and a streamed answer ends when it closes.
    protocol_version = "HTTP/1.0"

    @property
    def _proxy(self) -> _Proxy:
        server: _Server = self.server  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
        return server.proxy

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing (the record is the log)."""

    def setup(self) -> None:
        super().setup()
        self._proxy.sockets.add(self.connection)

    def finish(self) -> None:
        self._proxy.sockets.discard(self.connection)
        with suppress(OSError):  # the client left
            super().finish()

    def do_POST(self) -> None:
        """Forward a POST of JSON-RPC messages."""
        self._exchange()

    def do_GET(self) -> None:
        """Forward a GET (the server's SSE stream)."""
        self._exchange()

    def do_DELETE(self) -> None:
        """Forward a DELETE (the end of the session)."""
        self._exchange()

    # -- the exchange ----------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _exchange(self) -> None:
        proxy = self._proxy
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if self.command == "POST":
            proxy.last_headers = headers
        link = Link(proxy, headers)
        calls = self._read_calls(body)
        for call in calls:
            if call.id is None:
                continue
            reply = proxy.fault.on_request(call, link)
            if isinstance(reply, _Hold):
                self._hold()
                return
            if isinstance(reply, Raw):
                self._send_raw(reply)
                return
        try:
            upstream = proxy.connect()
        except OSError:
            self._send_raw(Raw(502, "text/plain", b"the upstream server is not reachable"))
            return
        try:
            upstream.request(self.command, self.path, body or None, headers)
            answer = upstream.getresponse()
            kind = (answer.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if kind == "text/event-stream":
                self._stream_events(answer, link)
            elif kind == "application/json":
                self._send_json(answer, link)
            else:
                self._stream_bytes(answer)
        except (_ClientLeft, OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            proxy.release(upstream)

    def _read_calls(self, body: bytes) -> list[Call]:
        """Record the JSON-RPC requests and notifications in a client's POST body."""
        if self.command != "POST" or not body:
            return []
        try:
            parsed: object = json.loads(body)
        except ValueError:
            return []
        messages: list[object] = parsed if isinstance(parsed, list) else [parsed]  # pyright: ignore[reportUnknownVariableType]
        calls: list[Call] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            fields: JSON = message  # pyright: ignore[reportUnknownVariableType]
            method, params, message_id = (
                fields.get("method"),
                fields.get("params"),
                fields.get("id"),
            )
            if not isinstance(method, str):
                continue  # a response of the client's, to a request of the server's
            call = self._proxy.record.add(
                method,
                message_id if isinstance(message_id, int | str) else None,
                params if isinstance(params, dict) else {},  # pyright: ignore[reportUnknownArgumentType]
            )
            if call.id is not None:
                self._proxy.pending[call.id] = call
            calls.append(call)
        return calls

    def _transform(self, message: object, link: Link) -> object:
        """Pass one server message through the fault: what to send, None (nothing), or DROP."""
        if not isinstance(message, dict):
            return message
        proxy = self._proxy
        msg: JSON = message  # pyright: ignore[reportUnknownVariableType]
        if "method" in msg:
            return proxy.fault.on_notification(msg, link) if "id" not in msg else msg
        message_id = msg.get("id")
        call = proxy.pending.pop(message_id, None) if isinstance(message_id, int | str) else None
        if call is None:
            return msg
        proxy.answered(call, msg)
        return proxy.fault.on_response(call, msg, link)

    # -- answers ---------------------------------------------------------------------------

    def _start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)

    def _send_raw(self, reply: Raw) -> None:
        self._start(reply.status, [("Content-Type", reply.content_type)])
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self._write(reply.body)

    def _send_json(self, answer: http.client.HTTPResponse, link: Link) -> None:
        raw = answer.read()
        try:
            parsed: object = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        dropped = False
        if parsed is not None:
            batch: list[object] = parsed if isinstance(parsed, list) else [parsed]  # pyright: ignore[reportUnknownVariableType]
            changed = [self._transform(message, link) for message in batch]
            dropped = any(isinstance(message, _Drop) for message in changed)
            kept = [m for m in changed if m is not None and not isinstance(m, _Drop)]
            if isinstance(parsed, list):
                raw = _dumps(kept)
            elif kept:
                raw = _dumps(kept[0])
        self._start(answer.status, answer.getheaders())
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if dropped:
            self._cut(raw)
        self._write(raw)

    def _stream_events(self, answer: http.client.HTTPResponse, link: Link) -> None:
        """Forward an SSE stream event by event, each as soon as it is complete."""
        self._start(answer.status, answer.getheaders())
        self.end_headers()
        lines: list[bytes] = []
        while True:
            line = answer.readline()
            if not line:  # the stream ended (an incomplete last event is dropped)
                return
            if line not in (b"\n", b"\r\n"):
                lines.append(line)
                continue
            event = self._event(lines, link)
            lines = []
            if isinstance(event, _Drop):
                return
            if event:
                self._write(event)

    def _event(self, lines: list[bytes], link: Link) -> bytes | _Drop:
        """Pass one SSE event (its lines, without the blank line) through the fault."""
        data = [
            line[5:].removeprefix(b" ").rstrip(b"\r\n")
            for line in lines
            if line.startswith(b"data:")
        ]
        others = [line for line in lines if not line.startswith(b"data:")]
        if not data:
            return b"".join(others) + b"\n"
        try:
            message: object = json.loads(b"\n".join(data))
        except ValueError:
            return b"".join(lines) + b"\n"
        changed = self._transform(message, link)
        if changed is None:
            return b""  # dropped
        if isinstance(changed, _Drop):
            self._cut(b"".join(lines) + b"\n")
            return DROP
        return b"".join(others) + b"data: " + _dumps(changed) + b"\n\n"

    def _stream_bytes(self, answer: http.client.HTTPResponse) -> None:
        self._start(answer.status, answer.getheaders())
        length = answer.getheader("Content-Length")
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        while chunk := answer.read1(65536):
            self._write(chunk)

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            raise _ClientLeft from None

    def _cut(self, data: bytes) -> None:
        """Send the first half of ``data``, then close the connection."""
        self._write(data[: len(data) // 2])
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _ClientLeft

    def _hold(self) -> None:
        """Never answer: wait until the client closes the connection, or the proxy stops."""
        self.close_connection = True
        stopping = self._proxy.stopping
        while not stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end
                except OSError:
                    return


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class _Proxy:
    """The proxy's state, shared by its handler threads."""

    def __init__(self, upstream: str, fault: Fault) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port/path, got {upstream!r}")
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path or "/"
        self.fault = fault
        self.record = Record()
        self.pending: dict[int | str, Call] = {}
        self.sockets: set[socket.socket] = set()
        self.upstreams: set[http.client.HTTPConnection] = set()
        self.threads: list[threading.Thread] = []
        self.last_headers: dict[str, str] | None = None
        self.stopping = threading.Event()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def track(self, thread: threading.Thread) -> None:
        """Remember a thread, to join it when the proxy stops."""
        with self._lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            self.threads.append(thread)

    def connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """Open a connection to the server (closed by `release`, or by `stop`)."""
        if self.stopping.is_set():
            raise ConnectionAbortedError("the proxy is stopping")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        connection.connect()
        with self._lock:
            self.upstreams.add(connection)
        return connection

    def release(self, connection: http.client.HTTPConnection) -> None:
        """Close a connection to the server."""
        with self._lock:
            self.upstreams.discard(connection)
        connection.close()

    def answered(self, call: Call, message: JSON) -> None:
        """Note the server's real answer to a call (and the task it created, if any)."""

        def note() -> None:
            call.answered_at = time.monotonic()
            result = _result(message)
            error = message.get("error")
            call.result = copy.deepcopy(result)  # the faults rewrite the message in place
            call.error = copy.deepcopy(error) if isinstance(error, dict) else None  # pyright: ignore[reportUnknownArgumentType]
            if call.method == "tools/call" and result is not None:
                created = _created_task(message)
                if created is not None:
                    self.record.revision = "2025-11-25" if "task" in result else "extension"
                    task_id = created.get("taskId")
                    self.record.task_id = task_id if isinstance(task_id, str) else None

        self.record.update(note)

    def inject(self, headers: dict[str, str], injected: Injected) -> None:
        """Send ``injected`` to the server with the client's headers; note the answer."""
        body = _dumps(
            {
                "jsonrpc": "2.0",
                "id": f"misbehave-{next(self._ids)}",
                "method": injected.method,
                "params": injected.params,
            }
        )
        # mcp 2.x mirrors the method, and the task id, in headers the server checks.
        mirrored = {"mcp-method": injected.method, "mcp-name": injected.params.get("taskId")}
        headers = {k: str(mirrored.get(k.lower()) or v) for k, v in headers.items()}
        try:
            connection = self.connect(timeout=10)
        except OSError:
            return
        try:
            connection.request("POST", self.path, body, headers)
            raw = connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return
        finally:
            self.release(connection)
        for line in raw.splitlines():
            text = line.removeprefix(b"data:").strip()
            if text.startswith(b"{"):
                answer: JSON = json.loads(text)

                def note(answer: JSON = answer) -> None:
                    injected.answer = answer

                self.record.update(note)

    def cancel_leftover(self) -> None:
        """Cancel the server's task if the client left it running (a server stops sooner).

        That is: the proxy saw no ``tasks/get`` answer it as terminal, and no
        ``tasks/cancel`` of the client's answered.
        """
        record = self.record
        if record.task_id is None or self.last_headers is None:
            return
        ended = any(
            (call.result or {}).get("status") in ("completed", "failed", "cancelled")
            or (call.method == "tasks/cancel" and call.result is not None)
            for call in record.calls
        )
        if not ended:
            self.inject(self.last_headers, Injected("tasks/cancel", self.last_params()))

    def last_params(self) -> JSON:
        """The params of the client's last ``tasks/get`` (the task id, ``_meta``...)."""
        gets = self.record.calls_of("tasks/get")
        return dict(gets[-1].params) if gets else {"taskId": self.record.task_id}

    def stop(self) -> None:
        """Stop: end held requests, cut every open connection, join the threads."""
        self.stopping.set()
        with self._lock:
            open_sockets = [c.sock for c in self.upstreams if c.sock is not None]
            open_sockets += list(self.sockets)
            threads = list(self.threads)
        for sock in open_sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)


@contextmanager
def misbehaving_proxy(upstream: str, fault: Fault | None = None) -> Generator[tuple[str, Record]]:
    """Serve a proxy to the MCP server at ``upstream`` that misbehaves as ``fault`` says.

    Args:
        upstream: The server's MCP endpoint, ``http://host:port/path``.
        fault: How to misbehave; default: not at all.

    Yields:
        The proxy's URL (same path as ``upstream``) and its `Record`.
    """
    proxy = _Proxy(upstream, fault or Fault())
    server = _Server(("127.0.0.1", 0), _Handler)
    server.proxy = proxy
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="misbehave", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{proxy.path}", proxy.record
    finally:
        proxy.cancel_leftover()
        server.shutdown()
        proxy.stop()
        server.server_close()
        thread.join(10)


# -- running watch through the proxy -----------------------------------------------------------

#: The width the watch process is told its output has (``COLUMNS``).
WIDTH: Final = 100
#: The longest plain line into a pipe: the view keeps 1,000 characters of a server's text.
PIPE_LINE: Final = 1100
#: A watch still running after this long is killed (and its test fails).
RUN_LIMIT_S: Final = 60.0
#: How many watches run at once (most of their time is waiting).
WORKERS: Final = 6

# Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it
# started, and a child inherits "ignored" (as when the tests run as a background job of
# a non-interactive shell): so the child restores Ctrl-C itself (as tests/_cli.py does).
_CTRL_C: Final = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " runpy.run_module('rxtasks', run_name='__main__', alter_sys=True)"
)


class _Lines:
    """The lines of a child's pipe, read as they come in a thread of their own."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._changed = threading.Condition()
        self.lines: list[str] = []
        self.closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._pipe:
            for raw in self._pipe:
                line = raw.decode("utf-8", "replace")
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> bool:
        """Wait until a line satisfies ``predicate``; False if the pipe closed or time ran out."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.closed or any(predicate(line) for line in self.lines), timeout
            )
            return any(predicate(line) for line in self.lines)

    def text(self) -> str:
        """Everything read, once the pipe closed."""
        self._thread.join(RUN_LIMIT_S)
        return "".join(self.lines)


class _Child:
    """``python -m rxtasks ...`` as a process we reap ourselves, for its CPU time (wait4)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.started = time.monotonic()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.stdout = _Lines(self.process.stdout)
        self.stderr = _Lines(self.process.stderr)
        self._lock = threading.Lock()
        self.exited = threading.Event()
        self.killed = False
        self.interrupted_at: float | None = None

    def _signal(self, sig: int) -> bool:
        # Until we reap it the pid is ours, even as a zombie: never a stranger's.
        with self._lock:
            if self.exited.is_set():
                return False
            os.kill(self.process.pid, sig)
            return True

    def interrupt(self) -> None:
        """Press Ctrl-C (SIGINT), unless it has exited."""
        if self._signal(signal.SIGINT):
            self.interrupted_at = time.monotonic()

    def _kill(self) -> None:
        if self._signal(signal.SIGKILL):
            self.killed = True

    def wait(self, limit_s: float) -> tuple[int, float, float]:
        """Wait for the end (killing it after ``limit_s``); return exit code, CPU s, wall s."""
        pid = self.process.pid
        killer = threading.Timer(limit_s, self._kill)
        killer.daemon = True
        killer.start()
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
            wall = time.monotonic() - self.started
            with self._lock:
                self.exited.set()
        finally:
            killer.cancel()
        _, status, usage = os.wait4(pid, 0)
        self.process.returncode = code = os.waitstatus_to_exitcode(status)
        return code, usage.ru_utime + usage.ru_stime, wall


@dataclass
class Run:
    """How one ``rxtasks watch`` through the proxy went.

    Attributes:
        case: What was run.
        argv: The command line.
        code: The exit status (negative: the signal that ended it).
        stdout: Its standard output.
        stderr: Its standard error.
        cpu_s: The CPU time it used (user + system), in seconds.
        wall_s: From start to exit, in seconds.
        killed: Whether it ran past `RUN_LIMIT_S` and was killed.
        record: What the proxy saw.
        started: When it started (``time.monotonic()``).
        interrupted_at: When it got Ctrl-C, if it did.
    """

    case: Case
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    cpu_s: float
    wall_s: float
    killed: bool
    record: Record
    started: float
    interrupted_at: float | None

    def notes(self) -> list[str]:
        """The stderr lines that are not progress, summary or ``-X importtime`` lines."""
        return [
            line
            for line in self.stderr.splitlines()
            if not _PROGRESS.match(line)
            and not _SUMMARY.match(line)
            and not line.startswith("import time:")
        ]

    def polls_in(self, window_s: float) -> int:
        """The ``tasks/get`` the proxy saw in the ``window_s`` seconds from the first one."""
        times = self.record.times("tasks/get")
        return sum(t <= times[0] + window_s for t in times) if times else 0

    def __str__(self) -> str:
        lines = [line for line in self.stderr.splitlines() if not line.startswith("import time:")]
        err = "\n".join(
            line if len(line) < 300 else f"{line[:300]}[... {len(line)}]" for line in lines
        )
        if len(err) > 4000:
            err = f"{err[:2000]}\n[...]\n{err[-2000:]}"
        return (
            f"{self.case}: exit {self.code} in {self.wall_s:.2f} s, CPU {self.cpu_s:.2f} s"
            f"{' (killed)' if self.killed else ''}\n$ {' '.join(self.argv[-8:])}\n"
            f"proxy saw: {self.record.methods()}"
            f"{f' (its own errors: {self.record.errors})' if self.record.errors else ''}"
            f"\nstdout: {self.stdout[:500]!r}\nstderr:\n{err}"
        )


_PROGRESS: Final = re.compile(r"^\[\s*[\d.]+s\] ")
_SUMMARY: Final = re.compile(r"^(summary: )?\d+ tasks? in [\d.]+ s: ")


def watch_through(
    url: str,
    case: Case,
    *,
    tool: str,
    arguments: JSON,
    fault: Fault,
    options: Iterable[str] = (),
    interrupt: Interrupt | None = None,
) -> Run:
    """Run ``python -m rxtasks watch`` on a proxy to ``url`` that misbehaves as ``fault`` says.

    Args:
        url: The real server's MCP endpoint.
        case: What is run (for the `Run`).
        tool: The tool to call.
        arguments: Its arguments.
        fault: How the proxy misbehaves.
        options: More options of ``watch`` (``--plain`` is always given).
        interrupt: When to press Ctrl-C, if at all.
    """
    env = {**os.environ, "COLUMNS": str(WIDTH), "PYTHONUNBUFFERED": "1"}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "LINES"):
        env.pop(name, None)
    importing = interrupt in _IMPORTED
    python = [sys.executable, *(["-X", "importtime"] if importing else [])]
    with misbehaving_proxy(url, fault) as (proxy_url, record):
        args = ["watch", proxy_url, "--tool", tool, "--args", json.dumps(arguments), "--plain"]
        argv = [*python, "-c", _CTRL_C, *args, *options]
        child = _Child(argv, env)
        presser = threading.Thread(target=_press_ctrl_c, args=(child, record, interrupt))
        presser.start()
        code, cpu_s, wall_s = child.wait(RUN_LIMIT_S)
        presser.join()
        stdout, stderr = child.stdout.text(), child.stderr.text()
        if "asked to cancel" in stderr:  # a cancel sent just before the exit may be in flight
            record.wait_for(lambda r: r.count("tasks/cancel") > 0, 5)
    return Run(
        case=case,
        argv=argv,
        code=code,
        stdout=stdout,
        stderr=stderr,
        cpu_s=cpu_s,
        wall_s=wall_s,
        killed=child.killed,
        record=record,
        started=child.started,
        interrupted_at=child.interrupted_at,
    )


#: When to press Ctrl-C: once ``rxtasks.cli`` is imported (``-X importtime`` says so), once
#: the SDK's HTTP client is (while the SDK itself imports), once it sent its first request,
#: once it called the tool, once the task was polled.
Interrupt = Literal["imported-cli", "imported-http", "connecting", "calling", "polling"]

#: The ``-X importtime`` lines that end the imports of the ``imported-...`` interrupts.
_IMPORTED: Final[dict[str, tuple[str, ...]]] = {
    "imported-cli": ("| rxtasks.cli",),
    "imported-http": ("| httpx", "| httpx2"),  # mcp 1.x, mcp 2.x
}


def _sync_point(interrupt: Interrupt) -> Callable[[Record], bool]:
    if interrupt == "connecting":
        return lambda record: bool(record.calls)
    if interrupt == "calling":
        return lambda record: record.count("tools/call") > 0
    return lambda record: any(c.answered_at is not None for c in record.calls_of("tasks/get"))


def _press_ctrl_c(child: _Child, record: Record, interrupt: Interrupt | None) -> None:
    """Press Ctrl-C at the sync point (unless the child ends before it), if any."""
    if interrupt is None:
        return
    if interrupt in _IMPORTED:
        ends = _IMPORTED[interrupt]
        if child.stderr.wait_for(
            lambda line: line.startswith("import time:") and line.rstrip().endswith(ends),
            RUN_LIMIT_S,
        ):
            child.interrupt()
        return
    reached = _sync_point(interrupt)
    while not child.exited.is_set():
        if record.wait_for(reached, 0.05):
            child.interrupt()
            return


# -- what is run: rows (server behaviours) per protocol revision --------------------------------

CORE: Final[frozenset[Revision]] = frozenset({"2025-11-25"})
EXTENSION: Final[frozenset[Revision]] = frozenset({"extension"})
BOTH: Final[frozenset[Revision]] = CORE | EXTENSION

#: The tools the rows call, per revision: kind -> (tool, arguments). ``steady`` is a task
#: of about 2 s that reports progress every 250 ms; ``forever`` runs until cancelled;
#: ``echo`` is not a task. The servers are rxtasks.mcp._server_sdk1 and _server_sdk2.
TOOLS: Final[dict[Revision, dict[str, tuple[str, JSON]]]] = {
    "2025-11-25": {
        "steady": ("work", {"steps": 8, "step_ms": 250, "interval_ms": 200}),
        "forever": ("wait_cancel", {"tick_ms": 100}),
    },
    "extension": {
        "steady": ("work", {"steps": 8, "step_ms": 250}),  # suggests 250 ms
        "forever": ("wait_cancel", {"tick_ms": 100}),
        "echo": ("echo", {"text": "at once"}),
    },
}
#: What ``steady`` prints when it completes.
STEADY_RESULT: Final = "done after 8 steps"
#: A status message of 5 MB (words, as a real one would have).
HUGE_MESSAGE: Final = ("all work and no play " * 250_000)[: 5 * 1024 * 1024]


@dataclass(frozen=True)
class Row:
    """One server behaviour to run watch against.

    Attributes:
        name: Its name (the test id).
        fault: Makes the proxy's fault (a fresh one per run).
        tool: The kind of tool called (a key of `TOOLS`).
        options: More options of ``watch``.
        revisions: The protocol revisions it applies to.
        interrupt: When to press Ctrl-C, if at all.

    In every row the proxy also drops the task states the server pushes (`NoPushes`), so
    that watch must poll: polling is what the rows are about.
    """

    name: str
    fault: Callable[[], Fault] = Fault
    tool: str = "steady"
    options: tuple[str, ...] = ()
    revisions: frozenset[Revision] = BOTH
    interrupt: Interrupt | None = None


def _hold_the_call() -> Fault:
    return HoldRequests("tools/call")  # so that no task ever exists


ROWS: Final[dict[str, Row]] = {
    row.name: row
    for row in [
        Row("baseline"),
        Row("hint-0", lambda: Hint(0)),
        Row("hint-0.5", lambda: Hint(0.5)),
        Row("hint-true", lambda: Hint(True)),
        Row("hint-abc", lambda: Hint("abc")),
        Row("hint-string-250", lambda: Hint("250")),
        Row("hint-250.0", lambda: Hint(250.0)),
        Row("hint-1e308", lambda: Hint(1e308), options=("--max-interval-ms", "300")),
        Row("hint-1e30-int", lambda: Hint(10**30), options=("--max-interval-ms", "300")),
        Row("no-status", lambda: Status(MISSING)),
        Row("status-5", lambda: Status(5)),
        Row("status-weird", lambda: Status("weird", polls=3)),
        Row("status-message-5mb", lambda: StatusMessage(HUGE_MESSAGE)),
        Row("error-every-2nd-get", lambda: ErrorEvery(2)),
        # mcp 1.x reads a broken answer as no answer at all: what bounds the wait there is
        # the request timeout, so these rows keep it short.
        Row("drop-every-get", DropAnswers, options=("--request-timeout-ms", "1500")),
        Row("non-json-get", NonJson, options=("--request-timeout-ms", "1500")),
        Row(
            "hold-every-get",
            HoldRequests,
            options=("--request-timeout-ms", "500", "--retries", "2"),
        ),
        Row(
            "failed-with-content",
            lambda: FinalStatus("failed", "it failed (rewritten by the proxy)"),
            revisions=CORE,
        ),
        Row("server-cancel", lambda: ServerCancel(polls=2), tool="forever"),
        Row("result-error", lambda: ResultError(-32000, "the tool broke"), revisions=CORE),
        Row("task-id-7", lambda: CreatedTaskId(7)),
        Row("deadline", tool="forever", options=("--timeout-ms", "1500")),
        Row("ctrl-c-imported-cli", _hold_the_call, interrupt="imported-cli"),
        Row("ctrl-c-imported-http", _hold_the_call, interrupt="imported-http"),
        Row("ctrl-c-connecting", _hold_the_call, interrupt="connecting"),
        Row("ctrl-c-calling", _hold_the_call, interrupt="calling"),
        Row("ctrl-c-polling", tool="forever", interrupt="polling"),
        Row(
            "ctrl-c-cancel-unanswered",
            lambda: HoldRequests("tasks/cancel"),
            tool="forever",
            interrupt="polling",
        ),
        Row("at-once", lambda: AtOnce("at once")),
        Row("at-once-is-error", lambda: AtOnce("it broke", is_error=True)),
        Row("echo", tool="echo", revisions=EXTENSION),
    ]
}


@dataclass(frozen=True)
class Case:
    """One row against one protocol revision."""

    row: str
    revision: Revision

    def __str__(self) -> str:
        return f"{self.row}@{self.revision}"


def run_case(case: Case, url: str) -> Run:
    """Run one case against a server endpoint of its revision."""
    row = ROWS[case.row]
    tool, arguments = TOOLS[case.revision][row.tool]
    return watch_through(
        url,
        case,
        tool=tool,
        arguments=arguments,
        fault=Faults(NoPushes(), row.fault()),
        options=row.options,
        interrupt=row.interrupt,
    )


class Runs:
    """Every case of a test module, run in the background a few at a time, in order.

    Args:
        urls: The server endpoint for each case; a case without one is skipped.
        workers: How many run at once.
    """

    def __init__(self, urls: dict[Case, str | None], workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="watch")
        self._urls = urls
        self._futures = {
            case: self._pool.submit(run_case, case, url)
            for case, url in urls.items()
            if url is not None
        }

    def get(self, case: Case) -> Run:
        """The case's run, once it has ended."""
        future = self._futures.get(case)
        if future is None:
            if case in self._urls:
                pytest.skip(f"no {case.revision} server here (set RXTASKS_MCP1_PYTHON)")
            raise LookupError(f"{case} was not selected when the runs started")
        return future.result(timeout=len(self._futures) * RUN_LIMIT_S)

    def close(self) -> None:
        """Wait for the runs still going (each ends by `RUN_LIMIT_S`)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def selected_cases(request: pytest.FixtureRequest) -> list[Case]:
    """The cases of the selected tests of the requesting module, baselines first."""
    cases: list[Case] = []
    for item in request.session.items:
        if not isinstance(item, pytest.Function) or item.path != request.path:
            continue
        case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
        if isinstance(case, Case):
            baseline = Case("baseline", case.revision)
            cases += [c for c in (baseline, case) if c not in cases]
    return sorted(cases, key=lambda case: case.row != "baseline")  # stable


# -- the tests, shared by both SDKs' test modules ----------------------------------------------

_TEST_ROWS: dict[str, tuple[str, ...]] = {}

T = TypeVar("T", bound="Callable[..., None]")


def rows(*names: str) -> Callable[[T], T]:
    """Run the decorated test once per row named here and protocol revision of its class."""
    unknown = set(names) - set(ROWS)
    assert not unknown, unknown

    def register(test: T) -> T:
        _TEST_ROWS[test.__name__] = names
        return test

    return register


#: CPU seconds a run may use beyond the well-behaved baseline's: a busy loop uses more.
CPU_SLACK_S: Final = 1.0
#: For the 5 MB status message, which every poll parses.
HUGE_CPU_SLACK_S: Final = 3.0
#: Seconds any run may take; a run that must give up (exit 2, 124) gets `GIVE_UP_S`.
WALL_S: Final = 45.0
GIVE_UP_S: Final = 30.0
#: The window in which polls are counted, from the first ``tasks/get``: the task outlasts it.
WINDOW_S: Final = 1.5
#: Polls allowed beyond what the interval allows in the window (the first poll, jitter).
POLL_SLACK: Final = 3
#: ``--min-interval-ms``'s default, ``--interval-ms``'s default, the cap the rows set.
FLOOR_S: Final = 0.1
DEFAULT_S: Final = 0.5
CAP_S: Final = 0.3


class MisbehavingServerTests:
    """watch against a misbehaving server; a test module subclasses it per SDK.

    The subclass names its protocol revisions; its module provides a ``runs`` fixture
    (`Runs` of `selected_cases`). Each test runs once per row and revision.
    """

    revisions: ClassVar[tuple[Revision, ...]] = ()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize each test with the cases of its rows (`rows`) and class's revisions."""
        names = _TEST_ROWS.get(metafunc.function.__name__)
        if names is None:
            return
        cases = [
            Case(name, revision)
            for name in names
            for revision in self.revisions
            if revision in ROWS[name].revisions
        ]
        metafunc.parametrize("case", cases, ids=str)

    @staticmethod
    def run(
        runs: Runs, case: Case, *, wall_s: float = WALL_S, cpu_slack_s: float = CPU_SLACK_S
    ) -> Run:
        """The case's run, checked for what holds in every row.

        Never a traceback, never killed, within ``wall_s``, and no more CPU than the
        revision's well-behaved baseline plus ``cpu_slack_s``.
        """
        run = runs.get(case)
        assert "Traceback" not in run.stderr, run
        assert "Traceback" not in run.stdout, run
        assert not run.killed, run
        assert run.wall_s < wall_s, run
        if case.row != "baseline":
            baseline = runs.get(Case("baseline", case.revision))
            assert run.cpu_s <= baseline.cpu_s + cpu_slack_s, (
                f"CPU {run.cpu_s:.2f} s, the baseline's {baseline.cpu_s:.2f} s\n{run}"
            )
        return run

    @staticmethod
    def assert_completed(run: Run) -> None:
        """Exit 0 with the steady task's result on stdout."""
        assert run.code == 0, run
        assert run.stdout == f"{STEADY_RESULT}\n", run

    @staticmethod
    def assert_polls_at_most(run: Run, interval_s: float) -> None:
        """No more polls in the window than ``interval_s`` allows."""
        polls = run.polls_in(WINDOW_S)
        allowed = WINDOW_S / interval_s + POLL_SLACK
        assert polls <= allowed, f"{polls} tasks/get in {WINDOW_S} s (at most {allowed})\n{run}"

    @staticmethod
    def assert_gave_up(run: Run, *, retries: int = 0) -> None:
        """Exit 2; one line (besides progress) says why, after at most one line per retry."""
        assert run.code == 2, run
        notes = run.notes()
        assert 1 <= len(notes) <= 1 + retries, run
        assert notes[-1].startswith("rxtasks watch: "), run

    @staticmethod
    def assert_interrupted(run: Run, *, warnings: int = 0) -> None:
        """Ctrl-C: exit 130, nothing on stdout, a last line that says so (after ``warnings``)."""
        assert run.interrupted_at is not None, run
        assert run.code == 130, run
        assert run.stdout == "", run
        notes = run.notes()
        assert 1 <= len(notes) <= 1 + warnings, run
        assert notes[-1].startswith("rxtasks"), run
        assert "interrupted" in notes[-1], run

    @rows("baseline")
    def test_a_well_behaved_server(self, case: Case, runs: Runs) -> None:
        """Through a proxy that changes nothing: exit 0, the result, nothing but progress."""
        run = self.run(runs, case)
        self.assert_completed(run)
        assert run.notes() == [], run
        assert run.record.count("tasks/get") >= 1, run

    @rows("hint-0", "hint-0.5")
    def test_a_hint_below_the_floor_polls_at_the_floor(self, case: Case, runs: Runs) -> None:
        """A pollInterval of 0 or 0.5 ms: polls no faster than the 100 ms floor (no busy loop)."""
        run = self.run(runs, case)
        self.assert_completed(run)
        self.assert_polls_at_most(run, FLOOR_S)

    @rows("hint-true", "hint-abc", "hint-string-250")
    def test_an_unusable_hint_falls_back_to_the_default(self, case: Case, runs: Runs) -> None:
        """A hint that is no number: one warning line, the 500 ms default interval; exit 0."""
        run = self.run(runs, case)
        self.assert_completed(run)
        assert len(run.notes()) == 1, run
        self.assert_polls_at_most(run, DEFAULT_S)
        assert run.record.count("tasks/get") >= 2, run

    @rows("hint-250.0")
    def test_a_float_hint_is_used(self, case: Case, runs: Runs) -> None:
        """A pollInterval of 250.0: polls every 250 ms; exit 0."""
        run = self.run(runs, case)
        self.assert_completed(run)
        self.assert_polls_at_most(run, 0.25)
        assert run.polls_in(WINDOW_S) >= 5, run  # 1 + 1.5 / 0.25 = 7 (at 500 ms: at most 4)

    @rows("hint-1e308", "hint-1e30-int")
    def test_a_huge_hint_is_capped(self, case: Case, runs: Runs) -> None:
        """A huge hint: capped at --max-interval-ms (300 ms), polls go on; exit 0."""
        run = self.run(runs, case)
        self.assert_completed(run)
        self.assert_polls_at_most(run, CAP_S)
        assert run.record.count("tasks/get") >= 3, run

    @rows("no-status", "status-5")
    def test_a_missing_or_invalid_status_exits_2(self, case: Case, runs: Runs) -> None:
        """No status, or status 5: one clear line, exit 2."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        self.assert_gave_up(run)

    @rows("status-weird")
    def test_an_unknown_status_warns_and_polls_on(self, case: Case, runs: Runs) -> None:
        """Status "weird" for three polls: one warning line, polling goes on; exit 0."""
        run = self.run(runs, case)
        self.assert_completed(run)
        assert len(run.notes()) == 1, run
        assert run.record.count("tasks/get") > 3, run

    @rows("status-message-5mb")
    def test_a_huge_status_message_is_cut(self, case: Case, runs: Runs) -> None:
        """A 5 MB status message: bounded lines, bounded CPU; exit 0.

        Into a pipe (as here) plain lines keep the first 1,000 characters of a server's
        text; on a terminal they are cut to its width (tests/test_cli_view.py).
        """
        run = self.run(runs, case, cpu_slack_s=HUGE_CPU_SLACK_S)
        longest = max(len(line) for line in run.stderr.splitlines())
        assert longest <= PIPE_LINE, f"a line of {longest} characters\n{run}"
        self.assert_completed(run)

    @rows("error-every-2nd-get")
    def test_internal_errors_are_retried(self, case: Case, runs: Runs) -> None:
        """A -32603 error on every 2nd tasks/get: retried, the task completes; exit 0."""
        run = self.run(runs, case)
        self.assert_completed(run)
        assert run.record.count("tasks/get") >= 2, run

    @rows("drop-every-get", "non-json-get")
    def test_broken_answers_exit_2(self, case: Case, runs: Runs) -> None:
        """Every tasks/get cut midway, or not JSON: one line and exit 2, in bounded time.

        Where the SDK hands the error to the request (a timeout on mcp 1.x, which drops a
        broken answer), it is retried first; where it ends the session (mcp 2.x), at once.
        """
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        self.assert_gave_up(run, retries=3)  # --retries 3 by default
        assert 1 <= run.record.count("tasks/get") <= 1 + 3, run

    @rows("hold-every-get")
    def test_unanswered_polls_time_out_then_exit_2(self, case: Case, runs: Runs) -> None:
        """tasks/get never answered: a timeout line, 2 retries, then exit 2 in bounded time."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        assert run.code == 2, run
        notes = run.notes()
        assert len(notes) >= 2, run  # the request timeout(s), then why it gave up
        assert notes[-1].startswith("rxtasks watch: "), run
        assert 2 <= run.record.count("tasks/get") <= 1 + 2, run

    @rows("failed-with-content", "server-cancel", "result-error")
    def test_a_task_that_did_not_complete_exits_1(self, case: Case, runs: Runs) -> None:
        """Failed (with a result), cancelled by the server, or tasks/result an error: exit 1."""
        run = self.run(runs, case)
        assert run.code == 1, run
        assert run.stdout == "", run
        if case.row == "server-cancel":  # the server took the cancel; the client sent none
            assert run.record.injected, run
            assert "result" in (run.record.injected[0].answer or {}), run
            assert run.record.count("tasks/cancel") == 0, run

    @rows("task-id-7")
    def test_a_malformed_created_task_exits_2(self, case: Case, runs: Runs) -> None:
        """A created task whose taskId is 7: one line, exit 2."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        self.assert_gave_up(run)

    @rows("deadline")
    def test_the_deadline_cancels_the_task_and_exits_124(self, case: Case, runs: Runs) -> None:
        """--timeout-ms passes while the task runs: tasks/cancel sent, one line, exit 124."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        assert run.code == 124, run
        assert run.stdout == "", run
        assert run.record.count("tasks/cancel") >= 1, run
        notes = run.notes()
        assert len(notes) == 1, run
        assert notes[0].startswith("rxtasks watch: "), run

    @rows("ctrl-c-imported-cli", "ctrl-c-imported-http", "ctrl-c-connecting", "ctrl-c-calling")
    def test_ctrl_c_before_the_task_exists(self, case: Case, runs: Runs) -> None:
        """Ctrl-C before any task exists: exit 130, one line, no claim of a cancel."""
        run = self.run(runs, case)
        self.assert_interrupted(run)
        assert run.record.task_id is None, run
        assert run.record.count("tasks/cancel") == 0, run
        assert "asked to cancel" not in run.stderr, run

    @rows("ctrl-c-polling", "ctrl-c-cancel-unanswered")
    def test_ctrl_c_after_the_task_exists(self, case: Case, runs: Runs) -> None:
        """Ctrl-C while polling: exit 130; "asked to cancel" only if tasks/cancel was sent."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        self.assert_interrupted(run, warnings=1)  # e.g. that tasks/cancel had no answer
        assert run.record.task_id is not None, run
        if "asked to cancel" in run.stderr:
            assert run.record.count("tasks/cancel") >= 1, run

    @rows("at-once", "at-once-is-error", "echo")
    def test_a_tool_that_answers_at_once(self, case: Case, runs: Runs) -> None:
        """No task, a result at once: it goes to stdout, a one-line note; exit 0 (1: isError)."""
        run = self.run(runs, case, wall_s=GIVE_UP_S)
        if case.row == "at-once-is-error":
            assert run.code == 1, run
            assert "it broke" in run.stdout + run.stderr, run
        else:
            assert run.code == 0, run
            assert run.stdout == "at once\n", run
            assert len(run.notes()) == 1, run


class ProxyTests:
    """The proxy itself, in front of a scripted server (standard library only)."""

    def test_events_pass_one_by_one_and_answers_are_rewritten(self) -> None:
        """An SSE answer reaches the client event by event as sent; the answer is rewritten."""
        gate = threading.Event()
        seen: list[str | None] = []

        class Upstream(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                """Log nothing."""

            def do_POST(self) -> None:
                """Answer with two events, the second once the test opens the gate."""
                self.rfile.read(int(self.headers["Content-Length"]))
                seen.append(self.headers["Mcp-Session-Id"])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Mcp-Session-Id", "s-1")
                self.end_headers()
                progress: JSON = {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {},
                }
                self.wfile.write(b"event: message\ndata: " + _dumps(progress) + b"\n\n")
                self.wfile.flush()
                gate.wait(RUN_LIMIT_S)
                task = {"taskId": "t-1", "status": "working", "pollInterval": 200}
                answer = {"jsonrpc": "2.0", "id": 7, "result": task}
                self.wfile.write(b"event: message\ndata: " + _dumps(answer) + b"\n\n")

        upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        thread = threading.Thread(target=upstream.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{upstream.server_address[1]}/mcp"
        try:
            with misbehaving_proxy(url, Hint(0)) as (proxy_url, record):
                parts = urllib.parse.urlsplit(proxy_url)
                client = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
                request: JSON = {"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {}}
                headers = {"Content-Type": "application/json", "Mcp-Session-Id": "s-1"}
                client.request("POST", parts.path, _dumps(request), headers)
                response = client.getresponse()
                assert response.getheader("Mcp-Session-Id") == "s-1"
                assert b"notifications/progress" in _read_event(response)  # the gate is shut
                gate.set()
                rewritten = json.loads(_read_event(response).split(b"data: ", 1)[1])
                client.close()
                assert rewritten["result"]["pollInterval"] == 0
                assert record.count("tasks/get") == 1
                assert record.calls_of("tasks/get")[0].result == {
                    "taskId": "t-1",
                    "status": "working",
                    "pollInterval": 200,  # the server's own answer, as recorded
                }
            assert seen == ["s-1"]
        finally:
            gate.set()
            upstream.shutdown()
            upstream.server_close()
            thread.join(10)


def _read_event(response: http.client.HTTPResponse) -> bytes:
    """Read one SSE event (up to its blank line)."""
    lines: list[bytes] = []
    while (line := response.readline()) not in (b"\n", b"\r\n", b""):
        lines.append(line)
    return b"".join(lines)
