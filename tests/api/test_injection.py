"""SQL and HTML injection attempts in text fields and filters: rejected with 422 or handled as plain text."""

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Project, Run, User
from tests.people import client_for, make_run

PAYLOADS = ["' OR '1'='1", "alpha'; DROP TABLE runs; --", "<script>alert(1)</script>", "%' OR '%'='", "\x00", "1 UNION SELECT password_hash FROM users"]


@pytest.fixture
def bearer(world):
    return {"Authorization": f"Bearer {world.token('admin')}"}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["branch", "author", "commit", "project", "status", "event", "since", "page"])
def test_run_filter_payload_matches_nothing(db_app, world, bearer, field, payload):
    response = db_app.test_client().get("/api/v1/runs", query_string={field: payload}, headers=bearer)
    assert response.status_code in (200, 404, 422)
    if response.status_code == 200:
        assert response.get_json()["runs"] == []
    assert db.session.scalar(select(func.count()).select_from(Run)) == 1


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["q", "stage", "stream"])
def test_log_filter_payload_is_handled(db_app, world, bearer, field, payload):
    response = db_app.test_client().get(f"/api/v1/runs/{world.run.id}/logs", query_string={field: payload}, headers=bearer)
    assert response.status_code in (200, 404, 422)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["name", "clone_url", "default_branch", "pipeline_path"])
def test_project_field_payload_is_rejected(db_app, world, bearer, field, payload):
    body = {"name": "fresh", "clone_url": "https://git.example.com/team/fresh.git", field: payload}
    response = db_app.test_client().post("/api/v1/projects", json=body, headers=bearer)
    if field == "default_branch" and payload == "<script>alert(1)</script>":
        # A branch name Git accepts, as webhooks accept it: kept as text and escaped on pages.
        assert response.status_code == 201
        assert response.get_json()["default_branch"] == payload
        return
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Project)) == 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_user_and_secret_payloads_are_rejected(db_app, world, bearer, payload):
    client = db_app.test_client()
    assert client.post("/api/v1/users", json={"username": payload}, headers=bearer).status_code == 422
    assert client.put("/api/v1/projects/alpha/secrets/X", json={"value": payload + "x" * 8}, headers=bearer).status_code in (201, 422)
    assert client.put(f"/api/v1/projects/alpha/members/{payload}", json={"role": "viewer"}, headers=bearer).status_code in (404, 422)
    assert db.session.scalar(select(func.count()).select_from(User)) == 5


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sign_in_payload_fails_plainly(db_app, world, payload):
    response = db_app.test_client().post("/login", data={"username": payload, "password": payload})
    assert response.status_code == 401
    assert "<script>alert" not in response.get_data(as_text=True)


def test_stored_html_is_escaped_on_pages(db_app, world):
    make_run(world.alpha, 2, author="<script>alert(1)</script>", message="<img src=x onerror=alert(1)>")
    from app.auth.tokens import create_token

    create_token(world.users["admin"], "<b>bold</b>", "read")
    client = client_for(db_app, world, "admin")
    pages = [client.get("/projects/alpha").get_data(as_text=True), client.get("/admin/tokens").get_data(as_text=True),
             client.get("/admin/audit?actor=<script>x</script>").get_data(as_text=True)]
    for page in pages:
        assert "<script>alert" not in page
        assert "<b>bold</b>" not in page
        assert "<script>x" not in page


@pytest.mark.parametrize("method, path", [
    ("post", "/api/v1/tokens"), ("post", "/api/v1/projects"), ("post", "/api/v1/users"),
    ("put", "/api/v1/projects/alpha/secrets/X"), ("post", "/api/v1/projects/alpha/runs"),
])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_deeply_nested_body_is_rejected(db_app, world, bearer, method, path, encoding):
    body = ('{"name": "\\"", "deep": ' + "[" * 5000 + "]" * 5000 + "}").encode(encoding)
    response = getattr(db_app.test_client(), method)(path, data=body, content_type="application/json", headers=bearer)
    assert response.status_code == 422
    assert set(response.get_json()) == {"error", "detail"}
    assert "more than 100 levels deep" in response.get_json()["detail"]
