"""Deliveries built to break the receiver: odd signatures, deep JSON, huge numbers, refs Git rejects."""

import io
import json

import pytest

from app.runs.events import MAX_MESSAGE_CHARACTERS
from tests.forges.conftest import own_payload, post_hook, signed_headers
from tests.forges.test_webhooks import OWN_PUSHES, deliveries, runs, set_branch

PULL_REQUESTS = [("github", "pull_request_fork", "pull_request"), ("gitlab", "merge_request_fork", "Merge Request Hook"),
                 ("bitbucket", "pull_request_fork", "pullrequest:created")]
# Each forge's field for the pull request number, as a path in the payload.
NUMBER_FIELDS = {"github": ("number",), "gitlab": ("object_attributes", "iid"), "bitbucket": ("pullrequest", "id")}
SOURCE_BRANCH_FIELDS = {"github": ("pull_request", "head", "ref"), "gitlab": ("object_attributes", "source_branch"),
                        "bitbucket": ("pullrequest", "source", "branch", "name")}
HEAD_COMMIT_FIELDS = {"github": ("pull_request", "head", "sha"), "gitlab": ("object_attributes", "last_commit", "id"),
                      "bitbucket": ("pullrequest", "source", "commit", "hash")}
SIGNATURE_HEADERS = {"github": "X-Hub-Signature-256", "gitlab": "X-Gitlab-Token", "bitbucket": "X-Hub-Signature"}
# Branch names that `git check-ref-format --branch` rejects, with a word its reason contains.
BAD_REF_NAMES = [
    ("line\nbreak", "'\\n'"),
    ("x" * 5000, "5000 characters"),
    ("--upload-pack=touch /tmp/owned", "' '"),
    ("--upload-pack=evil", "starts with '-'"),
    ("a..b", "'..'"),
    ("a@{1}", "'@{'"),
    ("a//b", "'//'"),
    ("/lead", "starts with '-' or '/'"),
    ("trail/", "ends with '/'"),
    ("dot.", "ends with '/' or '.'"),
    ("feature/x.lock", "'.lock'"),
    ("feature/.hidden", "starts with '.'"),
    ("tab\there", "'\\t'"),
    ("del\x7f", "'\\x7f'"),
    ("space here", "' '"),
    ("tilde~1", "'~'"),
    ("caret^", "'^'"),
    ("colon:", "':'"),
    ("ask?", "'?'"),
    ("star*", "'*'"),
    ("open[", "'['"),
    ("back\\slash", "'\\\\'"),
    ("@", "'@'"),
]


def set_path(document: dict, path: tuple[str, ...], value) -> dict:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def assert_rejected(response, *fragments: str) -> None:
    assert response.status_code == 400, response.json
    for fragment in fragments:
        assert fragment in response.json["reason"]
    assert runs() == []
    logged = deliveries()[-1]
    assert logged.status_code == 400
    assert logged.reason == response.json["reason"]


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
@pytest.mark.parametrize("value", ["sha256=é", "é", "sha256=" + "é" * 64, "token-ünïcode"])
def test_non_ascii_signature_rejected(hook_client, forge_project, forge, name, event, value):
    forge_project(forge)
    body = json.dumps(own_payload(forge, name)).encode()
    headers = signed_headers(forge, body, event)
    headers[SIGNATURE_HEADERS[forge]] = value

    response = post_hook(hook_client, forge, "web", body, event, headers=headers)

    assert response.status_code == 401
    assert SIGNATURE_HEADERS[forge] in response.json["reason"]
    assert runs() == []
    logged = deliveries()
    assert len(logged) == 1
    assert logged[0].status_code == 401
    assert logged[0].reason == response.json["reason"]
    assert logged[0].body is None


@pytest.mark.parametrize("forge", ["github", "bitbucket"])
def test_malformed_signature_reason_says_format(hook_client, forge_project, forge):
    forge_project(forge)
    body = json.dumps(own_payload(forge, "push")).encode()
    headers = signed_headers(forge, body, "repo:push" if forge == "bitbucket" else "push")
    headers[SIGNATURE_HEADERS[forge]] = "sha256=é"
    response = post_hook(hook_client, forge, "web", body, "", headers=headers)
    assert "'sha256=' followed by 64 hexadecimal digits" in response.json["reason"]


