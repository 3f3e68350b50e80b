"""The status model: terminal statuses and reading any shape of task result (pure, no I/O)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from numbers import Real
from typing import Final, TypeVar, cast

from ._errors import ArgumentTypeError, InvalidResultError

__all__ = [
    "KNOWN_STATUSES",
    "TERMINAL_STATUSES",
    "ResultReader",
    "expiry_of",
    "id_and_state",
    "is_terminal",
    "remaining_ttl_s",
    "task_id_of",
    "updated_at_of",
]

logger = logging.getLogger("rxtasks")

#: The statuses after which a task never changes again (both protocol revisions).
TERMINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})

#: Every status the protocol defines: ``working`` and ``input_required`` are not terminal.
KNOWN_STATUSES: Final = frozenset({"working", "input_required", *TERMINAL_STATUSES})

# Where each shape of result keeps its interval hint, in milliseconds: the tasks
# extension's names first, then the 2025-11-25 ones; camelCase is
# the wire and mcp 1.x, snake_case is mcp 2.x and fastmcp-tasks.
_HINT_NAMES: Final = ("pollIntervalMs", "poll_interval_ms", "pollInterval", "poll_interval")

_MISSING: Final = object()

# Below this, an integer hint divided by 1000 is a finite float (the fast path's bound).
_INT_HINT_LIMIT: Final = 10**300


def is_terminal(status: str) -> bool:
    """Tell whether a task status is terminal: ``completed``, ``failed`` or ``cancelled``.

    Args:
        status: A task's ``status``.

    Returns:
        True if the task will never change again.

    Example:
        >>> is_terminal("completed"), is_terminal("input_required")
        (True, False)
    """
    return status in TERMINAL_STATUSES


def _field(result: object, name: str) -> object:
    """Return a result's attribute or key ``name``, or ``_MISSING``."""
    if isinstance(result, Mapping):
        return cast("Mapping[str, object]", result).get(name, _MISSING)
    return getattr(result, name, _MISSING)


def _is_mapping(result: object) -> bool:
    return isinstance(result, Mapping)


def _first_field(result: object, names: tuple[str, ...]) -> object:
    """Return the first of ``names`` that the result has and is not None, or None."""
    for name in names:
        value = _field(result, name)
        if value is not _MISSING and value is not None:
            return value
    return None


def task_id_of(result: object) -> object:
    """Return the task id of a result of any shape (``taskId`` / ``task_id``), or None."""
    return _first_field(result, ("taskId", "task_id"))


_S = TypeVar("_S")


def id_and_state(item: str | _S, caller: str) -> tuple[str, _S | None]:
    """A task given by its id or by a known state of it: its id, and the state if given.

    Raises:
        ArgumentTypeError: If ``item`` is neither a string nor has a string task id.
    """
    if isinstance(item, str):
        return item, None
    found = task_id_of(item)
    if not isinstance(found, str):
        raise ArgumentTypeError(
            f"{caller}: {type(item).__name__} is neither a task id (str) nor a task state"
            f" with a string taskId (its taskId: {found!r})"
        )
    return found, item


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def expiry_of(result: object) -> datetime | None:
    """Return when the task's ttl runs out (``createdAt`` + ``ttl``/``ttlMs``), or None.

    None when the result has no creation time, no ttl, an unlimited ttl (``null``), or
    a ttl that is not a finite number of milliseconds >= 0.
    """
    ttl = _first_field(result, ("ttlMs", "ttl_ms", "ttl"))
    created = _as_datetime(_first_field(result, ("createdAt", "created_at")))
    seconds = _hint_seconds(ttl)
    if created is None or seconds is None:
        return None
    try:
        return created + timedelta(seconds=seconds)
    except OverflowError:  # a ttl of centuries: no backstop worth having
        return None


def remaining_ttl_s(result: object) -> float | None:
    """Return at most how much of the task's ttl is left, in seconds, or None if unlimited.

    Only the server's own clock is read: a task last updated at ``lastUpdatedAt`` has at
    most ``createdAt + ttl - lastUpdatedAt`` left when the client sees it, and at most
    the whole ttl when either time is unknown. Nothing is compared with the client's clock,
    which may differ from the server's by more than any ttl.
    """
    seconds = _hint_seconds(_first_field(result, ("ttlMs", "ttl_ms", "ttl")))
    if seconds is None:
        return None
    created = _as_datetime(_first_field(result, ("createdAt", "created_at")))
    updated = updated_at_of(result)
    if created is not None and updated is not None:
        seconds -= max((updated - created).total_seconds(), 0.0)
    return max(seconds, 0.0)


def updated_at_of(result: object) -> datetime | None:
    """Return when the task last changed (``lastUpdatedAt``), or None if unknown.

    SDK models carry a ``datetime``; raw JSON an ISO-8601 string. A value without a time
    zone is taken as UTC; one that cannot be read is unknown.
    """
    return _as_datetime(_first_field(result, ("lastUpdatedAt", "last_updated_at")))


