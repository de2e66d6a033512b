"""Commit statuses, per-branch concurrency, re-runs, redelivery, OAuth sign-in and the CLI."""

import json
from urllib.parse import parse_qs, urlsplit

from click.testing import CliRunner

from app.extensions import db
from app.forges import status
from app.forges.crypto import decrypt, encrypt
from app.models import Artifact, AuditEntry, CommitStatusReport, ForgeAccount, Membership, Project, Run, Stage, User
from app.runs import service
from app.runs.rerun import rerun
from tests.forges.conftest import own_payload, post_hook


def connect_account(project, token="tok-9"):
    user = User(username="owner")
    db.session.add(user)
    db.session.flush()
    account = ForgeAccount(user_id=user.id, forge=project.forge, forge_user_id="1", login="owner",
                           access_token_encrypted=encrypt(token))
    db.session.add(account)
    db.session.flush()
    project.forge_account_id = account.id
    db.session.commit()
    return account


def audit_details(action: str) -> list[tuple[str, str]]:
    entries = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
    return [(entry.outcome, entry.detail) for entry in entries]


def reports(run_id):
    db.session.expire_all()
    return db.session.scalars(db.select(CommitStatusReport).where(CommitStatusReport.run_id == run_id)
                              .order_by(CommitStatusReport.id)).all()


def test_status_reported_through_transitions(hook_client, forge_project, fake_forge):
    project = forge_project("github")
    connect_account(project)
    path = "/api/repos/acme/web/statuses/" + "2" * 40
    fake_forge.answer("POST", path, {"id": 1}, status=201)
    run_id = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push").json["run_id"]
    service.fail_run(run_id, "No stage of the pipeline is selected for this event", "skipped")

    for report in reports(run_id):
        status._send(report.id)

    sent = [json.loads(request["body"]) for request in fake_forge.requests]
    assert [body["state"] for body in sent] == ["pending", "success"]
    assert sent[0]["target_url"] == f"http://127.0.0.1:8000/runs/{run_id}"
    assert sent[1]["description"].startswith("Run #1 skipped: No stage")
    assert fake_forge.requests[0]["headers"]["Authorization"] == "Bearer tok-9"
    assert [report.delivery_status for report in reports(run_id)] == ["sent", "sent"]


def test_status_failure_recorded_not_raised_into_run(hook_client, forge_project, fake_forge):
    project = forge_project("gitlab")
    connect_account(project)
    fake_forge.answer("POST", "/api/v4/projects/acme%2Fweb/statuses/" + "2" * 40, {"message": "down"}, status=503)
    run_id = post_hook(hook_client, "gitlab", "web", own_payload("gitlab", "push"), "Push Hook").json["run_id"]
    report = reports(run_id)[0]
    try:
        status._send(report.id)
    except Exception as error:  # noqa: BLE001  (RQ retries on the exception)
        assert "HTTP 503" in str(error)
    report = reports(run_id)[0]
    assert report.attempts == 1
    assert "HTTP 503" in report.last_error
    assert db.session.get(Run, run_id).status == "queued"


def test_older_report_superseded(hook_client, forge_project, fake_forge):
    project = forge_project("bitbucket")
    connect_account(project)
    fake_forge.answer("POST", "/2.0/repositories/acme/web/commit/" + "2" * 40 + "/statuses/build", {}, status=201)
    run_id = post_hook(hook_client, "bitbucket", "web", own_payload("bitbucket", "push"), "repo:push").json["run_id"]
    service.cancel_run(run_id, "cancelled by a test")
    pending, cancelled = reports(run_id)
    status._send(cancelled.id)
    status._send(pending.id)
    assert [json.loads(request["body"])["state"] for request in fake_forge.requests] == ["STOPPED"]
    assert reports(run_id)[0].delivery_status == "superseded"


def test_project_without_account_skips_reports(hook_client, forge_project):
    forge_project("github")
    run_id = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push").json["run_id"]
    assert [report.delivery_status for report in reports(run_id)] == ["skipped"]


