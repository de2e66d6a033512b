"""The HTTP client that forge API modules share: timeouts, errors without tokens, pagination."""

import logging
from datetime import timedelta

import requests

from app.forges.base import ForgeError, ForgeResponseError, ForgeUnreachableError, TokenSet
from app.models._columns import utcnow

log = logging.getLogger(__name__)

# Seconds to wait for a forge to connect and to answer; a status report retries later anyway.
TIMEOUT = (5, 20)


def request(method: str, url: str, *, token: str | None = None, auth_scheme: str = "Bearer",
            headers: dict | None = None, **options) -> requests.Response:
    """Send one request; raise ForgeUnreachableError for a network failure, ForgeResponseError for a status of 400 or more.

    The error message names the method, the URL and the forge's answer, never the token.
    """
    sent_headers = dict(headers or {})
    if token:
        sent_headers["Authorization"] = f"{auth_scheme} {token}"
    try:
        response = requests.request(method, url, headers=sent_headers, timeout=TIMEOUT, **options)
    except requests.RequestException as error:
        raise ForgeUnreachableError(f"{method} {url} failed: {type(error).__name__}") from error
    log.debug("%s %s: %s", method, url, response.status_code)
    if response.status_code >= 400:
        raise ForgeResponseError(f"{method} {url} failed with HTTP {response.status_code}: {response.text[:300]}",
                                 response.status_code, response.text[:2000])
    return response


def json_of(response: requests.Response):
    """Return a response's JSON body; raise ForgeError when it is not JSON."""
    try:
        return response.json()
    except ValueError as error:
        raise ForgeError(f"{response.request.method} {response.url} returned a body that is not JSON") from error


def token_set(document: dict, forge_label: str, scopes_key: str = "scope") -> TokenSet:
    """Read an OAuth token response; raise ForgeError with the forge's own reason when it holds no token.

    GitHub reports a refused exchange with status 200 and an `error` field, so the
    field is checked whatever the status was.
    """
    if "error" in document or "access_token" not in document:
        reason = document.get("error_description") or document.get("error")
        raise ForgeError(f"{forge_label} rejected the token request: {reason}")
    expires = document.get("expires_in")
    return TokenSet(
        access_token=document["access_token"], refresh_token=document.get("refresh_token"),
        expires_at=utcnow() + timedelta(seconds=int(expires)) if expires else None, scopes=document.get(scopes_key),
    )
