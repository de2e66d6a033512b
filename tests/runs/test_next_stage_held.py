"""The next stage's sandbox, made while the stage before it runs, and run by the same worker."""

import psutil

from app.extensions import db
from app.models import Project, Run
from app.projects import add_project
from app.runs.events import make_event
from app.runs.service import create_run
from app.status import TERMINAL_RUN
from jobs.next_stage import PREPARED_WHILE_PREVIOUS_RAN
from tests.conftest import wait_for
from tests.runs.test_run_end_to_end import log_text, stage_statuses

CHAIN = '''import { Pipeline } from "deno-ci";

console.log("pipeline imported");

export default new Pipeline()
  .stage("chain build", () => console.log("built"))
  .stage("chain test", () => console.log("tested"))
  .stage("chain ship", () => console.log("shipped"));
'''

BROKEN_CHAIN = '''import { Pipeline } from "deno-ci";

console.log("pipeline imported");

export default new Pipeline()
  .stage("broken build", () => { throw new Error("build broke"); })
  .stage("never tested", () => console.log("tested"));
'''


def _finished_run(project: Project) -> Run:
    run = create_run(project, trigger="api", event=make_event("push", branch="main"))
    wait_for(lambda: db.session.get(Run, run.id, populate_existing=True).status in TERMINAL_RUN, timeout=120)
    return db.session.get(Run, run.id)


def _project(make_repo, pipeline: str) -> Project:
    return add_project("chain", str(make_repo({"deno-pipeline.ts": pipeline})))


def _runners_of(stage: str) -> list:
    return [process for process in psutil.process_iter(["cmdline"])
            if "--stage" in (arguments := process.info["cmdline"] or [])[:-1]
            and arguments[arguments.index("--stage") + 1] == stage]


def test_chain_runs_on_one_worker(workers, make_repo):
    project = _project(make_repo, CHAIN)
    # The first run saves the first dependency cache, so a sandbox held with none is dropped.
    assert _finished_run(project).status == "success"
    run = _finished_run(project)

    assert run.status == "success"
    stages = {stage.name: stage for stage in run.stages}
    assert {stage.worker for stage in stages.values()} == {stages["chain build"].worker}
    assert {stage.attempt for stage in stages.values()} == {1}
    text = log_text(run.id)
    assert text.count(PREPARED_WHILE_PREVIOUS_RAN) == 2
    for line in ("built", "tested", "shipped"):
        assert text.count(line) == 1
    # Each stage imports the pipeline once, when it runs.
    assert text.count("pipeline imported") == 3


def test_held_stage_after_failure_runs_nothing(workers, make_repo):
    run = _finished_run(_project(make_repo, BROKEN_CHAIN))

    assert run.status == "failed"
    assert stage_statuses(run) == {"broken build": "failed", "never tested": "skipped"}
    text = log_text(run.id)
    assert "build broke" in text
    assert "tested" not in text
    assert text.count("pipeline imported") == 1
    # The held sandbox of the skipped stage is gone.
    wait_for(lambda: not _runners_of("never tested"), timeout=10)


KEYED_CHAIN = '''import { Pipeline } from "deno-ci";

const keyed = { cache: { key: ["keyed.txt"] } };

export default new Pipeline()
  .stage("keyed first", keyed, () => console.log("first"))
  .stage("plain second", () => console.log("second"))
  .stage("keyed third", keyed, () => console.log("third"));
'''


def test_stage_with_own_cache_key_is_held(workers, make_repo):
    project = add_project("keyed", str(make_repo({"deno-pipeline.ts": KEYED_CHAIN, "keyed.txt": "one\n"})))
    # The first run saves the archive of the stages' own key, then the project's default one,
    # so the newest archive is not the one the third stage needs.
    assert _finished_run(project).status == "success"
    run = _finished_run(project)

    assert run.status == "success"
    assert log_text(run.id).count(PREPARED_WHILE_PREVIOUS_RAN) == 2


def test_busy_workers_take_queued_stages(db_app):
    from app.queue import run_queue
    from jobs.tasks import _others_wait

    assert not _others_wait()
    # A job that no worker has taken yet: the workers are busy, so none chains stages.
    run_queue().enqueue("jobs.tasks.run_stage", 999_999, 1, job_id="stage-999999-1")

    assert _others_wait()
    run_queue().empty()
