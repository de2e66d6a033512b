"""The deployment engine against real nginx and HAProxy: strategies, analysis, aborts and bad input."""

import time

import pytest

from app.deployments import requests as deployment_requests
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment, DeploymentEvent, Environment
from tests.conftest import wait_for
from tests.deployments.servers import JsonServer, measure_split

CANARY = {"strategy": {"type": "canary", "steps": [
    {"setWeight": 20},
    {"analysis": {"type": "http", "requests": 20, "maxErrorRate": 0.0}},
    {"setWeight": 50},
    {"pause": {"duration": 0.2}},
]}}


def reload(deployment: Deployment) -> Deployment:
    return db.session.get(Deployment, deployment.id, populate_existing=True)


def live_on(target, drive, deploy, name="v1") -> Deployment:
    first = drive(deploy(target, name).id)
    assert first.status == DeploymentStatus.SUCCEEDED, first.status_reason
    return first


def test_first_deployment_goes_live(nginx_target, deploy, drive):
    deployment = drive(deploy(nginx_target, "v1").id)

    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert deployment.split == {"v1": 100}
    assert db.session.get(Environment, deployment.environment_id).live_deployment_id == deployment.id
    assert measure_split(nginx_target["public_url"], 50) == {"v1": 50}


def test_canary_steps_record_every_split(target, deploy, drive):
    live_on(target, drive, deploy)

    deployment = drive(deploy(target, "v2", CANARY).id)

    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert deployment.stable_release.name == "v1"
    splits = [event.split for event in deployment.events.filter_by(kind="traffic")]
    assert splits == [{"v1": 100}, {"v1": 80, "v2": 20}, {"v1": 50, "v2": 50}, {"v2": 100}]
    statuses = [event.status for event in deployment.events.filter_by(kind="status")]
    for status in ("queued", "preparing", "ready", "progressing", "paused", "promoting", "succeeded"):
        assert status in statuses
    assert measure_split(target["public_url"], 50) == {"v2": 50}


def test_failing_canary_rolls_back_by_itself(target, deploy, drive):
    live_on(target, drive, deploy)

    deployment = drive(deploy(target, "v2", CANARY, status=500).id)

    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert "Analysis failed" in deployment.status_reason
    assert "20 of 20 requests failed" in deployment.status_reason
    assert deployment.split == {"v1": 100}
    assert measure_split(target["public_url"], 1000) == {"v1": 1000}


def test_analysis_results_are_recorded(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)

    deployment = drive(deploy(nginx_target, "v2", CANARY, status=500).id)

    results = deployment.events.filter_by(kind="analysis").all()
    assert results
    assert results[0].details["passed"] is False
    assert results[0].details["statuses"] == {"500": 20}


def test_pause_waits_until_promoted(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 30}, {"pause": {}}]}}

    deployment = drive(deploy(nginx_target, "v2", spec).id)

    assert deployment.status == DeploymentStatus.PAUSED
    assert deployment.weight == 30
    assert deployment.worker is None
    deployment_requests.request_promote(deployment, _user("bob"))
    assert drive(deployment.id).status == DeploymentStatus.SUCCEEDED


def test_abort_during_pause_restores_old_release(target, deploy, drive, drive_in_thread):
    live_on(target, drive, deploy)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 50}, {"pause": {"duration": 60}}]}}
    deployment = deploy(target, "v2", spec)
    drive_in_thread(deployment.id)
    wait_for(lambda: reload(deployment).status == DeploymentStatus.PAUSED, 20)

    deployment_requests.request_abort(reload(deployment), "Aborted by bob")
    wait_for(lambda: reload(deployment).status == DeploymentStatus.ROLLED_BACK, 10)

    assert reload(deployment).status_reason == "Aborted by bob"
    assert measure_split(target["public_url"], 200) == {"v1": 200}


