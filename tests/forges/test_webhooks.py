"""Webhook deliveries end to end through `POST /hooks/<forge>/<project>`: real and own payloads, bad input."""

import json

import pytest

from app.extensions import db
from app.models import AuditEntry, Run, WebhookDelivery
from app.queue import run_queue
from tests.forges.conftest import SECRET, own_payload, post_hook, shared_payload, signed_headers

ZERO = "0" * 40

# (forge, fixture file, event header value, expected status, expected event kind or None)
SHARED_CASES = [
    ("github", "push", "push", 202, "push"),
    ("github", "push_branch_create", "push", 202, "push"),
    ("github", "push_branch_delete", "push", 200, None),
    ("github", "push_tag", "push", 202, "tag"),
    ("github", "pr_opened", "pull_request", 202, "pull_request"),
    ("github", "pr_sync", "pull_request", 202, "pull_request"),
    ("github", "pr_reopened", "pull_request", 202, "pull_request"),
    ("github", "pr_closed", "pull_request", 200, None),
    ("gitlab", "push", "Push Hook", 202, "push"),
    ("gitlab", "tag_create", "Tag Push Hook", 202, "tag"),
    ("gitlab", "branch_delete", "Push Hook", 200, None),
    ("gitlab", "pull_request_create", "Merge Request Hook", 202, "pull_request"),
    ("gitlab", "pull_request_close", "Merge Request Hook", 200, None),
    ("gitlab", "pull_request_merge", "Merge Request Hook", 202, "merge"),
    ("bitbucket", "push", "repo:push", 202, "push"),
    ("bitbucket", "push_branch_create", "repo:push", 202, "push"),
    ("bitbucket", "push_branch_delete", "repo:push", 200, None),
    ("bitbucket", "push_tag_create", "repo:push", 202, "tag"),
    ("bitbucket", "pr_created", "pullrequest:created", 202, "pull_request"),
    ("bitbucket", "pr_updated", "pullrequest:updated", 202, "pull_request"),
    ("bitbucket", "pr_fulfilled", "pullrequest:fulfilled", 202, "merge"),
]


def repository_of(forge: str, payload: dict) -> str:
    return payload["project"]["path_with_namespace"] if forge == "gitlab" else payload["repository"]["full_name"]


