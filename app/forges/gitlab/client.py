"""GitLab's REST API (v4) and OAuth.

Endpoints: `/oauth/authorize` and `/oauth/token` on the web address; `/user`,
`/projects`, `/projects/:id/hooks`, `/projects/:id/statuses/:sha`,
`/projects/:id/repository/files/:file_path` and `/projects/:id/repository/commits` under
`/api/v4`, where `:id` is the URL-encoded "group/project" path.
"""

import base64
from urllib.parse import quote, urlencode, urlsplit

from app.forges import http
from app.forges.base import CommitState, FileChange, FileConflictError, ForgeResponseError, ForgeUser, Repository, TokenSet

SCOPES = "api read_user"
# Maintainer: the lowest role that may add webhooks.
MAINTAINER_ACCESS = 40
# GitLab rejects a stale `last_commit_id`, or a create of a file that exists meanwhile, with
# HTTP 400 and one of these phrases. Other 400 responses are not conflicts.
CONFLICT_PHRASES = ("has changed since you started editing", "already exists")
STATES = {
    CommitState.PENDING: "pending", CommitState.RUNNING: "running", CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failed", CommitState.ERROR: "failed", CommitState.CANCELLED: "canceled",
}


def project_id(full_name: str) -> str:
    """Return the URL-encoded project path that GitLab accepts as `:id` ("group%2Fproject")."""
    return quote(full_name, safe="")



class Client:
    """The API half of the GitLab forge."""

    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = urlencode({
            "client_id": self.settings.client_id, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": SCOPES, "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256",
        })
        return f"{self.settings.web_url}/oauth/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return self._token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                    "code_verifier": code_verifier})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token_request(self, fields: dict) -> TokenSet:
        response = http.request("POST", f"{self.settings.web_url}/oauth/token", headers={"Accept": "application/json"},
                                data={"client_id": self.settings.client_id,
                                      "client_secret": self.settings.client_secret, **fields})
        return http.token_set(http.json_of(response), "GitLab")

    def current_user(self, token: str) -> ForgeUser:
        document = http.json_of(http.request("GET", f"{self.settings.api_url}/user", token=token))
        return ForgeUser(id=str(document["id"]), login=document["username"], email=document.get("email"))

    def admin_repositories(self, token: str) -> list[Repository]:
        query = urlencode({"min_access_level": MAINTAINER_ACCESS, "per_page": 100, "order_by": "path", "sort": "asc"})
        url = f"{self.settings.api_url}/projects?{query}"
        found = []
        while url:
            response = http.request("GET", url, token=token)
            found += [
                Repository(item["path_with_namespace"], item["http_url_to_repo"], item.get("default_branch") or "main",
                           item.get("visibility") != "public")
                for item in http.json_of(response)
            ]
            url = response.links.get("next", {}).get("url")
        return found

    def create_webhook(self, token: str, repository: str, url: str, secret: str) -> str:
        body = {"url": url, "token": secret, "push_events": True, "tag_push_events": True,
                "merge_requests_events": True, "enable_ssl_verification": True}
        response = http.request("POST", f"{self.settings.api_url}/projects/{project_id(repository)}/hooks",
                                token=token, json=body)
        return str(http.json_of(response)["id"])

    def report_status(self, token: str, repository: str, sha: str, state: CommitState, *,
                      target_url: str, description: str, context: str, ref: str | None = None) -> None:
        body = {"state": STATES[state], "name": context, "target_url": target_url, "description": description[:255]}
        if ref:
            body["ref"] = ref
        http.request("POST", f"{self.settings.api_url}/projects/{project_id(repository)}/statuses/{quote(sha, safe='')}",
                     token=token, json=body)

    def commit_file(self, token: str, repository: str, change: FileChange) -> str:
        base = f"{self.settings.api_url}/projects/{project_id(repository)}/repository"
        last_commit = self._last_commit_of(token, base, change.path, change.base_commit or change.branch)
        action = {"action": "update" if last_commit else "create", "file_path": change.path, "encoding": "base64",
                  "content": base64.b64encode(change.content.encode()).decode()}
        if last_commit:
            # GitLab rejects the update when a later commit on the branch changed the file.
            action["last_commit_id"] = last_commit
        body = {"branch": change.branch, "commit_message": change.message, "author_name": change.author_name,
                "author_email": change.author_email, "actions": [action]}
        try:
            response = http.request("POST", f"{base}/commits", token=token, json=body)
        except ForgeResponseError as error:
            conflict = error.status_code == 409 or (
                error.status_code == 400 and any(phrase in error.text for phrase in CONFLICT_PHRASES))
            if conflict:
                raise FileConflictError(str(error), error.status_code, error.text) from error
            raise
        return str(http.json_of(response)["id"])

    def _last_commit_of(self, token: str, base: str, path: str, ref: str) -> str | None:
        """Return the id of the last commit that changed `path` as of `ref`, or None when the file is missing there."""
        url = f"{base}/files/{quote(path, safe='')}?{urlencode({'ref': ref})}"
        try:
            return str(http.json_of(http.request("GET", url, token=token))["last_commit_id"])
        except ForgeResponseError as error:
            if error.status_code == 404:
                return None
            raise

    def clone_url(self, repository: str, token: str | None = None) -> str:
        address = urlsplit(self.settings.web_url)
        credentials = f"oauth2:{quote(token, safe='')}@" if token else ""
        path = "/".join(quote(part, safe="") for part in repository.split("/"))
        return f"{address.scheme}://{credentials}{address.netloc}{address.path}/{path}.git"
