"""The command line: ``rxtasks demo``, ``rxtasks watch URL --tool NAME``, ``rxtasks serve``.

A map of the subpackage:

- this module: the arguments, the choice of SDK, exit codes and one-line errors.
- `_view`: the live table (rich) or plain lines; no SDK.
- `_run`: the commands' flows (start, poll everything at once, show, report); no SDK.
- `_serve`: serving the demo's server over Streamable HTTP; no SDK.
- `_sdk1` / `_sdk2`: the session and task adapter of mcp 1.x / mcp 2.x (imported lazily,
  for the installed SDK only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, Any, NoReturn

from .._core._errors import ArgumentError
from .._core._validate import check_ms
from ..mcp import TaskRef, sdk_module
from ._run import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    KINDS,
    CommandError,
    DemoOptions,
    Options,
    ServeOptions,
    WatchOptions,
    WatchProgress,
    leaves,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import ModuleType

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "run",
]

#: Set by a command after which this process must not finalize (see `run`).
_skip_finalization = False

_INSTALL = (
    'pip install "rxtasks[mcp]" (mcp 2.x, the tasks extension)'
    ' or pip install "rxtasks[mcp1]" (mcp 1.23-1.30, 2025-11-25 tasks);'
    ' from a checkout: pip install ".[mcp]" or ".[mcp1]"'
)

_DESCRIPTION = """\
Poll MCP tasks at the pace their server asks for, and watch them live.

A table on a terminal (one row per task: status, message, polls, elapsed);
one line per change when the output is not a terminal."""

_DEMO_DESCRIPTION = f"""\
Start an MCP server with tasks in this process, call a batch of its tools as
tasks, poll them all at once, each at the interval its server suggests, and show
them live until they end; then print a summary.

The batch cycles through these kinds of task: {", ".join(KINDS)}.
work, quick and slow report progress at different speeds and suggest
different poll intervals (250, 100 and 750 ms); fail fails halfway;
wait_cancel runs until the demo cancels it halfway; ask needs input, which the
demo answers.

With the default options it takes about 5 seconds."""

_WATCH_DESCRIPTION = """\
Connect to an MCP server over Streamable HTTP, call a tool so that the server
runs it as a task, and poll the task until it ends, at the interval the server
suggests (kept between --min-interval-ms and --max-interval-ms). The task's
progress goes to stderr; its result text to stdout. Transient errors (a lost
connection, a request without an answer within --request-timeout-ms, a JSON-RPC
internal error) are retried --retries times with backoff; "task not found" never.

With mcp 2.x (rxtasks[mcp]) the server must support the tasks extension
(io.modelcontextprotocol/tasks); with mcp 1.x (rxtasks[mcp1]), 2025-11-25
tasks. A task that needs input shows as input_required; watch does not
answer it (Ctrl-C cancels the task)."""

_RESUME_DESCRIPTION = """\
Pick up a task that `rxtasks watch --detach` left running, or that a crashed
watch was following (`--json` prints the reference with every state): connect
to its server, wait until its next poll is due (never earlier), and watch it to
the end as `rxtasks watch` does."""

_RESUME_EPILOG = """\
exit status: as for `rxtasks watch`; a task the server no longer knows (its
ttl passed, or a wrong id) is exit 2, with one line naming it.

example:
  rxtasks watch http://127.0.0.1:8000/mcp --tool work --detach > task.json
  rxtasks resume @task.json"""

_WATCH_EPILOG = """\
exit status:
  0    the task completed (or the tool answered at once, without a task)
  1    the task failed, was cancelled, or completed with a tool error
       (isError), whatever tasks/result answers
  2    bad arguments, or the server could not be reached or used (a
       malformed answer, a dropped connection, retries exhausted): one line
  124  --timeout-ms passed; the task was asked to cancel
  130  interrupted (Ctrl-C); the task, if it exists, was asked to cancel

examples:
  rxtasks watch http://127.0.0.1:8000/mcp --tool work --args '{"steps": 3}'
  rxtasks watch http://127.0.0.1:8000/mcp --tool work --json   # JSON lines
  rxtasks watch http://127.0.0.1:8000/mcp --tool work --detach > task.json"""


# argparse names the option in front of what these raise ("argument --tasks/-n: ..."),
# and only for ArgumentTypeError: a ValueError would read "invalid _count value".


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _count(text: str) -> int:
    return _whole(text, 1)


def _port(text: str) -> int:
    port = _whole(text, 0)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {port}")
    return port


def _retries(text: str) -> int:
    return _whole(text, 0)


def _milliseconds(text: str) -> int:
    return _whole(text, 0)


