"""`TaskRef`: what it takes to pick a task up again, in another process or after a crash.

No SDK here: a reference is plain data (JSON), and every adapter resumes from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .._core._errors import ArgumentError, ArgumentTypeError, InvalidResultError
from .._core._status import (
    ResultReader,
    _as_datetime,  # pyright: ignore[reportPrivateUsage] -- the same reading as the core's
    _first_field,  # pyright: ignore[reportPrivateUsage]
    _hint_seconds,  # pyright: ignore[reportPrivateUsage]
    task_id_of,
)

if TYPE_CHECKING:
    from .._poll.policy import PollPolicy

__all__ = ["PROTOCOLS", "TaskRef"]

#: The protocol revisions a reference can name: 2025-11-25 tasks, and the tasks
#: extension (``io.modelcontextprotocol/tasks``) of 2026-07-28.
PROTOCOLS: Final = ("2025-11-25", "2026-07-28")

_FIELDS: Final = (
    "version",
    "server",
    "protocol",
    "task_id",
    "status",
    "next_poll_at",
    "created_at",
    "ttl_ms",
)


@dataclass(frozen=True)
class TaskRef:
    """A task to pick up again: the server, the protocol, the id, and when to poll next.

    An MCP client SHOULD persist its task ids so that polling can resume after a restart
    (the tasks extension says so). A reference is that record, small, versioned and
    JSON: write `to_json` somewhere safe while the task runs (``rxtasks watch --json``
    prints one per state), and after a crash hand `from_json`'s result to the adapter's
    ``resume``, which waits until `next_poll_at` before its first ``tasks/get``: the
    server's pace is kept across the restart.

    Times are wall-clock UTC, since they must mean the same in another process.

    Attributes:
        server: The server, as the caller names it (for example its URL); rxtasks does
            not interpret it.
        protocol: ``"2025-11-25"`` or ``"2026-07-28"`` (the tasks extension).
        task_id: The task.
        status: Its last known status.
        next_poll_at: When the next ``tasks/get`` is due.
        created_at: When the server created the task, if it said.
        ttl_ms: How long after its creation the server keeps it, if it said (None:
            unlimited or unknown).
        version: The format's version (`VERSION`); `from_json` refuses others.

    Example:
        >>> created = await tasks.create("work", {"steps": 3})
        >>> ref = tasks.ref(created, server=url)
        >>> Path("task.json").write_text(ref.to_json())
        >>> # ... later, perhaps in another process:
        >>> ref = TaskRef.from_json(Path("task.json").read_text())
        >>> async for state in rxtasks.iterate(tasks.resume(ref)):
        ...     print(state.status)
    """

    #: The current format; a reference of another version is refused, not guessed at.
    VERSION: ClassVar[int] = 1

    server: str
    protocol: str
    task_id: str
    status: str
    next_poll_at: datetime
    created_at: datetime | None = None
    ttl_ms: float | None = None
    version: int = 1

    @classmethod
    def of(
        cls,
        state: object,
        *,
        server: str,
        protocol: str,
        default_interval_ms: float = 500,
        policy: PollPolicy | None = None,
        now: datetime | None = None,
    ) -> TaskRef:
        """The reference of a task state just received (created, polled or pushed).

        Args:
            state: The task's state, of any shape `rxtasks.poll` reads.
            server: The server, as you name it.
            protocol: ``"2025-11-25"`` or ``"2026-07-28"``.
            default_interval_ms: The interval when the state has no usable hint.
            policy: The poll's policy, if any: its floor and cap apply to the interval.
            now: When the state arrived (default: now); the next poll is due its
                interval after that.

        Raises:
            InvalidResultError: If the state has no string task id or status.
            ArgumentError: If ``protocol`` is not one of `PROTOCOLS`.
        """
        _check_protocol(protocol)
        task_id = task_id_of(state)
        reader = ResultReader(task_id if isinstance(task_id, str) else "?", default_interval_ms)
        status = reader.status(state)  # raises for a missing or non-string status
        if not isinstance(task_id, str):
            raise InvalidResultError(
                f"a task state without a string taskId: {task_id!r}", result=state, task_id=""
            )
        arrived = now if now is not None else datetime.now(UTC)
        delay_s = reader.delay_seconds(state)
        if policy is not None:
            delay_s = policy.clamp(delay_s)
        ttl_s = _hint_seconds(_first_field(state, ("ttlMs", "ttl_ms", "ttl")))
        return cls(
            server=server,
            protocol=protocol,
            task_id=task_id,
            status=str(status),
            next_poll_at=arrived + timedelta(seconds=delay_s),
            created_at=_as_datetime(_first_field(state, ("createdAt", "created_at"))),
            ttl_ms=None if ttl_s is None else ttl_s * 1000,
        )

    def due_in_ms(self, now: datetime | None = None) -> float:
        """How long from ``now`` (default: now) until the next poll is due; 0 if it is."""
        now = now if now is not None else datetime.now(UTC)
        return max(0.0, (self.next_poll_at - now).total_seconds() * 1000)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the task's ttl has passed by ``now`` (False if the ttl is unknown)."""
        if self.created_at is None or self.ttl_ms is None:
            return False
        now = now if now is not None else datetime.now(UTC)
        return now >= self.created_at + timedelta(milliseconds=self.ttl_ms)

    def to_dict(self) -> dict[str, Any]:
        """The reference as JSON values (times in ISO 8601, UTC), to embed in JSON of yours."""
        data: dict[str, Any] = asdict(self)
        for name in ("next_poll_at", "created_at"):
            value = data[name]
            data[name] = value.isoformat() if isinstance(value, datetime) else None
        return {name: data[name] for name in _FIELDS}

    def to_json(self) -> str:
        """The reference as one line of JSON (`to_dict`'s), for `from_json`."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskRef:
        """Read a reference written by `to_json`.

        Raises:
            ArgumentError: If it is not JSON, is of another `version`, names an unknown
                protocol, or a field is missing or of the wrong type (the message says
                which).
        """
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArgumentError(f"a task reference must be JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ArgumentError("a task reference must be a JSON object")
        fields: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
        version = fields.get("version")
        if version != cls.VERSION:
            raise ArgumentError(
                f"a task reference of version {version!r}; this rxtasks reads version {cls.VERSION}"
            )
        missing = [name for name in _FIELDS[:6] if fields.get(name) is None]
        if missing:
            raise ArgumentError(f"a task reference without {', '.join(missing)}")
        for name in ("server", "protocol", "task_id", "status"):
            if not isinstance(fields[name], str):
                raise ArgumentError(f"a task reference's {name} must be a string")
        _check_protocol(fields["protocol"])
        ttl = fields.get("ttl_ms")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl)
        ):
            raise ArgumentError(f"a task reference's ttl_ms must be a number, got {ttl!r}")
        return cls(
            server=fields["server"],
            protocol=fields["protocol"],
            task_id=fields["task_id"],
            status=fields["status"],
            next_poll_at=_time(fields, "next_poll_at"),
            created_at=_time(fields, "created_at") if fields.get("created_at") else None,
            ttl_ms=ttl,
        )


def _time(fields: dict[str, Any], name: str) -> datetime:
    value = fields[name]
    parsed = _as_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ArgumentError(f"a task reference's {name} must be an ISO 8601 time, got {value!r}")
    return parsed


def _check_protocol(protocol: object) -> None:
    if not isinstance(protocol, str):
        raise ArgumentTypeError(f"`protocol` must be a string, got {type(protocol).__name__}")
    if protocol not in PROTOCOLS:
        raise ArgumentError(f"`protocol` must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