def test_newer_run_cancels_older_when_asked(hook_client, forge_project):
    forge_project("github")
    first = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push").json["run_id"]
    payload = own_payload("github", "push")
    payload["after"] = payload["head_commit"]["id"] = "4" * 40
    second = post_hook(hook_client, "github", "web", payload, "push").json["run_id"]
    newer = db.session.get(Run, second)
    newer.plan = {"stages": [], "concurrency": {"cancelInProgress": True}}
    db.session.commit()

    assert service.cancel_superseded_runs(second) == [first]
    db.session.expire_all()
    assert db.session.get(Run, first).status == "cancelled"
    assert "superseded by run #2" in db.session.get(Run, first).status_reason


def test_concurrency_not_asked_cancels_nothing(hook_client, forge_project):
    forge_project("github")
    first = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push").json["run_id"]
    payload = own_payload("github", "push")
    payload["after"] = payload["head_commit"]["id"] = "4" * 40
    second = post_hook(hook_client, "github", "web", payload, "push").json["run_id"]
    db.session.get(Run, second).plan = {"stages": []}
    db.session.commit()
    assert service.cancel_superseded_runs(second) == []
    assert db.session.get(Run, first).status == "queued"


def finished_run(project, tmp_path):
    run = Run(project_id=project.id, number=1, trigger="webhook", event="push", branch="main", commit_sha="2" * 40,
              event_data={"kind": "push", "branch": "main"}, plan={"stages": []}, status="failed")
    db.session.add(run)
    db.session.flush()
    statuses = {"build": ("success", []), "test": ("failed", ["build"]), "deploy": ("skipped", ["test"]),
                "lint": ("success", [])}
    for position, (name, (stage_status, needs)) in enumerate(statuses.items()):
        db.session.add(Stage(run_id=run.id, name=name, position=position, needs=needs, options={}, status=stage_status,
                             attempt=0 if stage_status == "skipped" else 1,
                             error=service.NEED_FAILED if stage_status == "skipped" else None))
    db.session.flush()
    archive = tmp_path / "dist.tar.gz"
    archive.write_bytes(b"archive")
    build = next(stage for stage in run.stages if stage.name == "build")
    db.session.add(Artifact(run_id=run.id, stage_id=build.id, name="dist", path=str(archive), size=7,
                            expires_at=run.queued_at))
    db.session.commit()
    return run


def test_failed_only_rerun_keeps_passed_stages(client, forge_project, tmp_path):
    project = forge_project("github")
    original = finished_run(project, tmp_path)

    response = client.post(f"/api/v1/runs/{original.id}/rerun", json={"failed_only": True})

    assert response.status_code == 201
    copy = db.session.get(Run, response.json["id"])
    stages = {stage.name: stage.status for stage in copy.stages}
    assert stages == {"build": "success", "lint": "success", "test": "queued", "deploy": "queued"}
    assert copy.rerun_of_id == original.id
    assert copy.trigger == "rerun"
    assert audit_details("run_rerun") == [("success", f"failed stages, as run {copy.id} (#{copy.number})")]
    artifacts = db.session.scalars(db.select(Artifact).where(Artifact.run_id == copy.id)).all()
    assert [artifact.name for artifact in artifacts] == ["dist"]
    assert open(artifacts[0].path, "rb").read() == b"archive"
    assert next(stage for stage in copy.stages if stage.name == "test").enqueued_at is not None


def test_whole_rerun_pins_commit(client, forge_project, tmp_path):
    project = forge_project("github")
    original = finished_run(project, tmp_path)
    response = client.post(f"/api/v1/runs/{original.id}/rerun", json={"failed_only": False})
    assert response.status_code == 201
    copy = db.session.get(Run, response.json["id"])
    assert copy.commit_sha == "2" * 40
    assert copy.status == "queued"
    assert copy.stages == []


def test_whole_rerun_without_event_data(client, forge_project, tmp_path):
    original = finished_run(forge_project("github"), tmp_path)
    original.event_data = {}
    db.session.commit()

    response = client.post(f"/api/v1/runs/{original.id}/rerun")

    assert response.status_code == 201, response.get_data(as_text=True)
    assert db.session.get(Run, response.json["id"]).event == "push"


