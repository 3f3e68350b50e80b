"""TaskRef: what a task needs to be picked up again, as versioned JSON (no SDK needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import rxtasks
from rxtasks.mcp import TaskRef

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STATE = {
    "taskId": "t1",
    "status": "working",
    "pollInterval": 400,
    "createdAt": "2026-12-01T11:59:00Z",
    "ttl": 60_000,
}


def test_a_ref_of_a_state_and_its_json_round_trip() -> None:
    """The next poll is due the state's hint after it arrived; JSON gives the same ref back."""
    ref = TaskRef.of(STATE, server="http://x/mcp", protocol="2025-11-25", now=NOW)
    assert (ref.task_id, ref.status, ref.ttl_ms) == ("t1", "working", 60_000)
    assert ref.next_poll_at == NOW + timedelta(milliseconds=400)
    assert ref.created_at == datetime(2026, 12, 1, 11, 59, tzinfo=UTC)
    assert TaskRef.from_json(ref.to_json()) == ref
    assert json.loads(ref.to_json()) == ref.to_dict()
    assert ref.to_dict()["version"] == TaskRef.VERSION == 1


def test_timing_reads() -> None:
    """due_in_ms counts down to 0; expired compares with createdAt + ttl."""
    policy = rxtasks.PollPolicy(max_interval_ms=100)  # the cap applies to the next poll
    ref = TaskRef.of(STATE, server="s", protocol="2025-11-25", policy=policy, now=NOW)
    assert ref.due_in_ms(NOW) == 100
    assert ref.due_in_ms(NOW + timedelta(seconds=1)) == 0
    assert not ref.expired(NOW - timedelta(seconds=1))
    assert ref.expired(NOW)  # created 11:59, a ttl of 60 s
    unknown = TaskRef("s", "2025-11-25", "t", "working", NOW)
    assert not unknown.expired(NOW + timedelta(days=999))


_GOOD = {
    "version": 1,
    "server": "s",
    "protocol": "2025-11-25",
    "task_id": "t",
    "status": "working",
    "next_poll_at": "2026-12-01T00:00:00Z",
}


def _with(**changes: object) -> str:
    return json.dumps({**_GOOD, **changes})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "must be JSON"),
        ("[1]", "a JSON object"),
        (_with(version=2), "version 2"),
        ('{"version": 1, "server": "s"}', "without protocol, task_id, status, next_poll_at"),
        (_with(protocol="2099"), "protocol"),
        (_with(task_id=7), "task_id must be a string"),
        (_with(next_poll_at="soon"), "ISO 8601"),
        (_with(ttl_ms=True), "ttl_ms"),
    ],
)
def test_from_json_refuses_what_is_not_a_ref(text: str, says: str) -> None:
    """Anything but a version-1 reference: one ArgumentError saying what is wrong."""
    assert TaskRef.from_json(_with()).task_id == "t"  # each case changes one field of this
    with pytest.raises(rxtasks.ArgumentError, match=says):
        TaskRef.from_json(text)


def test_a_state_without_id_or_status_is_refused() -> None:
    """A ref is made of a readable state only."""
    with pytest.raises(rxtasks.InvalidResultError):
        TaskRef.of({"taskId": "t"}, server="s", protocol="2025-11-25")
    with pytest.raises(rxtasks.InvalidResultError):
        TaskRef.of({"status": "working"}, server="s", protocol="2025-11-25")
    with pytest.raises(rxtasks.ArgumentError, match="protocol"):
        TaskRef.of(STATE, server="s", protocol="1999")
