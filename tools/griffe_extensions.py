"""griffe extensions for the API reference (mkdocs.yml lists them under `extensions`).

- `NamespaceSubpackages`: ``rxtasks._core`` and ``rxtasks._poll`` are folders without an
  ``__init__.py`` inside a regular package. Python imports them (as namespace packages),
  but griffe, which reads the source for mkdocstrings, skips them on purpose, so every
  public name that ``rxtasks/__init__.py`` re-exports from them (``poll``,
  ``PollPolicy``, the errors...) would be an alias it cannot resolve. This extension
  reads those folders' modules after the package is loaded. Once each of those folders
  has an ``__init__.py``, it finds nothing to do and can be dropped.
- `ExampleSections`: the docstrings head their doctest examples ``Example:``, which
  Google style (and Sphinx's napoleon) reads as an examples section, but griffe reads as
  a plain admonition: the ``>>>`` lines would render as nested quotes, run together.
  This extension renames the heading ``Examples:``, which griffe renders as code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class NamespaceSubpackages(griffe.Extension):
    """Visit the modules of a package's subfolders that have no ``__init__.py``."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **_: Any) -> None:
        """Add each such folder as a module, and its ``.py`` files as its submodules."""
        filepath = pkg.filepath
        if not isinstance(filepath, Path) or filepath.name != "__init__.py":
            return
        root = filepath.parent
        folders = sorted(
            folder
            for folder in root.rglob("*")
            if folder.is_dir()
            and folder.name != "__pycache__"
            and not (folder / "__init__.py").exists()
            and any(folder.glob("*.py"))
        )
        for folder in folders:
            parent = pkg
            for part in folder.relative_to(root).parent.parts:
                member = parent.members.get(part)
                if not isinstance(member, griffe.Module):
                    break  # inside a folder that griffe does not know: not importable
                parent = member
            else:
                self._add(folder, parent, loader)

    @staticmethod
    def _add(folder: Path, parent: griffe.Module, loader: griffe.GriffeLoader) -> None:
        package = griffe.Module(folder.name, filepath=folder, parent=parent)
        parent.set_member(folder.name, package)
        for path in sorted(folder.glob("*.py")):
            module = griffe.visit(
                path.stem,
                path,
                path.read_text(encoding="utf-8"),
                parent=package,
                extensions=loader.extensions,
                docstring_parser=loader.docstring_parser,
                docstring_options=loader.docstring_options,
                lines_collection=loader.lines_collection,
                modules_collection=loader.modules_collection,
            )
            package.set_member(path.stem, module)


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