def _hint_seconds(value: object) -> float | None:
    """Return a server's interval hint (ms) in seconds, or None if it is not usable."""
    # int and float are by far the common case; `ms / 1000` is exactly what the SDK's
    # generator sleeps, which keeps the two in step to the last bit in virtual time.
    if type(value) is int:
        if value < 0:
            return None
        try:
            return value / 1000
        except OverflowError:  # an integer beyond float range: a broken server
            return None
    if type(value) is float:
        return value / 1000 if (value >= 0 and value != math.inf) else None
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return None
    try:
        ms = float(value)
    except (OverflowError, ValueError):
        return None
    return ms / 1000 if (ms >= 0 and ms != math.inf) else None


class ResultReader:
    """Read the status and the interval hint of one polled task's results.

    One reader serves one subscription: it remembers where the results keep their hint
    (the shape does not change during a task), and it warns once, not once per poll,
    about an unusable hint or an unknown status.

    Args:
        task_id: The task being polled, for messages.
        default_interval_ms: The interval used when a result carries no usable hint.
    """

    __slots__ = (
        "_default_ms",
        "_default_s",
        "_hint_name",
        "_object_type",
        "_warned_hint",
        "_warned_status",
        "task_id",
    )

    def __init__(self, task_id: str, default_interval_ms: float) -> None:
        self.task_id = task_id
        self._default_ms = default_interval_ms
        self._default_s = default_interval_ms / 1000
        self._hint_name: str | None = None
        # The type of the last result read as an object, not a Mapping: every poll of a
        # task returns the same type, and isinstance(x, Mapping) is an ABC check.
        self._object_type: type | None = None
        self._warned_hint = False
        self._warned_status = False

    def terminal(self, result: object) -> bool:
        """Tell whether a result is terminal: `status` and `is_terminal` in one step.

        Raises:
            InvalidResultError: If the result has no ``status`` at all.
        """
        if type(result) is self._object_type:
            status = getattr(result, "status", _MISSING)
            if type(status) is str:
                if status in TERMINAL_STATUSES:
                    return True
                if status in KNOWN_STATUSES:
                    return False
        elif not _is_mapping(result):
            self._object_type = type(result)
        return self.is_terminal(self.status(result))

    def next_delay(self, result: object) -> float | None:
        """Read a result in one step: None if it is terminal, else `delay_seconds`.

        Raises:
            InvalidResultError: If the result has no ``status`` at all.
        """
        if type(result) is self._object_type:
            # Every poll after the first: `terminal` and `delay_seconds`' fast paths.
            status = getattr(result, "status", _MISSING)
            if type(status) is str:
                if status in TERMINAL_STATUSES:
                    return None
                known = self._hint_name
                if status in KNOWN_STATUSES and known is not None:
                    hint = getattr(result, known, None)
                    if type(hint) is int and 0 <= hint < _INT_HINT_LIMIT:
                        return hint / 1000
        return None if self.terminal(result) else self.delay_seconds(result)

    def status(self, result: object) -> object:
        """Return the result's ``status``.

        Raises:
            InvalidResultError: If the result has no ``status`` at all.
        """
        status = _field(result, "status")
        if status is _MISSING:
            raise InvalidResultError(
                f"get_task({self.task_id!r}) returned {type(result).__name__} with no `status`;"
                " it must return the result of tasks/get (for example mcp.types.GetTaskResult"
                " or its JSON), not the CreateTaskResult of tools/call",
                result=result,
                task_id=self.task_id,
            )
        return status

    def is_terminal(self, status: object) -> bool:
        """Tell whether ``status`` is terminal; an unknown one is not (warned about once)."""
        if type(status) is str or isinstance(status, str):
            if status in TERMINAL_STATUSES:
                return True
            if status in KNOWN_STATUSES:
                return False
        if not self._warned_status:
            self._warned_status = True
            logger.warning(
                "task %s: unknown status %r; treating it as not terminal and polling on",
                self.task_id,
                status,
            )
        return False

    def delay_seconds(self, result: object) -> float:
        """Return how long to wait after ``result`` before the next poll, in seconds.

        The result's hint if it is a finite number of milliseconds >= 0, else the default
        (an unusable hint is warned about once).
        """
        known = self._hint_name
        if known is not None and type(result) is self._object_type:
            # Every poll after the first: the same type, its hint where it was last time.
            hint = getattr(result, known, None)
            if type(hint) is int and 0 <= hint < _INT_HINT_LIMIT:
                return hint / 1000  # what _hint_seconds returns for it
        hint = self._hint(result)
        if hint is None:
            return self._default_s
        seconds = _hint_seconds(hint)
        if seconds is None:
            if not self._warned_hint:
                self._warned_hint = True
                logger.warning(
                    "task %s: invalid poll interval hint %r (expected a finite number of"
                    " milliseconds >= 0); using the default of %s ms",
                    self.task_id,
                    hint,
                    self._default_ms,
                )
            return self._default_s
        return seconds

    def _hint(self, result: object) -> object:
        if type(result) is not self._object_type and _is_mapping(result):
            mapping = cast("Mapping[str, object]", result)
            for name in _HINT_NAMES:
                value = mapping.get(name)
                if value is not None:
                    return value
            return None
        known = self._hint_name
        if known is not None:
            value = getattr(result, known, _MISSING)
            if value is not _MISSING:
                return value
        for candidate in _HINT_NAMES:
            value = getattr(result, candidate, _MISSING)
            if value is not _MISSING:
                self._hint_name = candidate
                return value
        return None
