"""Development sessions: `nox` runs lint, types and both test environments.

Sessions use the interpreter nox runs with (any Python >= 3.11), uv when it is installed,
and the dependency groups in pyproject.toml. Reinstall-free reruns: `nox -R -s tests`.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "types", "tests", "tests_mcp1"]

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


@nox.session
def types(session: nox.Session) -> None:
    """mypy and pyright, both strict, over src and tests (with mcp 1.x for its test module)."""
    install_groups(session, "types")
    session.run("mypy", *session.posargs)
    session.run("pyright", *session.posargs, env={"PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"})


# mcp 1.x and mcp 2.x cannot share one environment: the core `tests` session has no mcp at
# all (which proves the core never needs it), and `tests_mcp1` adds the legacy SDK.
@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on asyncio, uvloop and trio, without mcp installed."""
    install_groups(session, "test")
    session.run("pytest", "-m", "not soak and not mcp1", *session.posargs)


@nox.session
def tests_mcp1(session: nox.Session) -> None:
    """The tests that need the legacy SDK, mcp>=1.23,<2."""
    install_groups(session, "mcp1")
    session.run("pytest", "-m", "mcp1 and not soak", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Long fault-injection soak tests (not run by default)."""
    install_groups(session, "mcp1")
    # A soak test longer than the 60 s default sets @pytest.mark.timeout; exit code 5 means
    # no soak test exists yet.
    session.run("pytest", "-m", "soak", *session.posargs, success_codes=[0, 5])
