"""A pipeline's deploy stage, through real workers: the run's artifact becomes a release and goes live."""

import json

import pytest

from sqlalchemy import select

from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment, Project, Run
from app.runs import service
from app.runs.events import make_event
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
