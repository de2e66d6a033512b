"""Each forge's API client against a fake forge on 127.0.0.1: exact method, path, headers and body."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from app.forges import get_forge
from app.forges.base import CommitState, ForgeError


def form(request: dict) -> dict:
    return {key: values[0] for key, values in parse_qs(request["body"].decode()).items()}


STATUS_CASES = [
    ("github", "/api/repos/acme/web/statuses/abc123", CommitState.FAILURE,
     {"state": "failure", "target_url": "http://ci.test/runs/5", "description": "Run #1 failed", "context": "deno-ci"}),
    ("gitlab", "/api/v4/projects/acme%2Fweb/statuses/abc123", CommitState.RUNNING,
     {"state": "running", "name": "deno-ci", "target_url": "http://ci.test/runs/5", "description": "Run #1 failed",
      "ref": "feature/ü#1"}),
    ("bitbucket", "/2.0/repositories/acme/web/commit/abc123/statuses/build", CommitState.SUCCESS,
     {"key": "deno-ci", "state": "SUCCESSFUL", "name": "deno-ci", "url": "http://ci.test/runs/5",
      "description": "Run #1 failed"}),
]


@pytest.mark.parametrize("forge_name, path, state, body", STATUS_CASES)
def test_report_status_request(fake_forge, forge_name, path, state, body):
    fake_forge.answer("POST", path, {"id": 1}, status=201)
    get_forge(forge_name).report_status("tok-1", "acme/web", "abc123", state, target_url="http://ci.test/runs/5",
                                        description="Run #1 failed", context="deno-ci", ref="feature/ü#1")
    sent = fake_forge.requests[-1]
    assert sent["method"] == "POST"
    assert sent["path"] == path
    assert sent["headers"]["Authorization"] == "Bearer tok-1"
    assert json.loads(sent["body"]) == body
    if forge_name == "github":
        assert sent["headers"]["Accept"] == "application/vnd.github+json"
        assert sent["headers"]["X-GitHub-Api-Version"] == "2022-11-28"


def test_report_status_error_raises(fake_forge):
    fake_forge.answer("POST", "/api/repos/acme/web/statuses/abc", {"message": "Bad credentials"}, status=401)
    with pytest.raises(ForgeError, match="HTTP 401"):
        get_forge("github").report_status("tok-1", "acme/web", "abc", CommitState.PENDING, target_url="u",
                                          description="d", context="deno-ci")


def test_repository_path_encoded_once(fake_forge):
    fake_forge.answer("POST", "/api/v4/projects/group%2Fsub%20group%2Fweb/hooks", {"id": 3}, status=201)
    assert get_forge("gitlab").create_webhook("tok", "group/sub group/web", "http://ci.test/hooks/gitlab/web", "sec") == "3"


HOOK_CASES = [
    ("github", "/api/repos/acme/web/hooks", {"id": 77},
     {"name": "web", "active": True, "events": ["push", "pull_request"],
      "config": {"url": "http://ci.test/hooks/github/web", "content_type": "json", "secret": "hook-secret",
                 "insecure_ssl": "0"}}, "77"),
    ("gitlab", "/api/v4/projects/acme%2Fweb/hooks", {"id": 78},
     {"url": "http://ci.test/hooks/gitlab/web", "token": "hook-secret", "push_events": True, "tag_push_events": True,
      "merge_requests_events": True, "enable_ssl_verification": True}, "78"),
    ("bitbucket", "/2.0/repositories/acme/web/hooks", {"uuid": "{h-79}"},
     {"description": "Deno CI", "url": "http://ci.test/hooks/bitbucket/web", "active": True, "secret": "hook-secret",
      "events": ["repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled",
                 "pullrequest:rejected"]}, "{h-79}"),
]


@pytest.mark.parametrize("forge_name, path, answer, body, hook_id", HOOK_CASES)
def test_create_webhook_request(fake_forge, forge_name, path, answer, body, hook_id):
    fake_forge.answer("POST", path, answer, status=201)
    created = get_forge(forge_name).create_webhook("tok-2", "acme/web", f"http://ci.test/hooks/{forge_name}/web", "hook-secret")
    sent = fake_forge.requests[-1]
    assert created == hook_id
    assert (sent["method"], sent["path"]) == ("POST", path)
    assert sent["headers"]["Authorization"] == "Bearer tok-2"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == body


TOKEN_CASES = [
    ("github", "/login/oauth/access_token",
     {"client_id": "github-client", "client_secret": "github-client-secret", "code": "the-code",
      "redirect_uri": "http://ci.test/auth/github/callback", "code_verifier": "verifier"}),
    ("gitlab", "/oauth/token",
     {"client_id": "gitlab-client", "client_secret": "gitlab-client-secret", "grant_type": "authorization_code",
      "code": "the-code", "redirect_uri": "http://ci.test/auth/gitlab/callback", "code_verifier": "verifier"}),
    ("bitbucket", "/site/oauth2/access_token",
     {"grant_type": "authorization_code", "code": "the-code", "redirect_uri": "http://ci.test/auth/bitbucket/callback",
      "code_verifier": "verifier"}),
]


@pytest.mark.parametrize("forge_name, path, fields", TOKEN_CASES)
def test_token_exchange_request(fake_forge, forge_name, path, fields):
    fake_forge.answer("POST", path, {"access_token": "at", "refresh_token": "rt", "expires_in": 7200, "token_type": "bearer"})
    tokens = get_forge(forge_name).exchange_code("the-code", f"http://ci.test/auth/{forge_name}/callback", "verifier")
    sent = fake_forge.requests[-1]
    assert (sent["method"], sent["path"]) == ("POST", path)
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["headers"]["Accept"] == "application/json"
    assert form(sent) == fields
    if forge_name == "bitbucket":
        expected = base64.b64encode(b"bitbucket-client:bitbucket-client-secret").decode()
        assert sent["headers"]["Authorization"] == f"Basic {expected}"
    assert (tokens.access_token, tokens.refresh_token) == ("at", "rt")
    assert tokens.expires_at is not None


def test_github_token_error_in_body_raises(fake_forge):
    # GitHub answers a bad code with HTTP 200 and an error field.
    fake_forge.answer("POST", "/login/oauth/access_token", {"error": "bad_verification_code",
                                                           "error_description": "The code is incorrect."})
    with pytest.raises(ForgeError, match="The code is incorrect"):
        get_forge("github").exchange_code("bad", "http://ci.test/cb", "v")


@pytest.mark.parametrize("forge_name", ["github", "gitlab", "bitbucket"])
def test_authorize_url_has_state_and_pkce(fake_forge, forge_name):
    url = get_forge(forge_name).authorize_url("http://ci.test/cb", "state-1", "challenge-1")
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(fake_forge.url)
    assert query["state"] == "state-1"
    assert query["code_challenge"] == "challenge-1"
    assert query["code_challenge_method"] == "S256"
    assert query["client_id"] == f"{forge_name}-client"
    assert query["redirect_uri"] == "http://ci.test/cb"


def test_github_repositories_follow_pages(fake_forge):
    first = "/api/user/repos?per_page=100&sort=full_name"
    second = "/api/user/repos?per_page=100&sort=full_name&page=2"
    fake_forge.answer("GET", first, [
        {"full_name": "acme/web", "clone_url": "https://x/acme/web.git", "default_branch": "main", "private": True,
         "permissions": {"admin": True}},
        {"full_name": "acme/read-only", "clone_url": "https://x/ro.git", "permissions": {"admin": False}},
    ], headers={"Link": f'<{fake_forge.url}{second}>; rel="next"'})
    fake_forge.answer("GET", second, [
        {"full_name": "acme/api", "clone_url": "https://x/acme/api.git", "default_branch": "trunk",
         "permissions": {"admin": True}},
    ])
    found = get_forge("github").admin_repositories("tok-3")
    assert [repo.full_name for repo in found] == ["acme/web", "acme/api"]
    assert found[1].default_branch == "trunk"
    assert [request["path"] for request in fake_forge.requests] == [first, second]
    assert all(request["headers"]["Authorization"] == "Bearer tok-3" for request in fake_forge.requests)


def test_gitlab_repositories_need_maintainer(fake_forge):
    path = "/api/v4/projects?min_access_level=40&per_page=100&order_by=path&sort=asc"
    fake_forge.answer("GET", path, [{"path_with_namespace": "acme/web", "http_url_to_repo": "https://x/acme/web.git",
                                     "default_branch": "main", "visibility": "private"}])
    found = get_forge("gitlab").admin_repositories("tok-4")
    assert fake_forge.requests[-1]["path"] == path
    assert [(repo.full_name, repo.private) for repo in found] == [("acme/web", True)]


def test_bitbucket_repositories_follow_next(fake_forge):
    first = "/2.0/repositories?role=admin&pagelen=100"
    fake_forge.answer("GET", first, {"values": [
        {"full_name": "acme/web", "is_private": True, "mainbranch": {"name": "main"},
         "links": {"clone": [{"name": "https", "href": "https://x/acme/web.git"}]}}],
        "next": f"{fake_forge.url}/2.0/repositories?role=admin&pagelen=100&page=2"})
    fake_forge.answer("GET", "/2.0/repositories?role=admin&pagelen=100&page=2", {"values": [
        {"full_name": "acme/api", "links": {"clone": []}}]})
    found = get_forge("bitbucket").admin_repositories("tok-5")
    assert [repo.full_name for repo in found] == ["acme/web", "acme/api"]
    assert found[0].clone_url == "https://x/acme/web.git"
    assert found[1].clone_url == f"{fake_forge.url}/acme/api.git"


@pytest.mark.parametrize("forge_name, user", [("github", "x-access-token"), ("gitlab", "oauth2"), ("bitbucket", "x-token-auth")])
def test_clone_url_carries_token(fake_forge, forge_name, user):
    forge = get_forge(forge_name)
    host = fake_forge.url.removeprefix("http://")
    assert forge.clone_url("acme/web", "t/k") == f"http://{user}:t%2Fk@{host}/acme/web.git"
    assert forge.clone_url("acme/web") == f"http://{host}/acme/web.git"
