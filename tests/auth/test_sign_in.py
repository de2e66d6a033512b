"""Sign-in: rate limit, deactivated accounts, audit entries, cookies and CSRF."""

import pytest
from sqlalchemy import select

from app.auth import rate_limit
from app.extensions import db
from app.models import AuditEntry, User
from tests.people import PASSWORD, client_for, sign_in


def _entries(action: str, outcome: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.action == action)
    if outcome:
        query = query.where(AuditEntry.outcome == outcome)
    return db.session.scalars(query.order_by(AuditEntry.id)).all()


def test_sign_in_success_is_audited(db_app, world):
    sign_in(db_app, "viewer")
    (entry,) = _entries("sign_in", "success")
    assert entry.actor_name == "viewer"
    assert entry.target == "user viewer"


def test_sign_in_ignores_case_of_name(db_app, world):
    client = sign_in(db_app, "Viewer")
    assert client.get("/api/v1/user").get_json()["username"] == "viewer"


def test_wrong_password_is_audited_as_failure(db_app, world):
    response = db_app.test_client().post("/login", data={"username": "viewer", "password": "wrong"})
    assert response.status_code == 401
    (entry,) = _entries("sign_in", "failure")
    assert entry.actor_name == "viewer"
    assert "wrong" in entry.detail


def test_repeated_failures_get_429_with_retry_after(db_app, world):
    client = db_app.test_client()
    for _ in range(rate_limit.MAX_FAILURES_PER_NAME):
        assert client.post("/login", data={"username": "viewer", "password": "wrong"}).status_code == 401
    response = client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= rate_limit.WINDOW_SECONDS
    (entry,) = _entries("sign_in", "denied")
    assert "too many failed sign-ins" in entry.detail


def test_limit_is_per_name(db_app, world):
    client = db_app.test_client()
    for _ in range(rate_limit.MAX_FAILURES_PER_NAME):
        client.post("/login", data={"username": "viewer", "password": "wrong"})
    assert client.post("/login", data={"username": "developer", "password": PASSWORD}).status_code == 302


def test_one_address_cannot_lock_out_owner(db_app, world):
    attacker = db_app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "127.0.0.9"
    for _ in range(rate_limit.MAX_FAILURES_PER_NAME):
        attacker.post("/login", data={"username": "viewer", "password": "wrong"})
    assert attacker.post("/login", data={"username": "viewer", "password": PASSWORD}).status_code == 429
    owner = db_app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "127.0.0.10"
    assert owner.post("/login", data={"username": "viewer", "password": PASSWORD}).status_code == 302


def test_guessing_from_many_addresses_is_limited(db_app, world, monkeypatch):
    monkeypatch.setattr(rate_limit, "MAX_FAILURES_PER_NAME_EVERYWHERE", 6)
    for index in range(6):
        client = db_app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"127.0.1.{index}"
        assert client.post("/login", data={"username": "viewer", "password": "wrong"}).status_code == 401
    fresh = db_app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "127.0.2.1"
    assert fresh.post("/login", data={"username": "viewer", "password": PASSWORD}).status_code == 429


