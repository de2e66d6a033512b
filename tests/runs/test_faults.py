"""Cancelled runs, killed workers and restarted servers in the middle of a run."""

import os
import signal
import threading

import psutil
import pytest

from app.extensions import db
from app.models import Run, Stage
from app.projects import add_project
from app.runs import service
from app.runs.events import make_event
from app.runs.logs import read_lines
from tests.conftest import wait_for

TICKING_PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();

pipeline.stage("tick", async () => {
  for (let index = 1; index <= %(count)d; index++) {
    console.log(`tick ${index}`);
    await new Promise((resolve) => setTimeout(resolve, %(interval)d));
  }
});

export default pipeline;
'''

SLEEPING_PIPELINE = '''import { Pipeline, run } from "deno-ci";

const pipeline = new Pipeline();

pipeline.stage("sleep", async () => {
  console.log("going to sleep");
  await run("trap '' TERM; setsid sleep 301.5 & sleep 301.5");
});

pipeline.stage("after", async () => {
  console.log("never printed");
});

export default pipeline;
'''


def start_run(make_repo, pipeline: str, name: str = "faults") -> int:
    repo = make_repo({"deno-pipeline.ts": pipeline})
    project = add_project(name, str(repo))
    return service.create_run(project, trigger="cli", event=make_event("push", branch="main")).id


def run_status(run_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Run, run_id).status


def stage_of(run_id: int, name: str) -> Stage | None:
    db.session.expire_all()
    return db.session.scalar(db.select(Stage).where(Stage.run_id == run_id, Stage.name == name))


def texts(run_id: int) -> list[str]:
    return [line["text"] for line in read_lines(db.engine, run_id, 0, 100_000)]


# A duration nobody else on the machine uses, so that other suites' sleepers are not counted.
SLEEPER = ["sleep", "301.5"]


def test_cancel_kills_stage_tree(workers, make_repo):
    run_id = start_run(make_repo, SLEEPING_PIPELINE)
    wait_for(lambda: "going to sleep" in texts(run_id), timeout=120)
    wait_for(lambda: [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == SLEEPER])

    assert service.cancel_run(run_id, "test cancel")

    wait_for(lambda: stage_of(run_id, "sleep").status == "cancelled", timeout=30)
    assert run_status(run_id) == "cancelled"
    assert stage_of(run_id, "after").status == "cancelled"
    sleepers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == SLEEPER]
    assert sleepers == []
    assert "never printed" not in texts(run_id)


BUSY_PLANNING_PIPELINE = '''import { Pipeline } from "deno-ci";

while (true) {}
export default new Pipeline().stage("never", () => {});
'''


def _planners_of(project_id: int) -> list:
    folder = f"plan-workspaces/{project_id}/"
    return [process for process in psutil.process_iter(["cmdline"])
            if "plan" in (process.info["cmdline"] or []) and any(folder in part for part in process.info["cmdline"])]


def test_cancel_while_planned_stops_planning(workers, make_repo):
    run_id = start_run(make_repo, BUSY_PLANNING_PIPELINE, name="busy-planning")
    project_id = db.session.get(Run, run_id).project_id
    wait_for(lambda: _planners_of(project_id), timeout=120)

    assert service.cancel_run(run_id, "test cancel")

    # The planning timeout is 60 s: ending within 30 s shows the cancel stopped it.
    wait_for(lambda: not _planners_of(project_id), timeout=30)
    assert run_status(run_id) == "cancelled"
    assert not [text for text in texts(run_id) if "pipeline error" in text]


def test_cancel_of_ended_run_changes_nothing(workers, make_repo):
    run_id = start_run(make_repo, TICKING_PIPELINE % {"count": 1, "interval": 1})
    wait_for(lambda: run_status(run_id) == "success", timeout=120)
    assert not service.cancel_run(run_id)
    assert run_status(run_id) == "success"


def test_killed_worker_stage_is_retried_elsewhere(workers, make_repo, db_app):
    from app import scheduler

    stop = threading.Event()
    duties = threading.Thread(target=lambda: _scheduler(db_app, stop), daemon=True)
    duties.start()
    try:
        run_id = start_run(make_repo, TICKING_PIPELINE % {"count": 40, "interval": 100})
        wait_for(lambda: "tick 3" in texts(run_id), timeout=120)
        stage = stage_of(run_id, "tick")
        worker_pid = int(stage.worker.rsplit(":", 1)[1])
        os.kill(worker_pid, signal.SIGKILL)
        workers.start(2)

        wait_for(lambda: run_status(run_id) in ("success", "failed", "error"), timeout=120)
    finally:
        stop.set()
        duties.join(5)
    stage = stage_of(run_id, "tick")
    assert run_status(run_id) == "success"
    assert stage.attempt == 2
    lines = read_lines(db.engine, run_id, 0, 100_000)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert any("stopped responding" in line["text"] for line in lines)
    assert sum(1 for line in lines if line["text"] == "tick 40") == 1


def test_lost_attempt_stops_early(workers, make_repo):
    run_id = start_run(make_repo, TICKING_PIPELINE % {"count": 100, "interval": 100}, "lost")
    wait_for(lambda: "tick 3" in texts(run_id), timeout=120)
    stage = db.session.get(Stage, stage_of(run_id, "tick").id, with_for_update=True)
    # What the scheduler does when the worker's heartbeats stop, here while the worker still runs it.
    service.requeue_stage(stage, "worker taken for lost during attempt 1; retrying on another worker")

    wait_for(lambda: run_status(run_id) in ("success", "failed", "error"), timeout=120)
    stage = stage_of(run_id, "tick")
    assert run_status(run_id) == "success"
    assert stage.attempt == 2
    lines = texts(run_id)
    # The first attempt stopped at its next heartbeat (2 s) instead of ticking on beside the second.
    assert lines.count("tick 100") == 1
    assert lines.count("tick 60") == 1


def _stage_running_attempt_two(make_repo, name: str) -> Stage:
    run_id = start_run(make_repo, TICKING_PIPELINE % {"count": 1, "interval": 1}, name)
    run = db.session.get(Run, run_id)
    service.add_stages(run, {"stages": [{"name": "tick", "index": 0, "needs": [], "options": {}, "denoFlags": []}]},
                       {"tick": []})
    stage = stage_of(run_id, "tick")
    stage.status, stage.attempt = "running", 2
    db.session.commit()
    return stage


def test_output_of_replaced_attempt_is_dropped(db_app, make_repo):
    from jobs.log_sink import LogSink

    stage = _stage_running_attempt_two(make_repo, "dropped")
    for attempt in (1, 2):
        sink = LogSink(db.engine, None, stage.run_id, stage.id, attempt=attempt)
        sink.write("stdout", f"from attempt {attempt}")
        sink.close()

    assert texts(stage.run_id) == ["from attempt 2"]


def test_finish_of_replaced_attempt_is_ignored(db_app, make_repo):
    stage = _stage_running_attempt_two(make_repo, "replaced")
    run_id = stage.run_id

    assert service.finish_stage(stage.id, "success", 0, None, attempt=1) is False
    assert stage_of(run_id, "tick").status == "running"
    assert service.finish_stage(stage.id, "success", 0, None, attempt=2) is True
    assert stage_of(run_id, "tick").status == "success"


# Planning imports the pipeline with no permissions, so reading a variable throws there and
# only there: the plan takes about 3 s, and the stage runs at once.
SLOW_PLAN_PIPELINE = '''import { Pipeline } from "deno-ci";

