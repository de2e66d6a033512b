"""Deploy stages of pull requests from forks wait for a maintainer to approve the run.

Webhook deliveries are replayed against the app as tests/forges does, and real
workers run the pipeline of a local repository against a real nginx.
"""

import json

import pytest
from sqlalchemy import select

from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment, Run, Stage
from app.runs import service
from app.runs.logs import read_lines
from tests.conftest import git, wait_for
from tests.forges.conftest import forge_project, own_payload, post_hook  # noqa: F401  (forge_project is a fixture)

pytestmark = pytest.mark.usefixtures("workers_stopped_after")

PIPELINE = '''import { Pipeline, publishArtifact } from "deno-ci";

export default new Pipeline()
  .stage("build", async () => {
    await Deno.writeTextFile("RELEASE", "from-pull-request");
    await Deno.writeTextFile("STATUS", "200");
    publishArtifact("site", ["RELEASE", "STATUS"]);
  })
  .deploy("ship", { environment: "preview", release: { artifact: "site" }, target: TARGET });
'''


def pull_request_run(client, forge_project, make_repo, target: dict, *, fork: bool) -> Run:  # noqa: F811
    """Deliver a GitHub pull request event whose head commit contains the pipeline; return its run."""
    repo = make_repo({"deno-pipeline.ts": PIPELINE.replace("TARGET", json.dumps(target))})
    # GitHub serves a fork's commits under the base repository's pull request ref.
    git(repo, "update-ref", "refs/pull/7/head", "HEAD")
    project = forge_project("github")
    project.clone_url = str(repo)
    db.session.commit()
    payload = own_payload("github", "pull_request_fork")
    payload["pull_request"]["head"]["sha"] = git(repo, "rev-parse", "HEAD")
    if not fork:
        payload["pull_request"]["head"]["repo"]["full_name"] = "acme/web"
    response = post_hook(client, "github", "web", payload, "pull_request")
    assert response.status_code == 202, response.json
    return db.session.get(Run, response.json["run_id"])


def stage_named(run: Run, name: str) -> Stage:
    db.session.expire_all()
    return db.session.scalar(select(Stage).where(Stage.run_id == run.id, Stage.name == name))


def ended(run: Run) -> Run:
    def check():
        db.session.expire_all()
        found = db.session.get(Run, run.id)
        return found if found.status not in ("queued", "running") else None

    return wait_for(check, 180)


def held_for_approval(run: Run) -> Stage:
    def check():
        stage = stage_named(run, "ship")
        assert db.session.get(Run, run.id).status in ("queued", "running"), db.session.get(Run, run.id).status_reason
        return stage if stage is not None and stage.waiting_for == "approval" else None

    return wait_for(check, 180)


def test_fork_deploys_only_after_approval(client, forge_project, make_repo, nginx_target, workers):  # noqa: F811
    run = pull_request_run(client, forge_project, make_repo, nginx_target, fork=True)

    ship = held_for_approval(run)
    assert stage_named(run, "build").status == "success"
    assert ship.status == "queued"
    assert ship.enqueued_at is None
    assert db.session.get(Run, run.id).status == "running"
    assert db.session.scalar(select(Deployment)) is None
    log = [line["text"] for line in read_lines(db.engine, run.id, stage_id=ship.id)]
    assert any(line.startswith("Waiting for approval: this run comes from a fork") for line in log)

    response = client.post(f"/api/v1/runs/{run.id}/approve")
    assert response.status_code == 200

    finished = ended(run)
    assert finished.status == "success", [(stage.name, stage.error) for stage in finished.stages]
    assert stage_named(run, "ship").status == "success"
    deployment = db.session.scalar(select(Deployment).where(Deployment.run_id == run.id))
    assert deployment.status == DeploymentStatus.SUCCEEDED


def test_cancelled_fork_run_cancels_held_stage(client, forge_project, make_repo, nginx_target, workers):  # noqa: F811
    run = pull_request_run(client, forge_project, make_repo, nginx_target, fork=True)
    held_for_approval(run)

    assert service.cancel_run(run.id, "closed")

    ship = stage_named(run, "ship")
    assert ship.status == "cancelled"
    assert ship.waiting_for is None
    assert db.session.scalar(select(Deployment)) is None


def test_same_repository_pull_request_deploys(client, forge_project, make_repo, nginx_target, workers):  # noqa: F811
    run = pull_request_run(client, forge_project, make_repo, nginx_target, fork=False)

    finished = ended(run)

    assert finished.approval_required is False
    assert finished.status == "success", [(stage.name, stage.error) for stage in finished.stages]
    assert stage_named(run, "ship").waiting_for is None
    deployment = db.session.scalar(select(Deployment).where(Deployment.run_id == run.id))
    assert deployment.status == DeploymentStatus.SUCCEEDED
