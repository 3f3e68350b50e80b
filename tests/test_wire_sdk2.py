"""The tasks extension's requests on the wire: HTTP headers over Streamable HTTP (mcp 2.x).

SEP-2663 ("Streamable HTTP: Routing Headers"): when ``tasks/get``, ``tasks/update`` or
``tasks/cancel`` goes over Streamable HTTP, the client MUST set ``Mcp-Name`` to
``params.taskId``, and ``Mcp-Method`` to the JSON-RPC method as SEP-2243 has it for every
request. mcp 2.x sends ``Mcp-Method`` on every request of a 2026-07-28 session, but mirrors
``Mcp-Name`` on its own only for ``tools/call``, ``prompts/get`` and ``resources/read``; a
request type names its field for the rest (``name_param``), as rxtasks' ``tasks/*`` do.

The extension's demo server runs over real HTTP (uvicorn, in a thread) behind an ASGI layer
that records every POST as it arrived: the JSON-RPC method of its body and its headers. The
server checks ``Mcp-Name`` against ``taskId`` only when the header is there, so only such a
recording can tell a missing header. Clients on asyncio and trio, real clocks.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import pytest

import rxtasks

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

import mcp_types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from rxtasks.mcp._server_sdk2 import build_extension_server
from rxtasks.mcp.sdk2 import ExtensionTask, ExtensionTasks, TaskNotifications, session_options

from ._cli import TIMEOUT_S, serve_http

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

pytestmark = pytest.mark.mcp2

TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The client's backend, on the real clock: the server is real and in another thread."""
    return str(request.param)


@dataclass(frozen=True)
class Post:
    """One HTTP POST as the server received it."""

    method: str | None
    """The JSON-RPC method of its body (None for a response or a batch)."""
    params: dict[str, Any]
    headers: dict[str, list[str]]
    """Every header, by lowercase name; a list, so that a repeated header shows."""

    def header(self, name: str) -> str | None:
        """The header's single value, None if absent; fails if it came more than once."""
        values = self.headers.get(name, [])
        assert len(values) <= 1, f"{self.method}: {name} sent {len(values)} times: {values}"
        return values[0] if values else None


class Recorder:
    """An ASGI layer that records every POST (method and headers), then passes it on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._posts: list[Post] = []
        self._lock = threading.Lock()

    def posts(self) -> list[Post]:
        """The POSTs recorded so far, oldest first."""
        with self._lock:
            return list(self._posts)

    def clear(self) -> None:
        """Forget the POSTs recorded so far."""
        with self._lock:
            self._posts.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record a POST, then hand it on; anything else passes straight through."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:  # the whole body first, then it is replayed to the app
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self._record(scope, body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # later calls: the disconnect, as the app expects
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _record(self, scope: Scope, body: bytes) -> None:
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        payload = _json_object(body)  # {} if not a message (or a batch)
        method = payload.get("method")
        post = Post(
            method if isinstance(method, str) else None,
            _json_object(payload.get("params")),
            headers,
        )
        with self._lock:
            self._posts.append(post)


def _json_object(value: object) -> dict[str, Any]:
    """``value`` (or the JSON in these bytes) if it is an object, else ``{}``."""
    if isinstance(value, bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Recorder]]:
    """The extension's demo server over Streamable HTTP, recorded; its URL and recorder."""
    recorder = Recorder(build_extension_server().http_app(path="/mcp"))
    with serve_http(recorder, lifespan="on") as url:  # the lifespan starts the task backend
        yield url, recorder


@pytest.fixture
def recorder(served: tuple[str, Recorder]) -> Recorder:
    """The server's recorder, emptied for this test."""
    served[1].clear()
    return served[1]


@pytest.fixture
async def tasks(served: tuple[str, Recorder]) -> AsyncGenerator[ExtensionTasks]:
    """`ExtensionTasks` in a 2026-07-28 session to the recorded server, with pushes."""
    notifications = TaskNotifications()
    async with (
        streamable_http_client(served[0]) as (read, write),
        ClientSession(read, write, **session_options(notifications)) as session,
    ):
        await session.discover()
        yield ExtensionTasks(session, notifications=notifications)