def _ms(text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of milliseconds, got {text!r}"
        ) from None
    try:
        return check_ms(value, name="the value", positive=positive)
    except ArgumentError:
        bound = "> 0" if positive else ">= 0"
        raise argparse.ArgumentTypeError(
            f"must be a finite number of milliseconds {bound}, got {text!r}"
        ) from None


def _interval_ms(text: str) -> float:
    return _ms(text)


def _positive_ms(text: str) -> float:
    return _ms(text, positive=True)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"steps\": 3}}', got {text!r}"
        )
    return value  # pyright: ignore[reportUnknownVariableType] -- a JSON object


def _task_ref(text: str) -> TaskRef:
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {exc.strerror}") from None
    try:
        return TaskRef.from_json(text.strip())
    except ArgumentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (default: asyncio; trio needs rxtasks[trio], and the"
        " tasks extension's in-process server runs on asyncio only)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="print one line per change even on a terminal, instead of the live table",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="show the log messages of the SDK and server"
    )


def _poll_options(parser: argparse.ArgumentParser) -> None:
    """The options of how ``watch`` and ``resume`` poll, and ``--json``."""
    defaults_watch = WatchOptions(url="", tool="")
    parser.add_argument(
        "--interval-ms",
        type=_interval_ms,
        default=defaults_watch.interval_ms,
        metavar="MS",
        help="poll interval when the server suggests none or an unusable one, in"
        f" milliseconds (default: {defaults_watch.interval_ms:g})",
    )
    parser.add_argument(
        "--min-interval-ms",
        type=_interval_ms,
        default=defaults_watch.min_interval_ms,
        metavar="MS",
        help="never poll faster than this, whatever the server asks (default:"
        f" {defaults_watch.min_interval_ms:g})",
    )
    parser.add_argument(
        "--max-interval-ms",
        type=_positive_ms,
        default=defaults_watch.max_interval_ms,
        metavar="MS",
        help="never wait longer than this between polls (default:"
        f" {defaults_watch.max_interval_ms:g})",
    )
    parser.add_argument(
        "--timeout-ms",
        type=_positive_ms,
        default=None,
        metavar="MS",
        help="give up after this long: the task is asked to cancel, exit 124 (default: none)",
    )
    parser.add_argument(
        "--request-timeout-ms",
        type=_positive_ms,
        default=defaults_watch.request_timeout_ms,
        metavar="MS",
        help="how long one request may take; then it counts as a transient error"
        f" (default: {defaults_watch.request_timeout_ms:g})",
    )
    parser.add_argument(
        "--retries",
        type=_retries,
        default=defaults_watch.retries,
        metavar="N",
        help="retries of transient errors in a row, with backoff and jitter (default:"
        f" {defaults_watch.retries})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per state on stdout (with the reference to resume"
        " from it), and the result last, for scripts and agents",
    )


