"""Poll a task at the server's pace: the drop-in `async for`, then the observable."""

import anyio
from reactivex import operators as ops

import rxtasks
from rxtasks.testing import FakeTaskServer, steps

script = steps("working", "input_required", "completed", interval_ms=200)
server = FakeTaskServer({"t1": script, "t2": script})


async def main() -> None:
    # The drop-in for the MCP SDK's poll_until_terminal.
    async for task in rxtasks.poll_until_terminal(server.get_task, "t1"):
        print(task.taskId, task.status)

    # The same poll as a cold observable, composed with reactivex operators.
    statuses = rxtasks.poll(server.get_task, "t2").pipe(ops.map(lambda task: task.status))
    async with rxtasks.AnyioScheduler() as scheduler:
        statuses.subscribe(lambda status: print("t2", status), scheduler=scheduler)


anyio.run(main)
