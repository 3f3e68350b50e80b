"""Development sessions: `nox` runs lint, types and both test environments.

Sessions use the interpreter nox runs with (any Python >= 3.11), uv when it is installed,
and the dependency groups in pyproject.toml. Reinstall-free reruns: `nox -R -s tests`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True
nox.options.sessions = [
    "lint",
    "types",
    "types_mcp2",
    "tests",
    "tests_mcp1",
    "tests_mcp2",
    "soak",
    "notebooks",
]

PYPROJECT = nox.project.load_toml("pyproject.toml")
LINT_PATHS = [
    p for p in ("src", "tests", "noxfile.py", "benchmarks", "examples") if Path(p).exists()
]


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install the project and the named dependency groups from pyproject.toml."""
    requirements = [r for g in groups for r in nox.project.dependency_groups(PYPROJECT, g)]
    session.install(".", *requirements)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


def sdk_files(skip: str) -> list[str]:
    """The Python files to type-check in one SDK's environment: all but the other SDK's."""
    return sorted(
        str(path)
        for folder in ("src", "tests")
        for path in Path(folder).rglob("*.py")
        if skip not in path.name
    )


@nox.session
def types(session: nox.Session) -> None:
    """mypy and pyright, both strict, over src and tests, in the mcp 1.x environment."""
    install_groups(session, "mcp1", "checkers")
    files = sdk_files(skip="sdk2")
    session.run("mypy", *files, *session.posargs)
    session.run("pyright", *files, env={"PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"})


@nox.session
def types_mcp2(session: nox.Session) -> None:
    """mypy and pyright, both strict, over src and tests, in the mcp 2.x environment."""
    install_groups(session, "mcp2", "checkers")
    files = sdk_files(skip="sdk1")
    session.run("mypy", *files, *session.posargs)
    session.run("pyright", *files, env={"PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"})


# mcp 1.x and mcp 2.x cannot share one environment: the core `tests` session has no mcp at
# all (which proves the core never needs it); `tests_mcp1` and `tests_mcp2` add one SDK each.
@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on asyncio, uvloop and trio, without mcp installed; the core's coverage.

    Branch coverage of the core (everything but rxtasks.mcp and rxtasks.cli, which the SDK
    sessions test) must stay at or above the floor in pyproject.toml. Then the asyncio
    tests run once more in asyncio's debug mode, which reports coroutines never awaited,
    callbacks that block the loop and resources left open.
    """
    install_groups(session, "test")
    marks = "not soak and not mcp1 and not mcp2"
    session.run("coverage", "run", "-m", "pytest", "-m", marks, *session.posargs)
    session.run("coverage", "report")
    session.run(
        "pytest",
        "-m",
        marks,
        "-k",
        "asyncio and not uvloop",
        env={"PYTHONASYNCIODEBUG": "1"},
    )


@nox.session
def tests_mcp1(session: nox.Session) -> None:
    """The tests that need the legacy SDK, mcp>=1.23,<2."""
    install_groups(session, "mcp1")
    session.run("pytest", "-m", "mcp1 and not soak", *session.posargs)


@nox.session
def tests_mcp2(session: nox.Session) -> None:
    """The tests that need mcp 2.x and fastmcp-tasks (a 2025-11-25 server in a side venv)."""
    install_groups(session, "mcp2")
    # An mcp 2.x client against a 2025-11-25 server: that server is mcp 1.x, which cannot
    # live in this environment, so it gets a venv of its own and runs as a subprocess.
    legacy = Path(session.virtualenv.location).parent / "legacy-mcp1-server"
    python = legacy / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(legacy), external=True)
    session.run(str(python), "-m", "pip", "install", "--quiet", ".", "mcp>=1.23,<2", external=True)
    session.run(
        "pytest",
        "-m",
        "mcp2 and not soak",
        *session.posargs,
        env={"RXTASKS_MCP1_PYTHON": str(python)},
    )


@nox.session
def soak(session: nox.Session) -> None:
    """The fault-injection soak test: 10,000 tasks in virtual time (under a minute)."""
    install_groups(session, "test")
    session.run("pytest", "-m", "soak", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The randomized interleavings and the model equality, 2,000 examples each (`-- N`).

    Not in CI, which runs a bounded number of both.
    """
    install_groups(session, "test")
    examples = session.posargs[0] if session.posargs else "2000"
    session.run(
        "pytest",
        "tests/test_interleavings.py",
        "tests/test_equality.py",
        "--timeout=3600",  # the per-test limit is for the suite; this run is long on purpose
        env={"RXTASKS_STRESS_EXAMPLES": examples},
    )


@nox.session
def notebooks(session: nox.Session) -> None:
    """Run every notebook top to bottom, each in a fresh kernel; fails on any cell's error."""
    session.install(".[mcp]", *nox.project.dependency_groups(PYPROJECT, "notebooks"))
    session.run(
        "pytest",
        "--nbmake",
        "--nbmake-timeout=120",  # per cell; each notebook runs in seconds
        "notebooks/",  # testpaths is tests/
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the SDK's generator; not run by default (`-- --quick`: spot check)."""
    install_groups(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)
