"""A pipeline's deploy stage, through real workers: the run's artifact becomes a release and goes live.

The stage stays running while its deployment progresses, and ends as the deployment does.
"""

import json
from datetime import timedelta

import pytest

from sqlalchemy import select, update

from app.deployments import deploy_stages
from app.deployments import requests as deployment_requests
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment, Project, Run, Stage, User
from app.models._columns import utcnow
from app.runs import service
from app.runs.events import make_event
from app.runs.logs import read_lines
from tests.conftest import wait_for
from tests.deployments.servers import measure_split

pytestmark = pytest.mark.usefixtures("workers_stopped_after")

PIPELINE = '''import { Pipeline, publishArtifact } from "deno-ci";

export default new Pipeline()
  .stage("build", async () => {
    await Deno.writeTextFile("RELEASE", "built-by-run");
    await Deno.writeTextFile("STATUS", "STATUS_CODE");
    publishArtifact("site", ["RELEASE", "STATUS"]);
  })
  .deploy("ship", {
    environment: "production",
    release: { artifact: "site" },
    target: TARGET,
    strategy: { type: "canary", steps: [{ setWeight: 50 }, { analysis: { type: "http", requests: 10 } }] },
  });
'''

# A canary that waits at 50 % until promoted, and a stage that may run only after the deployment succeeded.
PAUSED_PIPELINE = '''import { Pipeline, publishArtifact } from "deno-ci";

export default new Pipeline()
  .stage("build", async () => {
    await Deno.writeTextFile("RELEASE", "RELEASE_TEXT");
    await Deno.writeTextFile("STATUS", "200");
    publishArtifact("site", ["RELEASE", "STATUS"]);
  })
  .deploy("ship", {
    environment: "production",
    release: { artifact: "site" },
    target: TARGET,
    strategy: { type: "canary", steps: [{ setWeight: 50 }, { pause: {} }] },
  })
  .stage("smoke", { needs: ["ship"] }, () => {});
'''


def start_run(make_repo, text: str) -> Run:
    repo = make_repo({"deno-pipeline.ts": text})
    project = db.session.scalar(select(Project).where(Project.name == "site"))
    if project is None:
        project = Project(name="site", clone_url=str(repo))
        db.session.add(project)
    project.clone_url = str(repo)
    db.session.commit()
    return service.create_run(project, trigger="api", event=make_event("manual", branch="main"))


def wait_until_ended(run: Run, timeout: float = 180) -> Run:
    def ended():
        db.session.expire_all()
        found = db.session.get(Run, run.id)
        return found if found.status not in ("queued", "running") else None

    return wait_for(ended, timeout)


def stage_named(run: Run, name: str) -> Stage:
    db.session.expire_all()
    return db.session.scalar(select(Stage).where(Stage.run_id == run.id, Stage.name == name))


def stage_log(stage: Stage) -> list[str]:
    return [line["text"] for line in read_lines(db.engine, stage.run_id, stage_id=stage.id)]


def deployment_with_status(run: Run, status: DeploymentStatus) -> Deployment:
    def found():
        db.session.expire_all()
        deployment = db.session.scalar(select(Deployment).where(Deployment.run_id == run.id))
        return deployment if deployment and deployment.status == status else None

    return wait_for(found, 180)


def paused_canary(make_repo, nginx_target) -> tuple[Run, Deployment]:
    """Put run 1 live, then start run 2 and return it with its deployment once the canary pauses at 50 %."""
    pipeline = PAUSED_PIPELINE.replace("TARGET", json.dumps(nginx_target))
    first = wait_until_ended(start_run(make_repo, pipeline.replace("RELEASE_TEXT", "first")))
    assert first.status == "success", [(stage.name, stage.error) for stage in first.stages]
    second = start_run(make_repo, pipeline.replace("RELEASE_TEXT", "second"))
    return second, deployment_with_status(second, DeploymentStatus.PAUSED)



