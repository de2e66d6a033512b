"""API tokens: stored hashed, shown once, rejected with a reason when expired, revoked, malformed or too narrow."""

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.auth.tokens import create_token, digest
from app.extensions import db
from app.models import ApiToken, AuditEntry
from app.models._columns import utcnow


def _get(app, token: str, path: str = "/api/v1/projects"):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})


def test_token_is_stored_as_digest_only(world):
    token, value = create_token(world.users["viewer"], "laptop", "read")
    assert token.token_hash == digest(value)
    assert value not in (token.token_hash, token.prefix)
    assert value.startswith(token.prefix)


def test_valid_token_lists_visible_projects(db_app, world):
    response = _get(db_app, world.token("viewer", "read"))
    assert response.status_code == 200
    assert [project["name"] for project in response.get_json()["projects"]] == ["alpha"]


def test_use_sets_last_used_time(db_app, world):
    token, value = create_token(world.users["viewer"], "laptop", "read")
    _get(db_app, value)
    db.session.refresh(token)
    assert token.last_used_at is not None


@pytest.mark.parametrize(("header", "reason"), [
    ("Bearer dci_short", "malformed"),
    ("Basic dXNlcjpwYXNz", "malformed"),
    ("Bearer " + "dci_" + "A" * 43, "unknown"),
])
def test_bad_header_gets_401_with_reason(db_app, world, header, reason):
    response = db_app.test_client().get("/api/v1/projects", headers={"Authorization": header})
    assert response.status_code == 401
    assert reason in response.get_json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_gets_401(db_app, world):
    token, value = create_token(world.users["viewer"], "old", "read", 1)
    token.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = _get(db_app, value)
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_revoked_token_gets_401(db_app, world):
    _, value = create_token(world.users["viewer"], "gone", "read")
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "gone"))
    own = world.token("viewer", "write")
    assert db_app.test_client().delete(f"/api/v1/tokens/{token_id}", headers={"Authorization": f"Bearer {own}"}).status_code == 204
    response = _get(db_app, value)
    assert response.status_code == 401
    assert "revoked" in response.get_json()["detail"]


def test_token_of_deactivated_user_gets_401(db_app, world):
    value = world.token("viewer", "read")
    world.users["viewer"].active = False
    db.session.commit()
    response = _get(db_app, value)
    assert response.status_code == 401
    assert "deactivated" in response.get_json()["detail"]


def test_read_scope_cannot_cancel(db_app, world):
    token = world.token("developer", "read")
    response = db_app.test_client().post(f"/api/v1/runs/{world.run.id}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "scope 'read'" in response.get_json()["detail"]


def test_write_scope_cannot_manage_members(db_app, world):
    token = world.token("project_admin", "write")
    response = db_app.test_client().get("/api/v1/projects/alpha/members", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_viewer_cancel_is_refused_and_audited(db_app, world):
    token = world.token("viewer", "admin")
    response = db_app.test_client().post(f"/api/v1/runs/{world.run.id}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert entry.action == "cancel_run"
    assert entry.actor_name == "viewer"


def test_create_through_api_shows_value_once(db_app, world):
    token = world.token("developer", "write")
    client = db_app.test_client()
    created = client.post("/api/v1/tokens", json={"name": "ci", "scope": "read", "expires_in_days": 7},
                          headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 201
    value = created.get_json()["token"]
    listed = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).get_json()["tokens"]
    assert value not in str(listed)
    assert _get(db_app, value).status_code == 200


def test_token_cannot_create_wider_token(db_app, world):
    token = world.token("developer", "write")
    response = db_app.test_client().post("/api/v1/tokens", json={"name": "x", "scope": "admin"},
                                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_user_cannot_revoke_someone_elses_token(db_app, world):
    theirs, _ = create_token(world.users["developer"], "theirs", "read")
    token = world.token("viewer", "write")
    response = db_app.test_client().delete(f"/api/v1/tokens/{theirs.id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def test_admin_revokes_any_token_on_page(db_app, world):
    from tests.people import client_for

    theirs, value = create_token(world.users["developer"], "theirs", "read")
    client = client_for(db_app, world, "admin")
    assert "theirs" in client.get("/admin/tokens").get_data(as_text=True)
    assert client.post(f"/admin/tokens/{theirs.id}/revoke").status_code == 302
    assert _get(db_app, value).status_code == 401
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "token_revoke")) is not None


def test_cli_creates_token(db_app, world):
    from app.cli import main

    result = CliRunner().invoke(main, ["token", "create", "--user", "viewer", "--scope", "read", "--expires-in-days", "3"])
    assert result.exit_code == 0, result.output
    value = result.stdout.strip().splitlines()[-1]
    assert _get(db_app, value).status_code == 200


def test_cli_rejects_unknown_user(db_app, world):
    from app.cli import main

    result = CliRunner().invoke(main, ["token", "create", "--user", "nobody", "--scope", "read"])
    assert result.exit_code != 0
    assert "not found" in result.output
