"""``python -m rxtasks``: the command line (see `rxtasks.cli`)."""

import sys

try:
    from .cli import run
except KeyboardInterrupt:  # Ctrl-C while the command line itself is still importing
    print("rxtasks: interrupted", file=sys.stderr)  # noqa: T201
    sys.exit(130)

run()
