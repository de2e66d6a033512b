"""Saving the pipeline editor's text to a forge project: token choice, author, conflicts, refusals, permissions."""

import base64
import json
import socket
from urllib.parse import parse_qs

import pytest

from app.extensions import db
from app.forges.crypto import encrypt
from app.models import ForgeAccount
from tests.people import client_for, clear_sign_in_limits, world  # noqa: F401  (fixtures)

TEXT = 'import { Pipeline } from "deno-ci";\n\nexport default new Pipeline().stage("lint", () => {});\n'
BASE = "a" * 40
NEW_COMMIT = "c" * 40
# Per forge: (the read to plan or None, the write's method and path, the write's success response and status).
FORGE_CALLS = {
    "github": (("GET", f"/api/repos/acme/alpha/contents/deno-pipeline.ts?ref={BASE}", {"type": "file", "sha": "blob-1"}),
               ("PUT", "/api/repos/acme/alpha/contents/deno-pipeline.ts"), {"commit": {"sha": NEW_COMMIT}}, 200),
    "gitlab": (("GET", f"/api/v4/projects/acme%2Falpha/repository/files/deno-pipeline.ts?ref={BASE}",
                {"last_commit_id": "l" * 40}),
               ("POST", "/api/v4/projects/acme%2Falpha/repository/commits"), {"id": NEW_COMMIT}, 201),
    "bitbucket": (None, ("POST", "/2.0/repositories/acme/alpha/src"), {}, 201),
}
CONFLICT_ANSWERS = {
    "github": (409, {"message": "deno-pipeline.ts does not match blob-1"}),
    "gitlab": (400, {"message": "You are attempting to update a file that has changed since you started editing it."}),
    "bitbucket": (409, {"type": "error", "error": {"message": "Commit parents do not match the branch head"}}),
}


def add_account(user, forge: str, token: str, login: str) -> ForgeAccount:
    account = ForgeAccount(user_id=user.id, forge=forge, forge_user_id=login, login=login,
                           access_token_encrypted=encrypt(token))
    db.session.add(account)
    db.session.commit()
    return account


def connect_alpha(world, forge: str):
    """Make project "alpha" a forge project connected by the administrator's account."""
    world.alpha.forge, world.alpha.forge_repo = forge, "acme/alpha"
    world.alpha.forge_account_id = add_account(world.users["admin"], forge, "project-token", "ci-bot").id
    db.session.commit()


def plan_success(fake_forge, forge: str) -> None:
    read, write, answer, status = FORGE_CALLS[forge]
    if read:
        fake_forge.answer(*read)
    headers = {"Location": f"{fake_forge.url}/2.0/repositories/acme/alpha/commit/{NEW_COMMIT}"}
    fake_forge.answer(*write, answer, status=status, headers=headers if forge == "bitbucket" else None)


def save(client, **fields):
    body = {"text": TEXT, "branch": "main", "message": "Add the lint stage", "base": BASE, **fields}
    return client.post("/projects/alpha/editor/save", json=body)


def written(fake_forge) -> dict:
    return fake_forge.requests[-1]


@pytest.mark.parametrize("forge", ["github", "gitlab", "bitbucket"])
def test_save_commits_with_own_token(db_app, world, fake_forge, forge):
    connect_alpha(world, forge)
    developer = world.users["developer"]
    developer.email = "dev@example.com"
    add_account(developer, forge, "developer-token", "dev")
    plan_success(fake_forge, forge)

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"commit": NEW_COMMIT, "branch": "main"}
    assert {sent["headers"]["Authorization"] for sent in fake_forge.requests} == {"Bearer developer-token"}
    sent = written(fake_forge)
    assert (sent["method"], sent["path"]) == FORGE_CALLS[forge][1]
    if forge == "github":
        body = json.loads(sent["body"])
        assert body["author"] == {"name": "developer", "email": "dev@example.com"}
        assert base64.b64decode(body["content"]).decode() == TEXT
        assert (body["sha"], body["branch"], body["message"]) == ("blob-1", "main", "Add the lint stage")
    elif forge == "gitlab":
        body = json.loads(sent["body"])
        assert (body["author_name"], body["author_email"]) == ("developer", "dev@example.com")
        assert body["actions"][0]["last_commit_id"] == "l" * 40
        assert base64.b64decode(body["actions"][0]["content"]).decode() == TEXT
    else:
        fields = {key: values[0] for key, values in parse_qs(sent["body"].decode()).items()}
        assert fields == {"/deno-pipeline.ts": TEXT, "message": "Add the lint stage", "branch": "main",
                          "author": "developer <dev@example.com>", "parents": BASE}


