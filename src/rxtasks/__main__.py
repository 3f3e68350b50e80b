"""``python -m rxtasks``: the command line (see `rxtasks.cli`)."""

from .cli import run

run()
