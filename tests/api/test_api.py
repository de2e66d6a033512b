"""The v1 API: projects, runs with filters and paging, logs, metrics, members, secrets, users and the audit log."""

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from app import secret_store
from app.extensions import db
from app.models import AuditEntry, ProjectSecret
from app.models._columns import utcnow
from tests.people import add_lines, make_run, make_stage, sign_in


def test_run_list_filters_and_pages(api, world):
    now = utcnow()
    for number in range(2, 8):
        make_run(world.alpha, number, status="success" if number % 2 else "failed",
                 branch="feature" if number > 5 else "main", author="ana" if number == 7 else "bo",
                 queued_at=now - timedelta(days=number))
    make_run(world.beta, 1, status="success")
    everything = api("admin", "GET", "/runs?per_page=3")
    assert everything.get_json()["total"] == 8
    assert len(everything.get_json()["runs"]) == 3
    assert 'rel="next"' in everything.headers["Link"]
    assert everything.headers["X-Total-Count"] == "8"
    assert [run["number"] for run in api("admin", "GET", "/runs?project=alpha&branch=feature").get_json()["runs"]] == [7, 6]
    assert [run["number"] for run in api("admin", "GET", "/runs?project=alpha&status=success").get_json()["runs"]] == [7, 5, 3]
    assert [run["number"] for run in api("admin", "GET", "/runs?author=ana").get_json()["runs"]] == [7]
    window = {"project": "alpha", "since": (now - timedelta(days=3, hours=1)).isoformat(), "until": now.isoformat()}
    # Run 1 of the world was queued just before `now`.
    assert [run["number"] for run in api("admin", "GET", "/runs", query_string=window).get_json()["runs"]] == [3, 2, 1]


def test_run_list_stops_counting_past_limit(api, world, monkeypatch):
    from app.api import params

    for number in range(2, 8):
        make_run(world.alpha, number)
    monkeypatch.setattr(params, "COUNT_LIMIT", 4)
    first = api("admin", "GET", "/runs?per_page=3")
    assert first.get_json()["total"] is None
    assert "X-Total-Count" not in first.headers
    assert 'rel="last"' not in first.headers["Link"]
    assert 'rel="next"' in first.headers["Link"]
    last = api("admin", "GET", "/runs?per_page=3&page=3")
    assert [run["number"] for run in last.get_json()["runs"]] == [1]
    assert 'rel="next"' not in last.headers["Link"]
    assert 'rel="prev"' in last.headers["Link"]
    assert api("admin", "GET", "/runs?per_page=3&project=alpha&branch=main&status=queued").get_json()["total"] is not None


def test_run_list_shows_only_visible_projects(api, world):
    make_run(world.beta, 1)
    assert {run["project"] for run in api("viewer", "GET", "/runs").get_json()["runs"]} == {"alpha"}
    assert api("viewer", "GET", "/runs?project=beta").status_code == 404


@pytest.mark.parametrize("query", ["status=nope", "event=drop", "since=yesterday", "page=0", "per_page=1000", "page=x"])
def test_run_list_rejects_bad_filter(api, world, query):
    response = api("admin", "GET", f"/runs?{query}")
    assert response.status_code == 422
    assert set(response.get_json()) == {"error", "detail"}


def test_logs_are_paged_and_searchable(api, world):
    other = make_stage(world.run, "lint", position=1)
    add_lines(world.run, world.stage, [f"test line {index}" for index in range(5)])
    add_lines(world.run, other, ["lint OK", "Lint warning"], stream="stderr")
    first = api("viewer", "GET", f"/runs/{world.run.id}/logs?limit=2")
    assert [line["seq"] for line in first.get_json()["lines"]] == [1, 2]
    assert 'rel="next"' in first.headers["Link"]
    rest = api("viewer", "GET", f"/runs/{world.run.id}/logs?after=2&limit=100&stage=test").get_json()["lines"]
    assert [line["text"] for line in rest] == ["test line 2", "test line 3", "test line 4"]
    found = api("viewer", "GET", f"/runs/{world.run.id}/logs?q=lint&stream=stderr").get_json()["lines"]
    assert [line["text"] for line in found] == ["lint OK", "Lint warning"]
    assert api("viewer", "GET", f"/runs/{world.run.id}/logs?q=100%25").get_json()["lines"] == []
    assert api("viewer", "GET", f"/runs/{world.run.id}/logs?stage=nope").status_code == 404


