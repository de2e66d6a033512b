"""A run of a commit and event that an earlier run planned takes that plan, through real workers."""

import re

from app.extensions import db
from app.models import Project, Run
from app.projects import add_project
from app.runs.events import make_event
from app.runs.service import create_run
from app.status import TERMINAL_RUN
from jobs.stage_execution import PREPARED_DURING_PLANNING
from tests.conftest import git, wait_for
from tests.runs.test_run_end_to_end import log_text

# Each planning gives the stage a new value, so equal values show that a plan was taken, not made.
PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("build", { env: { PLANNED: crypto.randomUUID() } }, () => console.log("built"));
'''
TAKEN = re.compile(r"Plan taken from run #(\d+)")


def _project(make_repo) -> Project:
    repo = make_repo({"deno-pipeline.ts": PIPELINE})
    git(repo, "branch", "feature")
    return add_project("reuse", str(repo))


def _finished_run(project: Project, kind: str = "push", branch: str = "main") -> Run:
    run = create_run(project, trigger="api", event=make_event(kind, branch=branch))
    wait_for(lambda: db.session.get(Run, run.id, populate_existing=True).status in TERMINAL_RUN, timeout=120)
    return db.session.get(Run, run.id)


def _planned(run: Run) -> str:
    return run.plan["stages"][0]["options"]["env"]["PLANNED"]


def test_second_trigger_takes_earlier_plan(workers, make_repo):
    project = _project(make_repo)
    first = _finished_run(project)
    second = _finished_run(project)

    assert first.status == second.status == "success"
    assert _planned(second) == _planned(first)
    assert second.plan_key == first.plan_key is not None
    assert not TAKEN.search(log_text(first.id))
    text = log_text(second.id)
    assert TAKEN.search(text).group(1) == str(first.number)
    # The taken plan's first stage still ran, in a sandbox made while the plan was recorded.
    assert text.count("built") == 1
    assert PREPARED_DURING_PLANNING in text


def test_new_event_and_schedule_replanned(workers, make_repo):
    project = _project(make_repo)
    main = _finished_run(project)
    feature = _finished_run(project, branch="feature")
    scheduled = [_finished_run(project, kind="schedule") for _ in range(2)]

    assert len({_planned(run) for run in (main, feature, *scheduled)}) == 4
    assert all(run.status == "success" for run in (main, feature, *scheduled))
    assert feature.plan_key not in (None, main.plan_key)
    assert [run.plan_key for run in scheduled] == [None, None]
    assert not any(TAKEN.search(log_text(run.id)) for run in (feature, *scheduled))


def _pipeline_printing(origin: str) -> str:
    return f'''import {{ Pipeline }} from "deno-ci";

export default new Pipeline()
  .stage("a", async () => {{
    console.log("a started");
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }})
  .stage("b", () => console.log("b from {origin}"));
'''


def test_later_stages_keep_planned_pipeline_file(workers, make_repo):
    repo = make_repo({"deno-pipeline.ts": _pipeline_printing("the planned file"),
                      "other-pipeline.ts": _pipeline_printing("the other file")})
    project = add_project("path-change", str(repo))
    run = create_run(project, trigger="api", event=make_event("push", branch="main"))
    wait_for(lambda: "a started" in log_text(run.id), timeout=120)
    project = db.session.get(Project, project.id)
    project.pipeline_path = "other-pipeline.ts"
    db.session.commit()

    wait_for(lambda: db.session.get(Run, run.id, populate_existing=True).status in TERMINAL_RUN, timeout=120)
    run = db.session.get(Run, run.id)
    text = log_text(run.id)
    assert run.status == "success"
    assert run.pipeline_path == "deno-pipeline.ts"
    assert "b from the planned file" in text
    assert "b from the other file" not in text