_SERVE_DESCRIPTION = """\
Serve the demo's task server (the installed SDK's protocol revision: the tasks
extension with rxtasks[mcp], 2025-11-25 tasks with rxtasks[mcp1]) over
Streamable HTTP on 127.0.0.1, to try `rxtasks watch` on. It prints the URL and
its tools, then serves until Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``rxtasks``."""
    parser = argparse.ArgumentParser(
        prog="rxtasks",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"rxtasks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a batch of tasks on an in-process MCP server and watch them live",
        description=_DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = DemoOptions()
    demo.add_argument(
        "--tasks",
        "-n",
        type=_count,
        default=defaults.tasks,
        metavar="N",
        help=f"how many tasks to start (default: {defaults.tasks}, one of each kind;"
        " more repeat the kinds)",
    )
    demo.add_argument(
        "--steps",
        type=_count,
        default=defaults.steps,
        metavar="N",
        help=f"progress steps of each work, quick and slow task (default: {defaults.steps})",
    )
    demo.add_argument(
        "--step-ms",
        type=_milliseconds,
        default=defaults.step_ms,
        metavar="MS",
        help="how long one work step takes, in milliseconds; every other duration scales"
        f" with it (quick steps take half, slow steps twice) (default: {defaults.step_ms})",
    )
    demo.add_argument(
        "--protocol",
        choices=("auto", "extension", "2025-11-25"),
        default=defaults.protocol,
        help="the tasks protocol: 'extension' (io.modelcontextprotocol/tasks, needs"
        " rxtasks[mcp]) or '2025-11-25' (needs rxtasks[mcp1]); 'auto' (default) takes the"
        " installed SDK's",
    )
    _common_options(demo)

    watch = commands.add_parser(
        "watch",
        help="call a tool of a Streamable HTTP MCP server as a task and watch it to the end",
        description=_WATCH_DESCRIPTION,
        epilog=_WATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("url", metavar="URL", help="the server's MCP endpoint, e.g. http://host/mcp")
    watch.add_argument("--tool", required=True, metavar="NAME", help="the tool to call")
    watch.add_argument(
        "--args",
        dest="arguments",
        type=_json_object,
        default={},
        metavar="JSON",
        help="the tool's arguments, a JSON object (default: {})",
    )
    _poll_options(watch)
    watch.add_argument(
        "--detach",
        action="store_true",
        help="print the task's reference (JSON, for `rxtasks resume`) once the server has"
        " created it, and leave the task running; exit 0",
    )
    _common_options(watch)

    resume = commands.add_parser(
        "resume",
        help="pick a task up again from its reference and watch it to the end",
        description=_RESUME_DESCRIPTION,
        epilog=_RESUME_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resume.add_argument(
        "ref",
        metavar="REF",
        type=_task_ref,
        help="the task's reference: its JSON, or @FILE to read it from a file",
    )
    resume.add_argument(
        "--url",
        default=None,
        metavar="URL",
        help="the server's MCP endpoint (default: the server the reference names)",
    )
    _poll_options(resume)
    _common_options(resume)

    serve = commands.add_parser(
        "serve",
        help="serve the demo's task server over Streamable HTTP on 127.0.0.1",
        description=_SERVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=ServeOptions().port,
        metavar="N",
        help=f"the port (default: {ServeOptions().port}; 0: any free one)",
    )
    serve.add_argument(
        "--verbose", "-v", action="store_true", help="show the log messages of the server"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rxtasks`` command line.

    Args:
        argv: The arguments after the program name; default: ``sys.argv[1:]``.

    Returns:
        The exit code (see ``rxtasks watch --help``).
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the command began (importing an SDK takes a while)
        _error("", "interrupted")
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: str = args.command
    options: Options
    if command == "serve":
        options = ServeOptions(port=args.port, verbose=args.verbose)
    elif command == "demo":
        options = DemoOptions(
            tasks=args.tasks,
            steps=args.steps,
            step_ms=args.step_ms,
            protocol=args.protocol,
            backend=args.backend,
            plain=args.plain,
            verbose=args.verbose,
        )
    else:
        if args.min_interval_ms > args.max_interval_ms:
            _error(
                command,
                f"--min-interval-ms ({args.min_interval_ms:g}) is more than --max-interval-ms"
                f" ({args.max_interval_ms:g})",
            )
            return EXIT_USAGE
        ref: TaskRef | None = args.ref if command == "resume" else None
        url: str | None = args.url if ref is None or args.url else ref.server
        options = WatchOptions(
            url=url or "",
            tool=args.tool if ref is None else "",
            arguments=args.arguments if ref is None else {},
            ref=ref,
            json=args.json,
            detach=getattr(args, "detach", False),
            interval_ms=args.interval_ms,
            min_interval_ms=args.min_interval_ms,
            max_interval_ms=args.max_interval_ms,
            timeout_ms=args.timeout_ms,
            request_timeout_ms=args.request_timeout_ms,
            retries=args.retries,
            backend=args.backend,
            plain=args.plain,
            verbose=args.verbose,
        )
    try:
        return _run(command, options)
    except CommandError as exc:
        _error(command, str(exc))
        return EXIT_USAGE


def run() -> NoReturn:
    """The ``rxtasks`` program (and ``python -m rxtasks``): `main`, then exit with its code.

    After the demo of the tasks extension the process ends without finalizing the
    interpreter. The in-process server's backend (fastmcp-tasks' ``memory://``,
    burner-redis) runs Tokio threads that call into Python; one that does so while the
    interpreter finalizes aborts the process ("Fatal Python error: PyGILState_Release",
    exit -6), seen once in several hundred demo runs. Everything is printed by then, so
    the output is flushed and the process leaves at once.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # between the program's start and main's own handler
        _error("", "interrupted")
        code = EXIT_INTERRUPTED
    if _skip_finalization:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def _error(command: str, message: str) -> None:
    name = f"rxtasks {command}" if command else "rxtasks"
    print(f"{name}: {message}", file=sys.stderr)  # noqa: T201


def _sdk(command: str, options: Options) -> ModuleType:
    """Import the command module of the installed SDK (and the protocol asked for)."""
    try:
        name = sdk_module()
    except ImportError:
        raise CommandError(f"install an MCP SDK: {_INSTALL}") from None
    if isinstance(options, DemoOptions):
        wanted = {"extension": "rxtasks.mcp.sdk2", "2025-11-25": "rxtasks.mcp.sdk1"}
        if wanted.get(options.protocol, name) != name:
            extra = "mcp" if options.protocol == "extension" else "mcp1"
            raise CommandError(
                f"the {options.protocol} demo needs the other MCP SDK: pip install"
                f' "rxtasks[{extra}]" (from a checkout: pip install ".[{extra}]") in an'
                " environment of its own (mcp 1.x and 2.x cannot share one)"
            )
    try:
        return import_module(f"rxtasks.cli._{name.rsplit('.', 1)[1]}")
    except ImportError as exc:  # e.g. rich, or fastmcp-tasks, is missing
        raise CommandError(f"{exc}; install the commands' dependencies: {_INSTALL}") from None


def _run(command: str, options: Options) -> int:
    global _skip_finalization
    _say_starting(command, options)
    sdk = _sdk(command, options)
    kind = "watch" if command == "resume" else command  # resume is watch from a ref
    if options.backend not in sdk.BACKENDS[kind]:
        raise CommandError(
            f"--backend {options.backend} is not supported here: {sdk.BACKENDS_WHY[kind]}"
        )
    if options.backend == "trio":
        try:
            import_module("trio")
        except ImportError:
            raise CommandError(
                '--backend trio needs trio: pip install "rxtasks[trio]"'
                ' (from a checkout: pip install ".[trio]")'
            ) from None
    _configure_logging(options.verbose, sdk.NOISY_LOGGERS)
    _skip_finalization = kind in sdk.SKIP_FINALIZATION

    import anyio
    from rich.console import Console

    # demo: the view is the output. watch: the view is progress (stderr); stdout gets
    # the tool's result, for pipes.
    console = Console(stderr=kind == "watch")
    progress = WatchProgress()
    entry = (
        partial(sdk.watch, options, console, progress)
        if kind == "watch"
        else partial(getattr(sdk, kind), options, console)
    )
    try:
        code: int = anyio.run(_noting_interrupts, entry, progress, backend=options.backend)
    except BaseException as exc:
        # trio raises Ctrl-C inside an exception group; asyncio raises it bare, or an
        # error raised while the cancellation it caused unwound (its context).
        if _interrupted(exc, progress):
            said = "stopped" if command == "serve" else "interrupted"
            _error(command, f"{said}{progress.said_on_interrupt()}")
            return EXIT_INTERRUPTED
        if not isinstance(exc, Exception):
            raise
        message = sdk.explain(exc, options)
        if message is None:
            if options.verbose:
                raise
            # No traceback for anything a server does: one line, and how to see more.
            leaf = next(leaves(exc))
            message = f"unexpected error: {type(leaf).__name__}: {leaf} (--verbose shows more)"
        _error(command, message)
        return EXIT_USAGE
    return code


def _interrupted(error: BaseException, progress: WatchProgress) -> bool:
    """Whether Ctrl-C is behind ``error``: in it, in its groups, or in their contexts.

    On asyncio Ctrl-C cancels the main task, and an error raised while that cancellation
    unwinds (a stream closed under a session) can take its place: `_noting_interrupts`
    notes the cancellation in ``progress`` first.
    """
    if progress.interrupted:
        return True
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt):
            return True
        todo.extend(leaf for leaf in leaves(current) if leaf is not current)
        todo.extend(e for e in (current.__context__, current.__cause__) if e is not None)
    return False


async def _noting_interrupts(entry: Callable[[], Awaitable[int]], progress: WatchProgress) -> int:
    """Run a command's coroutine; note in ``progress`` if the main task was cancelled."""
    try:
        return await entry()
    finally:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # trio: Ctrl-C arrives as KeyboardInterrupt itself
            task = None
        if task is not None and task.cancelling():
            progress.interrupted = True


def _say_starting(command: str, options: Options) -> None:
    """On a terminal, say at once what the first seconds (importing an SDK) are spent on.

    The live table draws over this line once it starts; into a pipe nothing is written.
    """
    if isinstance(options, ServeOptions) or options.plain:
        return
    stream = sys.stdout if command == "demo" else sys.stderr
    if stream.isatty():
        doing = "starting an MCP server in this process" if command == "demo" else "connecting"
        stream.write(f"rxtasks {command}: {doing}…\r")
        stream.flush()


def _configure_logging(verbose: bool, noisy: Sequence[str]) -> None:
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    # The SDKs and servers log harmless noise (a traceback for the tool that fails on
    # purpose, closed SSE streams), some of it through the root logger or handlers of
    # their own; rxtasks' own warnings (a cancel that failed) still show.
    logging.getLogger().setLevel(logging.CRITICAL)
    for name in noisy:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    logging.getLogger("rxtasks").setLevel(logging.WARNING)
