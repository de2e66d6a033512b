"""Commands that work on a directory with no platform running: `validate` and `run`."""

import json
import signal
import sys
from pathlib import Path

import click

from app.cli import main
from app.pipelines import runner
from app.runs.events import EVENT_KINDS
from config import data_dir

DEFAULT_PIPELINE = "deno-pipeline.ts"


@main.command()
@click.argument("file", type=click.Path(dir_okay=False), default=DEFAULT_PIPELINE)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of a table.")
def validate(file: str, as_json: bool) -> None:
    """Check a pipeline file and print its plan, or its errors as FILE:LINE:COL: message."""
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

    from app.local_tree import last_plan, plan_deno_dir, read_directory, remember_plan

    folder = directory.resolve()
    event, tree_id = read_directory(folder, kind, branch, tag)
    previous_plan = last_plan(data_dir(), folder, tree_id)
    # Planned on every run, unlike on the platform: the local planner is not sandboxed, so
    # the pipeline may import files that the tree id does not cover (ignored ones, or any
    # file on the machine).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan") as pool:
        # Deno plans while this process imports what runs the stages. The SDK's digest is
        # read first: its many small reads would otherwise wait for the import between each.
        runner.toolchain_id()
        planning = pool.submit(runner.plan_and_check, folder, pipeline_path, event, plan_deno_dir(data_dir(), folder),
                               source_key=tree_id)
        from app.local_run import LocalRun, format_summary

        local_run = LocalRun(folder, pipeline_path, event, executor, data_dir(), previous_plan=previous_plan)
        previous = signal.signal(signal.SIGINT, lambda *_: local_run.cancel())
        try:
            try:
                plan = planning.result()
            except runner.PipelineError as error:
                for problem in error.problems:
                    click.echo(str(problem), err=True)
                sys.exit(1)
            remember_plan(data_dir(), folder, tree_id, plan)
            status, reports = local_run.execute(plan)
        finally:
            signal.signal(signal.SIGINT, previous)
            local_run.cleanup()
    click.echo(format_summary(status, reports))
    sys.exit(0 if status == "success" else 1)