def run_pipeline(make_repo, target: dict, status: int = 200, artifact: str = "site") -> Run:
    text = PIPELINE.replace("TARGET", json.dumps(target)).replace("STATUS_CODE", str(status))
    text = text.replace('release: { artifact: "site" }', f'release: {{ artifact: "{artifact}" }}')
    repo = make_repo({"deno-pipeline.ts": text})
    project = db.session.scalar(select(Project).where(Project.name == "site"))
    if project is None:
        project = Project(name="site", clone_url=str(repo))
        db.session.add(project)
        db.session.commit()
    project.clone_url = str(repo)
    db.session.commit()
    run = service.create_run(project, trigger="api", event=make_event("manual", branch="main"))

    def ended():
        db.session.expire_all()
        found = db.session.get(Run, run.id)
        return found if found.status not in ("queued", "running") else None

    return wait_for(ended, 180)


def deployment_of(run: Run) -> Deployment:
    def ended():
        db.session.expire_all()
        found = db.session.scalar(select(Deployment).where(Deployment.run_id == run.id))
        return found if found and found.status in ("succeeded", "rolled_back", "failed") else None

    return wait_for(ended, 120)


def test_deploy_stage_puts_run_artifact_live(workers, make_repo, nginx_target):
    first = run_pipeline(make_repo, nginx_target)

    assert first.status == "success", first.status_reason
    assert {stage.name: stage.status for stage in first.stages} == {"build": "success", "ship": "success"}
    deployment = deployment_of(first)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.status_reason
    assert deployment.release.name == "run-1"
    assert deployment.release.run_id == first.id
    assert deployment.requested_by == first.author
    assert measure_split(nginx_target["public_url"], 50) == {"built-by-run": 50}


def test_bad_release_from_second_run_rolls_back(workers, make_repo, nginx_target):
    first = run_pipeline(make_repo, nginx_target)
    deployment_of(first)

    second = run_pipeline(make_repo, nginx_target, status=500)

    rolled_back = deployment_of(second)
    assert rolled_back.status == DeploymentStatus.ROLLED_BACK
    assert rolled_back.stable_release.name == "run-1"
    assert "Analysis failed" in rolled_back.status_reason
    assert measure_split(nginx_target["public_url"], 100) == {"built-by-run": 100}
    assert db.session.get(Deployment, rolled_back.id).split == {"run-1": 100}


def test_deploy_stage_with_missing_artifact_fails(workers, make_repo, nginx_target):
    run = run_pipeline(make_repo, nginx_target, artifact="nothing")

    ship = next(stage for stage in run.stages if stage.name == "ship")
    assert run.status == "failed", (run.status_reason, ship.error)
    assert ship.status == "failed"
    assert "run #1 has no artifact 'nothing'" in ship.error
    assert db.session.scalar(select(Deployment)) is None


def test_rolled_back_canary_fails_stage(workers, make_repo, nginx_target):
    deployment_of(run_pipeline(make_repo, nginx_target))

    second = run_pipeline(make_repo, nginx_target, status=500)

    ship = stage_named(second, "ship")
    assert second.status == "failed"
    assert ship.status == "failed"
    assert ship.error.startswith("Deployment #2 to 'production' rolled back: Analysis failed")
    assert ship.waiting_for is None
    assert ship.deployment_id == deployment_of(second).id
    log = stage_log(ship)
    assert any("Deployment #2: preparing" in line for line in log)
    assert any("Step 1: 50 % to 'run-2'" in line for line in log)
    assert any(line.startswith("Stage failed: Deployment #2 to 'production' rolled back") for line in log)


def test_stage_deploys_until_promoted(workers, make_repo, nginx_target):
    run, deployment = paused_canary(make_repo, nginx_target)

    ship, smoke = stage_named(run, "ship"), stage_named(run, "smoke")
    assert db.session.get(Run, run.id).status == "running"
    assert ship.status == "running"
    assert ship.waiting_for == "deployment"
    assert ship.worker is None
    assert ship.deployment_id == deployment.id
    assert smoke.status == "queued"
    assert smoke.enqueued_at is None
    assert any("Deployment #2: paused: Paused at 50 % until promoted" in line for line in stage_log(ship))
    assert measure_split(nginx_target["public_url"], 100) == {"first": 50, "second": 50}

    promoter = User(username="bob")
    db.session.add(promoter)
    db.session.commit()
    deployment_requests.request_promote(deployment, promoter)
    ended = wait_until_ended(run)

    ship, smoke = stage_named(run, "ship"), stage_named(run, "smoke")
    deployment = db.session.get(Deployment, deployment.id, populate_existing=True)
    assert ended.status == "success"
    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert ship.status == "success"
    assert ship.finished_at >= deployment.finished_at
    assert smoke.status == "success"
    assert smoke.started_at >= deployment.finished_at
    assert any("Deployment #2: succeeded: Release 'run-2' is live" in line for line in stage_log(ship))


