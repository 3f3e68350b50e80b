"""MkDocs hooks for the documentation site (mkdocs.yml names this file under `hooks`).

- The commands page shows each command's ``--help`` as the installed rxtasks prints it:
  a ``<!-- rxtasks-help: ARGS -->`` line becomes a text block of
  ``python -m rxtasks ARGS --help`` at build time, so the page cannot drift from the code.
- Marble diagrams in the docstrings (inline code such as ``w---w---i---w-c|``) get the
  class ``marble``, which keeps each on one line (stylesheets/extra.css): a browser may
  otherwise break a line after any ``-`` and scramble the timeline.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from typing import Any

HELP_MARKER = re.compile(r"^<!-- rxtasks-help:(?P<args>[^>]*)-->$", re.MULTILINE)
INLINE_CODE = re.compile(r"<code>(?P<text>[^<]*)</code>")
# Ticks, dashes for time, ``|`` for completion, ``#`` for an error, as in reactivex's
# marble syntax; a marble is one with a run of dashes after an item, or an end mark.
# Command-line options (``--timeout-ms``) are not marbles.
MARBLE_CHARS = re.compile(r"[\w|#()^-]+")
MARBLE_TIME = re.compile(r"[^-]-{2,}|\|")
HELP_COLUMNS = "80"  # a line of help fits the content column without scrolling


def command_help(args: list[str]) -> str:
    """Return ``python -m rxtasks ARGS --help`` as it prints it, at a fixed width."""
    env = {**os.environ, "COLUMNS": HELP_COLUMNS, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-m", "rxtasks", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`python -m rxtasks {' '.join(args)} --help` exited {done.returncode}:\n{done.stderr}"
        )
    return done.stdout.rstrip()


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace each ``<!-- rxtasks-help: ARGS -->`` line with that command's help."""

    def help_block(match: re.Match[str]) -> str:
        args = match["args"].split()
        shown = " ".join(["rxtasks", *args, "--help"])
        return f"```text\n$ {shown}\n{command_help(args)}\n```"

    return HELP_MARKER.sub(help_block, markdown)


def is_marble(text: str) -> bool:
    """Tell whether inline code is a marble diagram (``w--c|``), not an option or a name."""
    plain = html.unescape(text)
    return MARBLE_CHARS.fullmatch(plain) is not None and MARBLE_TIME.search(plain) is not None


def on_page_content(content: str, **_: Any) -> str:
    """Mark the marble diagrams of a rendered page, so that they never wrap."""

    def mark(match: re.Match[str]) -> str:
        if is_marble(match["text"]):
            return f'<code class="marble">{match["text"]}</code>'
        return match[0]

    return INLINE_CODE.sub(mark, content)
