"""Commands that work on a directory with no platform running: `validate` and `run`."""

import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path

import click

from app.cli import main
from app.runs.events import EVENT_KINDS
from config import data_dir

DEFAULT_PIPELINE = "deno-pipeline.ts"


@main.command()
@click.argument("file", type=click.Path(dir_okay=False), default=DEFAULT_PIPELINE)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of a table.")
def validate(file: str, as_json: bool) -> None:
    """Check a pipeline file and print its plan, or its errors as FILE:LINE:COL: message."""
    from app.local_scratch import use_own_temp_folder
    from app.local_tree import keep_out_of_git
    from app.pipelines import runner

    use_own_temp_folder()
    keep_out_of_git(data_dir())
    path = Path(file).resolve()
    if not path.is_file():
        raise click.ClickException(f"{file}: file not found. Pass the path of a deno-pipeline.ts.")
    try:
        plan = runner.plan_and_check(path.parent, path.name, None, data_dir() / "plan-caches" / "validate")
    except runner.PipelineError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(plan, indent=2))
        return
    for stage in plan["stages"]:
        needs = ", ".join(stage["needs"]) or "-"
        click.echo(f"{stage['name']}  (needs: {needs}; line {stage['line']})")
    count = len(plan["stages"])
    click.echo(f"{path.name}: {count} {'stage' if count == 1 else 'stages'}, valid")


@main.command("run")
@click.argument("directory", type=click.Path(file_okay=False, exists=True), default=".")
@click.option("--event", "kind", type=click.Choice(EVENT_KINDS), default="push", show_default=True,
              help="Event the run pretends to come from; stage filters are evaluated against it.")
@click.option("--branch", help="Branch of the event (default: the directory's current git branch).")
@click.option("--tag", help="Tag of the event, for tag pushes.")
@click.option("--pipeline", "pipeline_path", default=DEFAULT_PIPELINE, show_default=True,
              help="Path of the pipeline file inside the directory.")
@click.option("--executor", type=click.Choice(["bubblewrap", "docker", "unsandboxed"]), default="bubblewrap",
              show_default=True, help="Where stages run; unsandboxed is for local development only.")
def run_command(directory: str, kind: str, branch: str | None, tag: str | None, pipeline_path: str, executor: str) -> None:
    """Run a repository's pipeline on this machine in the platform's sandbox; exit 0 only if it succeeds."""
    folder = Path(directory).resolve()
    pipeline_path = _checked_pipeline_path(folder, pipeline_path)
    if kind == "tag" and not tag:
        raise click.BadParameter("a tag event needs the tag's name: pass --tag NAME.", param_hint="--event")
    if tag and branch:
        # The event would carry the tag alone, and branch filters would not see the branch.
        raise click.BadParameter("a tag push has no branch: pass --tag or --branch, not both.", param_hint="--branch")
    _check_ref_names(branch, tag)
    try:
        _run_directory(folder, kind, branch, tag, pipeline_path, executor)
    except (KeyboardInterrupt, _Cancelled) as error:
        click.echo("Cancelled before any stage started.", err=True)
        # As shells report a command that a signal ended: 130 after Ctrl-C, 143 after SIGTERM.
        sys.exit(128 + (error.signal_number if isinstance(error, _Cancelled) else signal.SIGINT))


def _checked_pipeline_path(folder: Path, pipeline_path: str) -> str:
    """Return `pipeline_path` as a plain path relative to `folder`; stop with a message unless it names a file there."""
    path = (folder / pipeline_path).resolve()
    named_inside = os.path.normpath(folder / pipeline_path).startswith(f"{folder}/")
    if pipeline_path.strip() and named_inside and not path.is_relative_to(folder):
        # A symbolic link on the path leads out of the directory, where the sandbox would not see the file.
        raise click.ClickException(f"{pipeline_path} in {folder} leads to {path}, outside the directory, through a "
                                   "symbolic link. Put the pipeline file inside the directory.")
    if not pipeline_path.strip() or not path.is_relative_to(folder):
        raise click.BadParameter(f"{pipeline_path!r} is not a path inside {folder}. Give the pipeline file's path "
                                 "relative to the directory.", param_hint="--pipeline")
    if not path.is_file() or pipeline_path.endswith("/"):
        raise click.BadParameter(f"{pipeline_path!r} is not a file in {folder}.", param_hint="--pipeline")
    return path.relative_to(folder).as_posix()


def _check_ref_names(branch: str | None, tag: str | None) -> None:
    """Stop with a message when --branch or --tag is a name Git would not accept, as the platform rejects it."""
    if branch is None and tag is None:
        # Most runs: the import below would only delay the start.
        return
    from app.forges.fields import ref_name_problem

    for option, name in (("--branch", branch), ("--tag", tag)):
        if name is not None and (problem := ref_name_problem(name)):
            raise click.BadParameter(f"{name!r} is not a valid Git ref name: {problem}. Pass a name that "
                                     "`git check-ref-format --branch` accepts.", param_hint=option)


class _Cancelled(Exception):
    """Ctrl-C or SIGTERM came before any stage started."""

    def __init__(self, signals: list[int]) -> None:
        super().__init__()
        self.signal_number = signals[0] if signals else signal.SIGINT