@pytest.mark.parametrize("query", ["page=2", "per_page=50"])
def test_logs_reject_page_parameters(api, world, query):
    response = api("viewer", "GET", f"/runs/{world.run.id}/logs?{query}")
    assert response.status_code == 422
    assert "'after'" in response.get_json()["detail"]


def test_stages_are_listed(api, world):
    assert [stage["name"] for stage in api("viewer", "GET", f"/runs/{world.run.id}/stages").get_json()["stages"]] == ["test"]


def test_metrics_over_window(api, world):
    now = utcnow()
    for number, (status, minutes) in enumerate([("success", 1), ("success", 3), ("failed", 2), ("cancelled", 5)], start=2):
        make_run(world.alpha, number, status=status, queued_at=now - timedelta(minutes=10),
                 started_at=now - timedelta(minutes=9), finished_at=now - timedelta(minutes=9) + timedelta(minutes=minutes))
    make_run(world.alpha, 9, status="success", queued_at=now - timedelta(days=40))
    metrics = api("viewer", "GET", "/projects/alpha/metrics?days=7").get_json()
    assert metrics["runs"] == 5
    assert metrics["success_rate"] == round(2 / 3, 4)
    assert metrics["queue_seconds"]["mean"] == 60.0
    assert metrics["duration_seconds"]["p95"] > metrics["duration_seconds"]["mean"]


def test_cancel_is_audited_and_ended_run_conflicts(api, world):
    assert api("developer", "POST", f"/runs/{world.run.id}/cancel").get_json()["status"] == "cancelled"
    conflict = api("developer", "POST", f"/runs/{world.run.id}/cancel")
    assert conflict.status_code == 409
    outcomes = [entry.outcome for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "run_cancel").order_by(AuditEntry.id))]
    assert outcomes == ["success", "failure"]


def test_trigger_queues_run(api, world):
    response = api("developer", "POST", "/projects/alpha/runs", json={"branch": "main"})
    assert response.status_code == 201
    assert response.get_json()["status"] == "queued"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "text/plain"])
def test_trigger_rejects_body_not_json(api, world, content_type):
    # curl -d sends a form body. Running the default branch in its place would build the wrong code.
    response = api("developer", "POST", "/projects/alpha/runs", data="branch=feature", content_type=content_type)
    assert response.status_code == 422
    assert "must be a JSON object" in response.get_json()["detail"]


def test_trigger_names_invalid_json(api, world):
    response = api("developer", "POST", "/projects/alpha/runs", data="{bad", content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["detail"] == ("The request body is not valid JSON (Expecting property name enclosed "
                                              "in double quotes: line 1 column 2 (char 1)). Send a JSON object.")


def test_trigger_without_body_runs_default_branch(api, world):
    response = api("developer", "POST", "/projects/alpha/runs")
    assert response.status_code == 201
    assert response.get_json()["branch"] == "main"


@pytest.mark.parametrize("branch", ["-x", "--all", "feature.lock", "a/.hidden"])
def test_trigger_rejects_branch_git_rejects(api, world, branch):
    response = api("developer", "POST", "/projects/alpha/runs", json={"branch": branch})
    assert response.status_code == 422
    assert "not a valid Git branch name" in response.get_json()["detail"]


def test_project_lifecycle(api, world):
    created = api("developer", "POST", "/projects", json={"name": "gamma", "clone_url": "https://git.example.com/gamma.git"})
    assert created.status_code == 201
    assert api("developer", "GET", "/projects/gamma/members").get_json()["members"][0]["role"] == "admin"
    assert api("developer", "PATCH", "/projects/gamma", json={"default_branch": "trunk"}).get_json()["default_branch"] == "trunk"
    assert api("developer", "POST", "/projects", json={"name": "gamma", "clone_url": "https://git.example.com/x.git"}).status_code == 409
    assert api("developer", "DELETE", "/projects/gamma").status_code == 204
    assert api("developer", "GET", "/projects/gamma").status_code == 404


def test_viewer_cannot_create_project(api, world):
    assert api("viewer", "POST", "/projects", json={"name": "delta", "clone_url": "/srv/x"}).status_code == 403


def test_members_are_managed_and_audited(api, world):
    assert api("project_admin", "PUT", "/projects/alpha/members/outsider", json={"role": "viewer"}).status_code == 201
    assert api("outsider", "GET", "/projects/alpha").status_code == 200
    assert api("project_admin", "PUT", "/projects/alpha/members/outsider", json={"role": "owner"}).status_code == 422
    assert api("project_admin", "DELETE", "/projects/alpha/members/outsider").status_code == 204
    assert api("outsider", "GET", "/projects/alpha").status_code == 404
    actions = [entry.action for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.outcome == "success"))]
    assert actions.count("role_change") == 1
    assert actions.count("member_remove") == 1


