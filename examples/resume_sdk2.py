"""Detach and resume: a task's TaskRef, saved as JSON, picked up again by a new session."""

import json

import anyio
from fastmcp.client.transports import FastMCPTransport

import rxtasks
from rxtasks.mcp import TaskRef
from rxtasks.mcp.sdk2 import ExtensionTasks, demo_server, session_options

server = demo_server()  # one server; each block below is a session of its own


async def start() -> str:
    async with FastMCPTransport(server).connect_session(**session_options()) as session:
        await session.discover()
        tasks = ExtensionTasks(session)
        created = await tasks.create("work", {"steps": 3, "step_ms": 100})
        print("created:", created.status, f"(next poll in {created.poll_interval_ms} ms)")
        return tasks.ref(created, server="in-process demo").to_json()  # detach: keep this


async def resume(saved: str) -> None:
    async with FastMCPTransport(server).connect_session(**session_options()) as session:
        await session.discover()
        tasks = ExtensionTasks(session)
        ref = TaskRef.from_json(saved)  # no tasks/get before ref.next_poll_at
        states = [task async for task in rxtasks.iterate(tasks.resume(ref))]
        final = states[-1]
        print("resumed:", final.status, tasks.outcome(final).content[0].text)


async def main() -> None:
    # An in-process server runs only while a session is open, and drops the tasks it
    # runs when the last one closes: this session keeps it up between the two above,
    # as a real server outlives its clients.
    async with FastMCPTransport(server).connect_session(**session_options()):
        saved = await start()
        print("saved:", ", ".join(json.loads(saved)))  # the reference's fields
        await resume(saved)


anyio.run(main)
