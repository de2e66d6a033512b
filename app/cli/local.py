"""Commands that work on a directory with no platform running: `validate` and `run`."""

import json
import signal
import sys
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
    from app.pipelines import runner

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
    click.echo(f"{path.name}: {len(plan['stages'])} stages, valid")


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
    try:
        _run_directory(Path(directory), kind, branch, tag, pipeline_path, executor)
    except KeyboardInterrupt:
        # Ctrl-C while planning; the handler of LocalRun takes over once the stages may start.
        click.echo("Cancelled before any stage started.", err=True)
        sys.exit(130)


def _run_directory(directory: Path, kind: str, branch: str | None, tag: str | None, pipeline_path: str,
                   executor: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.local_tree import last_plan, plan_deno_dir, read_directory, remember_plan, start_reading

    folder = directory.resolve()
    reading = start_reading(folder, branch)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="start") as pool:
        # The first stage's sandbox is what a run waits for longest, so its workspace copy and
        # the imports that start it begin next, while git and then Deno read the directory.
        making = pool.submit(_local_run, folder, pipeline_path, executor)
        local_run = None
        try:
            event, tree_id = read_directory(folder, kind, branch, tag, reading)
            from app.pipelines import runner

            # The SDK's digest is read before Deno plans: its many small reads would otherwise
            # wait between each for the imports of the other thread.
            runner.toolchain_id()
            # Planned on every run, unlike on the platform: the local planner is not sandboxed,
            # so the pipeline may import files that the tree id does not cover (ignored ones,
            # or any file on the machine).
            planning = pool.submit(runner.plan_and_check, folder, pipeline_path, event,
                                   plan_deno_dir(data_dir(), folder), source_key=tree_id)
            local_run = making.result()
            local_run.begin(event, last_plan(data_dir(), folder))
            previous = signal.signal(signal.SIGINT, lambda *_: local_run.cancel())
            try:
                try:
                    plan = planning.result()
                except runner.PipelineError as error:
                    for problem in error.problems:
                        click.echo(str(problem), err=True)
                    sys.exit(1)
                remember_plan(data_dir(), folder, plan)
                status, reports = local_run.execute(plan)
            finally:
                signal.signal(signal.SIGINT, previous)
        finally:
            if local_run is None and making.exception() is None:
                local_run = making.result()
            if local_run is not None:
                local_run.cleanup()
    from app.local_run import format_summary

    click.echo(format_summary(status, reports))
    sys.exit(0 if status == "success" else 1)


def _local_run(folder: Path, pipeline_path: str, executor: str):
    """Make the run of `folder`, which starts copying it; an executor that cannot run here ends the command."""
    from app.local_run import LocalRun
    from jobs.executor import ExecutorError

    try:
        return LocalRun(folder, pipeline_path, executor, data_dir())
    except ExecutorError as error:
        raise click.ClickException(str(error)) from None