async def poll_to_end(tasks: ExtensionTasks, created: ExtensionTask) -> list[ExtensionTask]:
    """Poll a task to its end, answering its input requests with ``tasks/update``."""
    seen: list[ExtensionTask] = []
    async for state in rxtasks.iterate(tasks.poll(created, default_interval_ms=50)):
        seen.append(state)
        if new := tasks.new_input_requests(state):
            reply = mcp_types.ElicitResult(action="accept", content={"answer": "42"})
            await tasks.update(state.task_id, dict.fromkeys(new, reply))
    return seen


async def test_task_requests_name_their_task(tasks: ExtensionTasks, recorder: Recorder) -> None:
    """Every tasks/get, tasks/update and tasks/cancel carries Mcp-Name: its task id.

    And Mcp-Method: its method. The tasks: one completed, one answered with tasks/update
    (polled under subscriptions/listen), one cancelled.
    """
    with anyio.fail_after(TIMEOUT_S):
        done = await tasks.create("quick", {"steps": 2, "step_ms": 50})
        assert (await poll_to_end(tasks, done))[-1].status == "completed"

        asked = await tasks.create("ask", {"then_ms": 50})
        async with tasks.listen([asked.task_id]):
            final = (await poll_to_end(tasks, asked))[-1]
        assert final.status == "completed"
        assert tasks.outcome(final).content[0].model_dump()["text"] == "answer: 42"

        waiting = await tasks.create("wait_cancel", {"tick_ms": 50})
        await tasks.cancel_task(waiting.task_id)
        assert (await poll_to_end(tasks, waiting))[-1].status == "cancelled"

    sent = [post for post in recorder.posts() if post.method in TASK_METHODS]
    assert {(post.method, post.params.get("taskId")) for post in sent} >= {
        ("tasks/get", done.task_id),
        ("tasks/get", asked.task_id),
        ("tasks/update", asked.task_id),
        ("tasks/get", waiting.task_id),
        ("tasks/cancel", waiting.task_id),
    }
    for post in sent:
        assert post.header("mcp-name") == post.params["taskId"], post
        assert post.header("mcp-method") == post.method, post
        assert post.header("mcp-protocol-version") == "2026-07-28", post


async def test_other_requests_are_unchanged(tasks: ExtensionTasks, recorder: Recorder) -> None:
    """The SDK's headers on the rest: Mcp-Name only on tools/call (the tool), Mcp-Method on all."""
    with anyio.fail_after(TIMEOUT_S):
        created = await tasks.create("quick", {"steps": 1, "step_ms": 10})
        async with tasks.listen([created.task_id]):  # task ids in its params, but no task's
            await poll_to_end(tasks, created)
        await tasks.session.call_tool("echo", {"text": "hi"})

    posts = [post for post in recorder.posts() if post.method is not None]
    methods = {post.method for post in posts}
    assert {"tools/call", "subscriptions/listen", "tasks/get"} <= methods
    for post in posts:
        assert post.header("mcp-method") == post.method, post
        if post.method == "tools/call":
            assert post.header("mcp-name") == post.params["name"], post
        elif post.method not in TASK_METHODS:
            assert post.header("mcp-name") is None, post


async def test_the_sdk_alone_names_no_task(tasks: ExtensionTasks, recorder: Recorder) -> None:
    """A control: a tasks/get type that names no field goes out without Mcp-Name.

    So the recorder sees a missing header, and rxtasks' requests owe theirs to their own
    ``name_param``, not to the SDK. The server accepts it: it checks the header only when
    it is there.
    """

    class BareGet(mcp_types.Request[dict[str, Any], Literal["tasks/get"]]):
        method: Literal["tasks/get"] = "tasks/get"
        params: dict[str, Any]

    with anyio.fail_after(TIMEOUT_S):
        created = await tasks.create("quick", {"steps": 1, "step_ms": 10})
        await tasks.session.send_request(
            BareGet(params={"taskId": created.task_id}), mcp_types.EmptyResult
        )
        await tasks.get_task(created.task_id)

    bare, ours = [post for post in recorder.posts() if post.method == "tasks/get"]
    assert bare.header("mcp-method") == "tasks/get"
    assert bare.header("mcp-name") is None
    assert ours.header("mcp-name") == created.task_id
