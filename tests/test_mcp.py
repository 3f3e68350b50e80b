"""rxtasks.mcp without an SDK: which errors are worth a retry."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from rxtasks import PollTimeoutError, TaskCancelledError
from rxtasks.mcp import TRANSIENT_CODES, is_transient


@dataclass
class CodedError(Exception):
    """An error with a JSON-RPC code, as mcp 2.x's MCPError has."""

    code: object


@dataclass
class ErrorData:
    """mcp 1.x's ErrorData: the code one level down."""

    code: int


@dataclass
class WrappedError(Exception):
    """An error with ``error.code``, as mcp 1.x's McpError has."""

    error: ErrorData


class TransportError(Exception):
    """Named as the HTTP clients' base of connection errors (httpx, httpx2)."""


class RemoteProtocolError(TransportError):
    """A broken answer: the connection's fault."""


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (anyio.BrokenResourceError(), True),
        (RemoteProtocolError("peer closed connection"), True),
        (CodedError(-32603), True),
        (CodedError(-32001), True),
        (WrappedError(ErrorData(408)), True),
        (CodedError(-32602), False),  # task not found: never
        (WrappedError(ErrorData(-32602)), False),
        (CodedError(-32000), False),  # a closed connection, or the server's own error
        (CodedError(True), False),
        (ValueError("no"), False),
    ],
)
def test_transient_errors_are_the_connections(error: BaseException, transient: bool) -> None:
    """Timeouts, connection errors and internal errors are retried; a missing task is not."""
    assert is_transient(error) is transient


def test_the_codes() -> None:
    """The codes say internal error and request timeout (both SDKs' spellings)."""
    assert frozenset({-32603, -32001, 408}) == TRANSIENT_CODES


def test_rxtasks_verdicts_are_never_transient() -> None:
    """A deadline or a task's end is rxtasks' verdict, not the connection's: no retry."""
    deadline = PollTimeoutError("late", task_id="t", last_result=None, timeout_ms=1)
    assert isinstance(deadline, TimeoutError)
    assert not is_transient(deadline)

    class CancelledWithCode(TaskCancelledError):
        code = -32603  # what an SDK error of a cancelled task may carry

    assert not is_transient(CancelledWithCode("gone", task_id="t", final=None))
    assert is_transient(TimeoutError())
