"""Each forge client's `commit_file` against a fake forge on 127.0.0.1: exact requests, conflicts and refusals."""

import base64
import json
from urllib.parse import parse_qs

import pytest

from app.forges import get_forge
from app.forges.base import FileChange, FileConflictError, ForgeError, ForgeResponseError

TEXT = 'import { Pipeline } from "deno-ci";\n\nexport default new Pipeline();\n'
ENCODED = base64.b64encode(TEXT.encode()).decode()
BASE = "b" * 40
NEW_COMMIT = "c" * 40
CHANGE = FileChange(path="ci/deno pipeline.ts", content=TEXT, branch="main", message="Update the pipeline",
                    author_name="ada", author_email="ada@example.com", base_commit=BASE)

GITHUB_FILE = "/api/repos/acme/web/contents/ci/deno%20pipeline.ts"
GITLAB_FILE = "/api/v4/projects/acme%2Fweb/repository/files/ci%2Fdeno%20pipeline.ts"
GITLAB_COMMITS = "/api/v4/projects/acme%2Fweb/repository/commits"
BITBUCKET_SRC = "/2.0/repositories/acme/web/src"


def form(request: dict) -> dict:
    return {key: values[0] for key, values in parse_qs(request["body"].decode(), keep_blank_values=True).items()}


