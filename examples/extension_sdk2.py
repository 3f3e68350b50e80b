"""Tasks extension (2026-07-28) with mcp 2.x: a fastmcp-tasks server, here in process."""

import anyio
from fastmcp.client.transports import FastMCPTransport
from reactivex import operators as ops

import rxtasks
from rxtasks.mcp.sdk2 import ExtensionTasks, TaskNotifications, demo_server, session_options


async def main() -> None:
    notifications = TaskNotifications()
    transport = FastMCPTransport(demo_server())  # or streamable_http_client(url) and a session
    async with transport.connect_session(**session_options(notifications)) as session:
        await session.discover()  # negotiate 2026-07-28, where the extension applies
        tasks = ExtensionTasks(session, notifications=notifications)
        created = await tasks.create("work", {"steps": 2, "step_ms": 100})
        statuses = tasks.poll(created).pipe(  # the first tasks/get waits created's hint
            ops.map(lambda t: t.status), ops.distinct_until_changed()
        )
        async for status in rxtasks.iterate(statuses):
            print(status)
        print((await tasks.result(created.task_id)).content)


anyio.run(main)