def test_save_falls_back_to_project_token(db_app, world, fake_forge):
    connect_alpha(world, "github")
    plan_success(fake_forge, "github")

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 200
    assert written(fake_forge)["headers"]["Authorization"] == "Bearer project-token"
    # Without an email address the author still is the signed-in user.
    assert json.loads(written(fake_forge)["body"])["author"] == {"name": "developer", "email": "developer@deno-ci.local"}


@pytest.mark.parametrize("forge", ["github", "gitlab", "bitbucket"])
def test_save_conflict_asks_for_reload(db_app, world, fake_forge, forge):
    connect_alpha(world, forge)
    read, write, _, _ = FORGE_CALLS[forge]
    if read:
        fake_forge.answer(*read)
    status, answer = CONFLICT_ANSWERS[forge]
    fake_forge.answer(*write, answer, status=status)

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 409
    assert response.get_json()["error"] == "SaveConflictError"
    assert "reload the editor" in response.get_json()["detail"]


@pytest.mark.parametrize("forge", ["github", "gitlab", "bitbucket"])
def test_save_forbidden_by_forge(db_app, world, fake_forge, forge):
    connect_alpha(world, forge)
    read, write, _, _ = FORGE_CALLS[forge]
    if read:
        fake_forge.answer(*read)
    fake_forge.answer(*write, {"message": "You are not allowed to push into this branch"}, status=403)

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 403
    assert response.get_json()["error"] == "SaveForbiddenError"
    assert "'ci-bot' may not push" in response.get_json()["detail"]


def test_save_to_unreachable_forge(db_app, world, monkeypatch):
    connect_alpha(world, "github")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = {**db_app.config["FORGES"]["github"], "api_url": f"http://127.0.0.1:{closed_port}"}
    monkeypatch.setitem(db_app.config["FORGES"], "github", settings)

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 502
    assert response.get_json()["error"] == "ForgeUnavailableError"
    assert "GitHub is unreachable" in response.get_json()["detail"]


def test_viewer_cannot_save(db_app, world, fake_forge):
    connect_alpha(world, "github")
    plan_success(fake_forge, "github")

    response = save(client_for(db_app, world, "viewer"))

    assert response.status_code == 403
    assert fake_forge.requests == []


@pytest.fixture
def csrf_on(db_app):
    db_app.config["WTF_CSRF_ENABLED"] = True
    yield db_app
    db_app.config["WTF_CSRF_ENABLED"] = False


@pytest.mark.parametrize("endpoint", ["save", "validate"])
def test_viewer_refusal_is_json(csrf_on, world, fake_forge, endpoint):
    connect_alpha(world, "github")
    client = client_for(csrf_on, world, "viewer")
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    body = {"text": TEXT, "branch": "main", "message": "Add the lint stage", "base": BASE}

    response = client.post(f"/projects/alpha/editor/{endpoint}", json=body,
                           headers={"Accept": "application/json", "X-CSRFToken": token})
    from_browser = client.post(f"/projects/alpha/editor/{endpoint}", json=body,
                               headers={"Accept": "text/html,*/*;q=0.8", "X-CSRFToken": token})

    assert response.status_code == 403
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "Forbidden"
    assert "viewer" in response.get_json()["detail"]
    assert from_browser.status_code == 403
    assert from_browser.mimetype == "text/html"
    assert fake_forge.requests == []


def test_save_without_any_forge_account(db_app, world, fake_forge):
    world.alpha.forge, world.alpha.forge_repo = "gitlab", "acme/alpha"
    db.session.commit()

    response = save(client_for(db_app, world, "developer"))

    assert response.status_code == 422
    assert "Sign in with gitlab" in response.get_json()["detail"]
    assert fake_forge.requests == []


def test_save_rejects_malformed_base(db_app, world, fake_forge):
    connect_alpha(world, "github")

    response = save(client_for(db_app, world, "developer"), base="main; rm -rf")

    assert response.status_code == 422
    assert "'base' is invalid" in response.get_json()["detail"]
    assert fake_forge.requests == []
