"""rxtasks.cli without an SDK: arguments, help, exit codes, the demo's batch, the report."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rxtasks.cli
from rxtasks.cli import main
from rxtasks.cli._run import KINDS, DemoOptions, Outcome, demo_batch, leaves, report

WATCH = ["watch", "http://127.0.0.1:9/mcp", "--tool", "work"]


def test_python_m_rxtasks_lists_the_commands() -> None:
    """``python -m rxtasks --help`` runs the command line and names both commands."""
    result = subprocess.run(
        [sys.executable, "-m", "rxtasks", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "demo" in result.stdout
    assert "watch" in result.stdout


def test_run_exits_with_the_code_of_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's entry point raises SystemExit with main's code (here a usage error)."""
    monkeypatch.setattr(sys, "argv", ["rxtasks", "watch"])  # no URL: usage error
    with pytest.raises(SystemExit) as info:
        rxtasks.cli.run()
    assert info.value.code == rxtasks.cli.EXIT_USAGE


def test_demo_help_documents_every_option_with_units(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --help` names each option, its default and its unit."""
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for option in ("--tasks", "--steps", "--step-ms", "--protocol", "--backend", "--plain"):
        assert option in text
    assert "in milliseconds" in text
    assert "(default: 400)" in text
    assert "2025-11-25" in text
    assert all(kind in text for kind in KINDS)


def test_watch_help_documents_options_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`watch --help` names each option, the poll interval's unit, and every exit status."""
    assert main(["watch", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    options = ("URL", "--tool", "--args", "--interval-ms", "--backend", "--plain", "--retries")
    for option in (*options, "--min-interval-ms", "--max-interval-ms", "--timeout-ms"):
        assert option in text
    assert "--request-timeout-ms" in text
    assert "in milliseconds" in text
    codes = ("0 the task completed", "1 the task failed", "2 bad arguments", "124 --timeout-ms")
    for code in (*codes, "130 interrupted"):
        assert code in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--args", "[1, 2]"], "must be a JSON object"),
        (["--args", "{steps: 3}"], "not valid JSON"),
        (["--interval-ms", "-5"], "argument --interval-ms: must be a finite number"),
        (["--interval-ms", "nan"], "argument --interval-ms: must be a finite number"),
        (["--interval-ms", "fast"], "argument --interval-ms: must be a number of milliseconds"),
        (
            ["--max-interval-ms", "0"],
            "argument --max-interval-ms: must be a finite number of milliseconds > 0",
        ),
        (["--timeout-ms", "-1"], "argument --timeout-ms: must be a finite number"),
        (["--request-timeout-ms", "soon"], "argument --request-timeout-ms: must be a number"),
        (["--retries", "-1"], "argument --retries: must be at least 0, got -1"),
        (["--retries", "3.5"], "argument --retries: must be a whole number, got '3.5'"),
    ],
)
def test_bad_watch_arguments_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --args or --interval-ms is a usage error (exit 2) that says what is wrong."""
    assert main([*WATCH, *args]) == 2
    err = capsys.readouterr().err
    assert "usage: rxtasks watch" in err
    assert message in err


def test_watch_needs_a_tool(capsys: pytest.CaptureFixture[str]) -> None:
    """--tool is required."""
    assert main(["watch", "http://127.0.0.1:9/mcp"]) == 2
    assert "--tool" in capsys.readouterr().err


def test_a_floor_above_the_cap_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--min-interval-ms above --max-interval-ms: exit 2, naming both."""
    assert main([*WATCH, "--min-interval-ms", "500", "--max-interval-ms", "100"]) == 2
    err = capsys.readouterr().err
    assert err == "rxtasks watch: --min-interval-ms (500) is more than --max-interval-ms (100)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "0"], "argument --tasks/-n: must be at least 1, got 0"),
        (["--tasks", "abc"], "argument --tasks/-n: must be a whole number, got 'abc'"),
        (["--steps", "-1"], "argument --steps: must be at least 1, got -1"),
        (["--step-ms", "-1"], "argument --step-ms: must be at least 0, got -1"),
        (["--step-ms", "1e3"], "argument --step-ms: must be a whole number, got '1e3'"),
    ],
)
def test_bad_demo_numbers_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Counts must be whole and at least 1, durations at least 0; the error names the option."""
    assert main(["demo", *args]) == 2
    assert message in capsys.readouterr().err


def no_sdk() -> str:
    """sdk_module() when no MCP SDK is installed."""
    raise ImportError("rxtasks.mcp needs an MCP SDK")


@pytest.mark.parametrize("command", [["demo"], WATCH])
def test_without_an_sdk_say_what_to_install(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an MCP SDK: exit 2 and one line saying what to pip install."""
    monkeypatch.setattr(rxtasks.cli, "sdk_module", no_sdk)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"rxtasks {command[0]}: install an MCP SDK")
    assert 'pip install "rxtasks[mcp]"' in err


@pytest.mark.parametrize(
    ("installed", "protocol", "extra"),
    [("rxtasks.mcp.sdk1", "extension", "mcp"), ("rxtasks.mcp.sdk2", "2025-11-25", "mcp1")],
)
def test_demo_of_the_other_protocol_says_what_to_install(
    installed: str,
    protocol: str,
    extra: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A protocol whose SDK is not installed: exit 2, naming the extra that has it."""
    monkeypatch.setattr(rxtasks.cli, "sdk_module", lambda: installed)
    assert main(["demo", "--protocol", protocol]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f'pip install "rxtasks[{extra}]"' in err


def test_importing_the_cli_imports_no_sdk_and_no_rich() -> None:
    """The command line chooses an SDK only when a command runs."""
    code = "import sys, rxtasks.cli; print(sorted({'mcp', 'mcp_types', 'rich'} & set(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert output.strip() == "[]"


class TestDemoBatch:
    def test_one_of_each_kind_by_default(self) -> None:
        """The default batch has one task of each kind, labelled kind-number."""
        batch = demo_batch(DemoOptions())
        assert [spec.label for spec in batch] == [f"{k}-{i}" for i, k in enumerate(KINDS, 1)]
        assert [spec.tool for spec in batch] == list(KINDS)

    def test_more_tasks_repeat_the_kinds(self) -> None:
        """A bigger batch cycles through the kinds; every label stays unique."""
        labels = [spec.label for spec in demo_batch(DemoOptions(tasks=8))]
        assert labels[6:] == ["work-7", "quick-8"]
        assert len(set(labels)) == 8

    def test_durations_scale_with_step_ms(self) -> None:
        """Quick steps take half a step, slow ones twice; fail and cancel come halfway."""
        batch = {spec.tool: spec for spec in demo_batch(DemoOptions(steps=4, step_ms=100))}
        assert batch["work"].arguments == {"steps": 4, "step_ms": 100}
        assert batch["quick"].arguments["step_ms"] == 50
        assert batch["slow"].arguments["step_ms"] == 200
        assert batch["fail"].arguments["after_ms"] == 200
        assert batch["wait_cancel"].cancel_after_s == 0.2
        assert all(
            spec.cancel_after_s is None for spec in batch.values() if spec.tool != "wait_cancel"
        )

    def test_a_kind_can_run_on_another_tool(self) -> None:
        """An SDK without a `quick` tool runs it on `work`, with extra arguments."""
        batch = demo_batch(DemoOptions(tasks=2), {"quick": ("work", {"interval_ms": 100})})
        assert (batch[1].label, batch[1].tool) == ("quick-2", "work")
        assert batch[1].arguments["interval_ms"] == 100


@pytest.mark.parametrize(
    ("outcome", "code", "out", "err"),
    [
        (Outcome("completed", "done"), 0, "done\n", ""),
        (Outcome("failed", "disk full"), 1, "", "rxtasks watch: the task failed: disk full\n"),
        (Outcome("cancelled", "cancelled"), 1, "", "rxtasks watch: the task was cancelled\n"),
        (
            Outcome("completed", "bad input", tool_error=True),
            1,
            "",
            "rxtasks watch: the tool reported an error: bad input\n",
        ),
    ],
)
def test_report(
    outcome: Outcome, code: int, out: str, err: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The result's text goes to stdout (exit 0); anything else is one line on stderr."""
    assert report(outcome) == code
    assert capsys.readouterr() == (out, err)


def test_leaves_unwraps_nested_groups() -> None:
    """Connection errors arrive inside (nested) exception groups."""
    inner = ConnectionError("refused")
    group = BaseExceptionGroup("outer", [ExceptionGroup("inner", [inner]), KeyboardInterrupt()])
    assert [type(e) for e in leaves(group)] == [ConnectionError, KeyboardInterrupt]
    assert next(iter(leaves(inner))) is inner
