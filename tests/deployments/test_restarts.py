"""A platform killed in the middle of a canary: the next job reads the target and continues or rolls back."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

from app.deployments import engine
from app.deployments import requests as deployment_requests
from app.deployments.adapters.registry import create_adapter
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment, User
from app.models._columns import utcnow
from tests.conftest import ROOT, wait_for
from tests.deployments.servers import measure_split

PAUSED_CANARY = {"strategy": {"type": "canary", "steps": [{"setWeight": 30}, {"pause": {"duration": 600}}]}}


def reload(deployment_id: int) -> Deployment:
    return db.session.get(Deployment, deployment_id, populate_existing=True)


def kill_job_while_paused(deployment_id: int) -> None:
    """Drive the deployment in a separate process, kill it with SIGKILL once paused, and expire its lease."""
    process = subprocess.Popen([sys.executable, "-c", f"from jobs.deployments import drive_deployment; "
                                                      f"drive_deployment({deployment_id})"],
                               cwd=ROOT, env=os.environ.copy())
    try:
        wait_for(lambda: reload(deployment_id).status == DeploymentStatus.PAUSED, 30)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    db.session.execute(db.update(Deployment).where(Deployment.id == deployment_id).values(
        heartbeat_at=utcnow() - timedelta(seconds=engine.LEASE_SECONDS + 1)))
    db.session.commit()


def test_killed_job_is_requeued_and_continues(target, deploy, drive):
    drive(deploy(target, "v1").id)
    deployment = deploy(target, "v2", PAUSED_CANARY)
    kill_job_while_paused(deployment.id)
    assert reload(deployment.id).worker is not None

    assert engine.reap_stalled_deployments() == 1
    deployment_requests.request_promote(reload(deployment.id), _user())
    finished = drive(deployment.id)

    assert finished.status == DeploymentStatus.SUCCEEDED
    messages = [event.message for event in finished.events.filter_by(kind="status")]
    assert "Resumed: the target serves {'v1': 70, 'v2': 30}, as recorded" in messages
    assert measure_split(target["public_url"], 100) == {"v2": 100}


def test_unrecorded_split_after_kill_is_rolled_back(target, deploy, drive):
    drive(deploy(target, "v1").id)
    deployment = deploy(target, "v2", PAUSED_CANARY)
    kill_job_while_paused(deployment.id)
    # What a job killed between applying a split and recording it leaves behind.
    create_adapter(target).set_traffic("v2", 70, "v1")

    finished = drive(deployment.id)

    assert finished.status == DeploymentStatus.ROLLED_BACK
    assert finished.status_reason.startswith("After an interruption the target served {'v1': 30, 'v2': 70}")
    assert finished.split == {"v1": 100}
    assert measure_split(target["public_url"], 1000) == {"v1": 1000}


def test_second_job_for_a_driven_deployment_exits(nginx_target, deploy, drive_in_thread):
    engine.drive(deploy(nginx_target, "v1").id)
    deployment = deploy(nginx_target, "v2", PAUSED_CANARY)
    drive_in_thread(deployment.id)
    wait_for(lambda: reload(deployment.id).status == DeploymentStatus.PAUSED, 20)
    events_before = reload(deployment.id).events.count()

    engine.drive(deployment.id)

    assert reload(deployment.id).events.count() == events_before
    deployment_requests.request_abort(reload(deployment.id), "Aborted by the test")
    wait_for(lambda: reload(deployment.id).status == DeploymentStatus.ROLLED_BACK, 10)


def _user() -> User:
    user = User(username="operator", is_admin=True)
    db.session.add(user)
    db.session.commit()
    return user