@pytest.mark.parametrize("forge, event", [("github", "push"), ("gitlab", "Push Hook"), ("bitbucket", "repo:push")])
@pytest.mark.parametrize("depth", [101, 5_000, 100_000])
def test_deeply_nested_json_rejected(hook_client, forge_project, forge, event, depth):
    forge_project(forge)
    body = b'{"a":' * depth + b"1" + b"}" * depth
    response = post_hook(hook_client, forge, "web", body, event)
    assert_rejected(response, "malformed JSON", "more than 100 levels deep")


def test_json_nesting_limit_is_100(hook_client, forge_project):
    forge_project("github")
    nested = 1
    for _ in range(99):
        nested = {"a": nested}
    too_deep = {**own_payload("github", "push"), "extra": {"a": nested}}
    deepest = {**own_payload("github", "push"), "extra": nested}
    assert post_hook(hook_client, "github", "web", too_deep, "push").status_code == 400
    response = post_hook(hook_client, "github", "web", deepest, "push")
    assert response.status_code == 202, response.json


def test_deep_delivery_page_shows_raw_body(client, forge_project):
    forge_project("github")
    post_hook(client, "github", "web", b"[" * 100_000 + b"]" * 100_000, "push")
    page = client.get(f"/projects/web/webhook-deliveries/{deliveries()[0].id}")
    assert page.status_code == 200
    assert "[[[[" in page.get_data(as_text=True)


@pytest.mark.parametrize("forge, name, event", PULL_REQUESTS)
@pytest.mark.parametrize("number, expected", [
    (10**30, "from 1 to 2147483647"), (2**31, "from 1 to 2147483647"), (0, "from 1 to 2147483647"),
    (-7, "from 1 to 2147483647"), ("7", "a string; expected a whole number"), (True, "true; expected a whole number"),
    (7.5, "the number 7.5; expected a whole number"), (None, "null; expected a whole number"),
])
def test_bad_pull_request_number_rejected(hook_client, forge_project, forge, name, event, number, expected):
    forge_project(forge)
    payload = set_path(own_payload(forge, name), NUMBER_FIELDS[forge], number)
    response = post_hook(hook_client, forge, "web", payload, event)
    assert_rejected(response, repr(".".join(NUMBER_FIELDS[forge])), expected)


