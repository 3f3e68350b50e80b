"""Development sessions: `nox` runs lint, types and both test environments.

Sessions use the interpreter nox runs with (any Python >= 3.11), except `tests`, which runs
on each supported Python (PYTHONS); uv when it is installed; and the dependency groups in
pyproject.toml. Reinstall-free reruns: `nox -R -s tests`.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True
# A session whose Python is missing fails instead of being skipped: CI must not pass
# with the core tests run on fewer interpreters than requires-python promises.
nox.options.error_on_missing_interpreters = True
# Interpreters come from the machine (PATH or pyenv), never downloaded: a download would
# hide a missing one, and CI reaches package registries only.
nox.options.download_python = "never"
nox.options.sessions = [
    "lint",
    "types",
    "types_mcp2",
    "tests",
    "tests_mcp1",
    "tests_mcp2",
    "soak",
    "notebooks",
    "docs",
    "package",
]

# The interpreters the core test session runs on: every minor version in the classifiers.
PYTHONS = ["3.11", "3.12", "3.13"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
LINT_PATHS = [
    p for p in ("src", "tests", "noxfile.py", "benchmarks", "examples", "tools") if Path(p).exists()
]


def expose_pyenv_interpreters(versions: list[str]) -> None:
    """Let nox find pyenv's interpreters of ``versions``, not only the active one.

    With pyenv, ``python3.12`` on PATH is a shim that fails unless 3.12 is an active
    version, so nox would not find it. Its interpreter discovery reads PYENV_VERSION:
    the active versions stay first (``python3`` is unchanged), the newest installed
    patch release of each of ``versions`` follows. Without pyenv this does nothing.
    """
    root = os.environ.get("PYENV_ROOT")
    installed = Path(root, "versions") if root else None
    if installed is None or not installed.is_dir():
        return
    if "PYENV_VERSION" in os.environ:
        active = os.environ["PYENV_VERSION"].split(":")
    else:
        version_file = Path(installed.parent, "version")
        text = version_file.read_text() if version_file.is_file() else ""
        active = [v for v in text.split() if not v.startswith("#")]
    names = [path.name for path in installed.iterdir()]
    newest = []
    for version in versions:
        patches = [n for n in names if re.fullmatch(re.escape(version) + r"\.\d+", n)]
        if patches:
            newest.append(max(patches, key=lambda n: int(n.rsplit(".", 1)[1])))
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*active, *newest]))


expose_pyenv_interpreters(PYTHONS)


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
#
# The core session runs on every supported Python; the SDK sessions, like the others, on
# the interpreter nox runs with. What they test is the adapters' and the commands' dealings
# with the SDKs and their servers, which does not change with the interpreter, while their
# environments are heavy (mcp 2.x with fastmcp-tasks is about 75 packages, plus a second
# venv with an mcp 1.x server) and their suites slow (end-to-end runs against real
# servers). Differences between interpreters (asyncio, typing, the runtime's races) are the
# core's, and `tests` covers them on each.
@nox.session(python=PYTHONS)
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
    """Run every notebook top to bottom, each in a fresh kernel; fails on any cell's error.

    The environment is exactly what the docs tell a user to install, `pip install
    ".[notebooks]"`, and nothing else: nbconvert, which executes them, comes with
    JupyterLab. A runner that brings packages of its own (nbmake brings pytest) would let
    a notebook import something the user does not have. Executed copies go to a temporary
    folder; the notebooks in the repository are not touched.
    """
    session.install(".[notebooks]")
    session.run(
        "jupyter",
        "nbconvert",
        "--to=notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=120",  # per cell; each notebook runs in seconds
        f"--output-dir={session.create_tmp()}",
        *(session.posargs or sorted(str(p) for p in Path("notebooks").glob("*.ipynb"))),
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ (warnings are errors), then check it.

    The check (tools/check_site.py) serves site/ on 127.0.0.1, loads the home page and
    the API reference in headless Chromium (Debian's `chromium`, which must be installed:
    the session fails without it), fails on any console error or broken internal link,
    and saves screenshots as .nox/docs-screenshot*.png.
    """
    install_groups(session, "docs")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir=site",
        # Material's notice about MkDocs 2.0, printed on every build.
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
    screenshot = Path(".nox", "docs-screenshot.png")
    session.run("python", "tools/check_site.py", "site", f"--screenshot={screenshot}")


@nox.session
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, check them, and run the quickstart from the wheel.

    `twine check --strict`; the wheel holds the package and py.typed, and no tests,
    benchmarks or notebooks; a fresh venv with the wheel alone (not the checkout) runs
    examples/quickstart.py, from a folder outside the checkout, and `python -m rxtasks
    --help`.
    """
    session.install(*nox.project.dependency_groups(PYPROJECT, "package"))
    dist = Path("dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer=uv", f"--outdir={dist}")
    built = sorted(str(path) for path in dist.iterdir())
    session.run("twine", "check", "--strict", *built)
    [wheel] = dist.glob("*.whl")
    check_wheel(session, wheel)

    # Outside the checkout, so that nothing but the installed wheel can be imported.
    tmp = Path(session.create_tmp()).resolve()
    venv, run_dir = tmp / "wheel-venv", tmp / "run"
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    session.run("uv", "venv", "--quiet", f"--python={sys.executable}", str(venv))
    python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
    # examples/quickstart.py needs no extra: the core's reactivex and anyio.
    session.run("uv", "pip", "install", "--quiet", f"--python={python}", str(wheel.resolve()))
    shutil.copy("examples/quickstart.py", run_dir)
    expected = Path("examples/quickstart.out").read_text()
    with session.chdir(run_dir):
        imported = session.run(
            python,
            "-c",
            "import importlib.metadata as m, rxtasks;"
            "assert rxtasks.__version__ == m.version('rxtasks'), 'version mismatch';"
            "print(rxtasks.__file__)",
            external=True,
            silent=True,
        )
        if str(venv) not in str(imported):
            session.error(f"rxtasks was imported from {imported}, not from the wheel")
        output = session.run(python, "quickstart.py", external=True, silent=True)
        if output != expected:
            session.error(f"quickstart.py printed:\n{output}\nexpected:\n{expected}")
        session.run(python, "-m", "rxtasks", "--help", external=True)


def check_wheel(session: nox.Session, wheel: Path) -> None:
    """Fail unless the wheel holds rxtasks with py.typed and its license, and nothing else."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    name, version = wheel.name.split("-")[:2]
    dist_info = f"{name}-{version}.dist-info/"
    outside = [n for n in names if not n.startswith(("rxtasks/", dist_info))]
    unwanted = [
        n
        for n in names
        if {"tests", "benchmarks", "notebooks"} & set(n.split("/")[:-1]) or n.endswith(".ipynb")
    ]
    if "rxtasks/py.typed" not in names:
        session.error(f"{wheel.name} has no rxtasks/py.typed")
    if f"{dist_info}licenses/LICENSE" not in names:
        session.error(f"{wheel.name} has no license file")
    if outside or unwanted:
        session.error(f"{wheel.name} holds files it should not: {outside + unwanted}")
    session.log(f"{wheel.name}: {len(names)} files: rxtasks with py.typed, and the license")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the SDK's generator; not run by default (`-- --quick`: spot check)."""
    install_groups(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)