@pytest.mark.parametrize("proxies, seen", [(0, "127.0.0.1"), (1, "192.0.2.7")])
def test_trusted_proxies_setting_decides_client_address(db_app, proxies, seen):
    from flask import request

    from app.factory import create_app

    app = create_app({"TRUSTED_PROXIES": proxies, "SQLALCHEMY_DATABASE_URI": db_app.config["SQLALCHEMY_DATABASE_URI"]})
    app.add_url_rule("/client-address", "client_address", lambda: request.remote_addr)
    response = app.test_client().get("/client-address", headers={"X-Forwarded-For": "192.0.2.7"},
                                     environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.get_data(as_text=True) == seen


def test_deactivated_user_cannot_sign_in(db_app, world):
    world.users["viewer"].active = False
    db.session.commit()
    response = db_app.test_client().post("/login", data={"username": "viewer", "password": PASSWORD})
    assert response.status_code == 401
    assert _entries("sign_in", "failure")[0].detail == "deactivated account"


def test_deactivation_ends_open_session(db_app, world):
    client = client_for(db_app, world, "viewer")
    assert client.get("/projects/alpha").status_code == 200
    world.users["viewer"].active = False
    db.session.commit()
    response = client.get("/projects/alpha")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_password_is_stored_as_argon2(world):
    assert world.users["viewer"].password_hash.startswith("$argon2id$")


def test_session_cookie_is_http_only_and_same_site(db_app, world):
    response = db_app.test_client().post("/login", data={"username": "viewer", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_secure_cookie_when_served_over_https(monkeypatch):
    from config import Config

    monkeypatch.setenv("DENO_CI_BASE_URL", "https://ci.example.com")
    assert Config().SESSION_COOKIE_SECURE is True


@pytest.fixture
def csrf_on(db_app):
    db_app.config["WTF_CSRF_ENABLED"] = True
    yield db_app
    db_app.config["WTF_CSRF_ENABLED"] = False


def test_form_post_without_csrf_token_is_rejected(csrf_on, world):
    client = client_for(csrf_on, world, "admin")
    response = client.post("/admin/users", data={"username": "mallory"})
    assert response.status_code == 400
    assert db.session.scalar(select(User).where(User.username == "mallory")) is None


def test_cookie_api_write_needs_csrf_token(csrf_on, world):
    client = client_for(csrf_on, world, "developer")
    response = client.post(f"/api/v1/runs/{world.run.id}/cancel")
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["detail"]


def test_cookie_api_write_with_csrf_header_passes(csrf_on, world):
    client = client_for(csrf_on, world, "developer")
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(f"/api/v1/runs/{world.run.id}/cancel", headers={"X-CSRFToken": token})
    assert response.status_code == 200


def test_bearer_api_write_is_exempt_from_csrf(csrf_on, world):
    token = world.token("developer", "write")
    response = csrf_on.test_client().post(f"/api/v1/runs/{world.run.id}/cancel", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_pages_forbid_framing_and_sniffing(db_app):
    response = db_app.test_client().get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert 'rel="icon"' in response.get_data(as_text=True)


def _invite(db_app, username: str) -> str:
    from app.auth.accounts import invite_user

    _, password = invite_user(username)
    return password


def test_invited_user_must_change_password(db_app, world):
    one_time = _invite(db_app, "newcomer")
    client = sign_in(db_app, "newcomer", one_time)

    page = client.get("/")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/account")
    account = client.get("/account")
    assert "one-time password" in account.get_data(as_text=True)
    assert "Create token" not in account.get_data(as_text=True)

    api = client.get("/api/v1/projects")
    assert api.status_code == 403
    assert "one-time password" in api.get_json()["detail"]


def test_same_password_is_no_change(db_app, world):
    one_time = _invite(db_app, "newcomer")
    client = sign_in(db_app, "newcomer", one_time)
    response = client.post("/account/password", data={"current": one_time, "new": one_time})
    assert response.status_code == 422
    assert "is the current one" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_changed_password_opens_everything(db_app, world):
    one_time = _invite(db_app, "newcomer")
    client = sign_in(db_app, "newcomer", one_time)
    changed = client.post("/account/password", data={"current": one_time, "new": "a new long password"})
    assert changed.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/projects").status_code == 200
    assert db.session.scalar(select(User).where(User.username == "newcomer")).password_must_change is False


def test_refusal_names_the_needed_role(db_app, world):
    response = client_for(db_app, world, "developer").delete("/api/v1/projects/alpha")
    assert response.status_code == 403
    assert response.get_json()["detail"] == ("Your role in project 'alpha' is developer; 'manage_project' needs the "
                                             "project role admin. Ask an admin of the project for it.")


def test_blank_password_is_refused(db_app, world):
    one_time = _invite(db_app, "newcomer")
    client = sign_in(db_app, "newcomer", one_time)
    response = client.post("/account/password", data={"current": one_time, "new": " " * 14})
    assert response.status_code == 422
    assert "only spaces" in response.get_data(as_text=True)