@pytest.mark.parametrize("forge, name, event", PULL_REQUESTS)
def test_pull_request_number_limit_is_integer_max(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    over = set_path(own_payload(forge, name), NUMBER_FIELDS[forge], 2**31)
    assert post_hook(hook_client, forge, "web", over, event).status_code == 400
    payload = set_path(own_payload(forge, name), NUMBER_FIELDS[forge], 2**31 - 1)
    response = post_hook(hook_client, forge, "web", payload, event)
    assert response.status_code == 202, response.json
    assert runs()[0].pull_request == 2**31 - 1


def test_closed_pull_request_with_huge_number_rejected(hook_client, forge_project):
    forge_project("github")
    payload = own_payload("github", "pull_request_fork")
    payload["action"], payload["number"] = "closed", 10**30
    assert_rejected(post_hook(hook_client, "github", "web", payload, "pull_request"), "'number'")


def test_redeliver_of_id_beyond_integer_not_found(client, forge_project):
    forge_project("github")
    for delivery_id in (2**31, 99999999999999999999):
        response = client.post(f"/api/v1/projects/web/deliveries/{delivery_id}/redeliver")
        assert response.status_code == 404
        assert str(delivery_id) in response.json["detail"]


@pytest.mark.parametrize("forge, event", [("github", "push"), ("gitlab", "Push Hook"), ("bitbucket", "repo:push")])
@pytest.mark.parametrize("body, expected", [
    (b"null", "The body is JSON null; expected an object with the event's fields."),
    (b"[1, 2]", "The body is a JSON array; expected an object with the event's fields."),
    (b"17", "The body is a JSON number; expected an object with the event's fields."),
    (b'"text"', "The body is a JSON string; expected an object with the event's fields."),
])
def test_non_object_body_reason(hook_client, forge_project, forge, event, body, expected):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", body, event)
    assert_rejected(response)
    assert response.json["reason"] == expected


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
@pytest.mark.parametrize("ref, shown", [(5, "the number 5"), ([], "an array"), ({}, "an object"), (True, "true")])
def test_push_ref_of_wrong_type_reason(hook_client, forge_project, forge, name, event, ref, shown):
    forge_project(forge)
    payload = own_payload(forge, name)
    path = ("push", "changes", 0, "new", "name") if forge == "bitbucket" else ("ref",)
    set_path(payload, path, ref)
    response = post_hook(hook_client, forge, "web", payload, event)
    field_name = "push.changes.0.new.name" if forge == "bitbucket" else "ref"
    assert_rejected(response, f"{field_name!r} field is {shown}; expected a string")
    assert "removeprefix" not in response.json["reason"]
    assert "object has no attribute" not in response.json["reason"]


@pytest.mark.parametrize("field_path", [("head_commit", "message"), ("head_commit", "author", "username"),
                                        ("repository", "full_name")])
def test_text_field_of_wrong_type_rejected(hook_client, forge_project, field_path):
    forge_project("github")
    payload = set_path(own_payload("github", "push"), field_path, {"nested": True})
    response = post_hook(hook_client, "github", "web", payload, "push")
    assert_rejected(response, repr(".".join(field_path)), "an object; expected a string")


@pytest.mark.parametrize("message", ["nul \x00 inside", "lone \ud800 surrogate"])
def test_unstorable_text_rejected(hook_client, forge_project, message):
    forge_project("github")
    payload = own_payload("github", "push")
    payload["head_commit"]["message"] = message
    response = post_hook(hook_client, "github", "web", json.dumps(payload).encode(), "push")
    assert_rejected(response, "'head_commit.message'")


def test_huge_commit_message_is_cut(hook_client, forge_project):
    forge_project("github")
    payload = own_payload("github", "push")
    payload["head_commit"]["message"] = "x" * 4_000_000
    response = post_hook(hook_client, "github", "web", json.dumps(payload).encode(), "push")
    assert response.status_code in (200, 201, 202), response.json
    (run,) = runs()
    assert run.message.startswith("x" * MAX_MESSAGE_CHARACTERS + "...")
    assert len(run.message) < MAX_MESSAGE_CHARACTERS + 100
    assert run.event_data["message"] == run.message


def test_chunked_body_over_limit_reason(hook_client, forge_project, monkeypatch):
    forge_project("github")
    monkeypatch.setitem(hook_client.application.config, "WEBHOOK_MAX_BYTES", 1000)
    body = b"{" + b" " * 5000 + b"}"
    headers = {**signed_headers("github", body, "push"), "Transfer-Encoding": "chunked"}
    response = hook_client.post("/hooks/github/web", input_stream=io.BytesIO(body), headers=headers,
                                environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert "more than that" not in response.json["reason"]
    assert "over the limit of 1000 bytes" in response.json["reason"]
    assert "DENO_CI_WEBHOOK_MAX_BYTES" in response.json["reason"]
    assert deliveries()[0].status_code == 413


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
@pytest.mark.parametrize("branch, expected", BAD_REF_NAMES, ids=[repr(case[0][:30]) for case in BAD_REF_NAMES])
def test_push_of_invalid_branch_rejected(hook_client, forge_project, forge, name, event, branch, expected):
    forge_project(forge)
    response = post_hook(hook_client, forge, "web", set_branch(forge, own_payload(forge, name), branch), event)
    assert_rejected(response, "not a valid Git ref name", expected)


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_branch_name_limit_is_255(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    too_long = set_branch(forge, own_payload(forge, name), "feature/" + "b" * 248)
    assert post_hook(hook_client, forge, "web", too_long, event).status_code == 400
    branch = "feature/" + "b" * 247
    response = post_hook(hook_client, forge, "web", set_branch(forge, own_payload(forge, name), branch), event)
    assert response.status_code == 202, response.json
    assert runs()[0].branch == branch


@pytest.mark.parametrize("forge, name, event", OWN_PUSHES)
def test_push_of_invalid_tag_rejected(hook_client, forge_project, forge, name, event):
    forge_project(forge)
    payload = own_payload(forge, name)
    if forge == "bitbucket":
        payload["push"]["changes"][0]["new"].update(type="tag", name="-v1")
    else:
        payload["ref"] = "refs/tags/-v1"
    assert_rejected(post_hook(hook_client, forge, "web", payload, event), "tag '-v1'", "starts with '-'")


@pytest.mark.parametrize("forge, name, event", PULL_REQUESTS)
@pytest.mark.parametrize("branch", ["--upload-pack=evil", "new\nline", "y" * 300])
def test_pull_request_of_invalid_branch_rejected(hook_client, forge_project, forge, name, event, branch):
    forge_project(forge)
    payload = set_path(own_payload(forge, name), SOURCE_BRANCH_FIELDS[forge], branch)
    response = post_hook(hook_client, forge, "web", payload, event)
    assert_rejected(response, repr(".".join(SOURCE_BRANCH_FIELDS[forge])), "not a valid Git ref name")


@pytest.mark.parametrize("forge, name, event", PULL_REQUESTS)
@pytest.mark.parametrize("commit", ["--upload-pack=evil", "abc", "g" * 40, "a" * 65, 1234])
def test_pull_request_of_invalid_commit_rejected(hook_client, forge_project, forge, name, event, commit):
    forge_project(forge)
    payload = set_path(own_payload(forge, name), HEAD_COMMIT_FIELDS[forge], commit)
    response = post_hook(hook_client, forge, "web", payload, event)
    assert_rejected(response, repr(".".join(HEAD_COMMIT_FIELDS[forge])), "4 to 64 hexadecimal digits")


@pytest.mark.parametrize("field_path", [("after",), ("before",), ("head_commit", "id")])
def test_push_of_invalid_commit_rejected(hook_client, forge_project, field_path):
    forge_project("github")
    payload = set_path(own_payload("github", "push"), field_path, "--upload-pack=evil")
    if field_path == ("after",):
        payload["head_commit"] = None
    response = post_hook(hook_client, "github", "web", payload, "push")
    assert_rejected(response, repr(".".join(field_path)), "4 to 64 hexadecimal digits")


def test_deliveries_listed_by_page(client, forge_project):
    forge_project("github")
    for _ in range(5):
        post_hook(client, "github", "web", b"{bad", "push")
    ids = [row.id for row in reversed(deliveries())]

    first = client.get("/api/v1/projects/web/deliveries?per_page=2")
    second = client.get("/api/v1/projects/web/deliveries?per_page=2&page=3")

    assert first.status_code == 200
    assert [row["id"] for row in first.json["deliveries"]] == ids[:2]
    assert first.json["total"] == 5
    assert first.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in first.headers["Link"]
    assert "page=2" in first.headers["Link"]
    assert [row["id"] for row in second.json["deliveries"]] == ids[4:]
    assert 'rel="next"' not in second.headers["Link"]


def test_deliveries_page_arguments_checked(client, forge_project):
    forge_project("github")
    response = client.get("/api/v1/projects/web/deliveries?per_page=1000")
    assert response.status_code == 422
    assert "'per_page'" in response.json["detail"]


class _CutOffBody(io.RawIOBase):
    """A request body whose sender stopped in the middle, as gunicorn reports it to the application."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        from gunicorn.http.errors import ChunkMissingTerminator

        raise ChunkMissingTerminator(b"\r")


@pytest.mark.parametrize("path", ["/hooks/github/web", "/api/v1/projects/web/runs"])
def test_cut_off_body_gets_400(hook_client, forge_project, path, caplog):
    forge_project("github")
    response = hook_client.post(path, headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
                                environ_overrides={"wsgi.input": _CutOffBody(), "CONTENT_LENGTH": "100"})
    assert response.status_code == 400
    assert "The request body ended early or is malformed" in response.get_data(as_text=True)
    assert "Traceback" not in caplog.text