def test_secret_is_write_only_and_encrypted(api, world):
    value = "hunter2-but-longer"
    assert api("project_admin", "PUT", "/projects/alpha/secrets/DEPLOY_KEY", json={"value": value}).status_code == 201
    listed = api("project_admin", "GET", "/projects/alpha/secrets")
    assert listed.get_json()["secrets"][0]["name"] == "DEPLOY_KEY"
    assert value not in listed.get_data(as_text=True)
    stored = db.session.scalar(select(ProjectSecret))
    assert value.encode() not in stored.ciphertext
    assert api("developer", "GET", "/projects/alpha/secrets").status_code == 403
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "secret_set")).target == "secret DEPLOY_KEY of project alpha"


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("SHORT", "1234567", "too short"),
    ("BLANK", " " * 12, "it has 0 characters besides leading and trailing white space"),
    ("lower", "long enough value", "invalid"),
    ("DENO_DIR", "long enough value", "reserved"),
])
def test_bad_secret_is_rejected_with_reason(api, world, name, value, reason):
    response = api("project_admin", "PUT", f"/projects/alpha/secrets/{name}", json={"value": value})
    assert response.status_code == 422
    assert reason in response.get_json()["detail"]


def test_secret_with_unknown_field_is_rejected(api, world):
    response = api("project_admin", "PUT", "/projects/alpha/secrets/DEPLOY_KEY",
                   json={"value": "long enough value", "expires": "2027-01-01"})
    assert response.status_code == 422
    assert response.get_json()["detail"] == "Unknown field 'expires': a secret takes 'value'."
    assert api("project_admin", "GET", "/projects/alpha/secrets").get_json()["secrets"] == []


def test_stage_gets_only_listed_secrets(db_app, world):
    project = world.alpha
    secret_store.set_secret(project, "API_TOKEN", "token-value-123", "test")
    secret_store.set_secret(project, "OTHER", "other-value-456", "test")
    assert secret_store.secrets_for_stage(world.run, {"secrets": ["API_TOKEN", "MISSING"]}) == {"API_TOKEN": "token-value-123"}
    assert secret_store.secrets_for_stage(world.run, {}) == {}


def test_fork_pull_request_gets_no_secrets(db_app, world):
    secret_store.set_secret(world.alpha, "API_TOKEN", "token-value-123", "test")
    fork = make_run(world.alpha, 2, event="pull_request", event_data={"kind": "pull_request", "pullRequest": {"number": 4, "fork": True}})
    same_repo = make_run(world.alpha, 3, event="pull_request", event_data={"kind": "pull_request", "pullRequest": {"number": 5, "fork": False}})
    assert secret_store.secrets_for_stage(fork, {"secrets": ["API_TOKEN"]}) == {}
    assert secret_store.secrets_for_stage(same_repo, {"secrets": ["API_TOKEN"]}) == {"API_TOKEN": "token-value-123"}


def test_approved_fork_pull_request_gets_secrets(db_app, world):
    from app.models._columns import utcnow

    secret_store.set_secret(world.alpha, "API_TOKEN", "token-value-123", "test")
    fork = make_run(world.alpha, 2, event="pull_request", approval_required=True, approved_at=utcnow(),
                    approved_by_id=world.users["project_admin"].id,
                    event_data={"kind": "pull_request", "pullRequest": {"number": 4, "fork": True}})
    assert secret_store.secrets_for_stage(fork, {"secrets": ["API_TOKEN"]}) == {"API_TOKEN": "token-value-123"}


