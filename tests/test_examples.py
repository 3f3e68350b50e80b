"""The runnable examples print what their .out files (and the README) say they print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _sdk_marks(example: Path) -> list[pytest.MarkDecorator]:
    # Examples named *sdk1* / *sdk2* need that MCP SDK's environment (see noxfile.py).
    return [
        mark
        for sdk, mark in (("sdk1", pytest.mark.mcp1), ("sdk2", pytest.mark.mcp2))
        if sdk in example.name
    ]


EXAMPLES = [
    pytest.param(example, id=example.stem, marks=_sdk_marks(example))
    for example in sorted((ROOT / "examples").glob("*.py"))
]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_output(example: Path) -> None:
    """Each example runs and prints exactly its recorded output."""
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == example.with_suffix(".out").read_text()


@pytest.mark.parametrize(
    "name",
    [
        "quickstart",
        "core_sdk1",
        "extension_sdk2",
        "resume_sdk2",
        "call_tool_sdk1",
        "call_tool_sdk2",
    ],
)
def test_readme_shows_the_examples_and_their_output(name: str) -> None:
    """The README's examples are the files in examples/, with their recorded output."""
    readme = (ROOT / "README.md").read_text()
    example = ROOT / "examples" / f"{name}.py"
    code = example.read_text().split('"""', 2)[2].lstrip("\n")
    assert f"```python\n{code}```" in readme
    assert f"```text\n{example.with_suffix('.out').read_text()}```" in readme