def runs() -> list[Run]:
    db.session.expire_all()
    return db.session.scalars(db.select(Run).order_by(Run.id)).all()


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(db.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


@pytest.mark.parametrize("forge, name, event, status, kind", SHARED_CASES, ids=[f"{c[0]}-{c[1]}" for c in SHARED_CASES])
def test_shared_payload_replayed(hook_client, forge_project, forge, name, event, status, kind):
    body = shared_payload(forge, name)
    forge_project(forge, repo=repository_of(forge, json.loads(body)))

    response = post_hook(hook_client, forge, "web", body, event)

    assert response.status_code == status, response.json
    logged = deliveries()
    assert len(logged) == 1
    assert logged[0].status_code == status
    assert logged[0].reason == response.json["reason"]
    if kind is None:
        assert runs() == []
        return
    run = runs()[0]
    assert run.event == kind
    assert run.status == "queued"
    assert run.trigger == "webhook"
    assert response.json["run_id"] == run.id
    assert run_queue().fetch_job(f"prepare-{run.id}") is not None


def test_shared_github_push_event_fields(hook_client, forge_project):
    body = shared_payload("github", "push")
    forge_project("github", repo="Codertocat/Hello-World")
    post_hook(hook_client, "github", "web", body, "push")
    run = runs()[0]
    assert run.branch == "master"
    assert run.commit_sha == "199eddf46df50de8d02e99bf1c5fdb4101338224"
    assert run.event_data["repository"] == "Codertocat/Hello-World"
    assert run.event_data["ref"] == "refs/heads/master"


def test_shared_bitbucket_tag_with_slash(hook_client, forge_project):
    forge_project("bitbucket", repo="user2/foo")
    post_hook(hook_client, "bitbucket", "web", shared_payload("bitbucket", "push_tag_create"), "repo:push")
    run = runs()[0]
    assert run.tag == "feature/x"
    assert run.ref == "refs/tags/feature/x"


def test_shared_gitlab_merge_uses_merge_commit(hook_client, forge_project):
    forge_project("gitlab", repo="gitlab-org/hello-world")
    post_hook(hook_client, "gitlab", "web", shared_payload("gitlab", "pull_request_merge"), "Merge Request Hook")
    run = runs()[0]
    assert run.commit_sha == "78a76ee6b4992a6baf64c59fc4c44c7323d60438"
    assert run.branch == "master"
    assert run.pull_request == 1


OWN_PUSHES = [("github", "push", "push"), ("gitlab", "push", "Push Hook"), ("bitbucket", "push", "repo:push")]


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_own_push_starts_run(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", own_payload(forge, name), event)
    assert response.status_code == 202
    run = runs()[0]
    assert (run.event, run.branch, run.commit_sha) == ("push", "main", "2" * 40)
    assert run.before_sha == "1" * 40
    assert run.message.strip() == "Add the parser"
    assert run.event_data["forge"] == forge


def set_message(forge: str, payload: dict, message: str) -> dict:
    if forge == "github":
        payload["head_commit"]["message"] = message
    elif forge == "gitlab":
        payload["commits"][-1]["message"] = message
    else:
        payload["push"]["changes"][0]["new"]["target"]["message"] = message
    return payload


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
@pytest.mark.parametrize("message", ["Fix typo [skip ci]", "[SKIP CI] docs", "[Ci Skip]"])
def test_skip_ci_starts_nothing(hook_client, forge_project, forge, name, event, message):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", set_message(forge, own_payload(forge, name), message), event)
    assert response.status_code == 200
    assert "skip CI" in response.json["reason"]
    assert runs() == []
    assert deliveries()[0].reason == response.json["reason"]


def set_branch(forge: str, payload: dict, branch: str) -> dict:
    if forge == "bitbucket":
        payload["push"]["changes"][0]["new"]["name"] = branch
    else:
        payload["ref"] = f"refs/heads/{branch}"
    return payload


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
@pytest.mark.parametrize("branch", ["feature/deep/slashes", "fix#12", "función-ñ/ü"])
def test_odd_branch_name_stored_exactly(hook_client, forge_project, forge, name, event, branch):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", set_branch(forge, own_payload(forge, name), branch), event)
    assert response.status_code == 202
    run = runs()[0]
    assert run.branch == branch
    assert run.ref == f"refs/heads/{branch}"


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_deleted_branch_starts_nothing(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    payload = own_payload(forge, name)
    if forge == "bitbucket":
        payload["push"]["changes"][0]["new"] = None
    else:
        payload["after"] = ZERO
    response = post_hook(hook_client, forge, "web", payload, event)
    assert response.status_code == 200
    assert "'main' was deleted" in response.json["reason"]
    assert runs() == []


def test_github_push_without_commits_runs_after(hook_client, forge_project):
    forge_project("github")
    payload = own_payload("github", "push")
    payload["commits"], payload["head_commit"] = [], None
    response = post_hook(hook_client, "github", "web", payload, "push")
    assert response.status_code == 202
    assert runs()[0].commit_sha == "2" * 40


def test_bitbucket_push_without_changes_starts_nothing(hook_client, forge_project):
    forge_project("bitbucket")
    payload = own_payload("bitbucket", "push")
    payload["push"]["changes"] = []
    response = post_hook(hook_client, "bitbucket", "web", payload, "repo:push")
    assert response.status_code == 200
    assert runs() == []


def test_bitbucket_push_after_deletion_starts_run(hook_client, forge_project):
    forge_project("bitbucket")
    payload = own_payload("bitbucket", "push")
    pushed = payload["push"]["changes"][0]
    deleted = {"new": None, "old": {"type": "branch", "name": "old-work", "target": {"hash": "3" * 40}}}
    payload["push"]["changes"] = [deleted, pushed]
    response = post_hook(hook_client, "bitbucket", "web", payload, "repo:push")
    assert response.status_code == 202
    (run,) = runs()
    assert run.branch == "main"


def test_bitbucket_push_of_two_branches_names_the_other(hook_client, forge_project):
    forge_project("bitbucket")
    payload = own_payload("bitbucket", "push")
    other = json.loads(json.dumps(payload["push"]["changes"][0]))
    other["new"]["name"] = other["old"]["name"] = "b-two"
    payload["push"]["changes"].append(other)
    response = post_hook(hook_client, "bitbucket", "web", payload, "repo:push")
    assert response.status_code == 202
    assert [run.branch for run in runs()] == ["main"]
    assert "not run, as one delivery starts one run: 'b-two'" in deliveries()[0].reason


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_redelivery_starts_one_run(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    body = json.dumps(own_payload(forge, name)).encode()
    first = post_hook(hook_client, forge, "web", body, event, delivery="delivery-1")
    second = post_hook(hook_client, forge, "web", body, event, delivery="delivery-1")
    assert first.status_code == 202
    assert second.status_code == 200
    assert "Already received" in second.json["reason"]
    assert second.json["run_id"] == first.json["run_id"]
    assert len(runs()) == 1
    logged = deliveries()
    assert len(logged) == 1
    assert logged[0].received_count == 2


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_same_push_under_two_ids_starts_one_run(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    body = json.dumps(own_payload(forge, name)).encode()
    first = post_hook(hook_client, forge, "web", body, event, delivery="id-a")
    second = post_hook(hook_client, forge, "web", body, event, delivery="id-b")
    assert first.status_code == 202
    assert second.status_code == 200
    assert "same event" in second.json["reason"]
    assert len(runs()) == 1
    assert [row.status_code for row in deliveries()] == [202, 200]


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_missing_signature_rejected(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    body = json.dumps(own_payload(forge, name)).encode()
    headers = signed_headers(forge, body, event)
    for header in ("X-Hub-Signature-256", "X-Hub-Signature", "X-Gitlab-Token"):
        headers.pop(header, None)
    response = post_hook(hook_client, forge, "web", body, event, headers=headers)
    assert response.status_code == 401
    assert "missing" in response.json["reason"]
    assert runs() == []
    logged = deliveries()
    assert logged[0].status_code == 401
    assert logged[0].body is None


def test_rejected_deliveries_logged_up_to_cap(hook_client, forge_project, monkeypatch):
    from app.forges import deliveries as delivery_log

    monkeypatch.setattr(delivery_log, "MAX_LOGGED_REJECTIONS_PER_MINUTE", 3)
    forge_project("github")
    for _ in range(5):
        response = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push", secret="not-the-secret")
        assert response.status_code == 401
    assert len(deliveries()) == 3
    assert runs() == []


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_wrong_secret_rejected(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", own_payload(forge, name), event, secret="not-the-secret")
    assert response.status_code == 401
    assert "does not match" in response.json["reason"]
    assert runs() == []


def test_tampered_body_rejected(hook_client, forge_project):
    forge_project("github")
    body = json.dumps(own_payload("github", "push")).encode()
    headers = signed_headers("github", body, "push")
    response = post_hook(hook_client, "github", "web", body.replace(b"main", b"prod"), "push", headers=headers)
    assert response.status_code == 401
    assert runs() == []


@pytest.mark.parametrize("forge, name, event", [("github", "push", "push"), ("bitbucket", "push", "repo:push")])
def test_signature_header_case_ignored(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    body = json.dumps(own_payload(forge, name)).encode()
    headers = {key.lower(): value for key, value in signed_headers(forge, body, event).items()}
    name_of = "x-hub-signature-256" if forge == "github" else "x-hub-signature"
    headers[name_of.upper()] = headers.pop(name_of).upper()
    response = post_hook(hook_client, forge, "web", body, event, headers=headers)
    assert response.status_code == 202


@pytest.mark.parametrize("forge, event", [("github", "push"), ("gitlab", "Push Hook"), ("bitbucket", "repo:push")])
@pytest.mark.parametrize("body, expected", [
    (b"", "empty"),
    (b"{not json", "malformed JSON"),
    (b'{"ref": "refs/heads/ma', "malformed JSON: Unterminated string starting at: line 1 column 9 (char 8)."),
    (b"[1, 2]", "expected an object"),
])
def test_bad_body_rejected(hook_client, forge_project, forge, event, body, expected):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", body, event)
    assert response.status_code == 400
    assert expected in response.json["reason"]
    assert deliveries()[0].status_code == 400
    assert runs() == []


@pytest.mark.parametrize("forge, event, field, expected", [
    ("github", "push", "after", "'after'"),
    ("gitlab", "Push Hook", "object_kind", "object_kind is missing, not 'push'"),
])
def test_payload_missing_field_rejected(hook_client, forge_project, forge, event, field, expected):
    forge_project(forge)
    payload = own_payload(forge, "push")
    del payload[field]
    response = post_hook(hook_client, forge, "web", payload, event)
    assert response.status_code == 400
    assert expected in response.json["reason"]


def test_huge_body_rejected(hook_client, forge_project):
    forge_project("github")
    body = b"{" + b" " * (25 * 1024 * 1024) + b"}"
    response = post_hook(hook_client, "github", "web", body, "push")
    assert response.status_code == 413
    assert "too large" in response.json["reason"]
    assert deliveries()[0].status_code == 413
    assert runs() == []


def test_unknown_project_not_found(hook_client, forge_project):
    forge_project("github")
    response = post_hook(hook_client, "github", "nope", own_payload("github", "push"), "push")
    assert response.status_code == 404
    assert response.json["reason"] == ("No project named 'nope' receives GitHub webhooks here. Check the project name "
                                       "and the forge in the webhook URL, /hooks/github/<project name>.")


def test_unknown_forge_not_found(hook_client, forge_project):
    forge_project("github")
    response = hook_client.post("/hooks/gitea/web", data=b"{}")
    assert response.status_code == 404
    assert "gitea" in response.json["reason"]


def test_other_repository_not_found(hook_client, forge_project):
    forge_project("github", repo="acme/other")
    response = post_hook(hook_client, "github", "web", own_payload("github", "push"), "push")
    assert response.status_code == 404
    assert "'acme/web' is not connected" in response.json["reason"]
    assert runs() == []
    assert deliveries()[0].status_code == 404


PUSH_EVENTS = {"github": "push", "gitlab": "Push Hook", "bitbucket": "repo:push"}
# Each forge's hook URL against a project connected to every other forge or to plain git.
OTHER_FORGES = [(forge, other) for forge in PUSH_EVENTS for other in ("git", *PUSH_EVENTS) if other != forge]


@pytest.mark.parametrize("forge, connected_to", OTHER_FORGES)
def test_project_of_other_forge_looks_unknown(hook_client, forge_project, forge, connected_to, caplog):
    forge_project(connected_to, name="web")
    payload = own_payload(forge, "push")
    caplog.set_level("INFO", logger="app.forges.deliveries")

    other = post_hook(hook_client, forge, "web", payload, PUSH_EVENTS[forge], delivery="delivery-to-web")
    unknown = post_hook(hook_client, forge, "nosuch", payload, PUSH_EVENTS[forge], delivery="delivery-to-nosuch")

    assert other.status_code == unknown.status_code == 404
    assert other.json == {**unknown.json, "reason": unknown.json["reason"].replace("'nosuch'", "'web'")}
    assert other.json["delivery"] is None
    assert f"Check the project name and the forge in the webhook URL, /hooks/{forge}/" in other.json["reason"]
    assert deliveries() == []
    assert runs() == []
    logged = caplog.text
    assert f"{forge} delivery delivery-to-web rejected: the project is connected to '{connected_to}'" in logged
    assert f"{forge} delivery delivery-to-nosuch rejected: no project is named 'nosuch'" in logged


@pytest.mark.parametrize("forge, connected_to", OTHER_FORGES)
def test_oversized_delivery_to_other_forge_looks_unknown(hook_client, forge_project, forge, connected_to, monkeypatch):
    forge_project(connected_to, name="web")
    monkeypatch.setitem(hook_client.application.config, "WEBHOOK_MAX_BYTES", 100)
    body = b"{" + b" " * 200 + b"}"

    other = post_hook(hook_client, forge, "web", body, PUSH_EVENTS[forge])
    unknown = post_hook(hook_client, forge, "nosuch", body, PUSH_EVENTS[forge])

    assert other.status_code == unknown.status_code == 413
    assert other.json == unknown.json
    assert other.json["delivery"] is None
    assert deliveries() == []


@pytest.mark.parametrize("forge, event", [("github", "ping"), ("bitbucket", "diagnostics:ping")])
def test_ping_answered(hook_client, forge_project, forge, event):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", own_payload("github", "ping"), event)
    assert response.status_code == 200
    assert "ping received" in response.json["reason"].lower()


@pytest.mark.parametrize("forge, event", [("github", "issues"), ("gitlab", "Note Hook"), ("bitbucket", "repo:fork")])
def test_unknown_event_ignored(hook_client, forge_project, forge, event):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", {"repository": {"full_name": "acme/web"}}, event)
    assert response.status_code == 200
    assert response.json["reason"].startswith("Ignored")
    assert runs() == []


def test_gitlab_header_and_kind_disagree(hook_client, forge_project):
    forge_project("gitlab")
    payload = own_payload("gitlab", "push")
    payload["object_kind"] = "merge_request"
    response = post_hook(hook_client, "gitlab", "web", payload, "Push Hook")
    assert response.status_code == 400
    assert "object_kind is 'merge_request', not 'push'" in response.json["reason"]
    assert runs() == []


FORK_CASES = [
    ("github", "pull_request_fork", "pull_request", {"ref": "refs/pull/7/head"}),
    ("gitlab", "merge_request_fork", "Merge Request Hook", {"ref": "refs/merge-requests/7/head"}),
    ("bitbucket", "pull_request_fork", "pullrequest:created", {"repository": "outsider/web", "ref": "refs/heads/feature/lexer"}),
]


@pytest.mark.parametrize("forge, name, event, fetch_ref", FORK_CASES)
def test_fork_pull_request_needs_approval(hook_client, forge_project, forge, name, event, fetch_ref):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", own_payload(forge, name), event)
    assert response.status_code == 202
    run = runs()[0]
    assert run.event == "pull_request"
    assert run.pull_request == 7
    assert run.branch == "feature/lexer"
    assert run.event_data["pullRequest"]["fork"] is True
    assert run.event_data["pullRequest"]["targetBranch"] == "main"
    assert run.event_data["fetchRef"] == fetch_ref
    assert run.approval_required is True


def test_fork_run_approved_through_api(client, forge_project):
    forge_project("github")
    response = post_hook(client, "github", "web", own_payload("github", "pull_request_fork"), "pull_request")
    run_id = response.json["run_id"]
    approved = client.post(f"/api/v1/runs/{run_id}/approve")
    assert approved.status_code == 200
    assert runs()[0].approved_at is not None
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "run_approve")).one()
    assert entry.target == f"run {run_id} (#1 of project web)"
    assert entry.outcome == "success"


def test_same_repository_pull_request_needs_no_approval(hook_client, forge_project):
    forge_project("github")
    payload = own_payload("github", "pull_request_fork")
    payload["pull_request"]["head"]["repo"]["full_name"] = "acme/web"
    post_hook(hook_client, "github", "web", payload, "pull_request")
    run = runs()[0]
    assert run.approval_required is False
    assert "fetchRef" not in run.event_data


def test_delivery_log_keeps_no_secret_header(hook_client, forge_project):
    forge_project("gitlab")
    post_hook(hook_client, "gitlab", "web", own_payload("gitlab", "push"), "Push Hook")
    stored = deliveries()[0]
    assert "x-gitlab-token" not in stored.headers
    assert SECRET not in json.dumps(stored.headers)
    assert stored.headers["x-gitlab-event"] == "Push Hook"


def test_signed_push_with_null_ref_rejected(hook_client, forge_project):
    forge_project("github")
    payload = own_payload("github", "push")
    payload["ref"] = None
    response = post_hook(hook_client, "github", "web", payload, "push")
    assert response.status_code == 400
    assert "'ref' field is null; expected a string" in response.json["reason"]
    assert runs() == []
    assert deliveries()[-1].status_code == 400
