"""The `deno-ci` program's entry point, kept apart from `app.cli` so that Ctrl-C during its imports ends quietly."""

import sys


def main() -> None:
    """Import the command line and run it; Ctrl-C during the import exits with 130, as it does later."""
    try:
        from app.cli import entry
    except KeyboardInterrupt:
        # The imports take about 40 ms, and a traceback of them is of no use to the user.
        sys.exit(130)
    entry()