def _run_directory(folder: Path, kind: str, branch: str | None, tag: str | None, pipeline_path: str,
                   executor: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.local_scratch import use_own_temp_folder

    use_own_temp_folder()
    if executor == "bubblewrap":
        threading.Thread(target=_make_launchers_ahead, name="launchers ahead", daemon=True).start()
    from app import waiting
    from app.local_tree import keep_out_of_git, last_plan, plan_deno_dir, read_directory, start_reading

    # Before git lists the directory's files, which the data folder may be among.
    keep_out_of_git(data_dir())
    reading = start_reading(folder, branch)
    # Imported while git works, and before the signal handler below needs it: an import inside
    # a signal handler could wait on the import that the handler interrupted.
    from app.pipelines import plan_reuse, runner

    cancelled = threading.Event()
    local_run = None

    signals: list[int] = []

    def cancel(number: int, _frame) -> None:
        # Ctrl-C reaches the whole process group, stages and planner included; SIGTERM only this process.
        signals.append(number)
        cancelled.set()
        if local_run is not None:
            local_run.cancel()
        runner.stop_host_runners()

    previous = {number: signal.signal(number, cancel) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="start") as pool:
            # The first stage's sandbox is what a run waits for longest, so its workspace copy and
            # the imports that start it begin next, while git and then Deno read the directory.
            making = pool.submit(_local_run, folder, pipeline_path, executor)
            try:
                event, tree_id = read_directory(folder, kind, branch, tag, pipeline_path, reading)
                if executor == "unsandboxed":
                    # Its stages see the whole machine, so files outside the tree may change the
                    # plan and the type check.
                    tree_id = None
                _explain_missing_branch(event)
                if cancelled.is_set():
                    raise _Cancelled(signals)
                # The SDK's digest is read before Deno plans: its many small reads would otherwise
                # wait between each for the imports of the other thread.
                toolchain = runner.toolchain_id()
                key = plan_reuse.plan_key(pipeline_path, event) if tree_id is not None else None
                last, last_key = last_plan(data_dir(), folder, toolchain)
                reused_plan = last if key is not None and key == last_key else None
                if reused_plan is None:
                    # Computed once, after Deno has read the files, and used for both the check and the plan.
                    still_tree = functools.cache(functools.partial(_still_tree, folder, kind, branch, tag, pipeline_path,
                                                                   tree_id))
                    planning = pool.submit(runner.plan_and_check, folder, pipeline_path, event,
                                           plan_deno_dir(data_dir(), folder), source_key=tree_id,
                                           still_source=still_tree)
                local_run = waiting.result(making)
                if cancelled.is_set():
                    local_run.cancel()
                local_run.begin(event, last)
                plan = reused_plan if reused_plan is not None else _planned(planning, cancelled, signals)
                if cancelled.is_set():
                    raise _Cancelled(signals)
                remembering = None
                if reused_plan is None:
                    remembering = pool.submit(_remember_plan, folder, plan, key, toolchain, still_tree)
                status, reports = local_run.execute(plan)
                if remembering is not None:
                    remembering.result()
            finally:
                if local_run is None and making.exception() is None:
                    local_run = making.result()
                if local_run is not None:
                    local_run.cleanup()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    from app.local_run import format_summary

    try:
        click.echo(format_summary(status, reports))
    except BrokenPipeError:
        # The reader of the output went away, and the exit status below still reports how the run ended.
        pass
    if signals and status == "cancelled":
        sys.exit(128 + signals[0])
    sys.exit(0 if status == "success" else 1)


def _still_tree(folder: Path, kind: str, branch: str | None, tag: str | None, pipeline_path: str,
                tree_id: str | None) -> bool:
    """Return whether git, reading `folder` again, finds exactly the tree `tree_id` there.

    An edit saved while Deno planned or type-checked may be what Deno read, so a plan or
    a passed check is kept under the tree's id only when git finds the same tree afterwards.
    """
    from app.local_tree import read_directory

    return tree_id is not None and read_directory(folder, kind, branch, tag, pipeline_path)[1] == tree_id


def _remember_plan(folder: Path, plan: dict, key: str | None, toolchain: str, still_tree) -> None:
    """Keep the plan for the next run, under its reuse key only if the directory is still the tree it was planned from.

    Runs beside the stages, since `still_tree` may have git read the directory again.
    """
    from app.local_tree import remember_plan

    remember_plan(data_dir(), folder, plan, key if key is not None and still_tree() else None, toolchain)


def _planned(planning, cancelled: threading.Event, signals: list[int]) -> dict:
    """Return the plan that `planning` made; print its problems and exit 1 when the pipeline is invalid."""
    from app import waiting
    from app.pipelines import runner

    try:
        return waiting.result(planning)
    except runner.PipelineError as error:
        if cancelled.is_set():
            raise _Cancelled(signals) from None
        for problem in error.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


def _explain_missing_branch(event: dict) -> None:
    """Say why branch filters select nothing when neither the directory nor the options gave a branch or tag."""
    if event.get("branch") is None and event.get("tag") is None:
        click.echo("No branch: the directory is not on a git branch and --branch was not given, so stages "
                   "with a branch filter are not selected. Pass --branch NAME to pick one.", err=True)


def _make_launchers_ahead() -> None:
    """Start making the sandboxes' bwrap launchers while the run is set up (see `make_launchers_ahead`)."""
    from jobs.executor.bubblewrap import make_launchers_ahead

    make_launchers_ahead()


def _local_run(folder: Path, pipeline_path: str, executor: str):
    """Make the run of `folder`, which starts copying it; an executor that cannot run here ends the command."""
    from app.local_run import LocalRun
    from jobs.executor import ExecutorError

    try:
        return LocalRun(folder, pipeline_path, executor, data_dir())
    except ExecutorError as error:
        raise click.ClickException(str(error)) from None