def test_github_commit_requests(fake_forge):
    fake_forge.answer("GET", f"{GITHUB_FILE}?ref={BASE}", {"type": "file", "sha": "blob-1", "path": CHANGE.path})
    fake_forge.answer("PUT", GITHUB_FILE, {"content": {"sha": "blob-2"}, "commit": {"sha": NEW_COMMIT}})

    commit = get_forge("github").commit_file("tok-1", "acme/web", CHANGE)

    read, write = fake_forge.requests
    assert commit == NEW_COMMIT
    assert (read["method"], read["path"]) == ("GET", f"{GITHUB_FILE}?ref={BASE}")
    assert (write["method"], write["path"]) == ("PUT", GITHUB_FILE)
    for sent in (read, write):
        assert sent["headers"]["Authorization"] == "Bearer tok-1"
        assert sent["headers"]["Accept"] == "application/vnd.github+json"
        assert sent["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert write["headers"]["Content-Type"] == "application/json"
    assert json.loads(write["body"]) == {
        "message": "Update the pipeline", "content": ENCODED, "branch": "main", "sha": "blob-1",
        "author": {"name": "ada", "email": "ada@example.com"},
    }


def test_github_new_file_sent_without_sha(fake_forge):
    fake_forge.answer("GET", f"{GITHUB_FILE}?ref={BASE}", {"message": "Not Found"}, status=404)
    fake_forge.answer("PUT", GITHUB_FILE, {"commit": {"sha": NEW_COMMIT}}, status=201)

    assert get_forge("github").commit_file("tok-1", "acme/web", CHANGE) == NEW_COMMIT
    assert "sha" not in fake_forge.json_body()


def test_github_reads_branch_without_base(fake_forge):
    change = FileChange(**{**CHANGE.__dict__, "base_commit": None})
    fake_forge.answer("GET", f"{GITHUB_FILE}?ref=main", {"type": "file", "sha": "blob-1"})
    fake_forge.answer("PUT", GITHUB_FILE, {"commit": {"sha": NEW_COMMIT}})

    get_forge("github").commit_file("tok-1", "acme/web", change)

    assert fake_forge.requests[0]["path"] == f"{GITHUB_FILE}?ref=main"


def test_gitlab_commit_requests(fake_forge):
    fake_forge.answer("GET", f"{GITLAB_FILE}?ref={BASE}", {"file_path": CHANGE.path, "last_commit_id": "l" * 40})
    fake_forge.answer("POST", GITLAB_COMMITS, {"id": NEW_COMMIT, "short_id": NEW_COMMIT[:8]}, status=201)

    commit = get_forge("gitlab").commit_file("tok-2", "acme/web", CHANGE)

    read, write = fake_forge.requests
    assert commit == NEW_COMMIT
    assert (read["method"], read["path"]) == ("GET", f"{GITLAB_FILE}?ref={BASE}")
    assert (write["method"], write["path"]) == ("POST", GITLAB_COMMITS)
    assert read["headers"]["Authorization"] == write["headers"]["Authorization"] == "Bearer tok-2"
    assert write["headers"]["Content-Type"] == "application/json"
    assert json.loads(write["body"]) == {
        "branch": "main", "commit_message": "Update the pipeline", "author_name": "ada",
        "author_email": "ada@example.com",
        "actions": [{"action": "update", "file_path": CHANGE.path, "encoding": "base64", "content": ENCODED,
                     "last_commit_id": "l" * 40}],
    }


def test_gitlab_missing_file_is_created(fake_forge):
    fake_forge.answer("GET", f"{GITLAB_FILE}?ref={BASE}", {"message": "404 File Not Found"}, status=404)
    fake_forge.answer("POST", GITLAB_COMMITS, {"id": NEW_COMMIT}, status=201)

    get_forge("gitlab").commit_file("tok-2", "acme/web", CHANGE)

    action = fake_forge.json_body()["actions"][0]
    assert action["action"] == "create"
    assert "last_commit_id" not in action


def test_bitbucket_commit_request(fake_forge):
    location = f"{fake_forge.url}/2.0/repositories/acme/web/commit/{NEW_COMMIT}"
    fake_forge.answer("POST", BITBUCKET_SRC, {}, status=201, headers={"Location": location})

    commit = get_forge("bitbucket").commit_file("tok-3", "acme/web", CHANGE)

    [sent] = fake_forge.requests
    assert commit == NEW_COMMIT
    assert (sent["method"], sent["path"]) == ("POST", BITBUCKET_SRC)
    assert sent["headers"]["Authorization"] == "Bearer tok-3"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(sent) == {"/ci/deno pipeline.ts": TEXT, "message": "Update the pipeline", "branch": "main",
                          "author": "ada <ada@example.com>", "parents": BASE}


def test_bitbucket_answer_without_location_raises(fake_forge):
    fake_forge.answer("POST", BITBUCKET_SRC, {}, status=201)
    with pytest.raises(ForgeError, match="Location"):
        get_forge("bitbucket").commit_file("tok-3", "acme/web", CHANGE)


GITLAB_STALE = "You are attempting to update a file that has changed since you started editing it."
# (forge, planned reads, the write that fails, its status, its response body)
CONFLICT_CASES = [
    ("github", [("GET", f"{GITHUB_FILE}?ref={BASE}", {"type": "file", "sha": "blob-1"})], ("PUT", GITHUB_FILE), 409,
     {"message": "is at blob-9 but expected blob-1"}),
    ("gitlab", [("GET", f"{GITLAB_FILE}?ref={BASE}", {"last_commit_id": "l" * 40})], ("POST", GITLAB_COMMITS), 400,
     {"message": GITLAB_STALE}),
    ("bitbucket", [], ("POST", BITBUCKET_SRC), 409, {"type": "error", "error": {"message": "parents mismatch"}}),
]


@pytest.mark.parametrize("forge_name, reads, write, status, answer", CONFLICT_CASES)
def test_conflict_raises_file_conflict(fake_forge, forge_name, reads, write, status, answer):
    for method, path, document in reads:
        fake_forge.answer(method, path, document)
    fake_forge.answer(*write, answer, status=status)

    with pytest.raises(FileConflictError) as raised:
        get_forge(forge_name).commit_file("tok", "acme/web", CHANGE)

    assert raised.value.status_code == status


@pytest.mark.parametrize("forge_name, reads, write, status, answer", CONFLICT_CASES)
def test_forbidden_push_is_no_conflict(fake_forge, forge_name, reads, write, status, answer):
    for method, path, document in reads:
        fake_forge.answer(method, path, document)
    fake_forge.answer(*write, {"message": "You are not allowed to push into this branch"}, status=403)

    with pytest.raises(ForgeResponseError) as raised:
        get_forge(forge_name).commit_file("tok", "acme/web", CHANGE)

    assert not isinstance(raised.value, FileConflictError)
    assert raised.value.status_code == 403


def test_gitlab_other_bad_request_is_no_conflict(fake_forge):
    fake_forge.answer("GET", f"{GITLAB_FILE}?ref={BASE}", {"last_commit_id": "l" * 40})
    fake_forge.answer("POST", GITLAB_COMMITS, {"message": "You can only create or edit files when you are on a branch"},
                      status=400)

    with pytest.raises(ForgeResponseError) as raised:
        get_forge("gitlab").commit_file("tok", "acme/web", CHANGE)

    assert not isinstance(raised.value, FileConflictError)
