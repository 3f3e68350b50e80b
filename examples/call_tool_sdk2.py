"""Transparent tasks on mcp 2.x: call_tool returns the tool's result; rxtasks polls the task."""

import anyio
import fastmcp
from fastmcp.client.transports import FastMCPTransport
from reactivex import operators as ops

import rxtasks
from rxtasks.mcp.sdk2 import TasksExtension, demo_server


async def main() -> None:
    extension = TasksExtension(policy=rxtasks.PollPolicy(timeout_ms=60_000))
    statuses = extension.updates.pipe(ops.map(lambda t: t.status), ops.distinct_until_changed())
    statuses.subscribe(lambda status: print("  task", status))  # live progress of every call
    # fastmcp's Client here (in process); mcp.client.Client(url, extensions=[...]) alike.
    async with fastmcp.Client(FastMCPTransport(demo_server()), extensions=[extension]) as client:
        result = await client.call_tool("work", {"steps": 2, "step_ms": 200})
    print(result.content[0].text)


anyio.run(main)
