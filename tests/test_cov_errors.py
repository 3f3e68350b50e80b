"""The errors a task's outcome raises (rxtasks.mcp's): their messages, attributes and types."""

from __future__ import annotations

import pytest

import rxtasks
from rxtasks import (
    RxTasksError,
    TaskCancelledError,
    TaskError,
    TaskFailedError,
    TaskNotCreatedError,
    TaskNotTerminalError,
)


class Final:
    """A terminal task state, as tasks/get returns it."""


def test_task_failed_error_keeps_code_data_and_final_state() -> None:
    """A failed task's error says ``failed`` and keeps the JSON-RPC code, data and state."""
    final = Final()
    error = TaskFailedError("boom", task_id="t1", final=final, code=-32603, data={"x": 1})
    assert str(error) == "boom"
    assert (error.task_id, error.status, error.final) == ("t1", "failed", final)
    assert (error.code, error.data) == (-32603, {"x": 1})
    assert isinstance(error, TaskError)
    assert isinstance(error, RxTasksError)


def test_task_failed_error_code_and_data_default_to_none() -> None:
    """Where the protocol carries no error object, code and data are None."""
    error = TaskFailedError("no detail", task_id="t2", final=None)
    assert (error.code, error.data, error.status) == (None, None, "failed")


def test_task_cancelled_error_says_cancelled() -> None:
    """A cancelled task's error has status ``cancelled``, and is caught as a TaskError."""
    final = Final()
    with pytest.raises(TaskError) as info:
        raise TaskCancelledError("gone", task_id="t3", final=final)
    error = info.value
    assert type(error) is TaskCancelledError
    assert (str(error), error.task_id, error.status) == ("gone", "t3", "cancelled")
    assert error.final is final
    assert not isinstance(error, TaskFailedError)


def test_task_error_base_keeps_any_status() -> None:
    """The base class keeps whatever status it is given."""
    error = TaskError("odd", task_id="t4", status="weird", final=1)
    assert (error.task_id, error.status, error.final, str(error)) == ("t4", "weird", 1, "odd")


def test_task_not_terminal_error_is_a_value_error() -> None:
    """Asking the outcome of a task still running is a ValueError naming task and status."""
    with pytest.raises(ValueError, match="still working") as info:
        raise TaskNotTerminalError("still working", task_id="t5", status="working")
    assert isinstance(info.value, TaskNotTerminalError)
    assert (info.value.task_id, info.value.status) == ("t5", "working")
    assert isinstance(info.value, RxTasksError)


def test_task_not_created_error_keeps_the_plain_result() -> None:
    """A tools/call answered without a task keeps that answer, so nothing is lost."""
    answer: dict[str, object] = {"content": [], "isError": True}
    error = TaskNotCreatedError("no task", result=answer)
    assert error.result is answer
    assert str(error) == "no task"
    assert isinstance(error, RxTasksError)
    assert not isinstance(error, TaskError)


def test_task_errors_are_exported_under_the_package_name() -> None:
    """Reprs and tracebacks name ``rxtasks``, not the private module."""
    for cls in (TaskError, TaskFailedError, TaskCancelledError, TaskNotCreatedError):
        assert cls.__module__ == "rxtasks"
        assert getattr(rxtasks, cls.__name__) is cls
