"""GitHub's REST API and OAuth web flow.

Endpoints: `/login/oauth/authorize` and `/login/oauth/access_token` on the web address;
`/user`, `/user/repos`, `/repos/{owner}/{repo}/hooks`, `/repos/{owner}/{repo}/statuses/{sha}`
and `/repos/{owner}/{repo}/contents/{path}` on the API address (api.github.com, or
`https://HOST/api/v3` for GitHub Enterprise Server).
"""

import base64
from urllib.parse import quote, urlencode, urlsplit

from app.forges import http
from app.forges.base import (CommitState, FileChange, FileConflictError, ForgeError, ForgeResponseError, ForgeUser,
                             Repository, TokenSet)

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# repo: statuses and private clones; admin:repo_hook: creating webhooks.
SCOPES = "repo admin:repo_hook read:user user:email"
# GitHub has no "running" or "cancelled" status: running is pending, cancelled is error.
STATES = {
    CommitState.PENDING: "pending", CommitState.RUNNING: "pending", CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failure", CommitState.ERROR: "error", CommitState.CANCELLED: "error",
}
EVENTS = ["push", "pull_request"]


def repository_path(full_name: str) -> str:
    """Return "owner/name" with each part percent-encoded once, for an API path."""
    owner, _, name = full_name.partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"



class Client:
    """The API half of the GitHub forge."""

    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = urlencode({
            "client_id": self.settings.client_id, "redirect_uri": redirect_uri, "scope": SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256",
        })
        return f"{self.settings.web_url}/login/oauth/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return self._token_request({"code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token_request(self, fields: dict) -> TokenSet:
        # GitHub answers token requests with HTTP 200 and an "error" field, so the body is checked.
        response = http.request("POST", f"{self.settings.web_url}/login/oauth/access_token",
                                headers={"Accept": "application/json"},
                                data={"client_id": self.settings.client_id,
                                      "client_secret": self.settings.client_secret, **fields})
        return http.token_set(http.json_of(response), "GitHub")

    def current_user(self, token: str) -> ForgeUser:
        document = http.json_of(http.request("GET", f"{self.settings.api_url}/user", token=token, headers=API_HEADERS))
        return ForgeUser(id=str(document["id"]), login=document["login"], email=document.get("email"))

    def admin_repositories(self, token: str) -> list[Repository]:
        url = f"{self.settings.api_url}/user/repos?" + urlencode({"per_page": 100, "sort": "full_name"})
        found = []
        while url:
            response = http.request("GET", url, token=token, headers=API_HEADERS)
            found += [
                Repository(item["full_name"], item["clone_url"], item.get("default_branch") or "main", bool(item.get("private")))
                for item in http.json_of(response) if (item.get("permissions") or {}).get("admin")
            ]
            url = response.links.get("next", {}).get("url")
        return found

    def create_webhook(self, token: str, repository: str, url: str, secret: str) -> str:
        body = {"name": "web", "active": True, "events": EVENTS,
                "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}}
        response = http.request("POST", f"{self.settings.api_url}/repos/{repository_path(repository)}/hooks",
                                token=token, headers=API_HEADERS, json=body)
        return str(http.json_of(response)["id"])

    def report_status(self, token: str, repository: str, sha: str, state: CommitState, *,
                      target_url: str, description: str, context: str, ref: str | None = None) -> None:
        body = {"state": STATES[state], "target_url": target_url, "description": description[:140], "context": context}
        http.request("POST", f"{self.settings.api_url}/repos/{repository_path(repository)}/statuses/{quote(sha, safe='')}",
                     token=token, headers=API_HEADERS, json=body)

    def commit_file(self, token: str, repository: str, change: FileChange) -> str:
        url = f"{self.settings.api_url}/repos/{repository_path(repository)}/contents/{quote(change.path)}"
        # The blob id at the base commit, because GitHub returns 409 when the file on the branch is another blob.
        current = self._blob_id(token, url, change.base_commit or change.branch)
        body = {"message": change.message, "content": base64.b64encode(change.content.encode()).decode(),
                "branch": change.branch, "author": {"name": change.author_name, "email": change.author_email}}
        if current is not None:
            body["sha"] = current
        try:
            response = http.request("PUT", url, token=token, headers=API_HEADERS, json=body)
        except ForgeResponseError as error:
            # 422 without a sha: someone created the file on the branch after the base commit.
            if error.status_code == 409 or (error.status_code == 422 and current is None):
                raise FileConflictError(str(error), error.status_code, error.text) from error
            raise
        return str(http.json_of(response)["commit"]["sha"])

    def _blob_id(self, token: str, url: str, ref: str) -> str | None:
        try:
            response = http.request("GET", f"{url}?{urlencode({'ref': ref})}", token=token, headers=API_HEADERS)
        except ForgeResponseError as error:
            if error.status_code == 404:
                return None
            raise
        document = http.json_of(response)
        if not isinstance(document, dict) or document.get("type") != "file":
            raise ForgeError(f"GET {url} at {ref!r} did not return a file: the path is a folder or a link")
        return str(document["sha"])

    def clone_url(self, repository: str, token: str | None = None) -> str:
        address = urlsplit(self.settings.web_url)
        credentials = f"x-access-token:{quote(token, safe='')}@" if token else ""
        return f"{address.scheme}://{credentials}{address.netloc}{address.path}/{repository_path(repository)}.git"
