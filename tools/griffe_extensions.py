"""griffe extensions for the API reference (mkdocs.yml lists them under `extensions`).

- `ExampleSections`: the docstrings head their doctest examples ``Example:``, which
  Google style (and Sphinx's napoleon) reads as an examples section, but griffe reads as
  a plain admonition: the ``>>>`` lines would render as nested quotes, run together.
  This extension renames the heading ``Examples:``, which griffe renders as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Read each docstring's ``Example:`` section as Google style's examples section."""

    def on_package(self, *, pkg: griffe.Module, **_: Any) -> None:
        """The package's own docstring."""
        _rename(pkg)

    def on_object(self, *, obj: griffe.Object, **_: Any) -> None:
        """Every other object's (modules, classes, functions, attributes)."""
        _rename(obj)


def _rename(obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is not None:
        docstring.value = EXAMPLE_HEADING.sub(r"\g<indent>Examples:", docstring.value)