let planning = false;
try {
  Deno.env.get("DENO_CI_STAGE");
} catch {
  planning = true;
}
const end = Date.now() + (planning ? 3000 : 0);
while (Date.now() < end) { /* busy */ }

export default new Pipeline().stage("after planning", () => console.log("planned and ran"));
'''


def test_killed_planning_worker_run_is_planned_again(workers, make_repo, db_app):
    from app.queue import redis_connection

    stop = threading.Event()
    duties = threading.Thread(target=lambda: _scheduler(db_app, stop), daemon=True)
    duties.start()
    try:
        run_id = start_run(make_repo, SLOW_PLAN_PIPELINE)
        planner = wait_for(lambda: redis_connection().get(service.planning_key(run_id)), timeout=60)
        os.kill(int(planner.decode().rsplit(":", 1)[1]), signal.SIGKILL)
        workers.start(2)

        wait_for(lambda: run_status(run_id) in ("success", "failed", "error"), timeout=120)
    finally:
        stop.set()
        duties.join(5)
    assert run_status(run_id) == "success"
    lines = texts(run_id)
    assert any("stopped responding; planning it again" in line for line in lines)
    assert lines.count("planned and ran") == 1


def _scheduler(app, stop):
    from app import scheduler

    with app.app_context():
        scheduler.run_forever(stop)


@pytest.mark.parametrize("server", ["postgres", "redis"])
def test_server_restart_loses_no_log_line(workers, make_repo, services, server):
    count = 60
    run_id = start_run(make_repo, TICKING_PIPELINE % {"count": count, "interval": 50}, name=f"restart-{server}")
    wait_for(lambda: "tick 5" in texts(run_id) or _ended(run_id), timeout=120)
    assert "tick 5" in texts(run_id), texts(run_id)

    getattr(services, server).restart() if server == "postgres" else _restart_redis(services)

    wait_for(lambda: _ended(run_id), timeout=120, interval=0.5)
    ticks = [text for text in texts(run_id) if text.startswith("tick ")]
    assert ticks == [f"tick {index}" for index in range(1, count + 1)]
    assert run_status(run_id) == "success"


def _restart_redis(services):
    services.redis.stop()
    services.redis.start()


def _ended(run_id: int) -> bool:
    try:
        return run_status(run_id) in ("success", "failed", "error", "cancelled")
    except Exception:  # noqa: BLE001  (the database may still be coming back)
        db.session.rollback()
        return False


JSON_IMPORT_PIPELINE = '''import { Pipeline } from "deno-ci";
import leaked from "%(path)s" with { type: "json" };

const pipeline = new Pipeline();
pipeline.stage("leak " + JSON.stringify(leaked), () => {});
export default pipeline;
'''


def test_planning_cannot_read_host_files(workers, make_repo, tmp_path):
    host_file = tmp_path / "host-secret.json"
    host_file.write_text('{"password": "hunter2-host-only"}')
    run_id = start_run(make_repo, JSON_IMPORT_PIPELINE % {"path": host_file}, name="json-leak")

    wait_for(lambda: _ended(run_id), timeout=120, interval=0.5)

    assert run_status(run_id) == "error"
    assert not any("hunter2-host-only" in text for text in texts(run_id))
    db.session.expire_all()
    assert "hunter2-host-only" not in (db.session.get(Run, run_id).status_reason or "")