def test_blue_green_checks_preview_then_switches(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "blueGreen", "keepPreviousFor": 0.2,
                         "previewAnalysis": [{"type": "http", "requests": 5}]}}

    deployment = drive(deploy(nginx_target, "v2", spec).id)

    assert deployment.status == DeploymentStatus.SUCCEEDED
    analysis = deployment.events.filter_by(kind="analysis").first()
    assert analysis.details["url"].startswith("http://127.0.0.1:")
    assert analysis.details["url"] != nginx_target["public_url"]
    assert [event.split for event in deployment.events.filter_by(kind="traffic")] == [{"v1": 100}, {"v2": 100}]
    slot_roots = [slot["root"] for slot in nginx_target["slots"].values()]
    installed = sorted(name for root in slot_roots for name in _installed(root))
    assert installed == ["v2"]


def test_blue_green_bad_preview_never_gets_traffic(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "blueGreen", "previewAnalysis": [{"type": "http", "requests": 5}]}}

    deployment = drive(deploy(nginx_target, "v2", spec, status=500).id)

    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert [event.split for event in deployment.events.filter_by(kind="traffic")] == [{"v1": 100}, {"v1": 100}]


def test_prometheus_check_over_limit_rolls_back(nginx_target, deploy, drive):
    queries = []

    def answer(method, path, body):
        queries.append(path)
        return 200, {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1700000000.0, "0.25"]}]}}

    prometheus = JsonServer(answer)
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"analysis": {
        "type": "prometheus", "url": prometheus.url, "query": 'rate(errors{release="{{release}}"}[1m])',
        "max": 0.05, "count": 2, "interval": 0, "failureLimit": 1}}]}}

    deployment = drive(deploy(nginx_target, "v2", spec).id)
    prometheus.stop()

    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert "failureLimit of 1" in deployment.status_reason
    assert len(queries) == 2
    assert queries[0].startswith("/api/v1/query?query=rate%28errors%7Brelease%3D%22v2%22")


@pytest.mark.parametrize(("result", "expected"), [("pass", "succeeded"), ("fail", "rolled_back")])
def test_webhook_check_decides(nginx_target, deploy, drive, result, expected):
    hook = JsonServer(lambda method, path, body: (200, {"result": result}))
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"analysis": {"type": "webhook",
                                                                                       "url": hook.url}}]}}

    deployment = drive(deploy(nginx_target, "v2", spec).id)
    hook.stop()

    assert deployment.status == expected
    assert hook.requests[0][0] == "POST"


def test_missed_progress_deadline_rolls_back(nginx_target, deploy, drive):
    def slow(method, path, body):
        time.sleep(0.3)
        return 200, {"result": "pass"}

    hook = JsonServer(slow)
    live_on(nginx_target, drive, deploy)
    spec = {"progressDeadline": 1, "strategy": {"type": "canary", "steps": [
        {"setWeight": 10}, {"analysis": {"type": "webhook", "url": hook.url, "count": 20, "interval": 0}}]}}

    deployment = drive(deploy(nginx_target, "v2", spec).id)
    hook.stop()

    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert deployment.status_reason.startswith("Missed the progress deadline")
    assert measure_split(nginx_target["public_url"], 100) == {"v1": 100}


@pytest.mark.parametrize("weight", [150, -5, 12.5])
def test_weight_outside_range_fails_with_reason(nginx_target, deploy, drive, weight):
    live_on(nginx_target, drive, deploy)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": weight}]}}

    deployment = deploy(nginx_target, "v2", spec)

    assert deployment.status == DeploymentStatus.FAILED
    assert f"setWeight must be a whole percent from 0 to 100, got {weight}" in deployment.status_reason
    assert measure_split(nginx_target["public_url"], 100) == {"v1": 100}


def test_unknown_target_type_fails_with_reason(deploy):
    deployment = deploy({"type": "ftp"}, "v1")

    assert deployment.status == DeploymentStatus.FAILED
    assert "Target type 'ftp' is unknown" in deployment.status_reason