def test_rerun_of_running_run_conflicts(client, forge_project):
    forge_project("github")
    run_id = post_hook(client, "github", "web", own_payload("github", "push"), "push").json["run_id"]
    response = client.post(f"/api/v1/runs/{run_id}/rerun", json={"failed_only": True})
    assert response.status_code == 409
    assert "still queued" in response.json["detail"]
    assert [outcome for outcome, _ in audit_details("run_rerun")] == ["failure"]


def test_rerun_without_failed_stage_conflicts(forge_project, tmp_path):
    project = forge_project("github")
    original = finished_run(project, tmp_path)
    for stage in original.stages:
        if stage.status != "success":
            db.session.delete(stage)
    db.session.commit()
    try:
        rerun(original.id, failed_only=True)
    except Exception as error:  # noqa: BLE001
        assert "no failed stage" in str(error)
    else:
        raise AssertionError("a re-run of a run with no failed stage was accepted")


def test_deliveries_listed_and_redelivered(client, forge_project):
    forge_project("github")
    first = post_hook(client, "github", "web", own_payload("github", "push"), "push")
    post_hook(client, "github", "web", b"{bad", "push")

    listed = client.get("/api/v1/projects/web/deliveries").json["deliveries"]
    assert [(row["status_code"], row["run_id"]) for row in listed] == [(400, None), (202, first.json["run_id"])]
    assert "malformed JSON" in listed[0]["reason"]

    again = client.post(f"/api/v1/projects/web/deliveries/{listed[1]['id']}/redeliver")
    assert again.status_code == 202
    assert again.json["run_id"] != first.json["run_id"]
    newest = client.get("/api/v1/projects/web/deliveries").json["deliveries"][0]
    assert newest["redelivery_of"] == listed[1]["id"]
    assert audit_details("delivery_redeliver") == [("success", f"status 202, new delivery {newest['id']}: {newest['reason']}")]


def test_unverified_delivery_cannot_be_redelivered(client, forge_project):
    forge_project("github")
    post_hook(client, "github", "web", own_payload("github", "push"), "push", secret="wrong")
    row = client.get("/api/v1/projects/web/deliveries").json["deliveries"][0]
    response = client.post(f"/api/v1/projects/web/deliveries/{row['id']}/redeliver")
    assert response.status_code == 409


def test_oauth_sign_in_creates_user(db_app, fake_forge):
    browser = db_app.test_client()
    login = browser.get("/auth/gitlab/login")
    assert login.status_code == 302
    query = {key: values[0] for key, values in parse_qs(urlsplit(login.location).query).items()}
    assert urlsplit(login.location).path == "/oauth/authorize"
    fake_forge.answer("POST", "/oauth/token", {"access_token": "gl-at", "refresh_token": "gl-rt", "expires_in": 7200})
    fake_forge.answer("GET", "/api/v4/user", {"id": 31, "username": "ada", "email": "ada@example.com"})
    fake_forge.answer("GET", "/api/v4/projects?min_access_level=40&per_page=100&order_by=path&sort=asc", [])

    bad = browser.get(f"/auth/gitlab/callback?code=c1&state=forged")
    assert bad.status_code == 400
    browser.get("/auth/gitlab/login")
    state = browser.get("/auth/gitlab/login").location
    state = parse_qs(urlsplit(state).query)["state"][0]
    done = browser.get(f"/auth/gitlab/callback?code=c1&state={state}")

    assert done.status_code == 302
    token_request = next(request for request in fake_forge.requests if request["path"] == "/oauth/token")
    assert parse_qs(token_request["body"].decode())["code_verifier"][0]
    account = db.session.scalars(db.select(ForgeAccount)).one()
    assert account.user.username == "ada"
    assert account.user.is_admin is False
    assert "gl-at" not in account.access_token_encrypted
    assert decrypt(account.refresh_token_encrypted) == "gl-rt"
    assert query["state"] != state
    # A new user is a member of no project, so they may not create one and land on the project list.
    assert urlsplit(done.location).path == "/"
    assert browser.get("/connect/gitlab").status_code == 403
    assert db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "sign_in")).one().detail == "with gitlab"


