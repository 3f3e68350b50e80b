"""One call to a tasked tool on mcp 1.x: create, poll, answer its question, return its result."""

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.memory import create_client_server_memory_streams

import rxtasks
from rxtasks.mcp.sdk1 import CoreTasks, TaskNotifications, demo_server


async def answer(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
    print("asked:", params.message)  # once, however many polls see input_required
    return types.ElicitResult(action="accept", content={"answer": "42"})


async def main() -> None:
    server, notifications = demo_server(), TaskNotifications()
    async with (
        create_client_server_memory_streams() as (client, server_streams),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(server.run, *server_streams, server.create_initialization_options())
        async with ClientSession(
            *client, message_handler=notifications.message_handler, elicitation_callback=answer
        ) as session:
            await session.initialize()
            tasks = CoreTasks(session, notifications=notifications)
            policy = rxtasks.PollPolicy(timeout_ms=60_000, retry=rxtasks.Retry(attempts=3))
            result = await tasks.call_tool("ask", {"question": "the answer?"}, policy=policy)
            print(result.isError, result.content[0].text)
            failed = await tasks.call_tool("fail", {"after_ms": 100, "message": "disk full"})
            print(failed.isError, failed.content[0].text)  # mcp 1.x's convention: no raise
        tg.cancel_scope.cancel()


anyio.run(main)