def test_unreachable_target_fails_and_live_keeps_serving(nginx_target, deploy, drive):
    live = live_on(nginx_target, drive, deploy)
    _set_credentials(live.environment, {"private_key": _private_key()})
    unreachable = {**nginx_target, "releases": {
        "type": "ssh", "host": "127.0.0.1", "port": _closed_port(), "user": "deploy",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzJbJnVb0lSFRqJLBGEGNRXQnNbVCo3IowE0g9pYXQh"}}

    deployment = drive(deploy(unreachable, "v2", CANARY).id)

    assert deployment.status == DeploymentStatus.FAILED
    assert "Cannot connect to deploy@127.0.0.1" in deployment.status_reason
    assert "The live release 'v1' keeps serving" in deployment.status_reason
    assert measure_split(nginx_target["public_url"], 100) == {"v1": 100}


def test_second_deployment_waits_and_third_supersedes_it(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)
    paused = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"pause": {}}]}}
    active = drive(deploy(nginx_target, "v2", paused).id)

    second = drive(deploy(nginx_target, "v3").id)
    assert active.status == DeploymentStatus.PAUSED
    assert second.status == DeploymentStatus.QUEUED
    assert second.status_reason.startswith("Waits for deployment #2")
    third = deploy(nginx_target, "v4")

    assert reload(second).status == DeploymentStatus.SUPERSEDED
    assert "Superseded by deployment #4" in reload(second).status_reason
    assert drive(third.id).status == DeploymentStatus.QUEUED
    deployment_requests.request_abort(reload(active), "Aborted by bob")
    assert drive(active.id).status == DeploymentStatus.ROLLED_BACK
    assert drive(third.id).status == DeploymentStatus.SUCCEEDED
    assert measure_split(nginx_target["public_url"], 100) == {"v4": 100}


def test_rollback_is_a_new_deployment_of_the_older_release(nginx_target, deploy, drive):
    live_on(nginx_target, drive, deploy)
    second = drive(deploy(nginx_target, "v2").id)

    rollback = deployment_requests.rollback(second, _user("bob"))
    rollback = drive(rollback.id)

    assert rollback.status == DeploymentStatus.SUCCEEDED
    assert rollback.release.name == "v1"
    assert rollback.rollback_of_id == second.id
    assert rollback.number == 3
    assert reload(second).status == DeploymentStatus.SUCCEEDED
    assert measure_split(nginx_target["public_url"], 100) == {"v1": 100}


def test_release_rows_are_immutable(nginx_target, deploy):
    from sqlalchemy.exc import DBAPIError

    deployment = deploy(nginx_target, "v1")
    deployment.release.artifact = "/elsewhere.tar.gz"

    with pytest.raises(DBAPIError, match="immutable"):
        db.session.commit()
    db.session.rollback()


def test_one_active_deployment_per_environment_is_enforced(nginx_target, deploy):
    from sqlalchemy.exc import IntegrityError

    first, second = deploy(nginx_target, "v1"), deploy(nginx_target, "v2")
    assert first.environment_id == second.environment_id

    with pytest.raises(IntegrityError, match="deployments_one_active"):
        db.session.execute(db.text("UPDATE deployments SET status = 'progressing' WHERE id IN (:a, :b)"),
                           {"a": first.id, "b": second.id})
    db.session.rollback()


def _user(name: str, *, admin: bool = True):
    from app.models import User

    user = User(username=name, is_admin=admin)
    db.session.add(user)
    db.session.commit()
    return user


def _installed(root: str) -> list[str]:
    from pathlib import Path

    folder = Path(root) / "releases"
    return [path.name for path in folder.iterdir()] if folder.is_dir() else []


def _closed_port() -> int:
    from tests.deployments.servers import free_port

    return free_port()


def _private_key() -> str:
    import io

    import paramiko

    buffer = io.StringIO()
    paramiko.ECDSAKey.generate().write_private_key(buffer)
    return buffer.getvalue()


def _set_credentials(environment: Environment, credentials: dict) -> None:
    import json

    from app.forges import crypto

    environment.credentials_encrypted = crypto.encrypt(json.dumps(credentials))
    db.session.commit()