def test_connect_makes_creator_project_admin(db_app, fake_forge, forge_project):
    existing = forge_project("gitlab")
    user = User(username="dev")
    db.session.add(user)
    db.session.flush()
    db.session.add_all([
        Membership(user_id=user.id, project_id=existing.id, role="developer"),
        ForgeAccount(user_id=user.id, forge="gitlab", forge_user_id="7", login="dev", access_token_encrypted=encrypt("tok")),
    ])
    db.session.commit()
    repository = {"path_with_namespace": "acme/api", "http_url_to_repo": "https://gitlab.example/acme/api.git",
                  "default_branch": "main", "visibility": "private"}
    fake_forge.answer("GET", "/api/v4/projects?min_access_level=40&per_page=100&order_by=path&sort=asc", [repository])
    fake_forge.answer("POST", "/api/v4/projects/acme%2Fapi/hooks", {"id": 5})
    browser = db_app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"] = str(user.id)

    response = browser.post("/connect/gitlab", data={"repository": "acme/api"})

    assert response.status_code == 200, response.get_data(as_text=True)
    project = db.session.scalars(db.select(Project).where(Project.forge_repo == "acme/api")).one()
    role = db.session.scalar(db.select(Membership.role).where(Membership.user_id == user.id,
                                                              Membership.project_id == project.id))
    assert role == "admin"
    created = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "project_create")).one()
    assert created.target == f"project {project.name}"


def test_expired_token_refreshed(db_app, fake_forge, forge_project):
    from datetime import timedelta

    from app.forges.accounts import access_token
    from app.models._columns import utcnow

    project = forge_project("bitbucket")
    account = connect_account(project, token="old")
    account.refresh_token_encrypted, account.expires_at = encrypt("bb-rt"), utcnow() - timedelta(minutes=1)
    db.session.commit()
    fake_forge.answer("POST", "/site/oauth2/access_token", {"access_token": "new", "expires_in": 7200})

    assert access_token(account) == "new"
    assert parse_qs(fake_forge.requests[-1]["body"].decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["bb-rt"]}
    assert decrypt(account.refresh_token_encrypted) == "bb-rt"


def test_cli_project_add_prints_webhook(db_app, data_dir):
    from app.cli import main

    result = CliRunner().invoke(main, ["--data", str(data_dir), "project", "add", "cli-web", "--repo", "https://gitlab.example.com/acme/web.git",
                                       "--forge", "gitlab", "--forge-repo", "acme/web", "--webhook-secret", "pasted"])
    assert result.exit_code == 0, result.output
    assert "Webhook URL:    http://127.0.0.1:8000/hooks/gitlab/cli-web" in result.output
    assert "Webhook secret: pasted" in result.output
    db.session.expire_all()
    from app.models import Project

    project = db.session.scalar(db.select(Project).where(Project.name == "cli-web"))
    assert (project.forge, project.forge_repo) == ("gitlab", "acme/web")
    assert decrypt(project.webhook_secret_encrypted) == "pasted"


def test_cli_links_use_port_serve_last_used(db_app, data_dir, monkeypatch):
    from app.cli import main
    from config import SERVED_URL_FILE

    monkeypatch.delenv("DENO_CI_BASE_URL", raising=False)
    # The data folder is the session's: the file must not outlive this test.
    served = data_dir / SERVED_URL_FILE
    served.write_text("http://127.0.0.1:8741\n")
    try:
        result = CliRunner().invoke(main, ["--data", str(data_dir), "project", "add", "served", "--repo", "https://gitlab.example.com/acme/web.git",
                                           "--forge", "github", "--forge-repo", "acme/served"])
    finally:
        served.unlink()
    assert result.exit_code == 0, result.output
    assert "Webhook URL:    http://127.0.0.1:8741/hooks/github/served" in result.output


def test_long_forge_login_gets_name_free_after_cut(db_app):
    from app.forges.accounts import _free_username

    db.session.add(User(username="a" * 100))
    db.session.commit()
    # Cut to the column's 100 characters, the login alone would be that user's name in other case.
    assert _free_username("A" * 120, "gitlab") == "A" * 93 + "-gitlab"
