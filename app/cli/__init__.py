"""The `deno-ci` command."""

import logging
import os
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", type=click.Path(file_okay=False), envvar="DENO_CI_DATA", default="var",
              show_default=True, help="Data folder of the platform (database, queue, workspaces, caches).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(data: str, verbose: bool) -> None:
    """Deno CI: self-hosted CI/CD for Deno projects."""
    os.environ["DENO_CI_DATA"] = str(Path(data).resolve())
    # Commands that serve raise this to INFO; local commands keep their output clean.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


from app.cli import accounts, local, platform  # noqa: E402,F401  (registers the commands)