def test_waiting_deploy_stage_survives_reaper(workers, make_repo, nginx_target):
    run, deployment = paused_canary(make_repo, nginx_target)
    ship = stage_named(run, "ship")
    # Older than DENO_CI_STAGE_HEARTBEAT_TIMEOUT (6 s in the tests): a stage with a worker would count as lost.
    db.session.execute(update(Stage).where(Stage.id == ship.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()

    reaped = service.reap_lost_stages()
    finished = deploy_stages.finish_stages_of_ended_deployments()

    ship = stage_named(run, "ship")
    assert reaped == 0
    assert finished == 0
    assert ship.status == "running"
    assert ship.attempt == 1


def test_cancel_during_pause_rolls_back(workers, make_repo, nginx_target):
    run, deployment = paused_canary(make_repo, nginx_target)

    assert service.cancel_run(run.id, "cancelled by alice")

    rolled_back = deployment_with_status(run, DeploymentStatus.ROLLED_BACK)
    assert rolled_back.status_reason == "Run cancelled: cancelled by alice"
    ship = wait_for(lambda: (stage := stage_named(run, "ship")).status != "running" and stage, 30)
    assert ship.status == "cancelled"
    assert ship.error.startswith("The run was cancelled. Deployment #2 to 'production' rolled back")
    assert stage_named(run, "smoke").status == "cancelled"
    assert db.session.get(Run, run.id).status == "cancelled"
    assert measure_split(nginx_target["public_url"], 100) == {"first": 100}
    assert any("Run cancelled: aborting deployment #2" in line for line in stage_log(ship))


def test_deploy_approval_gate_keeps_stage_waiting(workers, make_repo, nginx_target):
    pipeline = PAUSED_PIPELINE.replace("TARGET", json.dumps(nginx_target)).replace("RELEASE_TEXT", "gated")
    pipeline = pipeline.replace('strategy: { type: "canary", steps: [{ setWeight: 50 }, { pause: {} }] },',
                                'approvals: { beforeDeploy: { role: "developer", count: 1 } },')
    run = start_run(make_repo, pipeline)

    deployment_with_status(run, DeploymentStatus.WAITING_FOR_APPROVAL)

    def waiting_line():
        return next((line for line in stage_log(stage_named(run, "ship")) if "waiting for approval" in line), None)

    line = wait_for(waiting_line, 30)
    ship = stage_named(run, "ship")
    assert "Waiting for 1 approval(s) to deploy" in line
    assert "this stage waits until then" in line
    assert ship.status == "running"
    assert ship.waiting_for == "deployment"
    assert db.session.get(Run, run.id).status == "running"
    assert stage_named(run, "smoke").enqueued_at is None

    assert service.cancel_run(run.id)
    ship = wait_for(lambda: (stage := stage_named(run, "ship")).status != "running" and stage, 60)
    assert ship.status == "cancelled"
    assert deployment_with_status(run, DeploymentStatus.FAILED).status_reason.endswith("before it started")


def test_pipeline_target_cannot_set_commands(workers, make_repo, nginx_target, tmp_path):
    marker = tmp_path / "ran-on-the-platform"
    target = {**nginx_target, "activate_command": f"touch {marker}"}
    run = run_pipeline(make_repo, target)

    ship = next(stage for stage in run.stages if stage.name == "ship")
    assert run.status == "failed", (run.status_reason, ship.error)
    assert "sets 'activate_command'" in ship.error
    assert "only a project admin may set them" in ship.error
    assert not marker.exists()


def test_pipeline_target_cannot_name_nginx_binary(workers, make_repo, nginx_target, tmp_path):
    marker = tmp_path / "ran-on-the-platform"
    target = {**nginx_target, "nginx": {**nginx_target["nginx"], "binary": "/bin/sh",
                                        "config": f"/usr/bin/touch {marker}"}}
    run = run_pipeline(make_repo, target)

    ship = next(stage for stage in run.stages if stage.name == "ship")
    assert run.status == "failed", (run.status_reason, ship.error)
    assert "sets 'binary'" in ship.error
    assert not marker.exists()
