"""Bitbucket Cloud's REST API (2.0) and OAuth.

Endpoints: `/site/oauth2/authorize` and `/site/oauth2/access_token` on the web address;
`/user`, `/repositories?role=admin`, `/repositories/{workspace}/{slug}/hooks`,
`/repositories/{workspace}/{slug}/commit/{sha}/statuses/build` and
`/repositories/{workspace}/{slug}/src` on the API address.
"""

from urllib.parse import quote, urlencode, urlsplit

from app.forges import http
from app.forges.base import (CommitState, FileChange, FileConflictError, ForgeError, ForgeResponseError, ForgeUser,
                             Repository, TokenSet)

STATES = {
    CommitState.PENDING: "INPROGRESS", CommitState.RUNNING: "INPROGRESS", CommitState.SUCCESS: "SUCCESSFUL",
    CommitState.FAILURE: "FAILED", CommitState.ERROR: "FAILED", CommitState.CANCELLED: "STOPPED",
}
EVENTS = ["repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected"]


def repository_path(full_name: str) -> str:
    """Return "workspace/slug" with each part percent-encoded once, for an API path."""
    workspace, _, slug = full_name.partition("/")
    return f"{quote(workspace, safe='')}/{quote(slug, safe='')}"



class Client:
    """The API half of the Bitbucket forge."""

    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        # Scopes are set on the OAuth consumer in Bitbucket's settings, not in the request.
        query = urlencode({
            "client_id": self.settings.client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256",
        })
        return f"{self.settings.web_url}/site/oauth2/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return self._token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                    "code_verifier": code_verifier})

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token_request(self, fields: dict) -> TokenSet:
        # Bitbucket takes the consumer's key and secret as HTTP Basic credentials.
        response = http.request("POST", f"{self.settings.web_url}/site/oauth2/access_token", data=fields,
                                auth=(self.settings.client_id, self.settings.client_secret),
                                headers={"Accept": "application/json"})
        return http.token_set(http.json_of(response), "Bitbucket", scopes_key="scopes")

    def current_user(self, token: str) -> ForgeUser:
        document = http.json_of(http.request("GET", f"{self.settings.api_url}/user", token=token))
        return ForgeUser(id=document["uuid"], login=document.get("nickname") or document.get("username") or document["uuid"])

    def admin_repositories(self, token: str) -> list[Repository]:
        url = f"{self.settings.api_url}/repositories?" + urlencode({"role": "admin", "pagelen": 100})
        found = []
        while url:
            page = http.json_of(http.request("GET", url, token=token))
            for item in page.get("values", []):
                https = [link["href"] for link in (item.get("links") or {}).get("clone", []) if link.get("name") == "https"]
                found.append(Repository(item["full_name"], https[0] if https else self.clone_url(item["full_name"]),
                                        (item.get("mainbranch") or {}).get("name") or "main", bool(item.get("is_private"))))
            url = page.get("next")
        return found

    def create_webhook(self, token: str, repository: str, url: str, secret: str) -> str:
        body = {"description": "Deno CI", "url": url, "active": True, "secret": secret, "events": EVENTS}
        response = http.request("POST", f"{self.settings.api_url}/repositories/{repository_path(repository)}/hooks",
                                token=token, json=body)
        return str(http.json_of(response)["uuid"])

    def report_status(self, token: str, repository: str, sha: str, state: CommitState, *,
                      target_url: str, description: str, context: str, ref: str | None = None) -> None:
        # The key identifies the status: a later report with the same key replaces the earlier one.
        body = {"key": context[:40], "state": STATES[state], "name": context, "url": target_url,
                "description": description[:255]}
        path = f"repositories/{repository_path(repository)}/commit/{quote(sha, safe='')}/statuses/build"
        http.request("POST", f"{self.settings.api_url}/{path}", token=token, json=body)

    def commit_file(self, token: str, repository: str, change: FileChange) -> str:
        # The form field named by the file's path contains its content. The leading "/" keeps a file
        # named like one of the other fields ("message", "branch") from being read as that field.
        fields = {f"/{change.path.lstrip('/')}": change.content, "message": change.message, "branch": change.branch,
                  "author": f"{change.author_name} <{change.author_email}>"}
        if change.base_commit:
            # With both `branch` and `parents`, Bitbucket returns 409 unless the parent is still the branch's head.
            fields["parents"] = change.base_commit
        url = f"{self.settings.api_url}/repositories/{repository_path(repository)}/src"
        try:
            response = http.request("POST", url, token=token, data=fields)
        except ForgeResponseError as error:
            if error.status_code == 409:
                raise FileConflictError(str(error), error.status_code, error.text) from error
            raise
        # The response is 201 with the new commit's API address in Location and no body to read.
        location = response.headers.get("Location", "").rstrip("/")
        if "/commit/" not in location:
            raise ForgeError(f"POST {url} returned {response.status_code} without the new commit's address in Location")
        return location.rsplit("/", 1)[-1]

    def clone_url(self, repository: str, token: str | None = None) -> str:
        address = urlsplit(self.settings.web_url)
        credentials = f"x-token-auth:{quote(token, safe='')}@" if token else ""
        return f"{address.scheme}://{credentials}{address.netloc}{address.path}/{repository_path(repository)}.git"
