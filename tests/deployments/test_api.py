"""The deployment API, the pages and the alarm hook."""

import pytest

from app.deployments import engine
from app.deployments import requests as deployment_requests
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Deployment
from tests.deployments.servers import measure_split

PAUSED = {"strategy": {"type": "canary", "steps": [{"setWeight": 25}, {"pause": {}}]}}


def reload(deployment_id: int) -> Deployment:
    return db.session.get(Deployment, deployment_id, populate_existing=True)


@pytest.fixture
def environment(client, project, nginx_target):
    response = client.put("/api/v1/projects/web/environments/production", json={"target": nginx_target})
    assert response.status_code == 200
    return response.get_json()


def create(client, archives, name: str, spec: dict | None = None, status: int = 200):
    return client.post("/api/v1/projects/web/environments/production/deployments", json={
        "release": {"name": name, "artifact": archives(name, status), "commit": "b" * 40}, "spec": spec or {}})


def test_deploy_and_promote_through_api(client, environment, archives, nginx_target):
    first = create(client, archives, "v1")
    engine.drive(first.get_json()["id"])
    second = create(client, archives, "v2", PAUSED).get_json()
    engine.drive(second["id"])

    paused = client.get(f"/api/v1/deployments/{second['id']}").get_json()
    promoted = client.post(f"/api/v1/deployments/{second['id']}/promote")
    engine.drive(second["id"])

    assert first.status_code == 201
    assert paused["status"] == "paused"
    assert paused["split"] == {"v1": 75, "v2": 25}
    assert [event["kind"] for event in paused["events"]].count("traffic") == 2
    assert promoted.status_code == 202
    assert reload(second["id"]).status == DeploymentStatus.SUCCEEDED
    live = client.get("/api/v1/projects/web/environments").get_json()["environments"][0]["live"]
    assert live["release"]["name"] == "v2"
    assert live["deployed_by"] == "admin"


def test_abort_and_rollback_through_api(client, environment, archives, nginx_target):
    engine.drive(create(client, archives, "v1").get_json()["id"])
    second = create(client, archives, "v2").get_json()
    engine.drive(second["id"])

    rollback = client.post(f"/api/v1/deployments/{second['id']}/rollback")
    engine.drive(rollback.get_json()["id"])
    history = client.get("/api/v1/projects/web/environments/production/deployments").get_json()["deployments"]

    assert rollback.status_code == 201
    assert [(row["number"], row["release"]["name"], row["status"]) for row in history] == [
        (3, "v1", "succeeded"), (2, "v2", "succeeded"), (1, "v1", "succeeded")]
    assert history[0]["rollback_of"] == second["id"]
    assert measure_split(nginx_target["public_url"], 50) == {"v1": 50}


@pytest.mark.parametrize(("action", "status"), [("promote", 409), ("abort", 409), ("approve", 409)])
def test_actions_on_ended_deployment_conflict(client, environment, archives, action, status):
    deployment = create(client, archives, "v1").get_json()
    engine.drive(deployment["id"])

    response = client.post(f"/api/v1/deployments/{deployment['id']}/{action}")

    assert response.status_code == status
    assert response.get_json()["error"] == "Conflict"


def test_self_approval_is_forbidden(client, environment, archives):
    spec = {"approvals": {"beforeDeploy": {"role": "developer"}}}
    deployment = create(client, archives, "v1", spec).get_json()

    response = client.post(f"/api/v1/deployments/{deployment['id']}/approve")

    assert response.status_code == 403
    assert "'admin' requested deployment" in response.get_json()["detail"]


def test_invalid_weight_is_recorded_with_reason(client, environment, archives):
    response = create(client, archives, "v1", {"strategy": {"type": "canary", "steps": [{"setWeight": 101}]}})

    assert response.status_code == 201
    assert response.get_json()["status"] == "failed"
    assert "setWeight must be a whole percent from 0 to 100, got 101" in response.get_json()["reason"]


def test_credentials_are_never_returned(client, environment):
    response = client.put("/api/v1/projects/web/environments/production",
                          json={"credentials": {"private_key": "-----BEGIN SECRET-----"}})

    assert response.get_json()["has_credentials"] is True
    assert "BEGIN SECRET" not in response.get_data(as_text=True)


def test_alarm_hook_rolls_back_active_deployment(client, environment, archives, nginx_target):
    client.put("/api/v1/projects/web/environments/production", json={"credentials": {"alarm_token": "s3cret"}})
    engine.drive(create(client, archives, "v1").get_json()["id"])
    deployment = create(client, archives, "v2", PAUSED).get_json()
    engine.drive(deployment["id"])

    refused = client.post(f"/hooks/environments/{environment['id']}/alarm", json={"name": "HighErrorRate"},
                          headers={"Authorization": "Bearer wrong"})
    accepted = client.post(f"/hooks/environments/{environment['id']}/alarm", json={"name": "HighErrorRate"},
                           headers={"Authorization": "Bearer s3cret"})
    engine.drive(deployment["id"])

    assert refused.status_code == 403
    assert accepted.status_code == 202
    assert reload(deployment["id"]).status == DeploymentStatus.ROLLED_BACK
    assert reload(deployment["id"]).status_reason == "Alarm 'HighErrorRate' fired"
    assert measure_split(nginx_target["public_url"], 100) == {"v1": 100}


def test_pages_show_live_release_and_canary(client, environment, archives):
    engine.drive(create(client, archives, "v1").get_json()["id"])
    deployment = create(client, archives, "v2", PAUSED).get_json()
    engine.drive(deployment["id"])

    environments = client.get("/projects/web/environments").get_data(as_text=True)
    fragment = client.get(f"/deployments/{deployment['id']}/status").get_data(as_text=True)
    page = client.get(f"/deployments/{deployment['id']}").get_data(as_text=True)

    assert "Live: <strong>v1</strong>" in environments
    assert fragment.lstrip().startswith('<section id="deployment-')
    assert 'hx-trigger="every 1s"' in fragment
    assert "v2 25 %" in fragment
    assert fragment.strip() in page
    assert "Promote</button>" in fragment


def test_page_buttons_act_and_return_fragment(client, environment, archives):
    engine.drive(create(client, archives, "v1").get_json()["id"])
    deployment = create(client, archives, "v2", PAUSED).get_json()
    engine.drive(deployment["id"])

    response = client.post(f"/deployments/{deployment['id']}/abort", headers={"HX-Request": "true"})
    engine.drive(deployment["id"])
    ended = client.get(f"/deployments/{deployment['id']}/status").get_data(as_text=True)

    assert response.status_code == 200
    assert 'id="deployment-' in response.get_data(as_text=True)
    assert "rolled back" in ended
    assert "hx-trigger" not in ended


def test_artifact_path_needs_admin(db_app, project):
    from app.models import User

    user = User(username="dev", is_admin=False)
    db.session.add(user)
    db.session.commit()

    with pytest.raises(deployment_requests.DeploymentError, match="Only administrators"):
        deployment_requests.resolve_artifact(project, "/etc/passwd", user)
