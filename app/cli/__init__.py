"""The `deno-ci` command."""

import atexit
import faulthandler
import importlib
import io
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click

# The module of each command, imported when the command runs: `deno-ci run` would
# otherwise load the platform's modules before its first stage starts.
COMMAND_MODULES = {
    "serve": "app.cli.platform", "worker": "app.cli.platform", "migrate": "app.cli.platform",
    "project": "app.cli.platform", "trigger": "app.cli.platform", "token": "app.cli.accounts",
    "validate": "app.cli.local", "run": "app.cli.local",
}


# Commands that handle SIGTERM themselves (RQ does for the worker).
OWN_SIGTERM_HANDLING = {"serve", "worker", "run"}

# Commands that start no server and leave no thread running when they return, so their
# process may end without Python's teardown of the imported modules (see `entry`).
QUICK_EXIT = {"run", "validate"}
_quick_exit = False
# Set by Ctrl-C, which click turns into "Aborted!" and status 1 unless a command handles it.
_interrupted = False


class LazyGroup(click.Group):
    """A command group that imports a command's module the first time the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", type=click.Path(file_okay=False), envvar="DENO_CI_DATA", default="var",
              show_default=True, help="Data folder of the platform (database, queue, workspaces, caches).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(ctx: click.Context, data: str, verbose: bool) -> None:
    """Deno CI: self-hosted CI/CD for Deno projects."""
    global _quick_exit
    from config import under_device_tree

    if under_device_tree(Path(data)):
        raise click.BadParameter(f"{data!r} is under /dev, where Deno reads no file without --allow-all, so no "
                                 "stage could read its workspace. Choose a folder elsewhere, for example ./var.",
                                 param_hint="--data")
    workspaces = os.environ.get("DENO_CI_WORKSPACES")
    if workspaces and under_device_tree(Path(workspaces)):
        raise click.ClickException(f"DENO_CI_WORKSPACES is {workspaces!r}, under /dev, where Deno reads no file "
                                   "without --allow-all. Choose a folder elsewhere, such as a tmpfs mounted under /var.")
    os.environ["DENO_CI_DATA"] = str(Path(data).resolve())
    _quick_exit = ctx.invoked_subcommand in QUICK_EXIT
    _dump_stacks_on_sigusr1()
    if ctx.invoked_subcommand not in OWN_SIGTERM_HANDLING:
        # Ended by SIGTERM, a command still cleans up, stopping the embedded servers it started.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Commands that serve raise this to INFO; local commands keep their output clean.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )



def entry() -> None:
    """Run `deno-ci` as a program (the installed command and `python -m app.cli`).

    Python's teardown of the modules a local command imported takes about 13 ms, which
    is a fifth of what a stage of `deno-ci run` may add. So those commands run the exit
    handlers, flush their output and end the process at once.
    """
    signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except SystemExit as end:
        if _interrupted and end.code == 1:
            # Click reports Ctrl-C as "Aborted!" with status 1, but shells expect 130 after Ctrl-C.
            end = SystemExit(128 + signal.SIGINT)
        if _quick_exit:
            _exit_now(end.code)
        raise end from None


def _interrupt(number: int, frame) -> None:
    """Raise KeyboardInterrupt, as Python's own handler does, and remember that Ctrl-C came."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _exit_now(code: object) -> NoReturn:
    """End the process as `sys.exit(code)` would, without tearing the interpreter down."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            # Started with that descriptor closed.
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            # As Python does when the reader of standard output went away (a closed pipe).
            status = status or 120
    os._exit(status)


def _dump_stacks_on_sigusr1() -> None:
    """Make `kill -USR1 PID` print every thread's stack to standard error, to see where a stuck command waits."""
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (io.UnsupportedOperation, ValueError):
        # Standard error is no file (a test's CliRunner): there is nowhere to print to.
        pass


def _exit_on_sigterm(*_) -> None:
    sys.exit(128 + signal.SIGTERM)