def test_approving_ended_run_conflicts(api, world):
    fork = make_run(world.alpha, 2, status="error", event="pull_request", approval_required=True,
                    event_data={"kind": "pull_request", "pullRequest": {"number": 4, "fork": True}})
    response = api("project_admin", "POST", f"/runs/{fork.id}/approve")
    assert response.status_code == 409
    assert "has ended" in response.get_json()["detail"]
    db.session.expire_all()
    assert db.session.get(type(fork), fork.id).approved_at is None
    entries = api("admin", "GET", "/audit?action=run_approve").get_json()["entries"]
    assert entries[0]["outcome"] == "failure"


@pytest.mark.parametrize("role, may_redeliver", [("viewer", False), ("project_admin", True)])
def test_deliveries_say_who_may_redeliver(api, world, role, may_redeliver):
    from app.models import WebhookDelivery

    db.session.add(WebhookDelivery(project_id=world.alpha.id, forge="github", forge_delivery_id="d-1", event="push",
                                   headers={}, body=b"{}", status_code=202, reason="queued"))
    db.session.commit()
    (delivery,) = api(role, "GET", "/projects/alpha/deliveries").get_json()["deliveries"]
    assert delivery["can_redeliver"] is may_redeliver


def test_project_fields_that_cannot_change_are_refused(api, world):
    response = api("admin", "PATCH", "/projects/alpha", json={"name": "renamed", "default_branch": "trunk"})
    assert response.status_code == 422
    assert "Cannot change 'name' of a project" in response.get_json()["detail"]
    assert api("admin", "GET", "/projects/alpha").get_json()["default_branch"] != "trunk"


def test_users_are_invited_and_deactivated(api, world):
    invited = api("admin", "POST", "/users", json={"username": "newcomer", "email": "new@example.com"})
    assert invited.status_code == 201
    password = invited.get_json()["password"]
    user_id = invited.get_json()["id"]
    sign_in(current_app, "newcomer", password)
    assert api("admin", "PATCH", f"/users/{user_id}", json={"active": False}).get_json()["active"] is False
    assert api("admin", "PATCH", f"/users/{world.users['admin'].id}", json={"active": False}).status_code == 422
    assert api("admin", "POST", "/users", json={"username": "newcomer"}).status_code == 409
    entries = api("admin", "GET", "/audit?action=user_update").get_json()["entries"]
    assert entries[0]["detail"] == "deactivated"


@pytest.mark.parametrize("body, field", [({"username": "carol"}, "'username'"), ({"bogus_field": 1}, "'bogus_field'"),
                                         ({"bogus_field": 1, "email": "carol@example.com"}, "'bogus_field'")])
def test_user_unknown_fields_rejected(api, world, body, field):
    viewer = world.users["viewer"]
    response = api("admin", "PATCH", f"/users/{viewer.id}", json=body)
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert f"Cannot change {field} of user 'viewer'" in detail
    assert "only active, is_admin, email can change" in detail
    unchanged = api("admin", "GET", f"/users/{viewer.id}").get_json()
    assert unchanged["username"] == "viewer"
    assert unchanged["email"] is None


def test_user_name_taken_regardless_of_case(api, world):
    created = api("admin", "POST", "/users", json={"username": "bob"})
    assert created.status_code == 201
    bob_id = created.get_json()["id"]
    for look_alike in ("Bob", "BOB", "bob"):
        response = api("admin", "POST", "/users", json={"username": look_alike})
        assert response.status_code == 409
        assert f"User name {look_alike!r} is taken by user 'bob' (id {bob_id})" in response.get_json()["detail"]
    names = [user["username"] for user in api("admin", "GET", "/users?per_page=100").get_json()["users"]]
    assert [name for name in names if name.lower() == "bob"] == ["bob"]


def test_member_name_ignores_case(api, world):
    response = api("admin", "PUT", "/projects/beta/members/VIEWER", json={"role": "viewer"})
    assert response.status_code == 201
    assert response.get_json()["username"] == "viewer"


def test_errors_have_error_and_detail(api, world):
    for response in (api("admin", "GET", "/runs/999999"), api("admin", "GET", "/projects/nope"),
                     api("admin", "POST", "/projects", data="not json", content_type="application/json")):
        assert set(response.get_json()) == {"error", "detail"}


def test_project_with_running_run_is_not_deleted(api, world):
    make_run(world.alpha, 2, status="running")
    response = api("admin", "DELETE", "/projects/alpha")
    assert response.status_code == 409
    assert "Cancel them" in response.get_json()["detail"]
    assert api("admin", "GET", "/projects/alpha").status_code == 200
