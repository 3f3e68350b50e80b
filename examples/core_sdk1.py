"""2025-11-25 tasks with mcp 1.23-1.30: a low-level task server, here in process."""

import anyio
from mcp.client.session import ClientSession
from mcp.shared.memory import create_client_server_memory_streams
from reactivex import operators as ops

import rxtasks
from rxtasks.mcp.sdk1 import CoreTasks, TaskNotifications, demo_server


async def main() -> None:
    server, notifications = demo_server(), TaskNotifications()
    async with (
        create_client_server_memory_streams() as (client, server_streams),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(server.run, *server_streams, server.create_initialization_options())
        async with ClientSession(*client, message_handler=notifications.message_handler) as session:
            await session.initialize()
            tasks = CoreTasks(session, notifications=notifications)
            created = await tasks.create("work", {"steps": 2, "step_ms": 100})
            messages = tasks.poll(created).pipe(ops.map(lambda t: t.statusMessage), ops.distinct())
            async for message in rxtasks.iterate(messages):
                print(message)  # pushed by the server as it works, and polled
            print((await tasks.result(created.taskId)).content)
        tg.cancel_scope.cancel()


anyio.run(main)
