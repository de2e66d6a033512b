"""The first stage's sandbox, made while the run is planned, through real workers."""

from pathlib import Path

from app.extensions import db
from app.models import Project, Run
from app.projects import add_project
from app.runs.events import make_event
from app.runs.service import create_run
from app.status import TERMINAL_RUN
from jobs.stage_execution import PREPARED_DURING_PLANNING
from tests.conftest import git, wait_for
from tests.runs.test_run_end_to_end import log_text, stage_statuses

HELD_NOTICE = PREPARED_DURING_PLANNING

PIPELINE = '''import { Pipeline } from "deno-ci";

console.log("pipeline imported");

export default new Pipeline()
  .stage("main only", { branches: ["main"] }, () => console.log("ran main only"))
  .stage("everywhere", { needs: [] }, () => console.log("ran everywhere"));
'''


def _project(make_repo) -> Project:
    repo = make_repo({"deno-pipeline.ts": PIPELINE})
    git(repo, "branch", "feature")
    return add_project("held", str(repo))


def _finished_run(project: Project, branch: str) -> Run:
    run = create_run(project, trigger="api", event=make_event("push", branch=branch))
    wait_for(lambda: db.session.get(Run, run.id, populate_existing=True).status in TERMINAL_RUN, timeout=120)
    return db.session.get(Run, run.id)


def test_second_run_of_commit_uses_held_sandbox(workers, make_repo):
    project = _project(make_repo)
    first = _finished_run(project, "main")
    second = _finished_run(project, "main")

    assert first.status == "success"
    assert HELD_NOTICE not in log_text(first.id)
    assert second.status == "success"
    text = log_text(second.id)
    assert HELD_NOTICE in text
    assert text.count("ran main only") == 1
    assert text.count("ran everywhere") == 1


def test_new_commit_of_branch_uses_held_sandbox(workers, make_repo):
    project = _project(make_repo)
    first = _finished_run(project, "main")
    repo = Path(project.clone_url)
    (repo / "main.ts").write_text("export const changed = true;\n")
    git(repo, "add", "main.ts")
    git(repo, "commit", "-m", "Change a file beside the pipeline")
    second = _finished_run(project, "main")

    assert second.commit_sha != first.commit_sha
    assert second.status == "success"
    text = log_text(second.id)
    assert HELD_NOTICE in text
    assert text.count("ran main only") == 1


def test_held_stage_dropped_when_plan_differs(workers, make_repo):
    project = _project(make_repo)
    main_run = _finished_run(project, "main")
    other = _finished_run(project, "feature")

    assert main_run.status == "success"
    assert other.status == "success"
    assert stage_statuses(other) == {"main only": "skipped", "everywhere": "success"}
    text = log_text(other.id)
    # The sandbox held for "main only" was dropped before any of its code ran.
    assert "ran main only" not in text
    assert text.count("pipeline imported") == 1
    assert HELD_NOTICE not in text
